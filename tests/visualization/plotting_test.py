import sys

import numpy as np
import pytest

from keras_lgvq import visualization
from keras_lgvq.visualization import plotting

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def test_png_round_trip_through_pillow(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (7, 5, 3)).astype("uint8")
    path = str(tmp_path / "x.png")
    assert visualization.write_png(path, image) == path
    np.testing.assert_array_equal(visualization.read_png(path), image)
    with pytest.raises(ValueError, match="uint8"):
        visualization.write_png(path, image.astype("float32"))


def test_to_uint8_maps_the_data_range():
    out = visualization.to_uint8(np.array([-2.0, -1.0, 0.0, 1.0, 3.0]))
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    # A None entry in sys.modules makes `import matplotlib` fail.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install keras-lgvq\[viz\]"):
        visualization.plot_codebook_usage(np.ones(4))
    with pytest.raises(ImportError, match=r"pip install keras-lgvq\[viz\]"):
        plotting.require_matplotlib()


def test_missing_pillow_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install keras-lgvq\[viz\]"):
        visualization.read_png(str(tmp_path / "x.png"))

import numpy as np
import pytest
from matplotlib.container import BarContainer

from keras_lgvq import visualization

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _bars(axes):
    (bars,) = [c for c in axes.containers if isinstance(c, BarContainer)]
    return bars


def test_bars_errors_and_references(tmp_path):
    values = {
        "psnr": {"A": 24.0, "B": 22.0},
        "recall": {"A": 10.0, "B": None},
    }
    figure = visualization.plot_metric_bars(
        values,
        errors={"psnr": {"A": 0.5, "B": 1.5}},
        references={"recall": 5.0},
        labels={"psnr": "PSNR (dB)"},
        path=str(tmp_path / "m.png"),
    )
    psnr, recall = figure.axes[:2]
    assert psnr.get_title() == "PSNR (dB)" and recall.get_title() == "recall"
    bars = _bars(psnr)
    assert [b.get_height() for b in bars] == [24.0, 22.0]
    # Error bars: one vertical segment per model, of half-width 0.5 / 1.5.
    (segments,) = bars.errorbar.lines[2]
    spans = [s[1, 1] - s[0, 1] for s in segments.get_segments()]
    np.testing.assert_allclose(spans, [1.0, 3.0])
    assert _bars(recall).errorbar is None
    # A missing value draws no bar and says so on the axis.
    assert [b.get_visible() for b in _bars(recall)] == [True, False]
    assert recall.get_xticklabels()[1].get_text() == "B\nn/a"
    (reference,) = recall.lines
    assert reference.get_ydata()[0] == 5.0
    assert (tmp_path / "m.png").stat().st_size > 0


def test_bad_values():
    with pytest.raises(ValueError, match="values"):
        visualization.plot_metric_bars({})

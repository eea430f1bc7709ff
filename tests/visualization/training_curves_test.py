import numpy as np
import pytest

from keras_lgvq import visualization

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def test_one_panel_per_key_one_line_per_model(tmp_path):
    histories = {
        "LG-VQ": {"loss": [3.0, 2.0, 1.5], "gsa_loss": [1.0, 0.5, 0.2]},
        "VQGAN": {
            "loss": {"steps": [10, 20, 30], "values": [2.5, 2.0, 1.0]}
        },
    }
    figure = visualization.plot_training_curves(
        histories, path=str(tmp_path / "c.png")
    )
    loss, gsa = figure.axes[:2]
    assert loss.get_title() == "loss" and gsa.get_title() == "gsa_loss"
    lines = {line.get_label(): line for line in loss.lines}
    np.testing.assert_array_equal(lines["LG-VQ"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["LG-VQ"].get_ydata(), [3, 2, 1.5])
    np.testing.assert_array_equal(lines["VQGAN"].get_xdata(), [10, 20, 30])
    assert [line.get_label() for line in gsa.lines] == ["LG-VQ"]
    assert (tmp_path / "c.png").stat().st_size > 0


def test_selected_keys_and_bad_input():
    figure = visualization.plot_training_curves(
        {"m": {"a": [1, 2], "b": [3, 4]}}, keys=["b"]
    )
    assert [a.get_title() for a in figure.axes] == ["b"]
    with pytest.raises(ValueError, match="histories"):
        visualization.plot_training_curves({})
    with pytest.raises(ValueError, match="equal length"):
        visualization.plot_training_curves(
            {"m": {"a": {"steps": [1, 2], "values": [1.0]}}}
        )

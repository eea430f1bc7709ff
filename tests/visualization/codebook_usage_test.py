import matplotlib.colors
import numpy as np
import pytest

from keras_lgvq import visualization
from keras_lgvq.visualization import codebook_usage


def test_usage_panels_show_used_codes_and_mark_unused(tmp_path):
    counts = np.array([0, 5, 1, 0, 100, 7])
    figure = visualization.plot_codebook_usage(
        {"A": counts, "B": counts[::-1]}, path=str(tmp_path / "u.png")
    )
    assert len(figure.axes) == 3
    top = figure.axes[0]
    bars = top.patches
    assert [b.get_x() + b.get_width() / 2 for b in bars] == [1, 2, 4, 5]
    assert [b.get_height() for b in bars] == [5, 1, 100, 7]
    assert top.get_yscale() == "log"
    (ticks,) = top.lines
    np.testing.assert_array_equal(ticks.get_xdata(), [0, 3])
    assert matplotlib.colors.to_rgb(ticks.get_color()) == pytest.approx(
        codebook_usage.UNUSED_COLOR
    )
    assert "4 of 6 codes used" in top.get_title()
    ranked = figure.axes[-1].lines
    assert [line.get_label() for line in ranked] == ["A", "B"]
    np.testing.assert_array_equal(ranked[0].get_ydata(), [100, 7, 5, 1, 0, 0])
    assert (tmp_path / "u.png").stat().st_size > 0


def test_usage_accepts_one_array_and_rejects_bad_counts():
    figure = visualization.plot_codebook_usage(np.array([3, 0, 2]))
    assert len(figure.axes) == 2
    with pytest.raises(ValueError, match="counts"):
        visualization.plot_codebook_usage(np.array([1, -1]))
    with pytest.raises(ValueError, match="counts"):
        visualization.plot_codebook_usage(np.zeros((2, 2)))

import matplotlib.colors
import numpy as np
import pytest

from keras_lgvq import visualization
from keras_lgvq.visualization import codebook_usage

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


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


def test_sub_codebooks_get_one_panel_each(tmp_path):
    # VQCT: adjective and noun ids are local to their own sub-codebook.
    vqct = {"adjective": np.array([4, 0, 2]), "noun": np.array([0, 9])}
    figure = visualization.plot_codebook_usage(
        {"VQCT": vqct, "VQGAN": np.array([1, 1, 0, 3])},
        path=str(tmp_path / "u.png"),
    )
    assert len(figure.axes) == 4
    titles = [a.get_title() for a in figure.axes[:3]]
    assert titles[0].startswith("VQCT / adjective: 2 of 3 codes used")
    assert titles[1].startswith("VQCT / noun: 1 of 2 codes used")
    assert titles[2].startswith("VQGAN: 3 of 4 codes used")
    assert [b.get_height() for b in figure.axes[1].patches] == [9]
    labels = [line.get_label() for line in figure.axes[-1].lines]
    assert labels == ["VQCT / adjective", "VQCT / noun", "VQGAN"]
    with pytest.raises(ValueError, match="VQCT / noun"):
        visualization.plot_codebook_usage({"VQCT": {"noun": np.zeros((2, 2))}})
    with pytest.raises(ValueError, match="empty dict"):
        visualization.plot_codebook_usage({"VQCT": {}})


def test_usage_counts_prefers_the_sub_codebook_histograms():
    parts = {"adjective": np.ones(3), "noun": np.ones(2)}
    assert visualization.usage_counts(
        {"histogram": np.ones(5), "sub_codebook_histograms": parts}
    ) is parts
    one = np.ones(4)
    assert visualization.usage_counts({"histogram": one}) is one

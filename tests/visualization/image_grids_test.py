import matplotlib.colors
import numpy as np
import pytest

from keras_lgvq import visualization
from keras_lgvq.visualization import image_grids

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 8, 8, 3)).astype(
        "float32"
    )


def _rgb(color):
    return tuple(np.round(matplotlib.colors.to_rgb(color), 4))


def test_reconstruction_grid_alternates_inputs_and_reconstructions(tmp_path):
    images = _images(11)
    path = tmp_path / "grid.png"
    figure = visualization.plot_reconstructions(
        images, -images, count=10, columns=4, path=str(path)
    )
    axes = figure.axes
    # 3 rows of 4 columns, each an input row and a reconstruction row.
    assert len(axes) == 2 * 3 * 4
    shown = [a for a in axes if a.get_visible()]
    assert len(shown) == 2 * 10
    grid = np.array(axes).reshape(6, 4)
    np.testing.assert_array_equal(
        grid[0, 1].images[0].get_array(), visualization.to_uint8(images[1])
    )
    np.testing.assert_array_equal(
        grid[1, 1].images[0].get_array(), visualization.to_uint8(-images[1])
    )
    np.testing.assert_array_equal(
        grid[4, 1].images[0].get_array(), visualization.to_uint8(images[9])
    )
    assert not grid[4, 2].get_visible()
    assert grid[1, 0].get_ylabel() == "reconstruction"
    png = visualization.read_png(str(path))
    assert png.ndim == 3 and png.shape[0] > 50


def test_retrieval_grid_frames_hits_and_misses(tmp_path):
    images = _images(6)
    ranking = np.array([[0, 3, 1], [2, 1, 0]])
    figure = visualization.plot_retrieval(
        images, ranking, captions=["first caption", "second"],
        path=str(tmp_path / "ret.png"),
    )
    rows = figure.subfigs
    assert len(rows) == 2
    first = rows[0].axes
    assert len(first) == 4
    np.testing.assert_array_equal(
        first[2].images[0].get_array(), visualization.to_uint8(images[3])
    )

    def frame(axes):
        return _rgb(axes.spines["top"].get_edgecolor())

    assert frame(first[0]) == _rgb(image_grids.QUERY_COLOR)
    assert frame(first[1]) == _rgb(image_grids.HIT_COLOR)
    assert frame(first[2]) == _rgb(image_grids.MISS_COLOR)
    second = rows[1].axes
    assert frame(second[2]) == _rgb(image_grids.HIT_COLOR)
    assert frame(second[1]) == _rgb(image_grids.MISS_COLOR)
    assert rows[0]._suptitle.get_text() == "first caption"
    assert (tmp_path / "ret.png").stat().st_size > 0


def test_grids_reject_bad_input():
    with pytest.raises(ValueError, match="images"):
        visualization.plot_reconstructions(np.zeros((2, 8, 8)), np.zeros(2))
    with pytest.raises(ValueError, match="ranking"):
        visualization.plot_retrieval(_images(3), np.array([[0, 5]]))
    with pytest.raises(ValueError, match="ranking"):
        visualization.plot_retrieval(_images(3), np.array([[0.0, 1.0]]))

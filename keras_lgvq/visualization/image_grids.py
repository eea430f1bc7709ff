"""Image grids: reconstructions under their inputs, and retrieval results."""

import textwrap

import numpy as np

from keras_lgvq.visualization.plotting import new_figure
from keras_lgvq.visualization.plotting import save_figure
from keras_lgvq.visualization.plotting import to_uint8

# Frame colours of the retrieval grid (RGB in [0, 1]).
QUERY_COLOR = (0.0, 0.0, 0.0)
HIT_COLOR = (30 / 255, 180 / 255, 60 / 255)
MISS_COLOR = (170 / 255, 170 / 255, 170 / 255)
_TILE_INCHES = 0.9


def _show(axes, image, frame=None, frame_width=3.0):
    axes.imshow(image, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        if frame is None:
            spine.set_visible(False)
        else:
            spine.set_edgecolor(frame)
            spine.set_linewidth(frame_width)


def _check_images(name, images):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"`{name}` must be a batch (N, H, W, 3) in [-1, 1]. Received "
            f"shape {images.shape}"
        )
    return images


def plot_reconstructions(
    images, reconstructions, count=16, columns=8, path=None, title=None
):
    """Rows of input images, each followed by a row of their reconstructions.

    Args:
        images: float array `(N, H, W, 3)` in [-1, 1].
        reconstructions: float array like `images` (clipped for display).
        count: int. Images shown (at most `N`).
        columns: int. Images per row.
        path: str or None. Also write the figure there as PNG.
        title: str or None. Figure title.

    Returns:
        `matplotlib.figure.Figure`; `figure.axes` are the tiles, row-major,
        with input rows and reconstruction rows alternating.

    Examples:

    ```python
    plot_reconstructions(images, model(images), path="reconstructions.png")
    ```
    """
    images = _check_images("images", images)
    reconstructions = _check_images("reconstructions", reconstructions)
    count = min(int(count), len(images), len(reconstructions))
    if count < 1:
        raise ValueError("`images` and `reconstructions` must not be empty.")
    columns = min(int(columns), count)
    rows = -(-count // columns)
    figure = new_figure(
        columns * _TILE_INCHES, 2 * rows * _TILE_INCHES + (0.3 if title else 0)
    )
    grid = figure.subplots(2 * rows, columns, squeeze=False)
    x, y = to_uint8(images[:count]), to_uint8(reconstructions[:count])
    for index in range(rows * columns):
        row, column = divmod(index, columns)
        top, bottom = grid[2 * row, column], grid[2 * row + 1, column]
        if index >= count:
            top.set_visible(False)
            bottom.set_visible(False)
            continue
        _show(top, x[index])
        _show(bottom, y[index])
    for row in range(rows):
        grid[2 * row, 0].set_ylabel("input", fontsize=7)
        grid[2 * row + 1, 0].set_ylabel("reconstruction", fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_retrieval(images, ranking, captions=None, path=None, title=None):
    """Text->image retrieval: per query caption, its image then the top hits.

    Args:
        images: float array `(N, H, W, 3)` in [-1, 1], the searched images.
        ranking: int array `(Q, k)`. Image rows retrieved for caption `q`
            (caption `q` describes image `q`), best first.
        captions: list of str or None. Caption `q` is shown over row `q`.
        path: str or None. Also write the figure there as PNG.
        title: str or None. Figure title.

    Returns:
        `matplotlib.figure.Figure`. In each row the first tile is the
        query's own image (black frame), then the `k` retrieved images,
        framed green when correct and grey otherwise.

    Examples:

    ```python
    plot_retrieval(images, artifacts["retrieval_rankings"][
        "probe_image_embeddings"]["text_to_image_top5"], captions)
    ```
    """
    images = _check_images("images", images)
    ranking = np.asarray(ranking)
    if ranking.ndim != 2 or not np.issubdtype(ranking.dtype, np.integer):
        raise ValueError(
            f"`ranking` must be an int array (Q, k). Received dtype "
            f"{ranking.dtype}, shape {ranking.shape}"
        )
    queries, k = ranking.shape
    if queries < 1 or k < 1:
        raise ValueError(f"`ranking` is empty. Received shape {ranking.shape}")
    if ranking.min() < 0 or ranking.max() >= len(images) or (
        queries > len(images)
    ):
        raise ValueError(
            f"`ranking` must index the {len(images)} images, with at most "
            f"that many queries. Received shape {ranking.shape}, values in "
            f"[{ranking.min()}, {ranking.max()}]"
        )
    row_height = _TILE_INCHES + (0.35 if captions else 0.0)
    figure = new_figure(
        (1 + k) * _TILE_INCHES, queries * row_height + (0.3 if title else 0)
    )
    x = to_uint8(images)
    rows = figure.subfigures(queries, 1, squeeze=False)[:, 0]
    for q, (row, hits) in enumerate(zip(rows, ranking)):
        tiles = row.subplots(1, 1 + k, squeeze=False)[0]
        _show(tiles[0], x[q], QUERY_COLOR)
        for tile, hit in zip(tiles[1:], hits):
            _show(tile, x[hit], HIT_COLOR if hit == q else MISS_COLOR)
        if captions:
            text = textwrap.shorten(str(captions[q]), width=14 * (1 + k))
            row.suptitle(text, fontsize=7, x=0.01, ha="left")
    if title:
        figure.suptitle(title, fontsize=9)
    if path is not None:
        save_figure(figure, path)
    return figure

"""Figures of text-to-image samples and image completions (matplotlib).

Drawn like the rest of `keras_lgvq.visualization`: `Figure` objects without
pyplot, matplotlib imported only when a figure is made (the `viz` extra).
"""

import textwrap

import numpy as np

from keras_lgvq.visualization.plotting import new_figure
from keras_lgvq.visualization.plotting import save_figure
from keras_lgvq.visualization.plotting import to_uint8


def _to_uint8(images):
    images = np.asarray(images)
    return images if images.dtype == np.uint8 else to_uint8(images)


def _check_images(images, name, ndim):
    images = np.asarray(images)
    if images.ndim != ndim or images.shape[-1] != 3:
        raise ValueError(
            f"`{name}` must be an array of {ndim} dims ending in 3 channels; "
            f"received shape {images.shape}."
        )
    return _to_uint8(images)


def _wrap(text, width):
    return "\n".join(textwrap.wrap(str(text), width)) if text else ""


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def caption_samples_figure(
    captions,
    samples,
    path=None,
    references=None,
    title=None,
    tile_inches=1.2,
    wrap=28,
):
    """One row per caption: the caption, optional real image, then samples.

    Args:
        captions: list of C str.
        samples: images `(C, S, H, W, 3)` (float in [-1, 1] or uint8): S
            samples per caption.
        path: str or None. Where to save the figure (PNG).
        references: optional images `(C, H, W, 3)` shown first in each row
            (e.g. the real image the caption describes), framed in black.
        title: str or None.
        tile_inches: float. Size of one image tile.
        wrap: int. Caption line width in characters.

    Returns:
        The `matplotlib.figure.Figure`.

    Examples:

    ```python
    images = model.generate(captions, samples_per_caption=4, seed=0)
    caption_samples_figure(
        captions, images.reshape(len(captions), 4, 64, 64, 3),
        path="samples.png")
    ```
    """
    if isinstance(captions, str) or not isinstance(captions, (list, tuple)):
        raise ValueError("`captions` must be a list of str.")
    samples = _check_images(samples, "samples", 5)
    if len(samples) != len(captions):
        raise ValueError(
            f"{len(samples)} rows of samples for {len(captions)} captions."
        )
    if references is not None:
        references = _check_images(references, "references", 4)
        if len(references) != len(captions):
            raise ValueError(
                f"{len(references)} references for {len(captions)} captions."
            )
    rows, per_row = samples.shape[:2]
    text_cols = 2
    cols = text_cols + per_row + (references is not None)
    fig = new_figure(
        cols * tile_inches, rows * tile_inches + (0.4 if title else 0)
    )
    grid = fig.add_gridspec(rows, cols, wspace=0.05, hspace=0.08)
    for r in range(rows):
        ax = fig.add_subplot(grid[r, :text_cols])
        ax.axis("off")
        ax.text(
            0.98, 0.5, _wrap(captions[r], wrap), ha="right", va="center",
            fontsize=7, transform=ax.transAxes,
        )
        col = text_cols
        if references is not None:
            ax = fig.add_subplot(grid[r, col])
            ax.imshow(references[r], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_linewidth(2)
            if r == 0:
                ax.set_title("real", fontsize=7)
            col += 1
        for s in range(per_row):
            ax = fig.add_subplot(grid[r, col + s])
            ax.imshow(samples[r, s], interpolation="nearest")
            ax.axis("off")
            if r == 0:
                ax.set_title(f"sample {s + 1}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _finish(fig, path)


def completion_figure(
    originals,
    known_mask,
    completions,
    path=None,
    captions=None,
    labels=None,
    title=None,
    tile_inches=1.2,
    wrap=28,
):
    """Rows of: original, its known part, then one or more completions.

    Args:
        originals: images `(B, H, W, 3)`.
        known_mask: bool `(h, w)` or `(B, h, w)` code-grid mask (True =
            known), upsampled to the images to grey out the unknown part.
        completions: images `(B, H, W, 3)` or a list of such arrays (one per
            completion kind, e.g. without and with the caption).
        path: str or None. Where to save the figure.
        captions: optional list of B str shown at the left.
        labels: optional list naming each completion kind (column titles).
        title: str or None.
        tile_inches: float.
        wrap: int. Caption line width in characters.

    Returns:
        The `matplotlib.figure.Figure`.

    Examples:

    ```python
    known = np.zeros((16, 16), bool); known[:8] = True
    completion_figure(images, known, [no_caption, with_caption],
                      labels=["no caption", "caption"], captions=captions,
                      path="completions.png")
    ```
    """
    originals = _check_images(originals, "originals", 4)
    if not isinstance(completions, (list, tuple)):
        completions = [completions]
    completions = [_check_images(c, "completions", 4) for c in completions]
    for c in completions:
        if c.shape != originals.shape:
            raise ValueError(
                f"completions of shape {c.shape} for originals "
                f"{originals.shape}."
            )
    labels = list(labels) if labels else [
        f"completion {i + 1}" for i in range(len(completions))
    ]
    if len(labels) != len(completions):
        raise ValueError(f"{len(labels)} labels for {len(completions)} kinds.")
    known_mask = np.asarray(known_mask, bool)
    b, h, w, _ = originals.shape
    if known_mask.ndim == 2:
        known_mask = np.broadcast_to(known_mask, (b,) + known_mask.shape)
    if known_mask.ndim != 3 or len(known_mask) != b:
        raise ValueError(
            f"`known_mask` must be (h, w) or ({b}, h, w); received "
            f"{known_mask.shape}."
        )
    gh, gw = known_mask.shape[1:]
    if h % gh or w % gw:
        raise ValueError(
            f"Images {h}x{w} are not a multiple of the mask grid {gh}x{gw}."
        )
    pixel_mask = np.repeat(
        np.repeat(known_mask, h // gh, axis=1), w // gw, axis=2
    )
    partial = np.where(pixel_mask[..., None], originals, 128).astype("uint8")
    text_cols = 2 if captions is not None else 0
    columns = [("original", originals), ("known", partial)] + list(
        zip(labels, completions)
    )
    cols = text_cols + len(columns)
    fig = new_figure(
        cols * tile_inches, b * tile_inches + (0.4 if title else 0)
    )
    grid = fig.add_gridspec(b, cols, wspace=0.05, hspace=0.08)
    for r in range(b):
        if captions is not None:
            ax = fig.add_subplot(grid[r, :text_cols])
            ax.axis("off")
            ax.text(
                0.98, 0.5, _wrap(captions[r], wrap), ha="right", va="center",
                fontsize=7, transform=ax.transAxes,
            )
        for c, (name, images) in enumerate(columns):
            ax = fig.add_subplot(grid[r, text_cols + c])
            ax.imshow(images[r], interpolation="nearest")
            ax.axis("off")
            if r == 0:
                ax.set_title(name, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _finish(fig, path)

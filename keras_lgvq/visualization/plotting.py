"""matplotlib and Pillow access for the figures (both optional: `viz` extra).

Figures are `matplotlib.figure.Figure` objects made without `pyplot`, so
drawing a report touches no global state (no open-figure registry, no
interactive backend) and works in any process.
"""

import numpy as np

INSTALL_HINT = "pip install keras-lgvq[viz]"


def require_matplotlib():
    """Imports matplotlib, or raises an ImportError saying how to get it.

    Returns:
        The `matplotlib` module.

    Examples:

    ```python
    matplotlib = require_matplotlib()
    ```
    """
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "keras_lgvq.visualization draws its figures with matplotlib, "
            f"which is not installed. Install it with `{INSTALL_HINT}` "
            "(or `pip install matplotlib`)."
        ) from error
    return matplotlib


def _require_pillow():
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(
            "keras_lgvq.visualization reads and writes PNG files with "
            f"Pillow, which is not installed. Install it with "
            f"`{INSTALL_HINT}` (or `pip install pillow`)."
        ) from error
    return Image


def new_figure(width, height):
    """A blank `Figure` of `width` x `height` inches (constrained layout).

    Args:
        width: float. Inches.
        height: float. Inches.

    Returns:
        `matplotlib.figure.Figure`.

    Examples:

    ```python
    figure = new_figure(6, 4)
    axes = figure.add_subplot()
    ```
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure, path, dpi=100):
    """Writes a figure as a PNG file.

    Args:
        figure: `matplotlib.figure.Figure`.
        path: str. Output file.
        dpi: int. Resolution.

    Returns:
        `path`.

    Examples:

    ```python
    save_figure(plot_codebook_usage(counts), "usage.png")
    ```
    """
    figure.savefig(path, dpi=dpi, format="png")
    return path


def to_uint8(images):
    """Images in [-1, 1] (clipped) to uint8 in [0, 255].

    Args:
        images: float array, any shape.

    Returns:
        uint8 array of the same shape.

    Examples:

    ```python
    to_uint8(np.array([-1.0, 0.0, 1.0]))  # [0, 128, 255]
    ```
    """
    images = np.clip(np.asarray(images, "float32"), -1.0, 1.0)
    return np.round((images + 1.0) * 127.5).astype("uint8")


def write_png(path, image):
    """Writes a uint8 `(H, W, 3)` or `(H, W)` array as a PNG (Pillow).

    Args:
        path: str. Output file.
        image: uint8 array.

    Returns:
        `path`.

    Examples:

    ```python
    write_png("image.png", to_uint8(images[0]))
    ```
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(
            "`image` must be a uint8 array (H, W) or (H, W, C). Received "
            f"dtype {image.dtype}, shape {image.shape}; convert [-1, 1] "
            "images with `to_uint8`."
        )
    _require_pillow().fromarray(np.ascontiguousarray(image)).save(
        path, format="PNG"
    )
    return path


def read_png(path):
    """Reads a PNG file as a uint8 RGB array `(H, W, 3)` (Pillow).

    Args:
        path: str. PNG file.

    Returns:
        uint8 array.

    Examples:

    ```python
    pixels = read_png("runs/scenes/lgvq/reconstructions.png")
    ```
    """
    with _require_pillow().open(path) as image:
        return np.asarray(image.convert("RGB"))

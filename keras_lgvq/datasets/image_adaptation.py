"""The input-image rules of every loader and of `make_dataset`.

One set of rules, stated once, for images a user brings:
- channels: grayscale `(H, W)` or `(H, W, 1)` becomes RGB by replicating
  the gray channel; gray + alpha `(H, W, 2)` keeps the gray channel,
  replicated; RGBA `(H, W, 4)` drops the alpha channel (no compositing over
  a background: the colour values are kept as stored); RGB passes.
- values: uint8 images are taken as [0, 255]. Other integer images must
  hold values in [0, 255] (a 16-bit image must be scaled by the user).
  Float images need an explicit `image_value_range`, one of
  `VALUE_RANGES`: (0, 1), (-1, 1) or (0, 255). Nothing guesses: [0, 1] and
  [-1, 1] data can look alike, so a float image without a range is an
  error whose message reports the observed values (and says so when they
  look like uint8 levels in [0, 255]). Values outside the stated range
  are an error. Float images become uint8 levels (rounded), which is what
  the photo transforms produce anyway.

`adapt_image_array` applies the rules to a numpy image (the array loader,
raising ValueError at load time); `adapt_image_tensor` applies them inside
a `tf.data` map (`make_dataset`, the tfds loader), where a value error
fails the iteration with `InvalidArgumentError` carrying the same message.
"""

import numpy as np
import tensorflow as tf

VALUE_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))
# Float rounding slack when checking a stated range.
_RANGE_TOLERANCE = 1e-3
_CHANNELS = (1, 2, 3, 4)
_SHAPES = "(H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4)"


def check_value_range(value_range, name="image_value_range"):
    """Returns `value_range` as a `(low, high)` float tuple, or None.

    Args:
        value_range: None or one of `VALUE_RANGES` (any sequence of two
            numbers equal to one of them).
        name: string. Argument name used in the message.

    Returns:
        A tuple of two floats or None.

    Examples:

    ```python
    check_value_range((0, 1))  # (0.0, 1.0)
    ```
    """
    if value_range is None:
        return None
    message = (
        f"`{name}` must be None or one of {VALUE_RANGES}: the range of the "
        f"values of float images. Received: {name}={value_range!r}"
    )
    if isinstance(value_range, (str, bytes)):
        raise ValueError(message)
    try:
        pair = tuple(float(v) for v in value_range)
    except TypeError as error:
        raise ValueError(message) from error
    if pair not in VALUE_RANGES:
        raise ValueError(message)
    return pair


def _float_range_error(where, low, high, integral):
    hint = ""
    if low >= 0.0 and high > 1.0 and high <= 255.0 and integral:
        hint = (
            " The values are whole numbers up to 255, so they look like "
            "uint8 levels: pass image_value_range=(0, 255), or cast the "
            "images to uint8."
        )
    return ValueError(
        f"{where}: float images need an explicit `image_value_range`, one "
        f"of {VALUE_RANGES} (nothing is guessed: [0, 1] and [-1, 1] data "
        f"look alike). The values span [{low:g}, {high:g}].{hint}"
    )


def adapt_image_array(image, value_range=None, where="image"):
    """Applies the module's rules to one numpy image.

    Args:
        image: array-like `(H, W)` or `(H, W, C)` with C in 1..4.
        value_range: None or one of `VALUE_RANGES`; required for float
            images.
        where: string naming the image in error messages (a file and
            row, an array index).

    Returns:
        uint8 numpy array `(H, W, 3)`.

    Examples:

    ```python
    gray = np.zeros((32, 32), "uint8")
    adapt_image_array(gray).shape  # (32, 32, 3)
    adapt_image_array(np.ones((8, 8, 3), "float32"), value_range=(0, 1))
    ```
    """
    value_range = check_value_range(value_range)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in _CHANNELS:
        raise ValueError(
            f"{where}: an image must have shape {_SHAPES}; got shape "
            f"{array.shape}."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{where}: the image is empty (shape {array.shape}).")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(
            f"{where}: images must be uint8, integer in [0, 255] or float "
            f"(with `image_value_range`); got dtype {array.dtype}."
        )
    elif np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(
                f"{where}: integer images must hold values in [0, 255]; "
                f"got [{low}, {high}]. Scale 16-bit images to 8 bits (e.g. "
                "`(image >> 8).astype('uint8')`)."
            )
        array = array.astype(np.uint8)
    else:
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{where}: the image holds NaN or inf values.")
        low, high = float(array.min()), float(array.max())
        if value_range is None:
            integral = bool(np.all(array == np.round(array)))
            raise _float_range_error(where, low, high, integral)
        lo, hi = value_range
        slack = _RANGE_TOLERANCE * (hi - lo)
        if low < lo - slack or high > hi + slack:
            raise ValueError(
                f"{where}: with image_value_range=({lo:g}, {hi:g}) the "
                f"values must lie in that range; they span [{low:g}, "
                f"{high:g}]. Pass the range the images are stored in."
            )
        scaled = (array.astype(np.float64) - lo) * (255.0 / (hi - lo))
        array = np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    # Gray (+ alpha) replicates channel 0; RGB(A) keeps the first three.
    index = [0, 0, 0] if array.shape[-1] < 3 else [0, 1, 2]
    return np.ascontiguousarray(array[..., index])


def adapt_image_tensor(image, value_range=None, where="image"):
    """Applies the module's rules to one decoded image inside `tf.data`.

    Static problems (rank, dtype, a float image without a range) raise a
    ValueError when the map is traced; value problems (a channel count
    known only at run time, values outside the range) fail the iteration
    with `InvalidArgumentError` carrying the message.

    Args:
        image: tensor `(H, W)` or `(H, W, C)`, C in 1..4, uint8, integer or
            float.
        value_range: None or one of `VALUE_RANGES`; required for float
            images.
        where: string naming the input in error messages.

    Returns:
        uint8 tensor `(H, W, 3)`.

    Examples:

    ```python
    ds = ds.map(lambda x: {**x, "image": adapt_image_tensor(x["image"])})
    ```
    """
    value_range = check_value_range(value_range)
    rank = image.shape.rank
    if rank == 2:
        image = image[..., None]
    elif rank != 3:
        raise ValueError(
            f"{where}: an image must have shape {_SHAPES}; got "
            f"{image.shape} (batch images with make_dataset's `batch_size`, "
            "not before)."
        )
    dtype = image.dtype
    if dtype == tf.uint8:
        pass
    elif dtype.is_integer:
        checks = [
            tf.debugging.assert_non_negative(
                image, message=f"{where}: integer images must be >= 0."
            ),
            tf.debugging.assert_less_equal(
                tf.cast(image, tf.int64),
                tf.constant(255, tf.int64),
                message=(
                    f"{where}: integer images must hold values in [0, 255]; "
                    "scale 16-bit images to 8 bits."
                ),
            ),
        ]
        with tf.control_dependencies(checks):
            image = tf.cast(image, tf.uint8)
    elif dtype.is_floating:
        if value_range is None:
            raise ValueError(
                f"{where}: float images need an explicit "
                f"`image_value_range`, one of {VALUE_RANGES} (nothing is "
                "guessed: [0, 1] and [-1, 1] data look alike; whole-number "
                "floats up to 255 are uint8 levels: (0, 255)). Received "
                f"dtype {dtype.name}."
            )
        lo, hi = value_range
        slack = _RANGE_TOLERANCE * (hi - lo)
        values = tf.cast(image, tf.float32)
        message = (
            f"{where}: with image_value_range=({lo:g}, {hi:g}) every value "
            "must lie in that range (whole numbers up to 255 are uint8 "
            "levels: use (0, 255)); pass the range the images are stored in."
        )
        checks = [
            tf.debugging.assert_all_finite(
                values, f"{where}: the image holds NaN or inf values."
            ),
            tf.debugging.assert_greater_equal(
                values, tf.constant(lo - slack, tf.float32), message=message
            ),
            tf.debugging.assert_less_equal(
                values, tf.constant(hi + slack, tf.float32), message=message
            ),
        ]
        with tf.control_dependencies(checks):
            scaled = (values - lo) * (255.0 / (hi - lo))
        scaled = tf.clip_by_value(tf.round(scaled), 0.0, 255.0)
        image = tf.cast(scaled, tf.uint8)
    else:
        raise ValueError(
            f"{where}: images must be uint8, integer in [0, 255], float "
            f"(with `image_value_range`) or encoded bytes; got dtype "
            f"{dtype.name}."
        )
    channels = image.shape[-1]
    if channels is not None:
        if channels not in _CHANNELS:
            raise ValueError(
                f"{where}: an image must have shape {_SHAPES}; got "
                f"{image.shape}."
            )
        if channels == 3:
            return image
        index = [0, 0, 0] if channels < 3 else [0, 1, 2]
        return tf.gather(image, index, axis=-1)
    dynamic = tf.shape(image)[-1]
    check = tf.debugging.Assert(
        tf.logical_and(dynamic >= 1, dynamic <= 4),
        [f"{where}: an image must have 1 to 4 channels; got", dynamic],
    )
    with tf.control_dependencies([check]):
        index = tf.where(
            dynamic < 3, tf.constant([0, 0, 0]), tf.constant([0, 1, 2])
        )
    image = tf.gather(image, index, axis=-1)
    return tf.ensure_shape(image, [None, None, 3])

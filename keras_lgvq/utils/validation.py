"""Argument and input checks shared by models, layers and metrics."""

import math

import numpy as np
from keras import backend


def check_images(images, channels, name="images"):
    """Raises a ValueError unless `images` is a 4-D float batch.

    Args:
        images: tensor. Expected `(batch, height, width, channels)` floats in
            [-1, 1].
        channels: int. Expected channel count.
        name: string. Argument name used in the message.
    """
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ValueError(
            f"`{name}` must be a 4-D batch (batch, height, width, channels); "
            f"got shape {shape}. Add a batch axis for a single image."
        )
    if shape[-1] is not None and shape[-1] != channels:
        raise ValueError(
            f"`{name}` must have {channels} channels (channels-last); got "
            f"shape {shape}."
        )
    dtype = backend.standardize_dtype(images.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"`{name}` must be floating point in [-1, 1]; got dtype {dtype}. "
            "Scale uint8 images with `images / 127.5 - 1`."
        )


def check_int(name, value, low=1, allow_none=False):
    """Raises a ValueError unless `value` is an int `>= low`; returns it.

    The one integer-argument check of the package (bools are rejected:
    `True` is an `int` in Python but never a valid size).

    Args:
        name: string. Argument name used in the message.
        value: the argument.
        low: int. Smallest accepted value (1: a positive int).
        allow_none: bool. Also accept (and return) None.

    Returns:
        `value` as a Python int (or None).

    Examples:

    ```python
    width = check_int("width", width)             # a positive int
    buffer = check_int("shuffle_buffer", buffer, low=0)
    ```
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"`{name}` must be an int >= {low}"
            f"{' or None' if allow_none else ''}. Received: {name}={value!r}"
        )
    if value < low:
        raise ValueError(
            f"`{name}` must be an int >= {low}"
            f"{' or None' if allow_none else ''}. Received: {name}={value!r}"
        )
    return int(value)


def check_number(
    name, value, low=None, high=None, low_open=False, high_open=False
):
    """Raises a ValueError unless `value` is a finite number in the bounds.

    Args:
        name: string. Argument name used in the message.
        value: the argument.
        low: number or None. Lower bound.
        high: number or None. Upper bound.
        low_open: bool. Exclude `low` itself.
        high_open: bool. Exclude `high` itself.

    Returns:
        `value` as a Python float.

    Examples:

    ```python
    check_number("dropout", dropout, 0.0, 1.0, high_open=True)  # [0, 1)
    ```
    """
    if isinstance(value, bool) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"`{name}` must be a number. Received: {name}={value}")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite. Received: {name}={value}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = ">" if low_open else ">="
        raise ValueError(
            f"`{name}` must be {bound} {low}. Received: {name}={value}"
        )
    if high is not None and (value > high or (high_open and value == high)):
        bound = "<" if high_open else "<="
        raise ValueError(
            f"`{name}` must be {bound} {high}. Received: {name}={value}"
        )
    return float(value)


def check_code_range(indices, num_embeddings, name="indices"):
    """Raises a ValueError if concrete code indices fall outside
    `[0, num_embeddings)`.

    Runs when the values exist (eager calls, numpy inputs); inside a traced
    function (`tf.function`, `jax.jit`) nothing can raise, so callers that
    jit validate on the host side before.

    Args:
        indices: integer tensor or array of code ids.
        num_embeddings: int. Codebook size.
        name: string. Argument name used in the message.

    Examples:

    ```python
    check_code_range(np.array([[0, 5]]), 8)  # passes
    ```
    """
    from keras_lgvq import backend as lgvq_backend

    dtype = backend.standardize_dtype(indices.dtype)
    if "int" not in dtype:
        raise ValueError(
            f"`{name}` must hold integer code ids; got dtype {dtype}."
        )
    values = lgvq_backend.concrete_numpy(indices)
    if values is None or values.size == 0:
        return
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= num_embeddings:
        raise ValueError(
            f"`{name}` must be code ids in [0, {num_embeddings}); got values "
            f"from {low} to {high}. Codes come from `encode` of the same "
            "tokenizer (a negative id is often padding left in a grid)."
        )

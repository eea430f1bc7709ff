"""Argument and input checks shared by models, layers and metrics."""

import math

import numpy as np
from keras import KerasTensor
from keras import backend


def check_images(images, channels, name="images", resolution=None):
    """Raises a ValueError unless `images` is a 4-D float batch.

    Args:
        images: tensor. Expected `(batch, height, width, channels)` floats in
            [-1, 1].
        channels: int. Expected channel count.
        name: string. Argument name used in the message.
        resolution: int or None. When given, a statically known height or
            width must equal it (a different size would give a different
            code grid; a dynamic size is not checked).
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
    if resolution is not None and any(
        side is not None and side != resolution for side in shape[1:3]
    ):
        raise ValueError(
            f"`{name}` must be {resolution}x{resolution} images, the model's "
            f"`resolution`; got shape {shape}. A different size gives a "
            "different code grid. Resize them (make_dataset's `image_size`"
            f"={resolution} does), or build the model for this size (e.g. "
            "`from_preset(name, resolution=...)`)."
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


# Start of every error message from the text-batch checks: the graph
# assertions of traced steps and of tf.data carry it, and `fit` turns the
# backend's error that carries it back into a ValueError.
TEXT_CHECK_PREFIX = "Invalid text batch: "
# The same for the code-grid checks of stage-2 training batches
# (`keras_lgvq.datasets.code_batch_checks`).
CODE_CHECK_PREFIX = "Invalid code batch: "


def text_batch_problems(token_ids, padding_mask, vocabulary_size):
    """Numpy check of a caption batch; returns a list of problems (str).

    The contract of every LG-VQ text input: `token_ids` in
    `[0, vocabulary_size)`, `padding_mask` a prefix of ones in every row
    (the start token first, the end token at `sum(mask) - 1`) with at least
    one real token.

    Args:
        token_ids: integer array `(B, L)`.
        padding_mask: bool or 0/1 integer array `(B, L)`.
        vocabulary_size: int.

    Returns:
        A list of messages, empty when the batch is valid.

    Examples:

    ```python
    text_batch_problems(np.array([[1, 5, 2, 0]]), np.array([[1, 1, 1, 0]]), 8)
    # []
    ```
    """
    ids = np.asarray(token_ids)
    mask = np.asarray(padding_mask)
    problems = []
    if ids.size:
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocabulary_size:
            rows = np.nonzero(((ids < 0) | (ids >= vocabulary_size)).any(-1))
            problems.append(
                f"`token_ids` must be in [0, vocabulary_size="
                f"{vocabulary_size}); got values from {low} to {high} (rows "
                f"{rows[0][:5].tolist()}). Token ids must come from the "
                "model's own text prior (its `tokenize`, or a feature cache "
                "built with it); a negative id is often padding written as "
                "-1 (pad with 0 and mark padding in `padding_mask`)."
            )
    if mask.dtype != bool:
        if mask.size and not np.isin(mask, (0, 1)).all():
            problems.append(
                "`padding_mask` must be boolean (or 0/1); got values "
                f"{np.unique(mask)[:5].tolist()}."
            )
            return problems
        mask = mask.astype(bool)
    if mask.ndim == 2 and mask.size:
        counts = mask.sum(-1)
        empty = np.nonzero(counts == 0)[0]
        if empty.size:
            problems.append(
                f"every caption needs at least one real token, but rows "
                f"{empty[:5].tolist()} are all padding (`padding_mask` all "
                "False). Drop images without a usable caption, or tokenize "
                "an empty caption with the prior (it gives start and end "
                "tokens)."
            )
        prefix = np.arange(mask.shape[-1])[None, :] < counts[:, None]
        bad = np.nonzero((mask != prefix).any(-1))[0]
        if bad.size:
            problems.append(
                "`padding_mask` must be a prefix of ones in every row (real "
                "tokens first, then padding: the end token sits at "
                f"sum(mask) - 1); rows {bad[:5].tolist()} are not, e.g. "
                f"{mask[bad[0]].astype(int).tolist()}. Left-padded or "
                "gapped masks are not supported; re-tokenize with the "
                "prior."
            )
    return problems


def check_text_batch(
    token_ids, padding_mask, vocabulary_size, sequence_length=None
):
    """Raises a ValueError unless a caption batch meets the LG-VQ contract.

    Static checks (rank, matching shapes, integer ids, length at most
    `sequence_length`) raise at once. Value checks (ids in
    `[0, vocabulary_size)`, a prefix-of-ones padding mask with at least one
    real token per row) raise at once when the values exist (eager calls,
    numpy); inside a `tf.function` they become graph assertions that fail
    the step with the same message, and under `jax.jit` / `torch.compile`
    they cannot raise, so `fit` and `make_dataset` check the batches on
    the host side (`keras_lgvq.datasets.pipeline.validate_text_batch`).
    A length that a relaxed retrace made dynamic is checked the same way.

    Args:
        token_ids: integer tensor `(B, L)`.
        padding_mask: bool tensor `(B, L)`.
        vocabulary_size: int. Number of token ids `V`.
        sequence_length: int or None. Longest allowed `L`.

    Examples:

    ```python
    check_text_batch(np.array([[1, 5, 2, 0]]), np.array([[1, 1, 1, 0]]) > 0,
                     vocabulary_size=8, sequence_length=30)
    ```
    """
    from keras import ops

    from keras_lgvq import backend as lgvq_backend

    ids_shape = tuple(token_ids.shape)
    mask_shape = tuple(padding_mask.shape)
    if len(ids_shape) != 2 or len(mask_shape) != 2 or any(
        a is not None and b is not None and a != b
        for a, b in zip(ids_shape, mask_shape)
    ):
        raise ValueError(
            "`token_ids` and `padding_mask` must both have shape (B, L). "
            f"Received: {ids_shape} and {mask_shape}"
        )
    dtype = backend.standardize_dtype(token_ids.dtype)
    if "int" not in dtype:
        raise ValueError(
            f"`token_ids` must be integer token ids; got dtype {dtype}."
        )
    length = ids_shape[1] if ids_shape[1] is not None else mask_shape[1]
    if sequence_length is not None:
        if length is not None and length > sequence_length:
            raise ValueError(
                f"`token_ids` has length {length}, more than sequence_length="
                f"{sequence_length}. Tokenize with the model's text prior "
                "(it truncates to its sequence_length, keeping the end "
                "token) or build the model with a longer sequence_length."
            )
        if length is None:
            lgvq_backend.runtime_assert(
                ops.shape(token_ids)[1] <= sequence_length,
                f"{TEXT_CHECK_PREFIX}`token_ids` is longer than "
                f"sequence_length={sequence_length} (checked at run time: "
                "the traced length is dynamic).",
            )
    if isinstance(token_ids, KerasTensor) or isinstance(
        padding_mask, KerasTensor
    ):
        return  # Symbolic shape inference: no values to check.
    ids = lgvq_backend.concrete_numpy(token_ids)
    mask = lgvq_backend.concrete_numpy(padding_mask)
    if ids is not None and mask is not None:
        problems = text_batch_problems(ids, mask, vocabulary_size)
        if problems:
            raise ValueError(TEXT_CHECK_PREFIX + " ".join(problems))
        return
    # Traced: the same conditions as graph assertions where the backend has
    # them (TensorFlow); the host-side checks cover jax.jit and compile.
    if not lgvq_backend.graph_assertions_available():
        return
    ids = ops.cast(token_ids, "int32")
    valid = ops.cast(padding_mask, "bool")
    lgvq_backend.runtime_assert(
        ops.logical_and(
            ops.all(ids >= 0), ops.all(ids < vocabulary_size)
        ),
        f"{TEXT_CHECK_PREFIX}`token_ids` must be in [0, vocabulary_size="
        f"{vocabulary_size}). Token ids must come from the model's own text "
        "prior; a negative id is often padding written as -1.",
    )
    counts = ops.sum(ops.cast(valid, "int32"), axis=-1)
    lgvq_backend.runtime_assert(
        ops.all(counts > 0),
        f"{TEXT_CHECK_PREFIX}every caption needs at least one real token; "
        "a row of `padding_mask` is all padding.",
    )
    positions = ops.arange(ops.shape(valid)[1], dtype="int32")[None, :]
    prefix = positions < counts[:, None]
    lgvq_backend.runtime_assert(
        ops.all(ops.equal(valid, prefix)),
        f"{TEXT_CHECK_PREFIX}`padding_mask` must be a prefix of ones in "
        "every row (real tokens first, then padding).",
    )

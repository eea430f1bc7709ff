"""Host-side checks of integer id entries (token ids, answer ids) in a
batch, for `tf.data.Dataset.map`."""

import numpy as np
import tensorflow as tf

from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX


def validate_id_batch(batch, key, size, allowed=None, hint=""):
    """Checks that `batch[key]` holds integer ids in `[0, size)`.

    Runs on the CPU inside tf.data, before any backend sees the batch, so
    it also guards steps compiled with `jax.jit`, XLA or `torch.compile`,
    where an out-of-range id would be gathered silently (JAX clamps it, a
    wrong embedding row or label, no error). A bad batch fails the
    iteration with `tf.errors.InvalidArgumentError` whose message starts
    with `TEXT_CHECK_PREFIX`; the models' `fit` re-raise it as a
    ValueError (`keras_lgvq.utils.input_errors`). Batches without `key`
    pass unchanged.

    Args:
        batch: dict of tensors.
        key: str. The entry to check, e.g. "token_ids".
        size: int. Ids must be below it (a vocabulary or class count).
        allowed: None, or a bool array `(size,)`: only ids marked True are
            accepted (a compact decoder vocabulary).
        hint: str. The fix, appended to the message.

    Returns:
        The batch, with `batch[key]` depending on the checks.

    Examples:

    ```python
    ds = ds.map(lambda b: validate_id_batch(b, "answer_ids", 27))
    ```
    """
    if not isinstance(batch, dict) or key not in batch:
        return batch
    values = batch[key]
    if not values.dtype.is_integer:
        raise ValueError(
            f"{TEXT_CHECK_PREFIX}`{key}` must hold integer ids; got dtype "
            f"{values.dtype}. {hint}".rstrip()
        )
    ids = tf.cast(values, tf.int64)
    checks = [
        tf.debugging.assert_non_negative(
            ids,
            message=f"{TEXT_CHECK_PREFIX}`{key}` must be >= 0. {hint}".rstrip(),
        ),
        tf.debugging.assert_less(
            ids,
            tf.constant(int(size), tf.int64),
            message=(
                f"{TEXT_CHECK_PREFIX}`{key}` must be < {int(size)}. {hint}"
            ).rstrip(),
        ),
    ]
    if allowed is not None:
        table = tf.constant(np.asarray(allowed, bool))
        with tf.control_dependencies(checks):
            # Clipped so the lookup of an id the checks refuse cannot fail
            # first with an opaque gather error.
            inside = tf.gather(table, tf.clip_by_value(ids, 0, int(size) - 1))
        checks.append(
            tf.debugging.assert_equal(
                inside,
                tf.ones_like(inside),
                message=(
                    f"{TEXT_CHECK_PREFIX}`{key}` holds an id outside the "
                    f"model's vocabulary. {hint}"
                ).rstrip(),
            )
        )
    with tf.control_dependencies(checks):
        values = tf.identity(values)
    return {**batch, key: values}

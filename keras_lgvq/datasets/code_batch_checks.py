"""Host-side checks of stage-2 code batches, for `tf.data.Dataset.map`."""

import tensorflow as tf

from keras_lgvq.utils.code_layout import index_depth
from keras_lgvq.utils.code_layout import normalize_sub_codebooks
from keras_lgvq.utils.validation import CODE_CHECK_PREFIX


def validate_code_batch(batch, num_codes, sequence_length, sub_codebooks=None):
    """Checks a batch's code grids in the input pipeline.

    Runs on the CPU inside tf.data, before any backend sees the batch, so
    it also guards steps compiled with `jax.jit`, XLA or `torch.compile`,
    where an out-of-range id would otherwise be gathered silently (JAX
    trained on a NaN loss). A bad batch fails the iteration with
    `tf.errors.InvalidArgumentError` whose message starts with
    `CODE_CHECK_PREFIX` and names the problem; the models' `fit` re-raise
    it as a ValueError (`keras_lgvq.utils.input_errors`).

    Checks: `codes` integer, `sequence_length` ids per row (`(B, h, w)` or
    `(B, N)`), every id in `[0, num_codes)`. With `sub_codebooks` (VQCT's
    layout, `keras_lgvq.utils.code_layout`): a trailing axis of `S` slots,
    `sequence_length` positions per row, each slot's ids in its
    sub-codebook's range. Batches without `codes` pass unchanged.

    Args:
        batch: dict of tensors with `codes`.
        num_codes: int. Codebook size K of the tokenizer (unused with
            `sub_codebooks`).
        sequence_length: int. Code positions per image (`h * w`).
        sub_codebooks: None (one codebook) or the tokenizer's
            `sub_codebooks`.

    Returns:
        The batch, with `codes` depending on the checks.

    Examples:

    ```python
    ds = ds.map(lambda b: validate_code_batch(b, 256, 16 * 16))
    ```
    """
    if not isinstance(batch, dict) or "codes" not in batch:
        return batch
    codes = batch["codes"]
    if not codes.dtype.is_integer:
        raise ValueError(
            f"{CODE_CHECK_PREFIX}`codes` must be integer code ids (the "
            f"frozen tokenizer's `encode` output); got dtype {codes.dtype}."
        )
    ids = tf.cast(codes, tf.int64)
    sub_codebooks = normalize_sub_codebooks(sub_codebooks)
    if sub_codebooks is None:
        positions = tf.reduce_prod(tf.shape(ids)[1:])
        upper = tf.constant(int(num_codes), tf.int64)
        range_message = (
            f"{CODE_CHECK_PREFIX}`codes` must be < num_codes={num_codes}: "
            "code ids come from `encode` of the model's own tokenizer."
        )
        checks = []
    else:
        depth = index_depth(sub_codebooks)
        layout = ", ".join(
            f"{p.slots} {p.name} id(s) in [0, {p.size})"
            for p in sub_codebooks
        )
        # Per-slot bounds, broadcast over the trailing index axis.
        upper = tf.constant(
            [p.size for p in sub_codebooks for _ in range(p.slots)],
            tf.int64,
        )
        range_message = (
            f"{CODE_CHECK_PREFIX}each `codes` slot must lie in its "
            f"sub-codebook's range ({layout}): code ids come from `encode` "
            "of the model's own tokenizer."
        )
        checks = [
            tf.debugging.assert_equal(
                tf.shape(ids)[-1],
                depth,
                message=(
                    f"{CODE_CHECK_PREFIX}`codes` must end in an index axis of "
                    f"{depth} slots ({layout}), as the tokenizer's `encode` "
                    "returns."
                ),
            )
        ]
        positions = tf.reduce_prod(tf.shape(ids)[1:-1])
    checks += [
        tf.debugging.assert_equal(
            positions,
            int(sequence_length),
            message=(
                f"{CODE_CHECK_PREFIX}each `codes` row must hold "
                f"sequence_length={sequence_length} grid positions (the "
                "model's grid); the codes come from another tokenizer or "
                "grid size."
            ),
        ),
        tf.debugging.assert_non_negative(
            ids,
            message=(
                f"{CODE_CHECK_PREFIX}`codes` must be >= 0; a negative id is "
                "often padding left in a grid."
            ),
        ),
        tf.debugging.assert_less(ids, upper, message=range_message),
    ]
    with tf.control_dependencies(checks):
        codes = tf.identity(codes)
    return {**batch, "codes": codes}

"""Masked-word Recall@1 with the LG-VQ paper's Mask-1 / Mask-3 protocol."""

import numpy as np

from keras_lgvq.utils.tensors import to_numpy
from keras_lgvq.utils.validation import check_int


def _eligible_positions(padding_mask, max_position):
    """Bool (B, L): valid caption tokens, excluding SOT and the EOT."""
    batch, length = padding_mask.shape
    positions = np.arange(length)[None, :]
    # EOT sits at the last valid position of each row.
    last_valid = np.where(
        padding_mask.any(axis=1),
        length - 1 - np.argmax(padding_mask[:, ::-1], axis=1),
        -1,
    )
    eligible = (
        padding_mask & (positions > 0) & (positions < last_valid[:, None])
    )
    if max_position is not None:
        eligible &= positions <= max_position
    return eligible


def select_masked_positions(
    token_ids,
    padding_mask=None,
    num_masked=1,
    seed=0,
    max_position=28,
    pad_token_id=0,
):
    """Choose exactly `num_masked` caption tokens per row to mask.

    The paper's Table 3 protocol ("Mask-1" / "Mask-3"): in each caption,
    mask exactly 1 or 3 BPE tokens, never the start token (position 0) nor
    the end token (the last valid position), and, like the official
    `select_tokenize` / `multi_tokenize`, only among the first 28 caption
    tokens (positions 1..28; `max_position=None` lifts that limit).
    Positions are drawn uniformly without replacement. Rows with fewer
    than `num_masked` eligible tokens get no mask at all (they are left
    out of the recall rather than masked differently).

    Args:
        token_ids: int array `(B, L)`. Token ids, SOT first, then the
            caption, then EOT, then padding.
        padding_mask: bool array `(B, L)` or None. True at real tokens;
            `None` uses `token_ids != pad_token_id` (LG-VQ's convention).
        num_masked: int. Tokens to mask per caption (1 or 3 in the paper).
        seed: int or `numpy.random.Generator`. Makes the choice
            deterministic.
        max_position: int or None. Last position that may be masked.
        pad_token_id: int. Padding id used when `padding_mask` is None.

    Returns:
        A bool array `(B, L)`, True at masked positions (note: LG-VQ's
        `text_mask` uses the opposite convention, 1 = keep).

    Examples:

    ```python
    mask = keras_lgvq.metrics.select_masked_positions(tokens, num_masked=3)
    ```
    """
    token_ids = to_numpy(token_ids)
    if token_ids.ndim != 2:
        raise ValueError(
            f"`token_ids` must have shape (B, L). Received: {token_ids.shape}"
        )
    if padding_mask is None:
        padding_mask = token_ids != pad_token_id
    padding_mask = to_numpy(padding_mask).astype(bool)
    if padding_mask.shape != token_ids.shape:
        raise ValueError(
            "`padding_mask` must have the shape of `token_ids`. Received: "
            f"{padding_mask.shape} vs {token_ids.shape}"
        )
    check_int("num_masked", num_masked)
    rng = (
        seed
        if isinstance(seed, np.random.Generator)
        else (np.random.default_rng(seed))
    )
    eligible = _eligible_positions(padding_mask, max_position)
    # Uniform subset without replacement: the num_masked smallest random
    # keys among the eligible positions of each row.
    keys = rng.random(eligible.shape)
    keys = np.where(eligible, keys, np.inf)
    order = np.argsort(keys, axis=1, kind="stable")[:, :num_masked]
    mask = np.zeros_like(eligible)
    np.put_along_axis(mask, order, True, axis=1)
    enough = eligible.sum(axis=1) >= num_masked
    return mask & eligible & enough[:, None]


def masked_word_recall_at_1(
    predict_fn,
    batches,
    num_masked=1,
    seed=0,
    max_position=28,
    token_ids_key="token_ids",
    padding_mask_key="padding_mask",
    pad_token_id=0,
    return_counts=False,
):
    """Masked-word Recall@1 (%) over a dataset, Mask-1 / Mask-3 protocol.

    For every batch, `select_masked_positions` picks exactly `num_masked`
    tokens per caption (one random stream seeded once, so the whole
    evaluation is reproducible for a fixed batch order), `predict_fn`
    predicts the vocabulary at every position, and a masked token counts
    as recalled when the argmax of its logits equals the true id.

    Args:
        predict_fn: callable `(batch, mask) -> logits (B, L, V)`. `mask` is
            a bool numpy array `(B, L)`, True at the positions to hide.
        batches: iterable of dicts (or a `tf.data.Dataset` of dicts) with
            the token ids under `token_ids_key` and optionally a padding
            mask under `padding_mask_key`.
        num_masked: int. 1 for Mask-1, 3 for Mask-3.
        seed: int. Seed of the position choice.
        max_position: int or None. Last maskable position (28 as in the
            official code).
        token_ids_key: string. Key of the `(B, L)` token ids.
        padding_mask_key: string. Key of the `(B, L)` padding mask (True at
            real tokens); if absent, `token_ids != pad_token_id` is used.
        pad_token_id: int. Padding id.
        return_counts: bool. Also return `(num_correct, num_masked_tokens)`.

    Returns:
        Recall@1 in %, or `(recall, correct, total)` with `return_counts`.

    Examples:

    ```python
    def predict_fn(batch, mask):
        return model.predict_masked_tokens(batch, mask)

    keras_lgvq.metrics.masked_word_recall_at_1(predict_fn, val_ds, 3)
    ```
    """
    rng = np.random.default_rng(seed)
    correct = 0
    total = 0
    for batch in batches:
        if not isinstance(batch, dict) or token_ids_key not in batch:
            raise ValueError(
                f"Each batch must be a dict with key {token_ids_key!r}. "
                f"Received: {type(batch).__name__}"
            )
        token_ids = to_numpy(batch[token_ids_key])
        padding_mask = batch.get(padding_mask_key)
        mask = select_masked_positions(
            token_ids,
            padding_mask=padding_mask,
            num_masked=num_masked,
            seed=rng,
            max_position=max_position,
            pad_token_id=pad_token_id,
        )
        logits = to_numpy(predict_fn(batch, mask))
        if logits.ndim != 3 or logits.shape[:2] != token_ids.shape:
            raise ValueError(
                "`predict_fn` must return logits of shape (B, L, V) with "
                f"(B, L) = {token_ids.shape}. Received: {logits.shape}"
            )
        predicted = np.argmax(logits, axis=-1)
        correct += int(np.sum((predicted == token_ids) & mask))
        total += int(np.sum(mask))
    if total == 0:
        raise ValueError(
            "No caption had enough maskable tokens: nothing was evaluated."
        )
    recall = 100.0 * correct / total
    if return_counts:
        return recall, correct, total
    return recall

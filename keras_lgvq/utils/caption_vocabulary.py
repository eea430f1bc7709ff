"""The token ids a caption set uses (for a restricted MTP softmax)."""

import numpy as np
from keras import ops


def caption_token_ids(
    captions=None,
    tokenizer=None,
    token_ids=None,
    padding_mask=None,
    batch_size=1024,
):
    """Sorted distinct token ids of the real (non-padding) caption tokens.

    Feed the result to `LanguageGuidance(mtp_vocabulary_subset=...)` (or
    `LGVQ.from_preset(..., guidance=dict(mtp_vocabulary_subset=...))`) to
    restrict the masked-token softmax to the training captions' vocabulary.
    That is an approximation of the paper's loss (see
    `keras_lgvq.layers.guidance.masked_text_decoder.MaskedTextDecoder`);
    every caption the model trains on must be in the set the ids come from,
    or the masked-text loss turns NaN.

    Give either `captions` with a `tokenizer`, or already tokenized
    `token_ids` with their `padding_mask`.

    Args:
        captions: iterable of str, or None.
        tokenizer: object with `tokenize(strings) -> (token_ids,
            padding_mask)`, e.g. a `keras_lgvq.text_priors.TextPrior`
            (the model's own prior, so the ids match its vocabulary).
        token_ids: int array `(N, L)` or None.
        padding_mask: bool array `(N, L)`, True for real tokens; required
            with `token_ids`.
        batch_size: int. Captions tokenized per call.

    Returns:
        1-D int32 numpy array of distinct ids in increasing order (start,
        end and other special tokens that occur are included).

    Examples:

    ```python
    prior = keras_lgvq.text_priors.get("minilm")
    ids = keras_lgvq.utils.caption_vocabulary.caption_token_ids(
        train_captions, tokenizer=prior
    )
    model = keras_lgvq.LGVQ.from_preset(
        "scenes", guidance=dict(mtp_vocabulary_subset=ids)
    )
    ```
    """
    if (captions is None) == (token_ids is None):
        raise ValueError(
            "Pass either `captions` (with `tokenizer`) or `token_ids` (with "
            "`padding_mask`), not both or neither."
        )
    if token_ids is not None:
        if padding_mask is None:
            raise ValueError(
                "`token_ids` needs its `padding_mask` (True for real "
                "tokens), so that padding ids are not collected."
            )
        return _distinct_ids(token_ids, padding_mask)
    if tokenizer is None or not hasattr(tokenizer, "tokenize"):
        raise ValueError(
            "`captions` need a `tokenizer` with a `tokenize(strings)` "
            "method returning (token_ids, padding_mask), e.g. the model's "
            f"text prior. Received: tokenizer={tokenizer!r}"
        )
    if isinstance(captions, (str, bytes)):
        raise ValueError(
            "`captions` must be a collection of strings, not one string."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise ValueError(
            f"`batch_size` must be a positive int. Received: {batch_size!r}"
        )
    if batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: {batch_size}"
        )
    captions = list(captions)
    if not captions:
        raise ValueError("`captions` is empty: there are no ids to collect.")
    found = []
    for start in range(0, len(captions), batch_size):
        ids, mask = tokenizer.tokenize(captions[start : start + batch_size])
        found.append(_distinct_ids(ids, mask))
    return np.unique(np.concatenate(found)).astype("int32")


def _distinct_ids(token_ids, padding_mask):
    ids = np.asarray(ops.convert_to_numpy(token_ids))
    mask = np.asarray(ops.convert_to_numpy(padding_mask))
    if ids.shape != mask.shape:
        raise ValueError(
            "`token_ids` and `padding_mask` must have the same shape. "
            f"Received: {ids.shape} and {mask.shape}"
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"`token_ids` must hold integers. Received dtype {ids.dtype}."
        )
    real = ids[mask.astype(bool)]
    if real.size == 0:
        raise ValueError(
            "`padding_mask` marks no real token: there are no ids to collect."
        )
    return np.unique(real).astype("int32")

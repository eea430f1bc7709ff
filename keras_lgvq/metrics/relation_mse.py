"""Code-word relation MSE (LG-VQ paper Table 4)."""

from keras import ops

_EPS = 1e-12


def _unit(x):
    # The official code divides by the norm with no epsilon; a tiny one keeps
    # all-zero rows (padding) at 0 instead of NaN.
    norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return x / ops.maximum(norm, _EPS)


def match_codes_to_words(word_features, visual_tokens, code_vectors):
    """Pick, for every word, the code at the best-matching grid position.

    As in LG-VQ's relationship alignment: cosine similarity between each
    word feature and each visual token (features in the word space, e.g.
    the ViT outputs `enc_src[:, 1:]`), hard argmax over positions, then
    gather the code vector at that position.

    Args:
        word_features: tensor `(B, L, E)`. Per-token word features.
        visual_tokens: tensor `(B, N, E)`. Per-position image features in
            the same space as the words.
        code_vectors: tensor `(B, N, D)`. Quantised code vector (or any
            code feature) at each of the N grid positions.

    Returns:
        `(matched_codes, match_scores)`: `(B, L, D)` and `(B, L)` tensors.

    Examples:

    ```python
    codes, scores = keras_lgvq.metrics.match_codes_to_words(
        words, vit_tokens, quant_tokens
    )
    ```
    """
    word_features = ops.convert_to_tensor(word_features)
    visual_tokens = ops.convert_to_tensor(visual_tokens)
    code_vectors = ops.convert_to_tensor(code_vectors)
    if (
        len(word_features.shape) != 3
        or len(visual_tokens.shape) != 3
        or len(code_vectors.shape) != 3
    ):
        raise ValueError(
            "Expected word_features (B, L, E), visual_tokens (B, N, E) and "
            f"code_vectors (B, N, D). Received: {tuple(word_features.shape)},"
            f" {tuple(visual_tokens.shape)}, {tuple(code_vectors.shape)}"
        )
    similarity = ops.einsum(
        "ble,bne->bln", _unit(word_features), _unit(visual_tokens)
    )
    index = ops.argmax(similarity, axis=-1)  # (B, L)
    scores = ops.max(similarity, axis=-1)
    matched = ops.take_along_axis(
        code_vectors, ops.expand_dims(index, -1), axis=1
    )
    return matched, scores


def code_word_relation_mse(
    word_features,
    matched_codes,
    padding_mask,
    match_scores=None,
    reduction="all",
):
    """MSE between word-word and code-code cosine relation matrices.

    `Q = (t̂ m)(t̂ m)^T` relates the words of a caption, `P = (ĝ m)(ĝ m)^T`
    the code vectors matched to them (`ĝ` unit-normalised; multiplied by
    the sign of `match_scores` when given, which is all the official
    `value` weighting amounts to), and the score is `mean((P - Q)^2)`.
    Lower means the codes relate to each other like the words do; the
    paper reports 0.6374 (VQ-GAN) vs 0.0351 (VQ-GAN+LG) on CUB.

    Args:
        word_features: tensor `(B, L, E)`. Per-token word features.
        matched_codes: tensor `(B, L, D)`. The code vector matched to each
            word (e.g. from `match_codes_to_words`).
        padding_mask: tensor `(B, L)`. 1/True at real tokens.
        match_scores: tensor `(B, L)` or None. Matching similarities;
            only their sign is used.
        reduction: string. `"all"`: mean over all `B * L * L` entries,
            padding included, exactly as the official `nn.MSELoss`;
            `"valid"`: mean over pairs of real tokens only (independent
            of padding length); `"none"`: the `(B, L, L)` squared errors.

    Returns:
        A float32 scalar tensor (or `(B, L, L)` for `reduction="none"`).

    Examples:

    ```python
    keras_lgvq.metrics.code_word_relation_mse(words, codes, mask)
    ```
    """
    if reduction not in ("all", "valid", "none"):
        raise ValueError(
            "`reduction` must be 'all', 'valid' or 'none'. "
            f"Received: reduction={reduction!r}"
        )
    words = ops.cast(ops.convert_to_tensor(word_features), "float32")
    codes = ops.cast(ops.convert_to_tensor(matched_codes), "float32")
    mask = ops.cast(ops.convert_to_tensor(padding_mask), "float32")
    if len(words.shape) != 3 or len(codes.shape) != 3:
        raise ValueError(
            "Expected word_features (B, L, E) and matched_codes (B, L, D). "
            f"Received: {tuple(words.shape)}, {tuple(codes.shape)}"
        )
    if tuple(mask.shape) != tuple(words.shape[:2]) or tuple(
        codes.shape[:2]
    ) != tuple(words.shape[:2]):
        raise ValueError(
            "`padding_mask` must be (B, L) and `matched_codes` (B, L, D) with "
            f"(B, L) = {tuple(words.shape[:2])}. Received: "
            f"{tuple(mask.shape)}, {tuple(codes.shape)}"
        )
    m = ops.expand_dims(mask, -1)
    t = _unit(words) * m
    if match_scores is not None:
        sign = ops.sign(
            ops.cast(ops.convert_to_tensor(match_scores), "float32")
        )
        codes = codes * ops.expand_dims(sign, -1)
    g = _unit(codes) * m
    q = ops.matmul(t, ops.transpose(t, (0, 2, 1)))
    p = ops.matmul(g, ops.transpose(g, (0, 2, 1)))
    sq = ops.square(p - q)
    if reduction == "none":
        return sq
    if reduction == "all":
        return ops.mean(sq)
    pair = ops.expand_dims(mask, -1) * ops.expand_dims(mask, 1)
    return ops.sum(sq * pair) / ops.maximum(ops.sum(pair), 1.0)

"""Images as text: an LQAE image's token ids written as a word-piece string.

LQAE quantizes every patch onto a token of a frozen masked LM's vocabulary,
so an image *is* a sequence of word pieces (lqae-spec §2-3). These helpers
turn the `(B, g, g)` token-id grids of an LQAE tokenizer into strings (and
back), which is what the few-shot prompting evaluation feeds to a causal LM.
"""

import numpy as np

from keras_lgvq.utils.tensors import to_numpy
from keras_lgvq.utils.validation import check_int

TEXT_MODES = ("tokens", "decode")


def _check_language_model(language_model):
    if not (
        hasattr(language_model, "id_to_token")
        and hasattr(language_model, "detokenize")
        and hasattr(language_model, "vocabulary_size")
    ):
        raise ValueError(
            "`language_model` must be a keras_lgvq.language_models."
            "MaskedLanguageModel (with `id_to_token` / `detokenize`); "
            f"received {type(language_model).__name__}."
        )


def _flat_ids(token_ids, vocabulary_size):
    ids = to_numpy(token_ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"`token_ids` must hold integer token ids; received dtype "
            f"{ids.dtype}."
        )
    if ids.ndim not in (2, 3):
        raise ValueError(
            "`token_ids` must be a (batch, length) sequence or a (batch, h, "
            f"w) grid of token ids; received shape {ids.shape}."
        )
    if ids.size and (ids.min() < 0 or ids.max() >= vocabulary_size):
        raise ValueError(
            f"`token_ids` must lie in [0, {vocabulary_size}) (the language "
            f"model's vocabulary); received [{ids.min()}, {ids.max()}]."
        )
    return ids.reshape(ids.shape[0], -1)


def token_ids_to_text(token_ids, language_model, mode="tokens"):
    """Write token-id sequences / grids as strings of the LM's vocabulary.

    A grid `(B, h, w)` is read row-major (the order the LM reads it).

    Args:
        token_ids: int array `(B, L)` or `(B, h, w)`.
        language_model: a `MaskedLanguageModel` with a vocabulary.
        mode: `"tokens"` (default): the token strings joined by single
            spaces, one per id (Hugging Face `convert_ids_to_tokens`),
            exactly invertible with `text_to_token_ids`; `"decode"`: the
            tokenizer's decoding (BERT "##" pieces glued to the previous
            piece, RoBERTa byte-level pieces decoded), closer to prose
            but not invertible.

    Returns:
        A list of `B` strings.

    Examples:

    ```python
    ids = backbone.encode(images)                       # (B, 8, 8)
    texts = token_ids_to_text(ids, backbone.language_model)
    ```
    """
    _check_language_model(language_model)
    if mode not in TEXT_MODES:
        raise ValueError(
            f"`mode` must be one of {TEXT_MODES}; received {mode!r}."
        )
    flat = _flat_ids(token_ids, language_model.vocabulary_size)
    if mode == "decode":
        if not len(flat):
            return []
        return list(language_model.detokenize(flat))
    tokens = language_model.id_to_token(flat)
    return [" ".join(row) for row in tokens]


def text_to_token_ids(texts, language_model, shape=None):
    """Invert `token_ids_to_text(..., mode="tokens")`.

    Args:
        texts: list of str. Space-separated token strings.
        language_model: the `MaskedLanguageModel` whose vocabulary wrote
            them.
        shape: tuple or None. Per-text shape of the result, e.g. `(h, w)`;
            `(L,)` if None (all texts must then have the same length).

    Returns:
        int32 numpy array `(B,) + shape`.

    Raises:
        ValueError: a token is not in the vocabulary, or the lengths do not
            fit `shape`.

    Examples:

    ```python
    ids = text_to_token_ids(texts, lm, shape=(8, 8))
    ```
    """
    _check_language_model(language_model)
    vocabulary = language_model.vocabulary
    if vocabulary is None:
        # Raises the model's own "no vocabulary" error.
        language_model.id_to_token(0)
    index = {}
    for i, token in enumerate(vocabulary):
        index.setdefault(token, i)
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise ValueError(
            f"`texts` must be a list of strings; received {type(texts).__name__}."
        )
    rows = []
    for n, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"`texts`[{n}] must be a str; received {text!r}.")
        pieces = text.split(" ") if text else []
        unknown = [p for p in pieces if p not in index]
        if unknown:
            raise ValueError(
                f"`texts`[{n}] holds {unknown[:5]!r}, not tokens of the "
                "language model's vocabulary (was it written with "
                "mode='tokens' by this model?)."
            )
        rows.append([index[p] for p in pieces])
    lengths = {len(r) for r in rows}
    if shape is None:
        if len(lengths) > 1:
            raise ValueError(
                "`texts` have different token counts "
                f"{sorted(lengths)}; pass rows of equal length."
            )
        shape = (lengths.pop() if lengths else 0,)
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape))
    bad = [n for n, r in enumerate(rows) if len(r) != size]
    if bad:
        raise ValueError(
            f"`texts`[{bad[0]}] has {len(rows[bad[0]])} tokens; `shape` "
            f"{shape} needs {size}."
        )
    return np.asarray(rows, dtype="int32").reshape((len(rows),) + shape)


def images_to_text(backbone, images, mode="tokens", batch_size=32):
    """Encode images with an LQAE tokenizer and write them as text.

    Args:
        backbone: an LQAE tokenizer: `encode(images)` returns `(B, g, g)`
            ids of `backbone.language_model`'s vocabulary
            (`keras_lgvq.models.LQAEBackbone`).
        images: float array `(N, H, W, C)` in the backbone's input range
            ([-1, 1] for `LQAEBackbone`).
        mode: `"tokens"` or `"decode"` (see `token_ids_to_text`).
        batch_size: int. Images per `encode` call.

    Returns:
        dict with `texts` (list of N str) and `token_ids` (int32 numpy
        `(N, g, g)`).

    Examples:

    ```python
    out = images_to_text(backbone, images)
    print(out["texts"][0])
    ```
    """
    language_model = getattr(backbone, "language_model", None)
    if language_model is None:
        raise ValueError(
            "`backbone` has no `language_model`: images can only be written "
            "as text by a tokenizer whose codes are a language model's "
            "tokens (LQAE, not the VQAE baseline)."
        )
    check_int("batch_size", batch_size, low=1)
    images = np.asarray(to_numpy(images), dtype="float32")
    if images.ndim != 4:
        raise ValueError(
            "`images` must be a (N, H, W, C) batch; received shape "
            f"{images.shape}."
        )
    ids = [
        np.asarray(to_numpy(backbone.encode(images[i : i + batch_size])))
        for i in range(0, len(images), batch_size)
    ]
    token_ids = np.concatenate(ids).astype("int32")
    return {
        "texts": token_ids_to_text(token_ids, language_model, mode=mode),
        "token_ids": token_ids,
    }

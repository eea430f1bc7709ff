"""Cross-modal retrieval Recall@K (image->text and text->image)."""

import numpy as np

from keras_lgvq.utils.tensors import to_numpy


def _normalise(name, emb):
    emb = to_numpy(emb).astype(np.float64)
    if emb.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (N, E). Received shape: {emb.shape}"
        )
    if not np.all(np.isfinite(emb)):
        raise ValueError(f"`{name}` contains NaN or inf values.")
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norm, 1e-12)


def _check_inputs(image_emb, text_emb, text_to_image, ks):
    images = _normalise("image_emb", image_emb)
    texts = _normalise("text_emb", text_emb)
    if images.shape[1] != texts.shape[1]:
        raise ValueError(
            "`image_emb` and `text_emb` must share the embedding size. "
            f"Received: {images.shape} and {texts.shape}"
        )
    owner = to_numpy(text_to_image)
    if owner.shape != (texts.shape[0],) or not np.issubdtype(
        owner.dtype, np.integer
    ):
        raise ValueError(
            "`text_to_image` must be an int array of shape (M,) giving the "
            f"image row of each text. Received: shape {owner.shape}, "
            f"dtype {owner.dtype}"
        )
    if owner.size and (owner.min() < 0 or owner.max() >= images.shape[0]):
        raise ValueError(
            "`text_to_image` values must lie in [0, N) with N = "
            f"{images.shape[0]} images."
        )
    return images, texts, owner.astype(np.int64), _check_ks(ks)


def _check_ks(ks):
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"`ks` must be positive ints. Received: {ks}")
    return ks


def _recall_from_ranks(ranks, ks):
    return {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}


def image_to_text_recall(
    image_emb, text_emb, text_to_image, ks=(1, 5, 10), chunk_size=1024
):
    """Image->text Recall@K in %, by cosine similarity.

    For every image, all M texts are ranked by cosine similarity; the
    query is a hit at K when any of its own texts (`text_to_image == i`)
    is among the top K. Ties are counted pessimistically (a wrong text
    with the same score as the best right one ranks ahead of it), so a
    collapsed embedding scores at or below chance, never above. Images
    with no text are skipped.

    Args:
        image_emb: array `(N, E)`. Image embeddings (e.g. the global
            alignment token).
        text_emb: array `(M, E)`. Text embeddings.
        text_to_image: int array `(M,)`. Row of `image_emb` each text
            describes.
        ks: tuple of ints. Cut-offs K.
        chunk_size: int. Queries per similarity block (bounds memory).

    Returns:
        A dict `{"R@1": ..., "R@5": ..., "R@10": ...}` of percentages.

    Examples:

    ```python
    keras_lgvq.metrics.image_to_text_recall(
        image_emb, text_emb, np.repeat(np.arange(len(image_emb)), 5)
    )
    ```
    """
    ranks = image_to_text_ranks(
        image_emb, text_emb, text_to_image, chunk_size=chunk_size
    )
    return _recall_from_ranks(ranks, _check_ks(ks))


def image_to_text_ranks(image_emb, text_emb, text_to_image, chunk_size=1024):
    """Per-image rank of the best own text (1 = first), ties pessimistic.

    The per-query values behind `image_to_text_recall` (`R@K` is the mean
    of `ranks <= K`), for paired significance tests between two models
    scored on the same queries. Images with no text are left out.

    Args:
        image_emb: array `(N, E)`.
        text_emb: array `(M, E)`.
        text_to_image: int array `(M,)`. Row of `image_emb` each text
            describes.
        chunk_size: int. Queries per similarity block.

    Returns:
        int64 array of ranks, one per image that has a text.

    Examples:

    ```python
    hits = image_to_text_ranks(img, txt, np.arange(len(img))) <= 1
    ```
    """
    images, texts, owner, _ = _check_inputs(
        image_emb, text_emb, text_to_image, (1,)
    )
    has_text = np.bincount(owner, minlength=images.shape[0]) > 0
    ranks = []
    for start in range(0, images.shape[0], chunk_size):
        rows = np.arange(start, min(start + chunk_size, images.shape[0]))
        scores = images[rows] @ texts.T  # (q, M)
        right = owner[None, :] == rows[:, None]
        best_right = np.where(right, scores, -np.inf).max(axis=1)
        wrong_ahead = np.sum((~right) & (scores >= best_right[:, None]), axis=1)
        ranks.append(wrong_ahead[has_text[rows]] + 1)
    ranks = np.concatenate(ranks) if ranks else np.zeros((0,), np.int64)
    if ranks.size == 0:
        raise ValueError("No image has any text: cannot compute recall.")
    return ranks.astype(np.int64)


def text_to_image_recall(
    image_emb, text_emb, text_to_image, ks=(1, 5, 10), chunk_size=1024
):
    """Text->image Recall@K in %, by cosine similarity.

    Every text ranks all N images; it is a hit at K when its own image is
    among the top K. Ties are counted pessimistically, as in
    `image_to_text_recall`.

    Args:
        image_emb: array `(N, E)`. Image embeddings.
        text_emb: array `(M, E)`. Text embeddings.
        text_to_image: int array `(M,)`. Row of `image_emb` each text
            describes.
        ks: tuple of ints. Cut-offs K.
        chunk_size: int. Queries per similarity block (bounds memory).

    Returns:
        A dict `{"R@1": ..., "R@5": ..., "R@10": ...}` of percentages.

    Examples:

    ```python
    keras_lgvq.metrics.text_to_image_recall(image_emb, text_emb, owner)
    ```
    """
    ranks = text_to_image_ranks(
        image_emb, text_emb, text_to_image, chunk_size=chunk_size
    )
    return _recall_from_ranks(ranks, _check_ks(ks))


def text_to_image_ranks(image_emb, text_emb, text_to_image, chunk_size=1024):
    """Per-text rank of its own image (1 = first), ties pessimistic.

    The per-query values behind `text_to_image_recall`.

    Args:
        image_emb: array `(N, E)`.
        text_emb: array `(M, E)`.
        text_to_image: int array `(M,)`. Row of `image_emb` each text
            describes.
        chunk_size: int. Queries per similarity block.

    Returns:
        int64 array `(M,)` of ranks.

    Examples:

    ```python
    hits = text_to_image_ranks(img, txt, np.arange(len(img))) <= 5
    ```
    """
    images, texts, owner, _ = _check_inputs(
        image_emb, text_emb, text_to_image, (1,)
    )
    if texts.shape[0] == 0:
        raise ValueError("`text_emb` is empty: cannot compute recall.")
    ranks = []
    for start in range(0, texts.shape[0], chunk_size):
        rows = np.arange(start, min(start + chunk_size, texts.shape[0]))
        scores = texts[rows] @ images.T  # (q, N)
        right_score = scores[np.arange(rows.size), owner[rows]]
        ahead = np.sum(scores >= right_score[:, None], axis=1) - 1
        ranks.append(ahead + 1)
    return np.concatenate(ranks).astype(np.int64)

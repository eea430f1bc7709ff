import numpy as np
import pytest

from keras_lgvq.metrics.retrieval import image_to_text_recall
from keras_lgvq.metrics.retrieval import text_to_image_recall

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _construct(ranks_wanted, dim=64, seed=0):
    """Images e_i; one text per image whose true image ranks `ranks_wanted[i]`.

    Text j is sum_k c_k e_k with strictly decreasing weights over a chosen
    order, so the rank of image j in text j's list is known exactly.
    """
    n = len(ranks_wanted)
    images = np.eye(n, dim)
    texts = np.zeros((n, dim))
    rng = np.random.default_rng(seed)
    for j, rank in enumerate(ranks_wanted):
        others = [i for i in rng.permutation(n) if i != j]
        order = others[: rank - 1] + [j] + others[rank - 1 :]
        weights = np.linspace(1.0, 0.1, n)
        texts[j, order] = weights
    return images, texts


def test_text_to_image_known_ranks():
    ranks = [1, 1, 2, 3, 5, 6, 10, 11, 1, 4, 12, 7]
    images, texts = _construct(ranks, dim=16)
    owner = np.arange(len(ranks))
    got = text_to_image_recall(images, texts, owner, ks=(1, 5, 10))
    r = np.array(ranks)
    for k in (1, 5, 10):
        assert got[f"R@{k}"] == pytest.approx(100 * np.mean(r <= k))


def test_image_to_text_known_ranks_with_several_captions():
    # Each image's scores over texts are given directly: image i has two
    # texts, the best of which sits at a chosen rank.
    n_img, per = 6, 2
    owner = np.repeat(np.arange(n_img), per)
    best_rank = [1, 2, 4, 6, 1, 12]
    rng = np.random.default_rng(1)
    scores = np.zeros((n_img, n_img * per))
    for i, rank in enumerate(best_rank):
        wrong = np.flatnonzero(owner != i)
        right = np.flatnonzero(owner == i)
        order = list(rng.permutation(wrong))
        order.insert(rank - 1, right[0])
        order.append(right[1])  # the second caption ranks last
        scores[i, order] = np.linspace(0.9, -0.9, len(order))
    # Realise the scores as cosines: texts = identity basis, images = rows.
    texts = np.eye(n_img * per)
    images = scores + 0.0
    norms = np.linalg.norm(images, axis=1, keepdims=True)
    images = images / norms  # rescaling per image keeps its ranking
    got = image_to_text_recall(images, texts, owner, ks=(1, 2, 5, 10))
    r = np.array(best_rank)
    for k in (1, 2, 5, 10):
        assert got[f"R@{k}"] == pytest.approx(100 * np.mean(r <= k))


def test_perfect_and_collapsed_embeddings():
    rng = np.random.default_rng(2)
    images = rng.standard_normal((20, 8))
    owner = np.repeat(np.arange(20), 3)
    texts = images[owner] * 2.0  # same directions: perfect retrieval
    assert image_to_text_recall(images, texts, owner, ks=(1,))["R@1"] == 100.0
    assert text_to_image_recall(images, texts, owner, ks=(1,))["R@1"] == 100.0
    # All-equal scores: pessimistic ties give no hit below rank N.
    zeros = np.zeros_like(texts)
    assert text_to_image_recall(images, zeros, owner, ks=(5,))["R@5"] == 0.0
    assert text_to_image_recall(images, zeros, owner, ks=(20,))["R@20"] == 100.0


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(3)
    images, texts = rng.standard_normal((30, 5)), rng.standard_normal((45, 5))
    owner = rng.integers(0, 30, 45)
    for fn in (image_to_text_recall, text_to_image_recall):
        assert fn(images, texts, owner, chunk_size=7) == fn(
            images, texts, owner, chunk_size=1000
        )


def test_validation():
    images, texts = np.zeros((3, 4)), np.zeros((5, 4))
    with pytest.raises(ValueError, match="text_to_image"):
        image_to_text_recall(images, texts, np.array([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="text_to_image"):
        image_to_text_recall(images, texts, np.zeros(4, int))
    with pytest.raises(ValueError, match="embedding size"):
        text_to_image_recall(images, np.zeros((5, 3)), np.zeros(5, int))
    with pytest.raises(ValueError, match="ks"):
        text_to_image_recall(images, texts, np.zeros(5, int), ks=(0,))


def test_per_query_ranks_give_the_recalls():
    from keras_lgvq.metrics import image_to_text_ranks
    from keras_lgvq.metrics import text_to_image_ranks

    rng = np.random.default_rng(7)
    images = rng.normal(size=(40, 8))
    texts = images + rng.normal(scale=1.5, size=(40, 8))
    owner = np.arange(40)
    i2t = image_to_text_ranks(images, texts, owner)
    t2i = text_to_image_ranks(images, texts, owner)
    # Independent brute force: rank = 1 + number of items scoring at least
    # as high as the right one (cosine).
    a = images / np.linalg.norm(images, axis=1, keepdims=True)
    b = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    sim = a @ b.T
    expected_i2t = [1 + np.sum(np.delete(sim[i], i) >= sim[i, i]) for i in owner]
    expected_t2i = [1 + np.sum(np.delete(sim[:, j], j) >= sim[j, j]) for j in owner]
    np.testing.assert_array_equal(i2t, expected_i2t)
    np.testing.assert_array_equal(t2i, expected_t2i)
    for k in (1, 5, 10):
        assert image_to_text_recall(images, texts, owner)[f"R@{k}"] == (
            pytest.approx(100 * np.mean(i2t <= k))
        )
        assert text_to_image_recall(images, texts, owner)[f"R@{k}"] == (
            pytest.approx(100 * np.mean(t2i <= k))
        )

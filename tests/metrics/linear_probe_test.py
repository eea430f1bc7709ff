import numpy as np
import pytest

from keras_lgvq.metrics.linear_probe import code_features
from keras_lgvq.metrics.linear_probe import linear_probe_accuracy


def _blobs(n, num_classes, dim, seed, spread=0.5):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((num_classes, dim))
    labels = rng.integers(0, num_classes, n)
    return centres[labels] + spread * rng.standard_normal((n, dim)), labels


def test_separable_data_reaches_high_accuracy_and_ignores_minus_one():
    x, y = _blobs(400, 4, 12, seed=0)
    y_train, y_test = y[:300].copy(), y[300:].copy()
    y_train[:20] = -1
    y_test[:10] = -1
    acc = linear_probe_accuracy(
        x[:300], y_train, x[300:], y_test, num_classes=4, epochs=100, seed=0
    )
    assert acc > 95.0
    # Deterministic under the seed (minibatch path included).
    a = linear_probe_accuracy(
        x[:300],
        y[:300],
        x[300:],
        y[300:],
        4,
        epochs=3,
        batch_size=64,
        seed=3,
        learning_rate=1e-3,
    )
    b = linear_probe_accuracy(
        x[:300],
        y[:300],
        x[300:],
        y[300:],
        4,
        epochs=3,
        batch_size=64,
        seed=3,
        learning_rate=1e-3,
    )
    assert a == b


def test_random_labels_give_chance():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1200, 8))
    y = rng.integers(0, 4, 1200)
    acc = linear_probe_accuracy(
        x[:600], y[:600], x[600:], y[600:], num_classes=4, epochs=100
    )
    # Chance is 25 %; 600 test rows give a std of ~1.8 points.
    assert 15.0 < acc < 35.0


def test_probe_validation():
    x, y = _blobs(20, 3, 4, seed=2)
    with pytest.raises(ValueError, match="num_classes"):
        linear_probe_accuracy(x, y, x, y, num_classes=1)
    with pytest.raises(ValueError, match="train_labels"):
        linear_probe_accuracy(x, y + 5, x, y, num_classes=3)
    with pytest.raises(ValueError, match="same F"):
        linear_probe_accuracy(x, y, x[:, :2], y, num_classes=3)
    with pytest.raises(ValueError, match="No labelled"):
        linear_probe_accuracy(x, np.full(20, -1), x, y, num_classes=3)


def test_code_features_histogram_and_pooling():
    rng = np.random.default_rng(3)
    k, d = 6, 2
    idx = rng.integers(0, k, (5, 4, 4))
    codebook = rng.standard_normal((k, d)).astype("float32")
    feats = code_features(
        indices=idx, num_embeddings=k, codebook=codebook, grid=2
    )
    assert feats.shape == (5, k + 4 * d)
    hist = np.stack([np.bincount(r.ravel(), minlength=k) / 16 for r in idx])
    np.testing.assert_allclose(feats[:, :k], hist, rtol=1e-6)
    codes = codebook[idx]
    cells = [
        codes[:, :2, :2],
        codes[:, :2, 2:],
        codes[:, 2:, :2],
        codes[:, 2:, 2:],
    ]
    pooled = np.concatenate([c.mean(axis=(1, 2)) for c in cells], axis=1)
    np.testing.assert_allclose(feats[:, k:], pooled, rtol=1e-5, atol=1e-6)
    only_mean = code_features(codes=codes)
    np.testing.assert_allclose(only_mean, codes.mean(axis=(1, 2)), rtol=1e-5)
    with pytest.raises(ValueError, match="Nothing to featurise"):
        code_features()
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        code_features(indices=idx, num_embeddings=3)
    with pytest.raises(ValueError, match="grid"):
        code_features(codes=codes, grid=5)

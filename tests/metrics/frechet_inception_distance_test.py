import time
import warnings

import keras
import numpy as np
import pytest

from keras_lgvq.metrics import inception_feature_extractor as ife
from keras_lgvq.metrics.frechet_distance import frechet_distance
from keras_lgvq.metrics.frechet_distance import gaussian_statistics
from keras_lgvq.metrics.frechet_inception_distance import (
    FrechetInceptionDistance,
)
from keras_lgvq.metrics.inception_feature_extractor import (
    InceptionFeatureExtractor,
)


class ProjectionExtractor(keras.layers.Layer):
    """Fixed linear map of flattened images: features known in numpy."""

    def __init__(self, matrix, **kwargs):
        super().__init__(**kwargs)
        self.matrix = np.asarray(matrix, "float32")
        self.feature_dim = self.matrix.shape[1]

    def call(self, images):
        flat = keras.ops.reshape(images, (keras.ops.shape(images)[0], -1))
        return keras.ops.matmul(flat, self.matrix)


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    paths = [str(tmp_path / "a" / ife.INCEPTION_WEIGHTS_FILE)]
    monkeypatch.setattr(ife, "default_inception_weight_paths", lambda: paths)
    return paths


def test_missing_weights_error_explains_how_to_supply(no_weights_anywhere):
    with pytest.raises(FileNotFoundError) as info:
        InceptionFeatureExtractor()
    message = str(info.value)
    assert ife.INCEPTION_WEIGHTS_URL in message
    assert no_weights_anywhere[0] in message
    assert "weights='/path/to/" in message
    assert "allow_random_weights=True" in message
    with pytest.raises(FileNotFoundError, match="not found: '/no/such.h5'"):
        FrechetInceptionDistance(weights="/no/such.h5")
    with pytest.raises(ValueError, match="image_size"):
        InceptionFeatureExtractor(allow_random_weights=True, image_size=64)


def test_streaming_statistics_match_numpy():
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((4 * 4 * 3, 5))
    metric = FrechetInceptionDistance(
        feature_extractor=ProjectionExtractor(matrix)
    )
    assert metric.name == "fid" and metric.feature_dim == 5
    real_batches = [rng.uniform(-1, 1, (n, 4, 4, 3)) for n in (3, 7, 1, 6)]
    fake_batches = [0.5 + rng.uniform(-1, 1, (n, 4, 4, 3)) for n in (5, 5, 2)]
    for real in real_batches:
        metric.update_state(real.astype("float32"), None)
    for fake in fake_batches:
        metric.update_state(None, fake.astype("float32"))
    real_f = np.concatenate(real_batches).reshape(17, -1) @ matrix
    fake_f = np.concatenate(fake_batches).reshape(12, -1) @ matrix
    mu1, s1 = gaussian_statistics(real_f)
    mu2, s2 = gaussian_statistics(fake_f)
    got_mu, got_s = metric.statistics("real")
    np.testing.assert_allclose(got_mu, mu1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_s, s1, rtol=1e-4, atol=1e-4)
    expected = frechet_distance(mu1, s1, mu2, s2)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-4)
    assert expected > 1.0

    metric.reset_state()
    with pytest.raises(ValueError, match="at least 2 real"):
        metric.result()
    both = real_batches[1].astype("float32")
    metric.update_state(both, both)
    assert float(metric.result()) == pytest.approx(0.0, abs=1e-5)
    metric.update_real_features(real_f[:4])
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        metric.update_fake_features(real_f[:, :3])


def test_extractor_without_feature_dim_needs_it():
    layer = keras.layers.Flatten()
    with pytest.raises(ValueError, match="feature_dim"):
        FrechetInceptionDistance(feature_extractor=layer)
    metric = FrechetInceptionDistance(feature_extractor=layer, feature_dim=12)
    assert metric.feature_dim == 12
    clone = FrechetInceptionDistance.from_config(metric.get_config())
    assert isinstance(clone.feature_extractor, keras.layers.Flatten)
    assert clone.feature_dim == 12 and clone.name == "fid"


# Slow: it builds and runs a full random-weight InceptionV3 (24 M
# parameters, ~25 s per backend on 2 cores); the FID arithmetic itself is
# covered by the fast tests above with a small feature extractor.
@pytest.mark.slow
def test_tiny_random_weights_inception_fid(no_weights_anywhere, tmp_path):
    # 2 x 8 images of 75 px, the smallest InceptionV3 input.
    start = time.time()
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (8, 75, 75, 3)).astype("float32")
    fake = np.clip(real + rng.normal(0, 0.5, real.shape), -1, 1).astype(
        "float32"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metric = FrechetInceptionDistance(
            allow_random_weights=True, image_size=75
        )
    assert any("RANDOM" in str(w.message) for w in caught)
    assert metric.name == "fid_random_weights" and metric.random_weights
    metric.update_state(real, fake)
    value = float(metric.result())
    extractor = metric.feature_extractor
    f_real = keras.ops.convert_to_numpy(extractor(real))
    f_fake = keras.ops.convert_to_numpy(extractor(fake))
    assert f_real.shape == (8, 2048)
    # Independent low-rank reference: with A = centred features / sqrt(n-1),
    # tr sqrt(S1^1/2 S2 S1^1/2) is the nuclear norm of A2 A1^T (8 x 8).
    a1 = (f_real - f_real.mean(0)).astype(np.float64) / np.sqrt(7)
    a2 = (f_fake - f_fake.mean(0)).astype(np.float64) / np.sqrt(7)
    expected = (
        np.sum((f_real.mean(0) - f_fake.mean(0)) ** 2.0)
        + np.sum(a1**2)
        + np.sum(a2**2)
        - 2 * np.linalg.svd(a2 @ a1.T, compute_uv=False).sum()
    )
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(expected, rel=1e-3, abs=1e-9)

    # A weights file is loaded (here: the random weights saved to disk),
    # from an explicit path and from the searched locations.
    path = str(tmp_path / "inception.weights.h5")
    extractor.backbone.save_weights(path)
    loaded = InceptionFeatureExtractor(weights=path, image_size=75)
    assert not loaded.random_weights
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(real)), f_real, rtol=1e-4, atol=1e-5
    )
    print(f"tiny random-weights FID test took {time.time() - start:.1f} s")

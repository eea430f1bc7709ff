import warnings

import keras
import numpy as np
import pytest

from keras_lgvq.metrics.lpips_metric import LPIPSMetric


@keras.saving.register_keras_serializable(package="keras_lgvq_tests")
class MeanAbsDistance(keras.layers.Layer):
    """Stand-in for LPIPS: per-image mean |x - y|, shape (B,)."""

    def __init__(self, random_backbone=False, **kwargs):
        super().__init__(**kwargs)
        self.random_backbone = random_backbone

    def call(self, x, y):
        return keras.ops.mean(keras.ops.abs(x - y), axis=(1, 2, 3))

    def get_config(self):
        config = super().get_config()
        config.update({"random_backbone": self.random_backbone})
        return config


def _images(seed, n=3, size=16):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (2, n, size, size, 3)).astype("float32")


def test_averages_per_image_distances_with_weights():
    metric = LPIPSMetric(MeanAbsDistance())
    assert metric.name == "lpips"
    values, weights = [], []
    for seed, w in [(0, [1.0, 1.0, 1.0]), (1, [2.0, 0.0, 1.0])]:
        x, y = _images(seed)
        metric.update_state(x, y, sample_weight=np.array(w))
        values.append(np.abs(x - y).mean(axis=(1, 2, 3)))
        weights.append(w)
    values, weights = np.concatenate(values), np.concatenate(weights)
    assert float(metric.result()) == pytest.approx(
        np.sum(values * weights) / weights.sum(), rel=1e-5
    )


def test_random_backbone_is_labelled_and_config_roundtrip():
    metric = LPIPSMetric(MeanAbsDistance(random_backbone=True))
    assert metric.name == "lpips_random_backbone" and metric.random_backbone
    clone = LPIPSMetric.from_config(metric.get_config())
    assert clone.name == "lpips_random_backbone"
    assert isinstance(clone.lpips_layer, MeanAbsDistance)
    assert (
        LPIPSMetric(MeanAbsDistance(), name="perceptual").name == "perceptual"
    )
    with pytest.raises(ValueError, match="lpips_layer"):
        LPIPSMetric(3)


def test_with_real_lpips_layer(tmp_path):
    from keras_lgvq.losses import lpips
    from keras_lgvq.losses import lpips_assets

    # Uniform non-negative heads: the metric's job is only the averaging.
    heads = tmp_path / "heads.npz"
    np.savez(
        heads,
        **{
            f"lin{i}": np.full((c,), 0.1, "float32")
            for i, c in enumerate(lpips_assets.HEAD_CHANNELS)
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = lpips.LPIPS(
            vgg_weights=None, heads=str(heads), allow_random_backbone=True
        )
    if not layer.random_backbone:
        pytest.skip("real VGG16 weights found; random-backbone case not run")
    metric = LPIPSMetric(layer)
    assert metric.name == "lpips_random_backbone"
    x, y = _images(2, n=2, size=32)
    metric.update_state(x, y)
    metric.update_state(x, x)
    expected = np.concatenate(
        [
            keras.ops.convert_to_numpy(layer(x, y)),
            keras.ops.convert_to_numpy(layer(x, x)),
        ]
    ).mean()
    assert float(metric.result()) == pytest.approx(float(expected), rel=1e-5)
    assert float(expected) > 0

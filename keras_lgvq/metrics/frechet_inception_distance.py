"""FID between real images and reconstructions, accumulated over a dataset."""

import keras
import numpy as np
from keras import ops

from keras_lgvq.metrics.frechet_distance import frechet_distance
from keras_lgvq.metrics.inception_feature_extractor import (
    InceptionFeatureExtractor,
)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class FrechetInceptionDistance(keras.metrics.Metric):
    """Fréchet distance between feature statistics of two image sets (rFID).

    `update_state(real_images, fake_images)` runs the feature extractor on
    both batches (either may be `None`) and merges the batch mean and
    scatter matrix into running statistics with Chan et al.'s parallel
    update, which stays accurate in float32 over large sets.
    `result()` evaluates `keras_lgvq.metrics.frechet_distance` in float64
    numpy, so call it eagerly (an evaluation loop), not inside a compiled
    `model.compile(metrics=...)` step.

    The default extractor is `InceptionFeatureExtractor`, which needs a
    local weights file (a clear `FileNotFoundError` explains how to get
    one). With random weights the metric names itself
    `"fid_random_weights"`, so such numbers cannot pass for real FIDs.
    The variables are per-replica (no cross-replica aggregation).

    Args:
        feature_extractor: `keras.layers.Layer` or None. Maps a batch of
            images to `(batch, feature_dim)` features. `None` builds
            `InceptionFeatureExtractor(weights=weights,
            allow_random_weights=allow_random_weights, image_size=image_size,
            value_range=value_range)`.
        feature_dim: int or None. Feature size; read from
            `feature_extractor.feature_dim` when `None`.
        weights: string or None. Inception weights path (default extractor).
        allow_random_weights: bool. Allow an untrained Inception (tests).
        image_size: int. Inception input size (default extractor).
        value_range: tuple of two floats. Pixel range of the images.
        name: string or None. Defaults to `"fid"`, or
            `"fid_random_weights"` when the extractor has random weights.
        dtype: string. Dtype of the result.

    Examples:

    ```python
    fid = keras_lgvq.metrics.FrechetInceptionDistance(weights=path)
    for images in dataset:
        fid.update_state(images, model(images)["reconstruction"])
    fid.result()
    ```
    """

    def __init__(
        self,
        feature_extractor=None,
        feature_dim=None,
        weights=None,
        allow_random_weights=False,
        image_size=299,
        value_range=(-1.0, 1.0),
        name=None,
        dtype=None,
    ):
        if feature_extractor is None:
            feature_extractor = InceptionFeatureExtractor(
                weights=weights,
                allow_random_weights=allow_random_weights,
                image_size=image_size,
                value_range=value_range,
            )
        random_weights = bool(
            getattr(feature_extractor, "random_weights", False)
        )
        if name is None:
            name = "fid_random_weights" if random_weights else "fid"
        super().__init__(name=name, dtype=dtype)
        if feature_dim is None:
            feature_dim = getattr(feature_extractor, "feature_dim", None)
        if not isinstance(feature_dim, int) or feature_dim < 1:
            raise ValueError(
                "`feature_dim` must be a positive int (or the extractor must "
                f"define `feature_dim`). Received: feature_dim={feature_dim!r}"
            )
        self.feature_extractor = feature_extractor
        self.feature_dim = feature_dim
        self.random_weights = random_weights
        self.weights_path = weights
        self.allow_random_weights = allow_random_weights
        self.image_size = image_size
        self.value_range = tuple(value_range)
        self._direction = "down"
        self._stats = {}
        for side in ("real", "fake"):
            self._stats[side] = (
                self.add_variable(
                    shape=(),
                    initializer="zeros",
                    dtype="float32",
                    aggregation="none",
                    name=f"{side}_count",
                ),
                self.add_variable(
                    shape=(feature_dim,),
                    initializer="zeros",
                    dtype="float32",
                    aggregation="none",
                    name=f"{side}_mean",
                ),
                self.add_variable(
                    shape=(feature_dim, feature_dim),
                    initializer="zeros",
                    dtype="float32",
                    aggregation="none",
                    name=f"{side}_m2",
                ),
            )

    def _merge(self, side, features):
        features = ops.cast(ops.convert_to_tensor(features), "float32")
        if len(features.shape) != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(
                f"Expected {side} features of shape (batch, "
                f"{self.feature_dim}). Received: {tuple(features.shape)}"
            )
        count, mean, m2 = self._stats[side]
        n_b = ops.cast(ops.shape(features)[0], "float32")
        mean_b = ops.mean(features, axis=0)
        centred = features - mean_b
        m2_b = ops.matmul(ops.transpose(centred), centred)
        n_a = ops.convert_to_tensor(count)
        n = n_a + n_b
        delta = mean_b - mean
        mean.assign(mean + delta * (n_b / n))
        m2.assign(m2 + m2_b + ops.outer(delta, delta) * (n_a * n_b / n))
        count.assign(n)

    def update_real_features(self, features):
        """Add precomputed features `(batch, feature_dim)` of real images."""
        self._merge("real", features)

    def update_fake_features(self, features):
        """Add precomputed features `(batch, feature_dim)` of fake images."""
        self._merge("fake", features)

    def update_state(self, y_true=None, y_pred=None, sample_weight=None):
        """Add a batch of real (`y_true`) and/or generated (`y_pred`) images."""
        if sample_weight is not None:
            raise ValueError("FrechetInceptionDistance takes no sample_weight.")
        if y_true is not None:
            self._merge("real", self.feature_extractor(y_true))
        if y_pred is not None:
            self._merge("fake", self.feature_extractor(y_pred))

    def statistics(self, side):
        """Return `(mu, sigma)` float64 numpy arrays for `"real"`/`"fake"`."""
        if side not in self._stats:
            raise ValueError(
                f"`side` must be 'real' or 'fake'. Received: {side!r}"
            )
        count, mean, m2 = (
            np.asarray(ops.convert_to_numpy(v), np.float64)
            for v in self._stats[side]
        )
        if count < 2:
            raise ValueError(
                f"FID needs at least 2 {side} samples; got {int(count)}."
            )
        return mean, m2 / (count - 1.0)

    def result(self):
        mu1, sigma1 = self.statistics("real")
        mu2, sigma2 = self.statistics("fake")
        value = frechet_distance(mu1, sigma1, mu2, sigma2)
        return ops.convert_to_tensor(np.asarray(value, "float32"))

    def reset_state(self):
        for variables in self._stats.values():
            for variable in variables:
                variable.assign(ops.zeros(variable.shape, variable.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "feature_extractor": keras.saving.serialize_keras_object(
                    self.feature_extractor
                ),
                "feature_dim": self.feature_dim,
                "weights": self.weights_path,
                "allow_random_weights": self.allow_random_weights,
                "image_size": self.image_size,
                "value_range": self.value_range,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["feature_extractor"] = keras.saving.deserialize_keras_object(
            config["feature_extractor"]
        )
        return cls(**config)

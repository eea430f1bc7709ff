"""Mean LPIPS distance over a dataset, as a Keras metric."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_lgvq")
class LPIPSMetric(keras.metrics.Mean):
    """Mean LPIPS perceptual distance between targets and predictions.

    Wraps an LPIPS layer (`keras_lgvq.losses.lpips.LPIPS`, or any layer
    whose `call(x, y)` returns one distance per image, shape `(B,)`) and
    averages its per-image values over every `update_state` call. If the
    layer's VGG backbone is random (`lpips_layer.random_backbone` is True,
    i.e. no ImageNet weights were supplied) the metric names itself
    `"lpips_random_backbone"` so its numbers cannot pass for real LPIPS.

    Args:
        lpips_layer: `keras.layers.Layer`. The LPIPS network, already
            configured with its weights and expected value range.
        name: string or None. Defaults to `"lpips"` or
            `"lpips_random_backbone"`.
        dtype: string. Dtype of the accumulators.

    Examples:

    ```python
    from keras_lgvq.losses.lpips import LPIPS

    metric = keras_lgvq.metrics.LPIPSMetric(LPIPS(vgg_weights=path))
    metric.update_state(x, x_hat)
    metric.result()
    ```
    """

    def __init__(self, lpips_layer, name=None, dtype=None):
        if not callable(lpips_layer):
            raise ValueError(
                "`lpips_layer` must be a callable layer `(x, y) -> (B,)`. "
                f"Received: {lpips_layer!r}"
            )
        self.random_backbone = bool(
            getattr(lpips_layer, "random_backbone", False)
        )
        if name is None:
            name = "lpips_random_backbone" if self.random_backbone else "lpips"
        super().__init__(name=name, dtype=dtype)
        self.lpips_layer = lpips_layer
        self._direction = "down"

    def update_state(self, y_true, y_pred, sample_weight=None):
        distances = ops.convert_to_tensor(self.lpips_layer(y_true, y_pred))
        # Accept (B,), (B, 1) or (B, 1, 1, 1) per-image outputs.
        distances = ops.reshape(distances, (ops.shape(distances)[0], -1))
        distances = ops.mean(distances, axis=-1)
        return super().update_state(distances, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "lpips_layer": keras.saving.serialize_keras_object(
                    self.lpips_layer
                )
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["lpips_layer"] = keras.saving.deserialize_keras_object(
            config["lpips_layer"]
        )
        return cls(**config)

"""Un-patchify: a stride-`patch_size` transposed convolution, grid -> image."""

import keras

from keras_lgvq.layers.vit.patch_embedding import INIT_STDDEV
from keras_lgvq.utils.validation import check_int


@keras.saving.register_keras_serializable(package="keras_lgvq")
class Unpatchify(keras.layers.Layer):
    """Maps each token to a `patch_size x patch_size` patch of pixels.

    A transposed convolution with kernel and stride `patch_size` ("valid"):
    `(B, h, w, D)` becomes `(B, h * p, w * p, out_channels)`, the last layer
    of the LQAE ViT decoder (`ConvTranspose(3, 16, stride 16)`, kernel
    N(0, 0.02), with bias, no output activation).

    Args:
        out_channels: int. Image channels.
        patch_size: int. Patch side `p`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(B, h, w, D)`.

    Returns:
        Float tensor `(B, h * p, w * p, out_channels)`.

    Examples:

    ```python
    layer = keras_lgvq.layers.vit.Unpatchify(out_channels=3, patch_size=8)
    images = layer(np.zeros((2, 4, 4, 32), "float32"))  # (2, 32, 32, 3)
    ```
    """

    def __init__(self, out_channels, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = check_int("out_channels", out_channels)
        self.patch_size = check_int("patch_size", patch_size)
        self.projection = keras.layers.Conv2DTranspose(
            out_channels,
            patch_size,
            strides=patch_size,
            padding="valid",
            kernel_initializer=keras.initializers.RandomNormal(
                stddev=INIT_STDDEV
            ),
            dtype=self.dtype_policy,
            name="projection",
        )

    def build(self, input_shape):
        if len(tuple(input_shape)) != 4:
            raise ValueError(
                "`inputs` must be a token grid (batch, height, width, "
                f"channels). Received shape: {tuple(input_shape)}"
            )
        self.projection.build(input_shape)

    def call(self, inputs):
        return self.projection(inputs)

    def compute_output_shape(self, input_shape):
        p = self.patch_size
        h, w = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if h is None else h * p,
            None if w is None else w * p,
            self.out_channels,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"out_channels": self.out_channels, "patch_size": self.patch_size}
        )
        return config

"""Patch embedding: a stride-`patch_size` convolution, image -> token grid."""

import keras

from keras_lgvq.utils.validation import check_int

# The official LQAE ViT initialises every projection with N(0, 0.02).
INIT_STDDEV = 0.02


def check_grid(shape, hidden_dim, name="inputs"):
    """Raises a ValueError unless `shape` is a `(B, h, w, hidden_dim)` grid.

    Args:
        shape: tuple. The tensor's shape.
        hidden_dim: int. Expected last axis.
        name: string. Argument name used in the message.
    """
    shape = tuple(shape)
    if len(shape) != 4 or (shape[-1] is not None and shape[-1] != hidden_dim):
        raise ValueError(
            f"`{name}` must be a token grid (batch, height, width, "
            f"{hidden_dim}). Received shape: {shape}"
        )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class PatchEmbedding(keras.layers.Layer):
    """Cuts an image into non-overlapping patches and projects each one.

    A `patch_size x patch_size` convolution with stride `patch_size` and
    "valid" padding (LQAE's `ConvPatches`): `(B, H, W, C)` becomes the token
    grid `(B, H / p, W / p, hidden_dim)`. The kernel is drawn from
    N(0, 0.02) and, as in the official code, there is no bias by default.

    Args:
        hidden_dim: int. Token width.
        patch_size: int. Patch side `p`; `H` and `W` must be multiples.
        use_bias: bool. Add a bias. Defaults to `False`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        images: float tensor `(B, H, W, C)`.

    Returns:
        Float tensor `(B, H / p, W / p, hidden_dim)`.

    Examples:

    ```python
    layer = keras_lgvq.layers.vit.PatchEmbedding(hidden_dim=64, patch_size=8)
    tokens = layer(np.zeros((2, 32, 32, 3), "float32"))  # (2, 4, 4, 64)
    ```
    """

    def __init__(self, hidden_dim, patch_size, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.patch_size = check_int("patch_size", patch_size)
        self.use_bias = bool(use_bias)
        self.projection = keras.layers.Conv2D(
            hidden_dim,
            patch_size,
            strides=patch_size,
            padding="valid",
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.RandomNormal(
                stddev=INIT_STDDEV
            ),
            dtype=self.dtype_policy,
            name="projection",
        )

    def _check_shape(self, shape):
        shape = tuple(shape)
        if len(shape) != 4:
            raise ValueError(
                "`images` must be a 4-D batch (batch, height, width, "
                f"channels). Received shape: {shape}"
            )
        for axis, size in (("height", shape[1]), ("width", shape[2])):
            if size is not None and size % self.patch_size:
                raise ValueError(
                    f"The image {axis} ({size}) must be a multiple of "
                    f"`patch_size`={self.patch_size}. Resize or crop the "
                    "images, or pick a patch size that divides them."
                )

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.projection.build(input_shape)

    def call(self, images):
        self._check_shape(images.shape)
        return self.projection(images)

    def compute_output_shape(self, input_shape):
        p = self.patch_size
        h, w = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if h is None else h // p,
            None if w is None else w // p,
            self.hidden_dim,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "patch_size": self.patch_size,
                "use_bias": self.use_bias,
            }
        )
        return config

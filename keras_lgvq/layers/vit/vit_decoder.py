"""The LQAE ViT decoder: learned positions -> transformer blocks -> pixels."""

import keras

from keras_lgvq.layers.vit.patch_embedding import check_grid
from keras_lgvq.layers.vit.position_embedding_2d import PositionEmbedding2D
from keras_lgvq.layers.vit.transformer_stack import TransformerStack
from keras_lgvq.layers.vit.transformer_stack import check_block_type
from keras_lgvq.layers.vit.unpatchify import Unpatchify
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number


@keras.saving.register_keras_serializable(package="keras_lgvq")
class ViTDecoder(keras.layers.Layer):
    """ViT image decoder of LQAE (`VitDecoder`, lqae-spec §1.1).

    Learned 2-D position embedding → `num_layers` blocks → `Unpatchify`
    (transposed conv, kernel = stride = `patch_size`, with bias). The output
    has no activation.

    Args:
        image_size: int. Output height = width; a multiple of `patch_size`.
        patch_size: int. Patch side (LQAE: 16).
        hidden_dim: int. Token width of the input grid.
        num_layers: int. Blocks (ViT-Base: 12).
        num_heads: int. Attention heads (ViT-Base: 12).
        intermediate_dim: int. Feed-forward width (ViT-Base: 3072).
        out_channels: int. Image channels. Defaults to `3`.
        block_type: string. `"lqae"` or `"standard"`. Defaults to `"lqae"`.
        dropout: float in [0, 1). Defaults to `0.0`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(B, g, g, hidden_dim)`,
            `g = image_size // patch_size`.
        training: bool. Enables dropout.

    Returns:
        Float tensor `(B, image_size, image_size, out_channels)`.

    Examples:

    ```python
    decoder = keras_lgvq.layers.vit.ViTDecoder(
        image_size=32, patch_size=8, hidden_dim=32, num_layers=2,
        num_heads=4, intermediate_dim=64)
    images = decoder(np.zeros((2, 4, 4, 32), "float32"))  # (2, 32, 32, 3)
    ```
    """

    def __init__(
        self,
        image_size,
        patch_size,
        hidden_dim,
        num_layers,
        num_heads,
        intermediate_dim,
        out_channels=3,
        block_type="lqae",
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = check_int("image_size", image_size)
        self.patch_size = check_int("patch_size", patch_size)
        if image_size % patch_size:
            raise ValueError(
                f"`image_size`={image_size} must be a multiple of "
                f"`patch_size`={patch_size}."
            )
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.num_layers = check_int("num_layers", num_layers, low=0)
        self.num_heads = check_int("num_heads", num_heads)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim)
        self.out_channels = check_int("out_channels", out_channels)
        self.block_type = check_block_type(block_type)
        self.dropout = check_number(
            "dropout", dropout, 0.0, 1.0, high_open=True
        )
        grid = image_size // patch_size
        policy = self.dtype_policy
        self.position_embedding = PositionEmbedding2D(
            grid, grid, dtype=policy, name="position_embedding"
        )
        self.transformer = TransformerStack(
            hidden_dim,
            num_layers,
            num_heads,
            intermediate_dim,
            block_type=block_type,
            dropout=self.dropout,
            dtype=policy,
            name="transformer",
        )
        self.unpatchify = Unpatchify(
            out_channels, patch_size, dtype=policy, name="unpatchify"
        )

    @property
    def grid_size(self):
        return self.image_size // self.patch_size

    def _check(self, shape):
        check_grid(shape, self.hidden_dim, "inputs")
        if tuple(shape[1:3]) != (self.grid_size, self.grid_size):
            raise ValueError(
                "`inputs` must be a (batch, "
                f"{self.grid_size}, {self.grid_size}, {self.hidden_dim}) "
                f"grid for image_size={self.image_size}, "
                f"patch_size={self.patch_size}. Received shape: "
                f"{tuple(shape)}"
            )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check(input_shape)
        self.position_embedding.build(input_shape)
        self.transformer.build(input_shape)
        self.unpatchify.build(input_shape)

    def call(self, inputs, training=False):
        self._check(inputs.shape)
        x = self.position_embedding(inputs)
        x = self.transformer(x, training=training)
        return self.unpatchify(x)

    def compute_output_shape(self, input_shape):
        size = self.image_size
        return (input_shape[0], size, size, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "out_channels": self.out_channels,
                "block_type": self.block_type,
                "dropout": self.dropout,
            }
        )
        return config

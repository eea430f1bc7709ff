"""The LQAE ViT encoder: patches -> learned positions -> transformer blocks."""

import keras

from keras_lgvq.layers.vit.patch_embedding import PatchEmbedding
from keras_lgvq.layers.vit.position_embedding_2d import PositionEmbedding2D
from keras_lgvq.layers.vit.transformer_stack import TransformerStack
from keras_lgvq.layers.vit.transformer_stack import check_block_type
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number


@keras.saving.register_keras_serializable(package="keras_lgvq")
class ViTEncoder(keras.layers.Layer):
    """ViT image encoder of LQAE (`VitEncoder`, lqae-spec §1.1).

    `PatchEmbedding` (bias-free `p x p` conv, stride `p`) → learned 2-D
    position embedding → dropout → `num_layers` blocks. There is no final
    LayerNorm and no output projection: the grid of the last block goes to
    the quantizer as is, as in the official code.

    Args:
        image_size: int. Input height = width; a multiple of `patch_size`.
        patch_size: int. Patch side (LQAE: 16).
        hidden_dim: int. Token width (ViT-Base: 768).
        num_layers: int. Blocks (ViT-Base: 12).
        num_heads: int. Attention heads (ViT-Base: 12).
        intermediate_dim: int. Feed-forward width (ViT-Base: 3072).
        block_type: string. `"lqae"` (official block) or `"standard"`
            (keras-hub's pre-LN ViT block). Defaults to `"lqae"`.
        dropout: float in [0, 1). Defaults to `0.0`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        images: float tensor `(B, image_size, image_size, C)`.
        training: bool. Enables dropout.
        return_layer_outputs: bool. Also return every block's output.

    Returns:
        `(B, g, g, hidden_dim)` with `g = image_size // patch_size`, or
        `(features, [block outputs])`.

    Examples:

    ```python
    encoder = keras_lgvq.layers.vit.ViTEncoder(
        image_size=32, patch_size=8, hidden_dim=32, num_layers=2,
        num_heads=4, intermediate_dim=64)
    features = encoder(np.zeros((2, 32, 32, 3), "float32"))  # (2, 4, 4, 32)
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
        self.block_type = check_block_type(block_type)
        self.dropout = check_number(
            "dropout", dropout, 0.0, 1.0, high_open=True
        )
        grid = image_size // patch_size
        policy = self.dtype_policy
        self.patch_embedding = PatchEmbedding(
            hidden_dim, patch_size, dtype=policy, name="patch_embedding"
        )
        self.position_embedding = PositionEmbedding2D(
            grid, grid, dtype=policy, name="position_embedding"
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=policy, name="dropout"
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

    @property
    def grid_size(self):
        return self.image_size // self.patch_size

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or tuple(input_shape[1:3]) != (
            self.image_size,
            self.image_size,
        ):
            raise ValueError(
                "`images` must have shape (batch, "
                f"{self.image_size}, {self.image_size}, channels): the "
                "position embedding is learned for that size. Received "
                f"shape: {input_shape}"
            )
        self.patch_embedding.build(input_shape)
        grid = (input_shape[0], self.grid_size, self.grid_size, self.hidden_dim)
        self.position_embedding.build(grid)
        self.transformer.build(grid)

    def call(self, images, training=False, return_layer_outputs=False):
        x = self.position_embedding(self.patch_embedding(images))
        x = self.dropout_layer(x, training=training)
        return self.transformer(
            x, training=training, return_layer_outputs=return_layer_outputs
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.grid_size, self.grid_size, self.hidden_dim)

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
                "block_type": self.block_type,
                "dropout": self.dropout,
            }
        )
        return config

"""A stack of ViT blocks on a token grid, optionally returning every layer."""

import keras

from keras_lgvq.layers.vit.lqae_transformer_block import LQAETransformerBlock
from keras_lgvq.layers.vit.patch_embedding import check_grid
from keras_lgvq.layers.vit.standard_transformer_block import (
    StandardTransformerBlock,
)
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number

BLOCK_TYPES = {
    "lqae": LQAETransformerBlock,
    "standard": StandardTransformerBlock,
}


def check_block_type(block_type):
    """Raises a ValueError unless `block_type` is a known block name."""
    if block_type not in BLOCK_TYPES:
        raise ValueError(
            f"`block_type` must be one of {sorted(BLOCK_TYPES)}: 'lqae' is "
            "the official LQAE block (NormFormer attention without biases, "
            "GLU feed-forward with a depthwise 3x3 conv), 'standard' the "
            f"vanilla pre-LN ViT block. Received: block_type={block_type!r}"
        )
    return block_type


@keras.saving.register_keras_serializable(package="keras_lgvq")
class TransformerStack(keras.layers.Layer):
    """`num_layers` transformer blocks applied in turn to a token grid.

    Args:
        hidden_dim: int. Token width.
        num_layers: int >= 0. Number of blocks.
        num_heads: int. Attention heads per block.
        intermediate_dim: int. Feed-forward width per block.
        block_type: string. `"lqae"` (`LQAETransformerBlock`, the official
            block) or `"standard"` (`StandardTransformerBlock`, keras-hub's
            pre-LN `TransformerEncoder`). Defaults to `"lqae"`.
        dropout: float in [0, 1). Defaults to `0.0`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(B, h, w, hidden_dim)`.
        training: bool. Enables dropout.
        return_layer_outputs: bool. Also return the list of every block's
            output (the features LQAE's linear probe pools).

    Returns:
        The last block's output `(B, h, w, hidden_dim)`, or
        `(output, [block outputs])` with `return_layer_outputs=True`.

    Examples:

    ```python
    stack = keras_lgvq.layers.vit.TransformerStack(
        hidden_dim=32, num_layers=2, num_heads=4, intermediate_dim=64)
    out, layers = stack(np.zeros((1, 4, 4, 32), "float32"),
                        return_layer_outputs=True)
    ```
    """

    def __init__(
        self,
        hidden_dim,
        num_layers,
        num_heads,
        intermediate_dim,
        block_type="lqae",
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.num_layers = check_int("num_layers", num_layers, low=0)
        self.num_heads = check_int("num_heads", num_heads)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim)
        self.block_type = check_block_type(block_type)
        self.dropout = check_number(
            "dropout", dropout, 0.0, 1.0, high_open=True
        )
        block_class = BLOCK_TYPES[block_type]
        self.blocks = [
            block_class(
                hidden_dim,
                num_heads,
                intermediate_dim,
                dropout=self.dropout,
                dtype=self.dtype_policy,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]

    def build(self, input_shape):
        check_grid(input_shape, self.hidden_dim, "inputs")
        for block in self.blocks:
            block.build(input_shape)

    def call(self, inputs, training=False, return_layer_outputs=False):
        x = inputs
        outputs = []
        for block in self.blocks:
            x = block(x, training=training)
            outputs.append(x)
        if return_layer_outputs:
            return x, outputs
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "block_type": self.block_type,
                "dropout": self.dropout,
            }
        )
        return config

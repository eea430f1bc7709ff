"""A standard pre-LN ViT block (keras-hub's TransformerEncoder) on a grid."""

import keras
import keras_hub
from keras import ops

from keras_lgvq.layers.vit.patch_embedding import INIT_STDDEV
from keras_lgvq.layers.vit.patch_embedding import check_grid
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number

# ViT's LayerNorm epsilon (Dosovitskiy et al.; timm / keras-hub ViT).
STANDARD_LAYER_NORM_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="keras_lgvq")
class StandardTransformerBlock(keras.layers.Layer):
    """The vanilla ViT block, as an option to the official LQAE block.

    `keras_hub.layers.TransformerEncoder` with `normalize_first=True`
    (`x + attention(LN(x))`, then `x + MLP(LN(x))` with a GELU MLP and
    biases), run on the flattened `(B, h * w, D)` sequence of a token grid
    and reshaped back. Kernels are drawn from N(0, 0.02) like the LQAE
    block; LayerNorm epsilon is ViT's 1e-6.

    Args:
        hidden_dim: int. Token width `D`.
        num_heads: int. Attention heads; must divide `hidden_dim`.
        intermediate_dim: int. MLP hidden width.
        dropout: float in [0, 1). keras-hub's dropout rate. Defaults to
            `0.0`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(B, h, w, hidden_dim)`.
        training: bool. Enables dropout.

    Returns:
        Float tensor of the input's shape.

    Examples:

    ```python
    block = keras_lgvq.layers.vit.StandardTransformerBlock(
        hidden_dim=32, num_heads=4, intermediate_dim=128)
    out = block(np.zeros((2, 4, 4, 32), "float32"))
    ```
    """

    def __init__(
        self, hidden_dim, num_heads, intermediate_dim, dropout=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.num_heads = check_int("num_heads", num_heads)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim)
        self.dropout = check_number(
            "dropout", dropout, 0.0, 1.0, high_open=True
        )
        if hidden_dim % num_heads:
            raise ValueError(
                "`hidden_dim` must be divisible by `num_heads`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        self.encoder = keras_hub.layers.TransformerEncoder(
            intermediate_dim=intermediate_dim,
            num_heads=num_heads,
            dropout=self.dropout,
            activation="gelu",
            layer_norm_epsilon=STANDARD_LAYER_NORM_EPSILON,
            kernel_initializer=keras.initializers.RandomNormal(
                stddev=INIT_STDDEV
            ),
            normalize_first=True,
            dtype=self.dtype_policy,
            name="encoder",
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        check_grid(input_shape, self.hidden_dim, "inputs")
        self.encoder.build((input_shape[0], None, self.hidden_dim))

    def call(self, inputs, training=False):
        shape = ops.shape(inputs)
        sequence = ops.reshape(inputs, (shape[0], -1, self.hidden_dim))
        return ops.reshape(self.encoder(sequence, training=training), shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
            }
        )
        return config

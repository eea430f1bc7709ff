"""The official LQAE transformer block (NormFormer attention + GLU FFN)."""

import keras
from keras import ops

from keras_lgvq.layers.vit.glu_feed_forward import LAYER_NORM_EPSILON
from keras_lgvq.layers.vit.glu_feed_forward import GLUFeedForward
from keras_lgvq.layers.vit.patch_embedding import INIT_STDDEV
from keras_lgvq.layers.vit.patch_embedding import check_grid
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number


@keras.saving.register_keras_serializable(package="keras_lgvq")
class LQAETransformerBlock(keras.layers.Layer):
    """One block of the LQAE ViT, on a `(B, h, w, D)` token grid.

    Not the vanilla ViT block (lqae-spec §1.1):
    `x = x + LN_post(attention(LN_pre(x)))` — multi-head self-attention
    over the flattened grid with bias-free q/k/v/output projections and a
    NormFormer LayerNorm after it — then `x = x + GLUFeedForward(x)`
    (its own input LN, GELU-gated units, depthwise 3x3 conv, LN, bias-free
    output). Projections are drawn from N(0, 0.02); LayerNorm epsilon is
    1e-5.

    Args:
        hidden_dim: int. Token width `D`.
        num_heads: int. Attention heads; must divide `hidden_dim`.
        intermediate_dim: int. Width of the gated feed-forward layer
            (ViT-Base: `4 * 768`).
        dropout: float in [0, 1). Attention-weight and feed-forward
            dropout (the official runs use 0). Defaults to `0.0`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(B, h, w, hidden_dim)`.
        training: bool. Enables dropout.

    Returns:
        Float tensor of the input's shape.

    Examples:

    ```python
    block = keras_lgvq.layers.vit.LQAETransformerBlock(
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
        policy = self.dtype_policy
        self.norm_pre = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=policy, name="norm_pre"
        )
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=num_heads,
            key_dim=hidden_dim // num_heads,
            dropout=self.dropout,
            use_bias=False,
            kernel_initializer=keras.initializers.RandomNormal(
                stddev=INIT_STDDEV
            ),
            dtype=policy,
            name="attention",
        )
        self.norm_post = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=policy, name="norm_post"
        )
        self.feed_forward = GLUFeedForward(
            hidden_dim,
            intermediate_dim,
            dropout=self.dropout,
            dtype=policy,
            name="feed_forward",
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        check_grid(input_shape, self.hidden_dim, "inputs")
        sequence = (input_shape[0], None, self.hidden_dim)
        self.norm_pre.build(input_shape)
        self.attention.build(sequence, sequence)
        self.norm_post.build(sequence)
        self.feed_forward.build(input_shape)

    def call(self, inputs, training=False):
        shape = ops.shape(inputs)
        sequence = ops.reshape(
            self.norm_pre(inputs), (shape[0], -1, self.hidden_dim)
        )
        attended = self.attention(
            sequence, sequence, sequence, training=training
        )
        attended = ops.reshape(self.norm_post(attended), shape)
        x = inputs + attended
        return x + self.feed_forward(x, training=training)

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

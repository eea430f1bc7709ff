"""LQAE's feed-forward: LN, GELU-gated linear unit, depthwise 3x3, LN, out."""

import keras

from keras_lgvq.layers.vit.patch_embedding import INIT_STDDEV
from keras_lgvq.layers.vit.patch_embedding import check_grid
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number

# flax.linen.LayerNorm as configured in the official block.
LAYER_NORM_EPSILON = 1e-5


def _normal():
    return keras.initializers.RandomNormal(stddev=INIT_STDDEV)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class GLUFeedForward(keras.layers.Layer):
    """The feed-forward half of the official LQAE transformer block.

    On a token grid `x` of shape `(B, h, w, D)`:
    `y = LN(x)`; `g = gelu(fc1 y) * fc2 y` (both `D -> intermediate_dim`);
    `g = LN(depthwise_conv3x3(g))`; `out = fc_out(g)` (`-> hidden_dim`).
    Every Dense and the depthwise conv are bias-free and drawn from
    N(0, 0.02); GELU is the tanh approximation (flax's default); LayerNorm
    epsilon is 1e-5. The depthwise conv mixes neighbouring patches, which
    is why the layer works on the 2-D grid rather than a flat sequence.
    The caller adds the residual.

    Args:
        hidden_dim: int. Input and output width `D`.
        intermediate_dim: int. Width of the gated hidden layer.
        dropout: float in [0, 1). Dropout before and after `fc_out`.
            Defaults to `0.0`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(B, h, w, D)`.
        training: bool. Enables dropout.

    Returns:
        Float tensor `(B, h, w, hidden_dim)`.

    Examples:

    ```python
    ffn = keras_lgvq.layers.vit.GLUFeedForward(
        hidden_dim=32, intermediate_dim=128)
    out = ffn(np.zeros((2, 4, 4, 32), "float32"))  # (2, 4, 4, 32)
    ```
    """

    def __init__(self, hidden_dim, intermediate_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim)
        self.dropout = check_number(
            "dropout", dropout, 0.0, 1.0, high_open=True
        )
        policy = self.dtype_policy
        self.norm_in = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=policy, name="norm_in"
        )
        self.fc1 = keras.layers.Dense(
            intermediate_dim,
            use_bias=False,
            kernel_initializer=_normal(),
            dtype=policy,
            name="fc1",
        )
        self.fc2 = keras.layers.Dense(
            intermediate_dim,
            use_bias=False,
            kernel_initializer=_normal(),
            dtype=policy,
            name="fc2",
        )
        self.depthwise_conv = keras.layers.DepthwiseConv2D(
            3,
            padding="same",
            use_bias=False,
            depthwise_initializer=_normal(),
            dtype=policy,
            name="depthwise_conv",
        )
        self.norm_mid = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=policy, name="norm_mid"
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=policy, name="dropout"
        )
        self.fc_out = keras.layers.Dense(
            hidden_dim,
            use_bias=False,
            kernel_initializer=_normal(),
            dtype=policy,
            name="fc_out",
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        check_grid(input_shape, self.hidden_dim, "inputs")
        hidden = input_shape[:-1] + (self.intermediate_dim,)
        self.norm_in.build(input_shape)
        self.fc1.build(input_shape)
        self.fc2.build(input_shape)
        self.depthwise_conv.build(hidden)
        self.norm_mid.build(hidden)
        self.fc_out.build(hidden)

    def call(self, inputs, training=False):
        y = self.norm_in(inputs)
        gated = keras.activations.gelu(self.fc1(y), approximate=True)
        hidden = gated * self.fc2(y)
        hidden = self.norm_mid(self.depthwise_conv(hidden))
        hidden = self.dropout_layer(hidden, training=training)
        out = self.fc_out(hidden)
        return self.dropout_layer(out, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
            }
        )
        return config

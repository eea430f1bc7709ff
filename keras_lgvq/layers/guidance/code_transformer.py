"""The LG-VQ code transformer: a small CLIP-style ViT over quantized codes."""

import keras
from keras import ops

from keras_lgvq.utils.initializers import TorchBiasUniform
from keras_lgvq.utils.validation import check_int

# CLIP's LayerNorm epsilon (PyTorch default).
LAYER_NORM_EPSILON = 1e-5


def quick_gelu(x):
    """CLIP's QuickGELU activation, `x * sigmoid(1.702 * x)`."""
    return x * ops.sigmoid(1.702 * x)


class _ResidualAttentionBlock(keras.layers.Layer):
    """One pre-LN CLIP block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.

    Sublayer names follow CLIP's `state_dict` (`ln_1`, `attn`, `ln_2`,
    `c_fc`, `c_proj`).
    """

    def __init__(self, width, num_heads, mlp_dim, proj_std, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.proj_std = proj_std
        attn_std = width**-0.5
        fc_std = (2 * width) ** -0.5
        self.ln_1 = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="ln_1"
        )
        # CLIP: in_proj ~ N(0, width^-0.5), all attention biases zero.
        self.attn = keras.layers.MultiHeadAttention(
            num_heads=num_heads,
            key_dim=width // num_heads,
            kernel_initializer=keras.initializers.RandomNormal(stddev=attn_std),
            bias_initializer="zeros",
            dtype=self.dtype_policy,
            name="attn",
        )
        self.ln_2 = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="ln_2"
        )
        self.c_fc = keras.layers.Dense(
            mlp_dim,
            kernel_initializer=keras.initializers.RandomNormal(stddev=fc_std),
            bias_initializer=TorchBiasUniform(width),
            dtype=self.dtype_policy,
            name="c_fc",
        )
        self.c_proj = keras.layers.Dense(
            width,
            kernel_initializer=keras.initializers.RandomNormal(stddev=proj_std),
            bias_initializer=TorchBiasUniform(mlp_dim),
            dtype=self.dtype_policy,
            name="c_proj",
        )

    def build(self, input_shape):
        self.ln_1.build(input_shape)
        self.attn.build(input_shape, input_shape)
        # CLIP draws `out_proj` from N(0, proj_std), unlike the in-projection;
        # `MultiHeadAttention` shares one initializer, so redraw it here.
        kernel = self.attn.output_dense.kernel
        kernel.assign(
            keras.initializers.RandomNormal(stddev=self.proj_std)(
                kernel.shape, dtype=kernel.dtype
            )
        )
        self.ln_2.build(input_shape)
        self.c_fc.build(input_shape)
        self.c_proj.build(tuple(input_shape[:-1]) + (self.mlp_dim,))

    def call(self, x, training=None):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, training=training)
        h = self.c_fc(self.ln_2(x))
        return x + self.c_proj(quick_gelu(h))


@keras.saving.register_keras_serializable(package="keras_lgvq")
class CodeTransformer(keras.layers.Layer):
    """CLIP-style ViT over a quantized code grid (LG-VQ's `quantTransformer`).

    The (straight-through) quantized grid is flattened row-major into `N`
    tokens of width `width` (no input projection). A learned CLS vector is
    prepended and a learned absolute position embedding of length `1 + N`
    added, followed by `ln_pre`, `num_layers` pre-LN CLIP blocks (multi-head
    self-attention without mask or dropout, then an MLP with QuickGELU
    `x * sigmoid(1.702 x)`), `ln_post` on **all** tokens and a bias-free
    projection to `output_dim`. All LayerNorms use eps 1e-5.

    Output token 0 is the global image embedding (used by global semantic
    alignment), tokens `1:` are the visual tokens (used by relationship
    alignment), and all `1 + N` tokens are the memory of the masked text
    decoder.

    Initialisation follows the official code (LG-VQ spec §1.6): CLS, position
    embedding and projection ~ N(0, 0.01); attention in-projection
    ~ N(0, width^-0.5); attention out-projection and `c_proj`
    ~ N(0, width^-0.5 (2 num_layers)^-0.5); `c_fc` ~ N(0, (2 width)^-0.5);
    attention biases zero; MLP biases PyTorch default
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Args:
        width: int. Token width; equals the code dimension of the grid.
        output_dim: int. Width of the projected output tokens (the text
            feature width, 512 for CLIP ViT-B/32).
        num_tokens: int. Number of grid positions `N = h * w`.
        num_layers: int. Number of transformer blocks. Defaults to 2.
        num_heads: int. Attention heads; must divide `width`. Defaults to 1.
        mlp_ratio: int. MLP hidden width is `mlp_ratio * width`. Defaults to
            4.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        quantized: float tensor `(B, h, w, width)` or `(B, N, width)`.

    Returns:
        Float tensor `(B, 1 + N, output_dim)`.

    Examples:

    ```python
    layer = keras_lgvq.layers.guidance.code_transformer.CodeTransformer(
        width=256, output_dim=512, num_tokens=16 * 16
    )
    tokens = layer(np.random.normal(size=(2, 16, 16, 256)))  # (2, 257, 512)
    global_embedding, visual_tokens = tokens[:, 0], tokens[:, 1:]
    ```
    """

    def __init__(
        self,
        width,
        output_dim,
        num_tokens,
        num_layers=2,
        num_heads=1,
        mlp_ratio=4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (
            ("width", width),
            ("output_dim", output_dim),
            ("num_tokens", num_tokens),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("mlp_ratio", mlp_ratio),
        ):
            check_int(arg, value)
        if width % num_heads:
            raise ValueError(
                "`width` must be divisible by `num_heads`. Received: "
                f"width={width}, num_heads={num_heads}"
            )

        # === Config ===
        self.width = width
        self.output_dim = output_dim
        self.num_tokens = num_tokens
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio

        # === Layers ===
        proj_std = width**-0.5 * (2 * num_layers) ** -0.5
        self.ln_pre = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="ln_pre"
        )
        self.blocks = [
            _ResidualAttentionBlock(
                width,
                num_heads,
                mlp_ratio * width,
                proj_std,
                dtype=self.dtype_policy,
                name=f"resblocks_{i}",
            )
            for i in range(num_layers)
        ]
        self.ln_post = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="ln_post"
        )

    def build(self, input_shape):
        init = keras.initializers.RandomNormal(stddev=0.01)
        self.class_embedding = self.add_weight(
            shape=(self.width,), initializer=init, name="class_embedding"
        )
        self.positional_embedding = self.add_weight(
            shape=(1 + self.num_tokens, self.width),
            initializer=init,
            name="positional_embedding",
        )
        self.proj = self.add_weight(
            shape=(self.width, self.output_dim), initializer=init, name="proj"
        )
        seq_shape = (None, 1 + self.num_tokens, self.width)
        self.ln_pre.build(seq_shape)
        for block in self.blocks:
            block.build(seq_shape)
        self.ln_post.build(seq_shape)

    def _flatten(self, quantized):
        shape = quantized.shape
        if len(shape) not in (3, 4):
            raise ValueError(
                "`quantized` must have shape (B, h, w, width) or "
                f"(B, N, width). Received: shape={shape}"
            )
        if shape[-1] is not None and shape[-1] != self.width:
            raise ValueError(
                f"`quantized` must have last dimension width={self.width}. "
                f"Received: shape={shape}"
            )
        if len(shape) == 4:
            if (
                None not in shape[1:3]
                and shape[1] * shape[2] != self.num_tokens
            ):
                raise ValueError(
                    f"`quantized` grid must have h * w = num_tokens="
                    f"{self.num_tokens}. Received: shape={shape}"
                )
            # Row-major flatten, as `x.flatten(2)` on NCHW in the reference.
            quantized = ops.reshape(
                quantized, (-1, self.num_tokens, self.width)
            )
        elif shape[1] is not None and shape[1] != self.num_tokens:
            raise ValueError(
                f"`quantized` must have num_tokens={self.num_tokens} tokens. "
                f"Received: shape={shape}"
            )
        return quantized

    def call(self, quantized, training=None):
        x = ops.cast(self._flatten(quantized), self.compute_dtype)
        batch = ops.shape(x)[0]
        cls = ops.cast(self.class_embedding, self.compute_dtype)
        cls = ops.broadcast_to(cls[None, None, :], (batch, 1, self.width))
        x = ops.concatenate([cls, x], axis=1)
        x = x + ops.cast(self.positional_embedding, self.compute_dtype)[None]
        x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.ln_post(x)
        return ops.matmul(x, ops.cast(self.proj, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1 + self.num_tokens, self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "width": self.width,
                "output_dim": self.output_dim,
                "num_tokens": self.num_tokens,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
            }
        )
        return config

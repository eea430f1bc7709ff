"""LG-VQ relationship alignment: code-code vs word-word cosine relations."""

import keras
from keras import ops

# L2 normalisation adds NORM_EPSILON (1e-12) to the squared norm. The
# official code has none (spec §9 item 19); a zero vector (e.g. a zero
# `value`) would give NaN there and gives a zero vector here. Negligible
# otherwise.
from keras_lgvq.utils.initializers import TorchBiasUniform
from keras_lgvq.utils.tensors import l2_normalize as _l2_normalize
from keras_lgvq.utils.validation import check_int

# `nn.LayerNorm` default epsilon in the official `wrsLayer`.
LAYER_NORM_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="keras_lgvq")
class RelationshipAlignment(keras.layers.Layer):
    """Relationship alignment loss (L_ras, LG-VQ spec §5).

    Each text token is matched to the code position whose visual token is
    most cosine-similar to it (hard argmax, `value` = that similarity). The
    quantized vector at that position goes through the code MLP
    `LayerNorm(GELU(Dense(hidden_dim)))` (dense kernel ~ N(0, 0.01), bias
    PyTorch default, exact GELU, LayerNorm eps 1e-5) and is gathered with
    `take_along_axis`. Then, with `m` the padding mask and `t` the
    normalised token features,

    - text relation `Q = (t m)(t m)^T`, under `stop_gradient`;
    - code relation `P = (g' m)(g' m)^T` with `g' = normalize(g * value)`;
    - loss `mean((P - Q)^2)` over all `B * L * L` entries (padding entries,
      0 against 0, count in the denominator).

    Faithful details: every token (start, end, even padding before zeroing)
    is matched; `normalize(g * value)` equals `sign(value) * normalize(g)`,
    so `value` only flips signs. The official code lets gradient flow into
    `value`, but that gradient is mathematically zero; here `value` is under
    `stop_gradient`, so the code transformer (which produced the visual
    tokens) gets exactly no gradient from this loss, as in the official
    code. Gradients reach the code MLP and, through the straight-through
    `code_tokens`, the VQ encoder. Norms get a `1e-12` epsilon under the
    square root (the official code has none).

    Args:
        hidden_dim: int. Text feature width (output width of the code MLP).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        code_tokens: float tensor `(B, N, Dc)`, the straight-through
            quantized vectors flattened row-major.
        vision_tokens: float tensor `(B, N, hidden_dim)`, code transformer
            outputs `1:`.
        token_features: float tensor `(B, L, hidden_dim)`, per-token text
            features.
        padding_mask: bool tensor `(B, L)`, True for real tokens.

    Returns:
        Scalar float32 loss.

    Examples:

    ```python
    ras = keras_lgvq.layers.guidance.relationship_alignment.RelationshipAlignment(512)
    loss = ras(
        quantized_tokens,  # (B, 256, 256)
        code_transformer_outputs[:, 1:],  # (B, 256, 512)
        text["token_features"],  # (B, 30, 512)
        text["padding_mask"],  # (B, 30)
    )
    ```
    """

    def __init__(self, hidden_dim, **kwargs):
        # Cosines and the loss stay float32 under mixed precision; the code
        # MLP sublayers autocast themselves.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="ln"
        )

    def build(self, code_tokens_shape):
        code_dim = code_tokens_shape[-1]
        if code_dim is None:
            raise ValueError(
                "`code_tokens` must have a known last dimension. Received: "
                f"shape={code_tokens_shape}"
            )
        self.dense = keras.layers.Dense(
            self.hidden_dim,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            bias_initializer=TorchBiasUniform(int(code_dim)),
            dtype=self.dtype_policy,
            name="fc",
        )
        self.dense.build(code_tokens_shape)
        self.layer_norm.build(
            tuple(code_tokens_shape[:-1]) + (self.hidden_dim,)
        )

    def code_features(self, code_tokens):
        """The code MLP, `LayerNorm(GELU(Dense(code_tokens)))`."""
        h = ops.gelu(self.dense(code_tokens), approximate=False)
        return self.layer_norm(h)

    def call(self, code_tokens, vision_tokens, token_features, padding_mask):
        if len(code_tokens.shape) != 3 or len(vision_tokens.shape) != 3:
            raise ValueError(
                "`code_tokens` and `vision_tokens` must have shape (B, N, D). "
                f"Received: {code_tokens.shape} and {vision_tokens.shape}"
            )
        if (
            code_tokens.shape[1] is not None
            and vision_tokens.shape[1] is not None
            and code_tokens.shape[1] != vision_tokens.shape[1]
        ):
            raise ValueError(
                "`code_tokens` and `vision_tokens` must have the same number "
                f"of positions. Received: {code_tokens.shape} and "
                f"{vision_tokens.shape}"
            )
        for name, tensor in (
            ("vision_tokens", vision_tokens),
            ("token_features", token_features),
        ):
            if tensor.shape[-1] != self.hidden_dim:
                raise ValueError(
                    f"`{name}` must have last dimension hidden_dim="
                    f"{self.hidden_dim}. Received: shape={tensor.shape}"
                )
        pad_shape = tuple(padding_mask.shape)
        if (
            len(token_features.shape) != 3
            or len(pad_shape) != 2
            or any(
                a is not None and b is not None and a != b
                for a, b in zip(pad_shape, token_features.shape[:2])
            )
        ):
            raise ValueError(
                "`token_features` must be (B, L, D) and `padding_mask` "
                f"(B, L). Received: {token_features.shape} and "
                f"{padding_mask.shape}"
            )

        m = ops.cast(padding_mask, "float32")[..., None]
        text = _l2_normalize(
            ops.stop_gradient(ops.cast(token_features, "float32"))
        )
        vision = _l2_normalize(
            ops.stop_gradient(ops.cast(vision_tokens, "float32"))
        )
        # Word -> code-position matching, (B, L, N); hard and gradient-free.
        similarity = ops.matmul(text, ops.transpose(vision, (0, 2, 1)))
        index = ops.argmax(similarity, axis=-1)
        value = ops.max(similarity, axis=-1)

        codes = ops.cast(self.code_features(code_tokens), "float32")
        # g[b, k] = codes[b, index[b, k]]; the index broadcasts over width.
        index = ops.cast(index, "int32")[..., None]
        gathered = ops.take_along_axis(codes, index, axis=1)

        text = text * m
        text_relation = ops.stop_gradient(
            ops.matmul(text, ops.transpose(text, (0, 2, 1)))
        )
        gathered = _l2_normalize(gathered * value[..., None]) * m
        code_relation = ops.matmul(gathered, ops.transpose(gathered, (0, 2, 1)))
        return ops.mean(ops.square(code_relation - text_relation))

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim})
        return config

"""LG-VQ masked text prediction: mask sampler, post-LN decoder and loss."""

import math

import keras
import numpy as np
from keras import ops

from keras_lgvq import backend as lgvq_backend
from keras_lgvq.layers.guidance.masked_token_head import MaskedTokenHead
from keras_lgvq.utils.distributions import truncated_normal_cdf_range
from keras_lgvq.utils.distributions import truncated_normal_inverse_cdf
from keras_lgvq.utils.initializers import TorchBiasUniform
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number

# The official decoder's hand-written LayerNorm uses eps 1e-12.
LAYER_NORM_EPSILON = 1e-12
# The official reduction: sum(l * w) / (sum(w) + 5e-6).
WEIGHT_EPSILON = 5e-6
# The MTP mask ratio ~ N(0.5, 0.1) truncated to [0.1, 0.3] (LG-VQ spec §4.1):
# the layer's defaults, also used by the evaluation's probe-training masks.
MASK_RATIO_MEAN = 0.5
MASK_RATIO_STD = 0.1
MASK_RATIO_MIN = 0.1
MASK_RATIO_MAX = 0.3


def _same_shape(a, b):
    # Shapes agree where both are known (batch may be None when traced).
    a, b = tuple(a), tuple(b)
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b)
    )


class _PostLNDecoderLayer(keras.layers.Layer):
    """One post-LN layer: self-attn, cross-attn and ReLU FFN, each
    `x = LN(x + Dropout(sublayer(x)))` (official `DecoderLayer`).

    Attention and FFN weights ~ N(0, fan_in^-0.5), biases PyTorch default.
    """

    def __init__(
        self, hidden_dim, num_heads, intermediate_dim, dropout, seed, **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim

        def attention(name):
            return keras.layers.MultiHeadAttention(
                num_heads=num_heads,
                key_dim=hidden_dim // num_heads,
                kernel_initializer=keras.initializers.RandomNormal(
                    stddev=hidden_dim**-0.5
                ),
                bias_initializer=TorchBiasUniform(hidden_dim),
                dtype=self.dtype_policy,
                name=name,
            )

        def dropout_layer(name, offset):
            return keras.layers.Dropout(
                dropout,
                seed=None if seed is None else seed + offset,
                dtype=self.dtype_policy,
                name=name,
            )

        def norm(name):
            return keras.layers.LayerNormalization(
                epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name=name
            )

        self.self_attention = attention("self_attention")
        self.dropout1 = dropout_layer("dropout1", 1)
        self.norm1 = norm("norm1")
        self.cross_attention = attention("cross_attention")
        self.dropout2 = dropout_layer("dropout2", 2)
        self.norm2 = norm("norm2")
        self.linear1 = keras.layers.Dense(
            intermediate_dim,
            activation="relu",
            kernel_initializer=keras.initializers.RandomNormal(
                stddev=hidden_dim**-0.5
            ),
            bias_initializer=TorchBiasUniform(hidden_dim),
            dtype=self.dtype_policy,
            name="linear1",
        )
        self.ffn_dropout = dropout_layer("ffn_dropout", 3)
        self.linear2 = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=keras.initializers.RandomNormal(
                stddev=intermediate_dim**-0.5
            ),
            bias_initializer=TorchBiasUniform(intermediate_dim),
            dtype=self.dtype_policy,
            name="linear2",
        )
        self.dropout3 = dropout_layer("dropout3", 4)
        self.norm3 = norm("norm3")

    def build(self, x_shape, memory_shape):
        self.self_attention.build(x_shape, x_shape)
        self.norm1.build(x_shape)
        self.cross_attention.build(x_shape, memory_shape)
        self.norm2.build(x_shape)
        self.linear1.build(x_shape)
        self.linear2.build(tuple(x_shape[:-1]) + (self.intermediate_dim,))
        self.norm3.build(x_shape)

    def call(self, x, memory, attention_mask=None, training=None):
        h = self.self_attention(
            x, x, x, attention_mask=attention_mask, training=training
        )
        x = self.norm1(x + self.dropout1(h, training=training))
        # Cross-attention to every memory token (CLS included), no mask.
        h = self.cross_attention(x, memory, memory, training=training)
        x = self.norm2(x + self.dropout2(h, training=training))
        h = self.linear1(x)
        h = self.linear2(self.ffn_dropout(h, training=training))
        return self.norm3(x + self.dropout3(h, training=training))


@keras.saving.register_keras_serializable(package="keras_lgvq")
class MaskedTextDecoder(keras.layers.Layer):
    """Masked text prediction (L_mtp): predicts masked caption tokens from
    text features and code tokens.

    **Mask sampling** (`sample_mask`, LG-VQ spec §4.1): one ratio per batch
    `X ~ N(mask_ratio_mean, mask_ratio_std)` truncated to
    `[mask_ratio_min, mask_ratio_max]` (faithful: N(0.5, 0.1) on [0.1, 0.3],
    mean ≈ 0.263), drawn by inverse-CDF sampling; then each token is masked
    independently with probability `X`. The start token (position 0), the
    end token (position `sum(padding_mask) - 1`) and padding are never
    masked. Randomness comes from a seeded `keras.random.SeedGenerator`.

    **Data parallelism** (`global_batch=True`, the default): under
    `tf.distribute` every replica draws the one ratio and the per-token
    uniforms for the *global* batch from the same (mirrored) seed and keeps
    its own rows, and the loss is normalised by the masked-token count of
    the global batch. 2 replicas x B/2 then mask exactly the tokens that
    1 x B masks and get the same loss and gradients. `global_batch=False`
    draws for the local batch and normalises per replica, which is what
    per-GPU DDP code does. On JAX (`keras.distribution`, SPMD) and on one
    device the layer sees the global batch either way.

    **Decoder** (spec §4.2-4.3): the text features at masked positions are
    replaced by learned per-position mask vectors `(1, sequence_length,
    hidden_dim)` ~ N(0, 0.01), then multiplied by the padding mask (padding
    rows become zero). No positional encoding is added. `num_layers` post-LN
    layers follow, each `x = LN(x + Dropout(SelfAttn(x)))`,
    `x = LN(x + Dropout(CrossAttn(x, memory)))`,
    `x = LN(x + Dropout(FFN(x)))` with a ReLU FFN (inner dropout) and
    LayerNorm eps 1e-12. The official self-attention padding mask is a
    no-op because of a shape bug (spec §9 item 1), so by default
    (`self_attention_mask=False`, faithful) every position attends to all
    positions including the zeroed padding rows; `self_attention_mask=True`
    applies a key-padding mask instead. Cross-attention covers every memory
    token without a mask.

    **Head and loss** (spec §4.4): `MaskedTokenHead` gives float32 logits
    tied to the frozen token-embedding matrix passed at call time; `loss`
    is label-smoothed cross-entropy
    `(1 - eps) (-log p_y) + eps mean_k(-log p_k)` reduced as
    `sum(l w) / (sum(w) + 5e-6)` with `w` = masked and non-padding.

    **Scoring only what the loss needs** (`scored_loss`, used in training):
    only masked, non-padding positions have a non-zero weight, so by
    default the head's vocabulary projection runs on those rows alone
    instead of all `B x L`.
    Their count is random, so the rows are gathered into a buffer of
    static size `ceil(max_masked_fraction * B * L)` (filled up with
    zero-weight rows), which keeps shapes static under XLA and `jax.jit`.
    A batch with more masked tokens than that takes the full computation
    instead (`ops.cond`), so the loss and its gradients equal those of
    `loss(call(...))` either way, up to float summation order. Only the
    vocabulary projection and the softmax sit in the `cond`'s branches: the
    head's row-wise Dense / GELU / LayerNorm (`MaskedTokenHead.transform`)
    runs on all `B x L` rows before it, since TensorFlow's CPU build gave a
    LayerNorm gradient inside a `tf.cond` branch that varied in its last
    bits from call to call (training was not bit-reproducible). A trace
    whose batch size is unknown (a kept last batch, relaxed shapes) also
    takes the full computation: XLA needs the buffer size at compile time.
    So does TensorFlow with `jit_compile=True`, where the differentiated
    `tf.cond` was measured ~20x slower than the whole step without it.
    `full_logits=True` always takes the full `(B, L, V)` path (the
    previous behaviour; for benchmarks and checks). `call` and therefore
    evaluation (`LanguageGuidance.predict_masked`) still give all logits.

    **Vocabulary subset (an approximation, off by default)**: with
    `vocabulary_subset` the training softmax covers those token ids only
    (e.g. the ids of the training captions,
    `keras_lgvq.utils.caption_vocabulary.caption_token_ids`): the head
    scores `S` columns instead of `V`, and the smoothing term averages over
    the `S` ids. It is *not* the paper's loss (the other `V - S` tokens get
    no probability mass and no gradient); with every id in the subset it
    equals the full loss. A masked target outside the subset makes the
    loss NaN (and raises where values are concrete). `call` still scores
    the whole vocabulary.

    Args:
        hidden_dim: int. Width of the text features, the decoder and the
            token embeddings (512 for CLIP ViT-B/32).
        vocabulary_size: int. Number of token ids `V`.
        num_layers: int. Decoder layers. Defaults to 2.
        num_heads: int. Attention heads; must divide `hidden_dim`. Defaults
            to 1.
        intermediate_dim: int. FFN hidden width. Defaults to 512.
        dropout: float. Dropout rate for the residual branches and the FFN.
            Defaults to 0.1.
        sequence_length: int. Maximum caption length `L` (length of the
            learned mask vectors). Defaults to 30.
        self_attention_mask: bool. Mask padding keys in self-attention.
            Defaults to `False` (faithful to the official no-op mask).
        label_smoothing: float. Label smoothing `eps` in [0, 1). Defaults to
            0.1.
        mask_ratio_mean: float. Mean of the normal the ratio is drawn from.
            Defaults to 0.5.
        mask_ratio_std: float. Standard deviation of that normal. Defaults
            to 0.1.
        mask_ratio_min: float. Lower truncation bound. Defaults to 0.1.
        mask_ratio_max: float. Upper truncation bound. Defaults to 0.3.
        seed: int or `None`. Seed of the mask sampler and the dropouts.
        global_batch: bool. Under `tf.distribute`, draw the mask and
            normalise the loss over the global batch (see above). Defaults
            to `True`.
        max_masked_fraction: float in (0, 1] or `None`. Size of the static
            buffer of scored positions in `scored_loss`, as a fraction of
            the `B x L` positions; `None` (the default) uses
            `mask_ratio_max`, the largest expected masking rate. Only
            speed depends on it, never the value.
        vocabulary_subset: sequence of distinct int ids or `None`. Restrict
            the training softmax to these ids (approximation, see above).
            Defaults to `None` (the whole vocabulary, faithful).
        full_logits: bool. `scored_loss` computes all `(B, L, V)` logits
            (the unoptimised path). Defaults to `False`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        token_features: float tensor `(B, L, hidden_dim)`, per-token text
            features, `L <= sequence_length`.
        padding_mask: bool tensor `(B, L)`, True for real tokens.
        mask: bool tensor `(B, L)`, True for masked tokens (from
            `sample_mask`).
        memory: float tensor `(B, M, hidden_dim)`, the code tokens (all
            `1 + N` code-transformer outputs).
        token_embeddings: float tensor `(vocabulary_size, hidden_dim)`,
            frozen.
        training: bool. Enables dropout.

    Returns:
        float32 logits `(B, L, vocabulary_size)`.

    Examples:

    ```python
    decoder = keras_lgvq.layers.guidance.masked_text_decoder.MaskedTextDecoder(
        hidden_dim=512, vocabulary_size=49408, seed=0
    )
    mask = decoder.sample_mask(text["token_ids"], text["padding_mask"])
    logits = decoder(
        text["token_features"], text["padding_mask"], mask,
        memory=code_tokens, token_embeddings=clip_token_embeddings,
        training=True,
    )
    loss = decoder.loss(logits, text["token_ids"], mask, text["padding_mask"])
    ```
    """

    def __init__(
        self,
        hidden_dim,
        vocabulary_size,
        num_layers=2,
        num_heads=1,
        intermediate_dim=512,
        dropout=0.1,
        sequence_length=30,
        self_attention_mask=False,
        label_smoothing=0.1,
        mask_ratio_mean=MASK_RATIO_MEAN,
        mask_ratio_std=MASK_RATIO_STD,
        mask_ratio_min=MASK_RATIO_MIN,
        mask_ratio_max=MASK_RATIO_MAX,
        seed=None,
        global_batch=True,
        max_masked_fraction=None,
        vocabulary_subset=None,
        full_logits=False,
        **kwargs,
    ):
        # Inputs are cast explicitly; not autocasting keeps the frozen token
        # embeddings float32 for the tied logits under mixed precision.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        for arg, value in (
            ("hidden_dim", hidden_dim),
            ("vocabulary_size", vocabulary_size),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("intermediate_dim", intermediate_dim),
            ("sequence_length", sequence_length),
        ):
            check_int(arg, value)
        if hidden_dim % num_heads:
            raise ValueError(
                "`hidden_dim` must be divisible by `num_heads`. Received: "
                f"hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                "`label_smoothing` must be in [0, 1). Received: "
                f"label_smoothing={label_smoothing}"
            )
        if mask_ratio_std <= 0:
            raise ValueError(
                "`mask_ratio_std` must be positive. Received: "
                f"mask_ratio_std={mask_ratio_std}"
            )
        if not 0.0 <= mask_ratio_min < mask_ratio_max <= 1.0:
            raise ValueError(
                "Expected 0 <= mask_ratio_min < mask_ratio_max <= 1. "
                f"Received: mask_ratio_min={mask_ratio_min}, "
                f"mask_ratio_max={mask_ratio_max}"
            )
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"`seed` must be an int or None. Received: {seed}")
        if max_masked_fraction is not None:
            max_masked_fraction = check_number(
                "max_masked_fraction",
                max_masked_fraction,
                0.0,
                1.0,
                low_open=True,
            )
        if not isinstance(full_logits, bool):
            raise ValueError(
                "`full_logits` must be a bool. Received: "
                f"full_logits={full_logits!r}"
            )
        subset = _check_vocabulary_subset(vocabulary_subset, vocabulary_size)

        # === Config ===
        self.hidden_dim = hidden_dim
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = float(dropout)
        self.sequence_length = sequence_length
        self.self_attention_mask = bool(self_attention_mask)
        self.label_smoothing = float(label_smoothing)
        self.mask_ratio_mean = float(mask_ratio_mean)
        self.mask_ratio_std = float(mask_ratio_std)
        self.mask_ratio_min = float(mask_ratio_min)
        self.mask_ratio_max = float(mask_ratio_max)
        self.seed = seed
        self.global_batch = bool(global_batch)
        self.max_masked_fraction = max_masked_fraction
        self.vocabulary_subset = subset
        self.full_logits = full_logits
        if subset is not None:
            # Token id -> column of the restricted softmax (-1: not scored).
            position = np.full((vocabulary_size,), -1, "int32")
            position[np.asarray(subset)] = np.arange(len(subset), dtype="int32")
            self._subset_ids = np.asarray(subset, "int32")
            self._subset_position = position

        # === Layers ===
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.decoder_layers = [
            _PostLNDecoderLayer(
                hidden_dim,
                num_heads,
                intermediate_dim,
                self.dropout,
                None if seed is None else seed + 10 * (i + 1),
                dtype=self.dtype_policy,
                name=f"layers_{i}",
            )
            for i in range(num_layers)
        ]
        self.head = MaskedTokenHead(
            hidden_dim, vocabulary_size, dtype=self.dtype_policy, name="mlm"
        )
        # The explicit `mask` argument is not a Keras propagation mask; say
        # so, or Keras warns that this layer "destroys" it on every call.
        self.supports_masking = True

    def compute_mask(self, *args, **kwargs):
        return None

    def build(self, token_features_shape, memory_shape):
        self.mask_vectors = self.add_weight(
            shape=(1, self.sequence_length, self.hidden_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="mask_vectors",
        )
        x_shape = (None, None, self.hidden_dim)
        for layer in self.decoder_layers:
            layer.build(x_shape, memory_shape)
        self.head.build(x_shape)

    def sample_mask_ratio(self, shape=()):
        """Draws mask ratios from the truncated normal.

        Args:
            shape: tuple. Shape of the draw; `()` (the default) for one ratio.

        Returns:
            float32 tensor of ratios in `[mask_ratio_min, mask_ratio_max]`.
        """
        mu, sigma = self.mask_ratio_mean, self.mask_ratio_std
        low, high = truncated_normal_cdf_range(
            mu, sigma, self.mask_ratio_min, self.mask_ratio_max
        )
        u = keras.random.uniform(
            shape,
            minval=low,
            maxval=high,
            dtype="float32",
            seed=self.seed_generator,
        )
        return truncated_normal_inverse_cdf(
            u, mu, sigma, self.mask_ratio_min, self.mask_ratio_max
        )

    def sample_mask(self, token_ids, padding_mask):
        """Samples which tokens to mask, one ratio for the whole batch.

        Args:
            token_ids: int tensor `(B, L)`. Only its shape is used (validity
                comes from `padding_mask`).
            padding_mask: bool tensor `(B, L)`, True for real tokens.

        Returns:
            bool tensor `(B, L)`, True where a token is masked. Start, end
            and padding positions are always False.
        """
        if len(token_ids.shape) != 2 or not _same_shape(
            token_ids.shape, padding_mask.shape
        ):
            raise ValueError(
                "`token_ids` and `padding_mask` must both have shape (B, L). "
                f"Received: {token_ids.shape} and {padding_mask.shape}"
            )
        valid = ops.cast(padding_mask, "bool")
        positions = ops.arange(ops.shape(valid)[1], dtype="int32")[None, :]
        end = ops.sum(ops.cast(valid, "int32"), axis=-1, keepdims=True) - 1
        maskable = ops.logical_and(
            valid,
            ops.logical_and(positions > 0, ops.not_equal(positions, end)),
        )
        ratio = self.sample_mask_ratio()
        if self.global_batch and lgvq_backend.num_replicas() > 1:
            # Every replica draws the global batch's uniforms from the same
            # seed and keeps its rows: the mask 1 x B would draw.
            rows, length = ops.shape(valid)[0], ops.shape(valid)[1]
            offset, total = lgvq_backend.replica_batch_offset(rows)
            u = keras.random.uniform(
                (total, length), dtype="float32", seed=self.seed_generator
            )
            u = ops.slice(u, (offset, 0), (rows, length))
        else:
            u = keras.random.uniform(
                ops.shape(valid), dtype="float32", seed=self.seed_generator
            )
        return ops.logical_and(u < ratio, maskable)

    def _check_text(self, token_features, padding_mask, mask):
        shape = token_features.shape
        if len(shape) != 3 or shape[-1] != self.hidden_dim:
            raise ValueError(
                "`token_features` must have shape (B, L, hidden_dim="
                f"{self.hidden_dim}). Received: shape={shape}"
            )
        if shape[1] is not None and shape[1] > self.sequence_length:
            raise ValueError(
                f"`token_features` length must be <= sequence_length="
                f"{self.sequence_length}. Received: shape={shape}"
            )
        if shape[1] is None:
            # A trace with a relaxed (dynamic) length: check at run time.
            lgvq_backend.runtime_assert(
                ops.shape(token_features)[1] <= self.sequence_length,
                "`token_features` length must be <= sequence_length="
                f"{self.sequence_length} (checked at run time: the traced "
                "length is dynamic).",
            )
        for name, tensor in (("padding_mask", padding_mask), ("mask", mask)):
            if not _same_shape(tensor.shape, shape[:2]):
                raise ValueError(
                    f"`{name}` must have shape {tuple(shape[:2])}. "
                    f"Received: shape={tuple(tensor.shape)}"
                )

    def call(
        self,
        token_features,
        padding_mask,
        mask,
        memory,
        token_embeddings,
        training=None,
    ):
        hidden = self.hidden_states(
            token_features, padding_mask, mask, memory, training=training
        )
        return self.head(hidden, token_embeddings)

    def hidden_states(
        self,
        token_features,
        padding_mask,
        mask,
        memory,
        training=None,
        use_mask_vectors=True,
    ):
        """The decoder stack's output `(B, L, hidden_dim)`, before the head.

        Lets a caller score only some positions instead of computing the
        `(B, L, vocabulary_size)` logits of `call`.

        Args:
            token_features, padding_mask, mask, memory, training: as in
                `call`.
            use_mask_vectors: bool. Replace masked positions by the learned
                mask vectors (as in `call`). `False` keeps the input
                features there, e.g. features of a caption whose masked
                words were already replaced by a `[MASK]` token.

        Returns:
            Tensor `(B, L, hidden_dim)` in the compute dtype.
        """
        self._check_text(token_features, padding_mask, mask)
        if len(memory.shape) != 3:
            raise ValueError(
                "`memory` must have shape (B, M, D). Received: "
                f"shape={memory.shape}"
            )
        length = token_features.shape[1]
        if length is None:
            length = ops.shape(token_features)[1]
        x = ops.stop_gradient(ops.cast(token_features, self.compute_dtype))
        if use_mask_vectors:
            mask_vectors = ops.cast(self.mask_vectors, self.compute_dtype)
            mask_vectors = mask_vectors[:, :length]
            x = ops.where(ops.cast(mask, "bool")[..., None], mask_vectors, x)
        valid = ops.cast(padding_mask, "bool")
        x = x * ops.cast(valid, self.compute_dtype)[..., None]
        attention_mask = None
        if self.self_attention_mask:
            # Key-padding mask (B, L, L): query i may attend key j iff j is
            # a real token. The official code intended this (spec §9 item 1).
            attention_mask = ops.logical_and(
                ops.ones_like(valid)[:, :, None], valid[:, None, :]
            )
        memory = ops.cast(memory, self.compute_dtype)
        for layer in self.decoder_layers:
            x = layer(
                x, memory, attention_mask=attention_mask, training=training
            )
        return x

    def loss(self, logits, token_ids, mask, padding_mask):
        """Label-smoothed cross-entropy over masked, non-padding tokens.

        Args:
            logits: float tensor `(B, L, V)`.
            token_ids: int tensor `(B, L)`, the targets.
            mask: bool tensor `(B, L)`, True for masked tokens.
            padding_mask: bool tensor `(B, L)`, True for real tokens.

        Returns:
            Scalar float32 `sum(l * w) / (sum(w) + 5e-6)`; with
            `global_batch` under `tf.distribute`, `sum(w)` is the global
            batch's and the value is this replica's share times the replica
            count (the trainer divides by it), so the gradients are those of
            the global loss. With `vocabulary_subset`, the softmax covers
            the subset's columns of `logits` only.
        """
        logits = ops.cast(logits, "float32")
        if self.vocabulary_subset is not None:
            logits = ops.take(logits, self._subset_ids, axis=-1)
        weights = self._weights(mask, padding_mask)
        per_token = self._per_token_loss(logits, token_ids, weights)
        return self._reduce(ops.sum(per_token * weights), weights)

    def scored_loss(
        self, hidden_states, token_ids, mask, padding_mask, token_embeddings
    ):
        """`loss(head(hidden_states))`, scoring masked positions only.

        The training path: the head's vocabulary projection and the
        softmax run on the masked, non-padding positions (gathered into a
        static buffer, see the class docstring) instead of all `B x L`;
        with `full_logits=True` it is literally
        `loss(head(hidden_states, token_embeddings), ...)`.

        Args:
            hidden_states: float tensor `(B, L, hidden_dim)` from
                `hidden_states`.
            token_ids: int tensor `(B, L)`, the targets.
            mask: bool tensor `(B, L)`, True for masked tokens.
            padding_mask: bool tensor `(B, L)`, True for real tokens.
            token_embeddings: float tensor `(vocabulary_size, hidden_dim)`.

        Returns:
            Scalar float32, equal to the full computation's value.
        """
        if self.full_logits:
            return self.loss(
                self.head(hidden_states, token_embeddings),
                token_ids,
                mask,
                padding_mask,
            )
        weights = self._weights(mask, padding_mask)
        # The head's row-wise part (Dense, GELU, LayerNorm) runs on every
        # row here, outside the `ops.cond` below; only the vocabulary
        # projection and the softmax are in its branches. On TensorFlow's
        # CPU build the gradient of the LayerNorm inside a `tf.cond` branch
        # varied in the last bits from one call to the next (thread
        # scheduling; also with op determinism and oneDNN off), which made
        # LG-VQ training irreproducible across processes. The extra rows
        # cost a D x D matmul each, against D x V for the logits.
        hidden = self.head.transform(
            ops.reshape(hidden_states, (-1, self.hidden_dim))
        )
        ids = ops.reshape(ops.cast(token_ids, "int32"), (-1,))
        flat_weights = ops.reshape(weights, (-1,))
        subset = None
        if self.vocabulary_subset is not None:
            subset = self._subset_ids

        def rows_total(rows, row_ids, row_weights):
            logits = self.head.project(
                rows, token_embeddings, token_subset=subset
            )
            per_token = self._per_token_loss(logits, row_ids, row_weights)
            return ops.sum(per_token * row_weights)

        def full_total():
            return rows_total(hidden, ids, flat_weights)

        positions = hidden.shape[0]
        if positions is None:
            # A trace with an unknown batch (TensorFlow's relaxed shapes, a
            # last batch kept by `drop_remainder=False`): a run-time buffer
            # size is not a compile-time constant for XLA, so score every
            # position (same value).
            return self._reduce(full_total(), weights)
        budget = max(1, math.ceil(self._budget_fraction() * positions))
        if budget >= positions or lgvq_backend.conditionals_are_slow():
            # TensorFlow under XLA: the cond below cost ~20x the step
            # (`conditionals_are_slow`), scoring every row does not.
            return self._reduce(full_total(), weights)

        def gathered_total():
            # Weights are 0 / 1: the top `budget` hold every masked row
            # when there are at most `budget` of them.
            _, index = ops.top_k(flat_weights, budget, sorted=False)
            return rows_total(
                ops.take(hidden, index, axis=0),
                ops.take(ids, index, axis=0),
                ops.take(flat_weights, index, axis=0),
            )

        count = ops.sum(flat_weights)
        total = ops.cond(
            count > ops.cast(budget, "float32"), full_total, gathered_total
        )
        return self._reduce(total, weights)

    def _budget_fraction(self):
        if self.max_masked_fraction is not None:
            return self.max_masked_fraction
        return self.mask_ratio_max

    def _weights(self, mask, padding_mask):
        return ops.cast(
            ops.logical_and(
                ops.cast(mask, "bool"), ops.cast(padding_mask, "bool")
            ),
            "float32",
        )

    def _per_token_loss(self, logits, token_ids, weights):
        """`(1 - eps) nll + eps * mean(-log p)` per row of `logits`."""
        logits = ops.cast(logits, "float32")
        log_probs = ops.log_softmax(logits, axis=-1)
        ids = ops.cast(token_ids, "int32")
        known = None
        if self.vocabulary_subset is not None:
            columns = ops.take(self._subset_position, ids, axis=0)
            known = ops.greater_equal(columns, 0)
            missing = ops.logical_and(ops.logical_not(known), weights > 0)
            lgvq_backend.runtime_assert(
                ops.logical_not(ops.any(missing)),
                "A masked target token id is not in `vocabulary_subset`: "
                "build the subset from the captions being trained on "
                "(keras_lgvq.utils.caption_vocabulary.caption_token_ids).",
            )
            ids = ops.maximum(columns, 0)
        nll = -ops.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0]
        smooth = -ops.mean(log_probs, axis=-1)
        eps = self.label_smoothing
        per_token = (1.0 - eps) * nll + eps * smooth
        if known is not None:
            # A scored target the softmax cannot represent: NaN, loudly
            # (unscored rows are zeroed).
            per_token = ops.where(
                known, per_token, ops.where(weights > 0, float("nan"), 0.0)
            )
        return per_token

    def _reduce(self, total, weights):
        count = ops.sum(weights)
        if self.global_batch and lgvq_backend.num_replicas() > 1:
            count = lgvq_backend.replica_sum(count)
            total = total * float(lgvq_backend.num_replicas())
        return total / (count + WEIGHT_EPSILON)

    def compute_output_shape(self, token_features_shape, *args, **kwargs):
        return tuple(token_features_shape[:2]) + (self.vocabulary_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "sequence_length": self.sequence_length,
                "self_attention_mask": self.self_attention_mask,
                "label_smoothing": self.label_smoothing,
                "mask_ratio_mean": self.mask_ratio_mean,
                "mask_ratio_std": self.mask_ratio_std,
                "mask_ratio_min": self.mask_ratio_min,
                "mask_ratio_max": self.mask_ratio_max,
                "seed": self.seed,
                "global_batch": self.global_batch,
                "max_masked_fraction": self.max_masked_fraction,
                "vocabulary_subset": (
                    None
                    if self.vocabulary_subset is None
                    else list(self.vocabulary_subset)
                ),
                "full_logits": self.full_logits,
            }
        )
        return config


def _check_vocabulary_subset(subset, vocabulary_size):
    """The subset as a tuple of distinct ints in `[0, vocabulary_size)`."""
    if subset is None:
        return None
    ids = np.asarray(subset)
    if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(
        ids.dtype, np.integer
    ):
        raise ValueError(
            "`vocabulary_subset` must be a non-empty 1-D sequence of int "
            "token ids (e.g. from keras_lgvq.utils.caption_vocabulary."
            f"caption_token_ids). Received: {type(subset).__name__} of "
            f"shape {ids.shape} and dtype {ids.dtype}."
        )
    if ids.min() < 0 or ids.max() >= vocabulary_size:
        raise ValueError(
            f"`vocabulary_subset` ids must be in [0, vocabulary_size="
            f"{vocabulary_size}). Received ids from {int(ids.min())} to "
            f"{int(ids.max())}."
        )
    if len(np.unique(ids)) != ids.size:
        raise ValueError(
            "`vocabulary_subset` must not repeat an id (a repeated id would "
            "count twice in the softmax); pass `np.unique(ids)`."
        )
    return tuple(int(i) for i in ids)

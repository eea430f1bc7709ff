"""Vector quantiser: VQGAN (taming), EMA and CVQ codebooks in one layer."""

import keras
import numpy as np
from keras import ops

from keras_lgvq.utils.tensors import l2_normalize as _l2_normalize
from keras_lgvq.utils.validation import check_int as _check_int
from keras_lgvq.utils.validation import check_number as _check_number

_REINITS = ("none", "cvq")
_ANCHORS = ("probrandom", "random", "closest")
# Added inside `log` for the perplexity, as taming and CVQ do.
_LOG_EPS = 1e-10
# Stand-in for -inf in masked logits: finite, so no 0 * inf in gradients.
_MASKED_LOGIT = -1e30


def _is_float_dtype(dtype):
    return "float" in keras.backend.standardize_dtype(dtype)


class _ScaledInitializer:
    """Wraps an initializer and multiplies its draw by a constant."""

    def __init__(self, initializer, scale):
        self.initializer = initializer
        self.scale = scale

    def __call__(self, shape, dtype=None):
        return ops.multiply(self.initializer(shape, dtype=dtype), self.scale)


class _ArrayInitializer:
    """Initializer that returns a fixed (K, D) array (e.g. an LM table)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype=None):
        return ops.cast(ops.convert_to_tensor(self.value), dtype)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VectorQuantizer(keras.layers.Layer):
    """Nearest-neighbour vector quantiser with a straight-through estimator.

    Maps each `embedding_dim`-vector of a channels-last input to its nearest
    codebook entry (squared L2, computed in float32 as a matmul, chunked over
    rows so at most one `(chunk_size, num_embeddings)` block of distances is
    alive) and returns the straight-through output `z + sg(z_q - z)` with the
    VQ loss and batch statistics. One layer covers the codebooks used by
    LG-VQ and its baselines:

    - taming VQGAN (`legacy_beta=True`): loss
      `mean((sg[z_q] - z)^2) + beta * mean((z_q - sg[z])^2)`; the default
      (`legacy_beta=False`) puts `beta` on the commitment term instead:
      `beta * mean((sg[z_q] - z)^2) + mean((z_q - sg[z])^2)`.
    - EMA codebook (`ema_decay` set): no codebook loss term; the codebook is
      `ema_sum / laplace_smoothed(ema_count)`, both non-trainable.
    - CVQ (`reinit="cvq"`, usually with `contrastive_weight=1.0`): online
      re-initialisation of rarely used codes toward anchor features drawn
      from the batch, plus a contrastive codebook loss (training only).
    - Cosine codes (`l2_normalize=True`): features and codes are
      l2-normalised before the search, and the normalised vectors are used
      for the loss and output.

    The layer never calls `add_loss`; the caller adds `outputs["loss"]`.
    Inputs are not autocast: distances are always float32 and `quantized`
    comes back in the input dtype (bf16/fp16 inputs are fine).

    Extension points (for codebooks that are computed or frozen):

    - `get_codebook(training=False)` is the one place the `(K, D)` codebook
      is read (search, lookup, `indices_to_codes`). A subclass whose codebook
      is computed (VQCT's GCN over frozen CLIP word vectors, rebuilt every
      step, with dropout in training) overrides it, together with
      `build_codebook()`, which by default creates the codebook variables and
      would instead build the GCN's sublayers.
    - A frozen table (LQAE's language-model embedding matrix) needs no
      subclass: `trainable_codebook=False, codebook_initializer=table`,
      where `table` is a `(K, D)` array. The array is not written into
      `get_config` (it travels with the weights).
    - `_search_space(z, codebook)` returns the vectors compared by distance
      (default: l2-normalised when `l2_normalize=True`); `_output_space(z,
      codebook, z_search, codebook_search)` returns those used for the
      loss, `quantized` and `indices_to_codes` (default: the search-space
      ones). LQAE searches by cosine but outputs the raw table rows and
      computes the loss on the raw encoder output, so it overrides
      `_output_space` to return `(z, codebook)`.

    EMA and CVQ modes need the codebook variables created by the default
    `build_codebook()`.

    Args:
        num_embeddings: int. Codebook size K.
        embedding_dim: int. Code dimension D; the input's last axis.
        beta: float. Weight of the commitment term (or, with
            `legacy_beta=True`, of the codebook term). Defaults to `0.25`.
        legacy_beta: bool. Use taming's swapped placement of `beta` (as
            the LG-VQGAN quantiser does). Defaults to `False`.
        l2_normalize: bool. Cosine codes: l2-normalise features and codes
            before the search and use the normalised vectors as `z` and
            `z_q`. Defaults to `False`.
        ema_decay: float in [0, 1) or `None`. When set, the codebook is an
            exponential moving average of the assigned features and is not
            trained by gradients. Defaults to `None`.
        ema_epsilon: float > 0. Laplace smoothing of the EMA counts (in
            units of batch fractions). Defaults to `1e-5`.
        reinit: str. `"none"`, or `"cvq"` for CVQ's online clustered
            re-initialisation of under-used codes. Defaults to `"none"`.
        reinit_decay: float in [0, 1). Decay of CVQ's usage average
            `embed_prob`. Defaults to `0.99`.
        anchor: str. How CVQ picks the feature a code is pulled toward:
            `"probrandom"` (sample from the softmax of similarities over
            the batch), `"random"` (uniform batch feature) or `"closest"`
            (most similar batch feature). Defaults to `"probrandom"`.
        contrastive_weight: float >= 0. Weight of CVQ's contrastive codebook
            loss (computed in training only). Defaults to `0.0`.
        contrastive_temperature: float > 0. Temperature of that loss.
            Defaults to `0.07`.
        chunk_size: int. Rows per block of the distance computation.
            Defaults to `4096`.
        codebook_initializer: initializer, identifier, `(K, D)` array or
            `None`. `None` draws uniform on [-1/K, 1/K] like taming/CVQ.
            Defaults to `None`.
        trainable_codebook: bool. Whether the codebook variable is trained
            by gradients. `False` with an array initializer gives a frozen
            table. Defaults to `True`.
        seed: int or `None`. Seed for the codebook initialiser and for
            CVQ's anchor sampling. Defaults to `None`.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`,
            `dtype`, ...).

    Call arguments:
        inputs: float tensor of shape `(..., embedding_dim)`.
        training: bool. Enables EMA / CVQ updates and the contrastive loss.

    Returns:
        A dict with `quantized` (input shape and dtype), `indices` (int32,
        the input's leading shape), and float32 scalars `loss`,
        `codebook_loss`, `commitment_loss` (both already weighted, so
        `loss = codebook_loss + commitment_loss + contrastive_loss`),
        `contrastive_loss` (weighted; zero unless enabled and training),
        `perplexity` and `usage` (of the batch code histogram).

    Examples:

    ```python
    vq = keras_lgvq.layers.quantizers.vector_quantizer.VectorQuantizer(
        num_embeddings=1024, embedding_dim=256, legacy_beta=True
    )
    z = keras.random.normal((2, 16, 16, 256))
    out = vq(z, training=True)
    out["quantized"].shape  # (2, 16, 16, 256)
    out["indices"].shape  # (2, 16, 16)
    codes = vq.indices_to_codes(out["indices"])

    # CVQ preset.
    cvq = keras_lgvq.layers.quantizers.vector_quantizer.VectorQuantizer(
        1024, 256, reinit="cvq", contrastive_weight=1.0, seed=0
    )

    # Frozen language-model table searched by cosine.
    table = np.random.randn(30522, 384).astype("float32")
    frozen = keras_lgvq.layers.quantizers.vector_quantizer.VectorQuantizer(
        30522, 384, l2_normalize=True, trainable_codebook=False,
        codebook_initializer=table,
    )
    ```
    """

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        beta=0.25,
        legacy_beta=False,
        l2_normalize=False,
        ema_decay=None,
        ema_epsilon=1e-5,
        reinit="none",
        reinit_decay=0.99,
        anchor="probrandom",
        contrastive_weight=0.0,
        contrastive_temperature=0.07,
        chunk_size=4096,
        codebook_initializer=None,
        trainable_codebook=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_int("num_embeddings", num_embeddings, 1)
        _check_int("embedding_dim", embedding_dim, 1)
        _check_int("chunk_size", chunk_size, 1)
        _check_number("beta", beta, low=0.0)
        _check_number("ema_epsilon", ema_epsilon, low=0.0, low_open=True)
        _check_number("reinit_decay", reinit_decay, 0.0, 1.0, high_open=True)
        _check_number("contrastive_weight", contrastive_weight, low=0.0)
        _check_number(
            "contrastive_temperature",
            contrastive_temperature,
            low=0.0,
            low_open=True,
        )
        if ema_decay is not None:
            _check_number("ema_decay", ema_decay, 0.0, 1.0, high_open=True)
        if reinit not in _REINITS:
            raise ValueError(
                f"`reinit` must be one of {_REINITS}. Received: reinit={reinit}"
            )
        if anchor not in _ANCHORS:
            raise ValueError(
                f"`anchor` must be one of {_ANCHORS}. Received: anchor={anchor}"
            )
        if ema_decay is not None and reinit != "none":
            raise ValueError(
                "`reinit='cvq'` writes the codebook variable and cannot be "
                "combined with `ema_decay` (whose codebook is derived from "
                f"accumulators). Received: reinit={reinit}, "
                f"ema_decay={ema_decay}"
            )
        if not trainable_codebook and (
            ema_decay is not None or reinit != "none"
        ):
            raise ValueError(
                "`trainable_codebook=False` is a frozen table; it cannot be "
                "combined with `ema_decay` or `reinit='cvq'`. Received: "
                f"ema_decay={ema_decay}, reinit={reinit}"
            )
        if seed is not None and not isinstance(seed, int):
            raise ValueError(f"`seed` must be an int or None. Received: {seed}")

        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.beta = float(beta)
        self.legacy_beta = bool(legacy_beta)
        self.l2_normalize = bool(l2_normalize)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_epsilon = float(ema_epsilon)
        self.reinit = reinit
        self.reinit_decay = float(reinit_decay)
        self.anchor = anchor
        self.contrastive_weight = float(contrastive_weight)
        self.contrastive_temperature = float(contrastive_temperature)
        self.chunk_size = chunk_size
        self.trainable_codebook = bool(trainable_codebook)
        self.seed = seed
        self._codebook_array = None
        if codebook_initializer is None:
            bound = 1.0 / num_embeddings
            self.codebook_initializer = keras.initializers.RandomUniform(
                -bound, bound, seed=seed
            )
            self._default_initializer = True
        elif _is_array(codebook_initializer):
            value = np.asarray(
                keras.ops.convert_to_numpy(codebook_initializer)
            )
            if value.shape != (num_embeddings, embedding_dim):
                raise ValueError(
                    "`codebook_initializer` array must have shape "
                    f"(num_embeddings, embedding_dim) = ({num_embeddings}, "
                    f"{embedding_dim}). Received shape: {value.shape}"
                )
            if not np.issubdtype(value.dtype, np.floating):
                raise ValueError(
                    "`codebook_initializer` array must be floating point. "
                    f"Received dtype: {value.dtype}"
                )
            self._codebook_array = value
            self.codebook_initializer = _ArrayInitializer(value)
            self._default_initializer = False
        else:
            self.codebook_initializer = keras.initializers.get(
                codebook_initializer
            )
            self._default_initializer = False
        # Distances must see full-precision codes and `quantized` keeps the
        # caller's dtype, so neither inputs nor variables are autocast.
        self.autocast = False
        self.seed_generator = keras.random.SeedGenerator(seed)

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.build_codebook()
        self.built = True

    def build_codebook(self):
        """Creates the codebook state. Override for computed codebooks."""
        K, D = self.num_embeddings, self.embedding_dim
        if self.ema_decay is not None:
            # EMA state is kept as two linear accumulators of *batch-
            # normalised* statistics: the fraction of the batch assigned to
            # each code (n_k / N) and the per-code feature sum over N.
            # Linear in the batch, so `aggregation="mean"` across
            # MirroredStrategy replicas (equal per-replica batches) gives
            # exactly the statistics of one global batch, and the codebook
            # `ema_sum / smoothed(ema_count)` is derived on read rather than
            # stored (a stored ratio would be averaged, which is not exact).
            # Start as if a previous batch were spread uniformly over the
            # initial codes: counts 1/K (they then always sum to 1) and
            # sums init/K, so the initial codebook is the initializer's.
            self.ema_count = self.add_weight(
                shape=(K,),
                initializer=keras.initializers.Constant(1.0 / K),
                trainable=False,
                aggregation="mean",
                name="ema_count",
                autocast=False,
            )
            self.ema_sum = self.add_weight(
                shape=(K, D),
                initializer=_ScaledInitializer(
                    self.codebook_initializer, 1.0 / K
                ),
                trainable=False,
                aggregation="mean",
                name="ema_sum",
                autocast=False,
            )
        else:
            self.codebook = self.add_weight(
                shape=(K, D),
                initializer=self.codebook_initializer,
                trainable=self.trainable_codebook,
                aggregation="mean",
                name="codebook",
                # Never read in bf16: Keras opens an autocast scope around a
                # top-level call of a mixed-precision layer even when it
                # does not autocast (e.g. from `encode_decode`).
                autocast=False,
            )
        if self.reinit == "cvq":
            self.embed_prob = self.add_weight(
                shape=(K,),
                initializer="zeros",
                trainable=False,
                aggregation="mean",
                name="embed_prob",
                autocast=False,
            )

    # -------------------------------------------------------- codebook access

    def get_codebook(self, training=False):
        """Returns the `(K, D)` codebook in use (the one read of it).

        Args:
            training: bool. Whether the call is in training mode (for
                subclasses whose codebook is built stochastically).
        """
        del training
        if self.ema_decay is not None:
            count = ops.convert_to_tensor(self.ema_count)
            total = ops.sum(count)
            # Laplace smoothing keeps never-used codes from dividing by ~0.
            smoothed = (
                (count + self.ema_epsilon)
                / (total + self.num_embeddings * self.ema_epsilon)
                * total
            )
            return ops.divide(self.ema_sum, ops.expand_dims(smoothed, -1))
        return ops.convert_to_tensor(self.codebook)

    def _search_space(self, z, codebook):
        """Vectors compared by squared L2 distance (float32, flattened)."""
        if self.l2_normalize:
            return _l2_normalize(z), _l2_normalize(codebook)
        return z, codebook

    def _output_space(self, z, codebook, z_search, codebook_search):
        """Vectors used for the loss, the output and `indices_to_codes`."""
        del z, codebook
        return z_search, codebook_search

    def indices_to_codes(self, indices):
        """Looks up codes: int `(...)` indices → `(..., embedding_dim)`.

        Args:
            indices: int tensor of code indices in `[0, num_embeddings)`.
        """
        indices = ops.convert_to_tensor(indices)
        if _is_float_dtype(indices.dtype):
            raise ValueError(
                f"`indices` must be integers. Received dtype: {indices.dtype}"
            )
        if not self.built:
            self.build((None, self.embedding_dim))
        codebook = ops.cast(self.get_codebook(), "float32")
        search = self._search_space(codebook, codebook)[1]
        codebook = self._output_space(codebook, codebook, search, search)[1]
        return ops.take(codebook, ops.cast(indices, "int32"), axis=0)

    # ------------------------------------------------------------------ call

    def call(self, inputs, training=False):
        inputs = ops.convert_to_tensor(inputs)
        self._check_inputs(inputs)
        in_dtype = keras.backend.standardize_dtype(inputs.dtype)
        K, D = self.num_embeddings, self.embedding_dim
        shape = ops.shape(inputs)
        z = ops.cast(ops.reshape(inputs, (-1, D)), "float32")
        n = ops.shape(z)[0]
        n_float = ops.cast(n, "float32")

        codebook = ops.cast(self.get_codebook(training=training), "float32")
        cvq_update = training and self.reinit == "cvq"
        if cvq_update:
            # CVQ writes the codebook variable below; on torch an in-place
            # write would invalidate tensors autograd saved from the
            # variable, so work from a copy.
            codebook = ops.copy(codebook)
        z_s, codebook_s = self._search_space(z, codebook)

        contrastive = training and self.contrastive_weight > 0
        if cvq_update or contrastive:
            # CVQ needs the full (N, K) similarity (softmax / sort over the
            # batch per code); features are detached, codes only where the
            # contrastive loss trains them.
            codes = codebook_s if contrastive else ops.stop_gradient(codebook_s)
            similarity = _negative_sq_distances(ops.stop_gradient(z_s), codes)
            indices = ops.cast(
                ops.argmax(ops.stop_gradient(similarity), axis=-1), "int32"
            )
        else:
            similarity = None
            indices = self._nearest(
                ops.stop_gradient(z_s), ops.stop_gradient(codebook_s)
            )

        z_o, codebook_o = self._output_space(z, codebook, z_s, codebook_s)
        z_q = ops.take(codebook_o, indices, axis=0)

        # Both squared errors have the same value; they differ in which
        # side receives the gradient.
        commitment = ops.mean(ops.square(ops.stop_gradient(z_q) - z_o))
        codebook_term = ops.mean(ops.square(z_q - ops.stop_gradient(z_o)))
        if self.legacy_beta:
            commitment_w, codebook_w = 1.0, self.beta
        else:
            commitment_w, codebook_w = self.beta, 1.0
        if self.ema_decay is not None:
            codebook_w = 0.0
        commitment_loss = commitment_w * commitment
        codebook_loss = codebook_w * codebook_term

        counts = ops.segment_sum(
            ops.ones_like(indices, dtype="float32"), indices, num_segments=K
        )
        probs = counts / n_float
        perplexity = ops.exp(-ops.sum(probs * ops.log(probs + _LOG_EPS)))
        usage = ops.mean(ops.cast(counts > 0, "float32"))

        if training and self.ema_decay is not None:
            self._ema_update(ops.stop_gradient(z_s), indices, probs, n_float)

        contrastive_loss = ops.zeros((), "float32")
        if cvq_update:
            self._cvq_update(
                ops.stop_gradient(z_s),
                codebook,
                ops.stop_gradient(similarity),
                probs,
                n,
            )
        if contrastive:
            contrastive_loss = self.contrastive_weight * _contrastive_loss(
                similarity, n, K, self.contrastive_temperature
            )

        loss = codebook_loss + commitment_loss + contrastive_loss

        if z_o is z:
            base = inputs
        else:
            base = ops.cast(ops.reshape(z_o, shape), in_dtype)
        z_q = ops.cast(ops.reshape(z_q, shape), in_dtype)
        # Straight-through: forward value z_q, gradient identity to z.
        quantized = base + ops.stop_gradient(z_q - base)
        return {
            "quantized": quantized,
            "indices": ops.reshape(indices, shape[:-1]),
            "loss": loss,
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment_loss,
            "contrastive_loss": contrastive_loss,
            "perplexity": perplexity,
            "usage": usage,
        }

    def _nearest(self, z, codebook):
        """Index of the nearest code per row, one row chunk at a time."""
        e2 = ops.sum(ops.square(codebook), axis=-1)
        codebook_t = ops.transpose(codebook)

        def chunk_argmin(x):
            # |z|^2 is constant along each row, so it cannot change the
            # argmin; leaving it out saves an (N, K) add and some rounding.
            d = ops.expand_dims(e2, 0) - 2.0 * ops.matmul(x, codebook_t)
            return ops.cast(ops.argmin(d, axis=-1), "int32")

        n = ops.shape(z)[0]
        if not isinstance(n, int) and keras.backend.backend() == "jax":
            # A symbolic batch (shape-polymorphic SavedModel export): JAX
            # cannot pad by a symbolic amount, so search in one block.
            return chunk_argmin(z)
        if isinstance(n, int):
            if n <= self.chunk_size:
                return chunk_argmin(z)
            chunk = self.chunk_size
            num_chunks = -(-n // chunk)
        else:
            # Dynamic batch (TF graph mode): sizes are tensors.
            chunk = ops.minimum(n, self.chunk_size)
            num_chunks = (n + chunk - 1) // chunk
        padded = num_chunks * chunk
        z = ops.concatenate(
            [z, ops.zeros((padded - n, self.embedding_dim), z.dtype)], axis=0
        )
        chunks = ops.reshape(z, (num_chunks, chunk, self.embedding_dim))
        rows = ops.expand_dims(ops.arange(num_chunks, dtype="int32"), -1)

        def body(i, carry):
            buffer, dependency = carry
            # `dependency` is always 0 but is computed from the previous
            # chunk's result, so no backend can overlap iterations (TF's
            # while_loop would otherwise run up to 10 in parallel) and only
            # one (chunk, K) distance block is alive at a time.
            x = ops.take(chunks, i, axis=0) + dependency
            found = chunk_argmin(x)
            buffer = ops.where(rows == i, ops.expand_dims(found, 0), buffer)
            dependency = ops.cast(ops.minimum(ops.min(found), 0), "float32")
            return buffer, dependency

        init = (
            ops.zeros((num_chunks, chunk), "int32"),
            ops.zeros((), "float32"),
        )
        buffer, _ = ops.fori_loop(0, num_chunks, body, init)
        return ops.reshape(buffer, (-1,))[:n]

    def _ema_update(self, z, indices, probs, n_float):
        decay = self.ema_decay
        batch_sum = (
            ops.segment_sum(z, indices, num_segments=self.num_embeddings)
            / n_float
        )
        self.ema_count.assign(decay * self.ema_count + (1.0 - decay) * probs)
        self.ema_sum.assign(decay * self.ema_sum + (1.0 - decay) * batch_sum)

    def _cvq_update(self, z, codebook, similarity, probs, n):
        K = self.num_embeddings
        rd = self.reinit_decay
        embed_prob = rd * ops.convert_to_tensor(self.embed_prob)
        embed_prob = embed_prob + (1.0 - rd) * probs
        self.embed_prob.assign(embed_prob)
        # Read back: under MirroredStrategy this is the replica mean, so all
        # replicas use the global usage for the per-code decay.
        embed_prob = ops.convert_to_tensor(self.embed_prob)
        if self.anchor == "probrandom":
            anchor_index = keras.random.categorical(
                ops.transpose(similarity),
                1,
                dtype="int32",
                seed=self.seed_generator,
            )[:, 0]
        elif self.anchor == "random":
            anchor_index = keras.random.randint(
                (K,), 0, n, dtype="int32", seed=self.seed_generator
            )
        else:
            anchor_index = ops.cast(ops.argmax(similarity, axis=0), "int32")
        anchors = ops.take(z, anchor_index, axis=0)
        # Codes used well above 1/K get decay ~0 and stay put; unused codes
        # get decay ~exp(-1e-3) ~ 1 and jump to their anchor.
        decay = ops.exp(-embed_prob * K * 10.0 / (1.0 - rd) - 1e-3)
        decay = ops.expand_dims(decay, -1)
        updated = codebook * (1.0 - decay) + anchors * decay
        # Under MirroredStrategy (aggregation="mean") the replicas'
        # proposals are averaged: a dead code lands on the mean of the
        # replicas' anchors rather than on one feature.
        self.codebook.assign(
            ops.cast(ops.stop_gradient(updated), self.codebook.dtype)
        )

    # ------------------------------------------------------------ validation

    def _check_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) < 2:
            raise ValueError(
                "`inputs` must have shape (..., embedding_dim) with at least "
                f"one leading axis. Received shape: {input_shape}"
            )
        if input_shape[-1] is not None and input_shape[-1] != (
            self.embedding_dim
        ):
            raise ValueError(
                "The last axis of `inputs` must equal `embedding_dim`="
                f"{self.embedding_dim}. Received shape: {input_shape}"
            )

    def _check_inputs(self, inputs):
        self._check_shape(inputs.shape)
        if not _is_float_dtype(inputs.dtype):
            raise ValueError(
                "`inputs` must be a floating-point tensor. Received dtype: "
                f"{inputs.dtype}"
            )

    def compute_output_spec(self, inputs, training=False):
        self._check_inputs(inputs)
        shape = tuple(inputs.shape)
        scalar = keras.KerasTensor((), dtype="float32")
        return {
            "quantized": keras.KerasTensor(shape, dtype=inputs.dtype),
            "indices": keras.KerasTensor(shape[:-1], dtype="int32"),
            "loss": scalar,
            "codebook_loss": scalar,
            "commitment_loss": scalar,
            "contrastive_loss": scalar,
            "perplexity": scalar,
            "usage": scalar,
        }

    def get_config(self):
        config = super().get_config()
        if self._default_initializer or self._codebook_array is not None:
            # An array initializer (e.g. a 30522x384 LM table) is not put in
            # the JSON config; the values travel with the layer's weights.
            initializer = None
        else:
            initializer = keras.initializers.serialize(
                self.codebook_initializer
            )
        config.update(
            {
                "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim,
                "beta": self.beta,
                "legacy_beta": self.legacy_beta,
                "l2_normalize": self.l2_normalize,
                "ema_decay": self.ema_decay,
                "ema_epsilon": self.ema_epsilon,
                "reinit": self.reinit,
                "reinit_decay": self.reinit_decay,
                "anchor": self.anchor,
                "contrastive_weight": self.contrastive_weight,
                "contrastive_temperature": self.contrastive_temperature,
                "chunk_size": self.chunk_size,
                "codebook_initializer": initializer,
                "trainable_codebook": self.trainable_codebook,
                "seed": self.seed,
            }
        )
        return config


def _negative_sq_distances(z, codebook):
    """CVQ's similarity `-(|z|^2 - 2 z.e + |e|^2)`, shape (N, K)."""
    z2 = ops.sum(ops.square(z), axis=-1, keepdims=True)
    e2 = ops.expand_dims(ops.sum(ops.square(codebook), axis=-1), 0)
    return 2.0 * ops.matmul(z, ops.transpose(codebook)) - z2 - e2


def _contrastive_loss(similarity, n, num_embeddings, temperature):
    """CVQ contrastive loss: per code, its closest features vs the farthest.

    For each code the positive logit is the mean of its `max(1, N // K)`
    highest similarities, the negatives its `N // 2` lowest; cross-entropy
    with the positive as target. Works for a static or a dynamic `n`.
    """
    per_code = ops.transpose(similarity)  # (K, N)
    if isinstance(n, int):
        num_pos = max(n // num_embeddings, 1)
    else:
        num_pos = ops.maximum(n // num_embeddings, 1)
    num_neg = n // 2
    # Two partial top-k selections instead of the official full sort: the
    # same values, ~3x faster on torch CPU, whose row sort is slow.
    positive = ops.mean(ops.top_k(per_code, num_pos)[0], axis=-1)
    positive = positive / temperature
    negatives = -ops.top_k(-per_code, num_neg, sorted=False)[0] / temperature
    # With N < 2 there are no negatives; the loss is then 0.
    negatives = ops.concatenate(
        [negatives, ops.full((ops.shape(per_code)[0], 1), _MASKED_LOGIT)],
        axis=-1,
    )
    log_norm = ops.logaddexp(positive, ops.logsumexp(negatives, axis=-1))
    return ops.mean(log_norm - positive)


def _is_array(value):
    if isinstance(value, (np.ndarray, list, tuple)):
        return True
    return keras.ops.is_tensor(value)

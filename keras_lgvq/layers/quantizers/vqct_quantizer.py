"""VQCT quantizer: adjective / noun codes transferred from words by a GCN."""

import os

import keras
import numpy as np
from keras import ops

from keras_lgvq.layers.codebook_transfer import CodebookTransfer
from keras_lgvq.layers.quantizers.vector_quantizer import _LOG_EPS
from keras_lgvq.layers.quantizers.vector_quantizer import _ArrayInitializer
from keras_lgvq.layers.quantizers.vector_quantizer import _check_int
from keras_lgvq.layers.quantizers.vector_quantizer import _check_number
from keras_lgvq.layers.quantizers.vector_quantizer import _is_float_dtype


def nearest_codes(z, codebook, k=1, chunk_size=4096):
    """Indices of the `k` nearest codes per row (squared L2, float32).

    The distances `|e|^2 - 2 z.e` (the row constant `|z|^2` cannot change
    the ranking) are computed as a matmul one block of `chunk_size` rows at
    a time, so at most one `(chunk_size, K)` distance block is alive, as in
    `VectorQuantizer`. The `k` codes are found by `k` rounds of `argmin`,
    each masking the code found before (ties: the lowest index, as
    `VectorQuantizer`), nearest first. Not `top_k`: JAX lowers it to a
    StableHLO composite that TensorFlow's SavedModel loader cannot read,
    so a VQCT tokenizer exported from JAX would not load.

    Args:
        z: float tensor `(N, D)`.
        codebook: float tensor `(K, D)` with `K >= k`.
        k: int. How many codes per row.
        chunk_size: int. Rows per distance block.

    Returns:
        int32 tensor `(N, k)`.

    Examples:

    ```python
    z = np.random.randn(10, 4).astype("float32")
    codes = np.random.randn(6, 4).astype("float32")
    top2 = nearest_codes(z, codes, k=2)  # (10, 2)
    ```
    """
    z = ops.cast(ops.convert_to_tensor(z), "float32")
    codebook = ops.cast(ops.convert_to_tensor(codebook), "float32")
    dim = z.shape[-1]
    e2 = ops.expand_dims(ops.sum(ops.square(codebook), axis=-1), 0)
    codebook_t = ops.transpose(codebook)

    num_codes = codebook.shape[0]

    def search(x):
        distances = e2 - 2.0 * ops.matmul(x, codebook_t)
        found = []
        for i in range(k):
            best = ops.cast(ops.argmin(distances, axis=-1), "int32")
            found.append(best)
            if i + 1 < k:
                taken = ops.expand_dims(best, -1) == ops.arange(
                    num_codes, dtype="int32"
                )
                distances = ops.where(taken, float("inf"), distances)
        return ops.stack(found, axis=-1)

    n = ops.shape(z)[0]
    if not isinstance(n, int) and keras.backend.backend() == "jax":
        # Symbolic batch (shape-polymorphic export): JAX cannot pad by a
        # symbolic amount, so search in one block.
        return search(z)
    if isinstance(n, int):
        if n <= chunk_size:
            return search(z)
        chunk = chunk_size
        num_chunks = -(-n // chunk)
    else:
        # Dynamic batch (TF graph mode): sizes are tensors.
        chunk = ops.minimum(n, chunk_size)
        num_chunks = (n + chunk - 1) // chunk
    padded = num_chunks * chunk
    z = ops.concatenate([z, ops.zeros((padded - n, dim), z.dtype)], axis=0)
    chunks = ops.reshape(z, (num_chunks, chunk, dim))
    rows = ops.reshape(ops.arange(num_chunks, dtype="int32"), (-1, 1, 1))

    def body(i, carry):
        buffer, dependency = carry
        # `dependency` is always 0 but depends on the previous chunk, so no
        # backend overlaps iterations (one distance block alive at a time).
        found = search(ops.take(chunks, i, axis=0) + dependency)
        buffer = ops.where(rows == i, ops.expand_dims(found, 0), buffer)
        dependency = ops.cast(ops.minimum(ops.min(found), 0), "float32")
        return buffer, dependency

    init = (
        ops.zeros((num_chunks, chunk, k), "int32"),
        ops.zeros((), "float32"),
    )
    buffer, _ = ops.fori_loop(0, num_chunks, body, init)
    return ops.reshape(buffer, (-1, k))[:n]


def _perplexity(counts, total):
    probs = counts / total
    return ops.exp(-ops.sum(probs * ops.log(probs + _LOG_EPS)))


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQCTQuantizer(keras.layers.Layer):
    """VQCT's quantizer: codes from a word graph, adjective and noun halves.

    VQCT (Zhang et al., CVPR 2024) replaces the learned codebook of a VQGAN
    by codes that a 2-layer GCN (`CodebookTransfer`) computes from frozen
    text embeddings of `num_adjectives` adjectives and `num_nouns` nouns
    (nodes in that order), linked by adjective-noun co-occurrence counts.
    The codebook is recomputed on every call: with the GCN's dropout in
    training (stochastic), without it otherwise (deterministic).

    Each `embedding_dim`-vector of a channels-last input is split into an
    adjective half (channels `[0, D)`, `D = embedding_dim // 2`) and a noun
    half (`[D, 2D)`):

    - adjective half -> the mean of its `top_k` nearest adjective codes;
    - noun half -> its nearest noun code;

    both by squared L2 distance in float32 (chunked matmul, no
    normalisation), concatenated and returned straight-through
    (`z + sg(q - z)`). The VQ loss is summed over the halves; per half with
    `legacy_beta=True` (VQCT, taming's legacy form)
    `mean((sg[q] - z)^2) + beta * mean((q - sg[z])^2)`, otherwise
    `beta * mean((sg[q] - z)^2) + mean((q - sg[z])^2)`. The GCN therefore
    learns only through the codebook term (the straight-through output
    carries no gradient to the codes); the word vectors are constants.

    **Index layout** (one, everywhere): `indices` has shape
    `inputs.shape[:-1] + (top_k + 1,)`, int32; entries `[..., :top_k]` are
    the adjective ids (nearest first) and entry `[..., top_k]` the noun id.
    Both are local to their own sub-codebook: adjective ids in
    `[0, num_adjectives)`, noun ids in `[0, num_nouns)` (no offset).
    `indices_to_codes` maps exactly this layout back to `embedding_dim`
    vectors (the mean of the adjective codes, then the noun code), so
    `quantized == indices_to_codes(indices)` in evaluation.

    **The prior** (word vectors and graph) is state, not configuration:
    `word_features` `(num_adjectives + num_nouns, prior_dim)`,
    `edge_index` `(2, num_edges)` (both directions, adjectives first,
    nouns offset by `num_adjectives`) and `edge_weight` `(num_edges,)`
    (co-occurrence counts) are non-trainable variables, saved with the
    weights and not in `get_config`. Build the layer with
    `VQCTQuantizer.from_prior(prior_dir_or_pkl)` (see
    `keras_lgvq.priors`), or pass the arrays, or load saved weights; a
    layer that has none of these refuses to run.

    **Inference cache** (`inference_cache=True`): calls with
    `training=False` and `indices_to_codes` read the codebook from the
    non-trainable variable `codebook_cache` instead of running the GCN.
    The cache is filled by `update_codebook_cache()`; call it after
    training and after any change of the weights (it is saved with the
    weights, so a loaded model's cache matches what was saved).

    Args:
        num_adjectives: int. Adjective nodes (`>= top_k`).
        num_nouns: int. Noun nodes.
        prior_dim: int. Width of the word vectors (512 for CLIP ViT-B/32,
            384 for MiniLM).
        num_edges: int. Directed edges in `edge_index`.
        embedding_dim: int. Input width (both halves), even. Defaults to
            `512` (VQCT: two 256-d halves).
        hidden_dim: int or `None`. Width of the GCN's hidden layer; `None`
            uses `embedding_dim // 2` (VQCT: 256).
        top_k: int. Adjective codes averaged per position. Defaults to `2`.
        beta: float. See above. Defaults to `0.25`.
        legacy_beta: bool. Taming's swapped placement of `beta` (VQCT's
            default). Defaults to `True`.
        dropout: float in [0, 1). GCN dropout. Defaults to `0.5`.
        inference_cache: bool. See above. Defaults to `False`.
        chunk_size: int. Rows per block of the distance computation.
            Defaults to `4096`.
        word_features: float array or `None`. See above.
        edge_index: int array or `None`. See above.
        edge_weight: float array or `None` (all ones). See above.
        seed: int or `None`. Seed of the GCN dropout.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(..., embedding_dim)`.
        training: bool. GCN dropout on (stochastic codebook).

    Returns:
        A dict with the keys of `VectorQuantizer.call`: `quantized` (input
        shape and dtype), `indices` (int32, `inputs.shape[:-1] +
        (top_k + 1,)`, see above), float32 scalars `loss`,
        `codebook_loss`, `commitment_loss` (both weighted, summed over the
        halves), `contrastive_loss` (always 0), `perplexity` and `usage`
        (over all `num_adjectives + num_nouns` codes, every adjective slot
        and the noun slot counted once per position); plus
        `adjective_loss`, `noun_loss` (each half's weighted VQ loss),
        `adjective_perplexity`, `noun_perplexity`, `adjective_usage`,
        `noun_usage` (per sub-codebook).

    Examples:

    ```python
    vq = keras_lgvq.layers.quantizers.vqct_quantizer.VQCTQuantizer.from_prior(
        "priors/scenes_minilm", embedding_dim=64
    )
    out = vq(keras.random.normal((2, 8, 8, 64)), training=True)
    out["indices"].shape  # (2, 8, 8, 3): adjective, adjective, noun
    codes = vq.indices_to_codes(out["indices"])  # (2, 8, 8, 64)

    # Arrays instead of a prior directory: 3 adjectives, 2 nouns.
    words = np.random.randn(5, 16).astype("float32")
    edges = np.array([[0, 3, 1, 4], [3, 0, 4, 1]], "int32")
    vq = VQCTQuantizer(3, 2, prior_dim=16, num_edges=4, embedding_dim=8,
                       word_features=words, edge_index=edges)
    ```
    """

    def __init__(
        self,
        num_adjectives,
        num_nouns,
        prior_dim,
        num_edges,
        embedding_dim=512,
        hidden_dim=None,
        top_k=2,
        beta=0.25,
        legacy_beta=True,
        dropout=0.5,
        inference_cache=False,
        chunk_size=4096,
        word_features=None,
        edge_index=None,
        edge_weight=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_int("num_adjectives", num_adjectives, 1)
        _check_int("num_nouns", num_nouns, 1)
        _check_int("prior_dim", prior_dim, 1)
        _check_int("num_edges", num_edges, 1)
        _check_int("embedding_dim", embedding_dim, 2)
        if embedding_dim % 2:
            raise ValueError(
                "`embedding_dim` is the width of both halves (adjective and "
                "noun) and must be even. Received: "
                f"embedding_dim={embedding_dim}"
            )
        if hidden_dim is None:
            hidden_dim = embedding_dim // 2
        _check_int("hidden_dim", hidden_dim, 1)
        _check_int("top_k", top_k, 1)
        if top_k > num_adjectives:
            raise ValueError(
                f"`top_k` must be <= num_adjectives={num_adjectives}. "
                f"Received: top_k={top_k}"
            )
        _check_number("beta", beta, low=0.0)
        _check_number("dropout", dropout, 0.0, 1.0, high_open=True)
        _check_int("chunk_size", chunk_size, 1)
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int)
        ):
            raise ValueError(f"`seed` must be an int or None. Received: {seed}")
        self.num_adjectives = int(num_adjectives)
        self.num_nouns = int(num_nouns)
        self.num_words = self.num_adjectives + self.num_nouns
        self.prior_dim = int(prior_dim)
        self.num_edges = int(num_edges)
        self.embedding_dim = int(embedding_dim)
        self.code_dim = self.embedding_dim // 2
        self.hidden_dim = int(hidden_dim)
        self.top_k = int(top_k)
        self.beta = float(beta)
        self.legacy_beta = bool(legacy_beta)
        self.dropout = float(dropout)
        self.inference_cache = bool(inference_cache)
        self.chunk_size = int(chunk_size)
        self.seed = seed
        self._prior_arrays = None
        if word_features is not None or edge_index is not None:
            self._prior_arrays = self._check_prior_arrays(
                word_features, edge_index, edge_weight
            )
        elif edge_weight is not None:
            raise ValueError(
                "`edge_weight` was given without `word_features` and "
                "`edge_index`; pass all of the prior arrays or none."
            )
        # Set once the prior variables hold a real prior (constructor
        # arrays, `set_prior` or loaded weights).
        self._has_prior = self._prior_arrays is not None
        # Codes are fp32 (as the official code) whatever the model policy;
        # distances are fp32 and `quantized` keeps the caller's dtype.
        self.autocast = False
        self.transfer = CodebookTransfer(
            hidden_dim=self.hidden_dim,
            output_dim=self.code_dim,
            dropout=self.dropout,
            seed=seed,
            dtype="float32",
            name="codebook_transfer",
        )

    # ----------------------------------------------------------------- prior

    @classmethod
    def from_prior(
        cls, prior, embedding_dim=512, official_collision=False, **kwargs
    ):
        """Builds the layer from a VQCT prior.

        Args:
            prior: a `keras_lgvq.priors.VQCTPrior`, a prior directory written
                by `python -m keras_lgvq.priors.vqct`, or the official
                `.pkl` prior (read without unpickling).
            embedding_dim: int. Input width (both halves).
            official_collision: bool. Reproduce the official code's index
                collision (a word that is both an adjective and a noun is one
                node, the noun's); see `VQCTPrior.graph`. Defaults to
                `False` (one node per adjective and per noun).
            **kwargs: Other constructor arguments (`top_k`, `beta`, ...). A
                `prior_dim` given here must match the prior's width.

        Returns:
            A `VQCTQuantizer`.
        """
        from keras_lgvq.priors import vqct_prior

        source = prior
        if isinstance(prior, (str, os.PathLike)):
            prior = vqct_prior.load_prior(prior)
        elif not isinstance(prior, vqct_prior.VQCTPrior):
            raise ValueError(
                "`prior` must be a VQCTPrior, a prior directory or an "
                f"official .pkl path. Received: {type(prior).__name__}"
            )
        graph = prior.graph(official_collision=official_collision)
        width = graph["word_features"].shape[1]
        prior_dim = kwargs.pop("prior_dim", width)
        if prior_dim != width:
            raise ValueError(
                f"`prior_dim`={prior_dim} does not match the word vectors "
                f"of the prior {_describe(source)} ({width}-d, text prior "
                f"{prior.metadata.get('text_prior')!r}). Rebuild the prior "
                "with the text prior the model expects, or set `prior_dim`="
                f"{width}."
            )
        return cls(
            num_adjectives=graph["num_adjectives"],
            num_nouns=graph["num_nouns"],
            prior_dim=width,
            num_edges=graph["edge_index"].shape[1],
            embedding_dim=embedding_dim,
            word_features=graph["word_features"],
            edge_index=graph["edge_index"],
            edge_weight=graph["edge_weight"],
            **kwargs,
        )

    def _check_prior_arrays(self, word_features, edge_index, edge_weight):
        if word_features is None or edge_index is None:
            raise ValueError(
                "Pass both `word_features` and `edge_index` (and optionally "
                "`edge_weight`), or none of them."
            )
        features = np.asarray(ops.convert_to_numpy(word_features))
        expected = (self.num_words, self.prior_dim)
        if features.ndim != 2 or features.shape[0] != self.num_words:
            raise ValueError(
                "`word_features` must have shape (num_adjectives + num_nouns,"
                f" prior_dim) = {expected}. Received shape: {features.shape}"
            )
        if features.shape[1] != self.prior_dim:
            raise ValueError(
                f"`word_features` are {features.shape[1]}-d but "
                f"`prior_dim`={self.prior_dim}: the prior was built with a "
                "different text prior than the layer expects. Use a prior "
                f"of width {self.prior_dim} or set `prior_dim`="
                f"{features.shape[1]}."
            )
        if not np.issubdtype(features.dtype, np.floating) or not np.all(
            np.isfinite(features)
        ):
            raise ValueError(
                "`word_features` must be finite floating-point values. "
                f"Received dtype: {features.dtype}"
            )
        edges = np.asarray(ops.convert_to_numpy(edge_index))
        if edges.shape != (2, self.num_edges):
            raise ValueError(
                "`edge_index` must have shape (2, num_edges) = "
                f"(2, {self.num_edges}). Received shape: {edges.shape}"
            )
        if not np.issubdtype(edges.dtype, np.integer):
            raise ValueError(
                f"`edge_index` must be integers. Received dtype: {edges.dtype}"
            )
        if edges.min() < 0 or edges.max() >= self.num_words:
            raise ValueError(
                "`edge_index` entries must be node ids in [0, "
                f"{self.num_words}). Received range: [{edges.min()}, "
                f"{edges.max()}]"
            )
        if edge_weight is None:
            weights = np.ones((self.num_edges,), "float32")
        else:
            weights = np.asarray(ops.convert_to_numpy(edge_weight))
            if weights.shape != (self.num_edges,):
                raise ValueError(
                    "`edge_weight` must have shape (num_edges,) = "
                    f"({self.num_edges},). Received shape: {weights.shape}"
                )
            if not np.all(np.isfinite(weights)) or np.any(weights < 0):
                raise ValueError(
                    "`edge_weight` must be finite and >= 0 (co-occurrence "
                    "counts)."
                )
        return (
            features.astype("float32"),
            edges.astype("int32"),
            weights.astype("float32"),
        )

    def set_prior(self, word_features, edge_index, edge_weight=None):
        """Writes a prior into the layer's prior variables.

        The shapes must match the layer's configuration (`num_adjectives`,
        `num_nouns`, `prior_dim`, `num_edges`).

        Args:
            word_features: float array `(num_adjectives + num_nouns,
                prior_dim)`.
            edge_index: int array `(2, num_edges)`.
            edge_weight: float array `(num_edges,)` or `None` (ones).
        """
        arrays = self._check_prior_arrays(
            word_features, edge_index, edge_weight
        )
        if not self.built:
            self._prior_arrays = arrays
        else:
            self.word_features.assign(arrays[0])
            self.edge_index.assign(arrays[1])
            self.edge_weight.assign(arrays[2])
        self._has_prior = True

    def _check_has_prior(self):
        if not self._has_prior:
            raise ValueError(
                "This VQCTQuantizer has no prior: its word vectors and graph "
                "are weights that were neither given nor loaded. Build it "
                "with `VQCTQuantizer.from_prior(...)`, pass `word_features` "
                "and `edge_index`, call `set_prior(...)`, or load saved "
                "weights."
            )

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        self._check_shape(input_shape)
        arrays = self._prior_arrays

        def initializer(index):
            if arrays is None:
                return "zeros"
            return _ArrayInitializer(arrays[index])

        self.word_features = self.add_weight(
            shape=(self.num_words, self.prior_dim),
            initializer=initializer(0),
            trainable=False,
            name="word_features",
        )
        self.edge_index = self.add_weight(
            shape=(2, self.num_edges),
            initializer=initializer(1),
            dtype="int32",
            trainable=False,
            name="edge_index",
        )
        self.edge_weight = self.add_weight(
            shape=(self.num_edges,),
            initializer=initializer(2),
            trainable=False,
            name="edge_weight",
        )
        self.transfer.build(
            (self.num_words, self.prior_dim), (2, self.num_edges)
        )
        if self.inference_cache:
            self.codebook_cache = self.add_weight(
                shape=(self.num_words, self.code_dim),
                initializer="zeros",
                trainable=False,
                name="codebook_cache",
            )
        # The arrays now live in the variables.
        self._prior_arrays = None
        self.built = True

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self._has_prior = True

    # -------------------------------------------------------- codebook access

    def get_codebook(self, training=False, use_cache=True):
        """Returns the `(num_adjectives + num_nouns, D)` codebook, float32.

        Rows `[0, num_adjectives)` are the adjective codes, the rest the
        noun codes.

        Args:
            training: bool. GCN dropout on.
            use_cache: bool. With `inference_cache=True` and
                `training=False`, read the cached codebook.
        """
        self._check_has_prior()
        if not self.built:
            self.build((None, self.embedding_dim))
        if self.inference_cache and use_cache and not training:
            return ops.convert_to_tensor(self.codebook_cache)
        codes = self.transfer(
            ops.convert_to_tensor(self.word_features),
            ops.convert_to_tensor(self.edge_index),
            ops.convert_to_tensor(self.edge_weight),
            training=training,
        )
        return ops.cast(codes, "float32")

    def update_codebook_cache(self):
        """Recomputes the cached evaluation codebook (`inference_cache`)."""
        if not self.inference_cache:
            raise ValueError(
                "`update_codebook_cache()` needs a layer built with "
                "`inference_cache=True`."
            )
        self.codebook_cache.assign(
            self.get_codebook(training=False, use_cache=False)
        )

    def indices_to_codes(self, indices):
        """Maps `(..., top_k + 1)` indices to `(..., embedding_dim)` codes.

        Args:
            indices: int tensor in the layout of `call`: `[..., :top_k]`
                adjective ids, `[..., top_k]` the noun id.

        Returns:
            float32 tensor: the mean of the adjective codes, then the noun
            code (the evaluation codebook, or the cache when enabled).
        """
        indices = ops.convert_to_tensor(indices)
        if _is_float_dtype(indices.dtype):
            raise ValueError(
                f"`indices` must be integers. Received dtype: {indices.dtype}"
            )
        shape = tuple(indices.shape)
        if len(shape) < 1 or shape[-1] != self.top_k + 1:
            raise ValueError(
                "`indices` must have a trailing axis of size top_k + 1 = "
                f"{self.top_k + 1} ({self.top_k} adjective ids, then the "
                f"noun id). Received shape: {shape}"
            )
        indices = ops.cast(indices, "int32")
        codebook = self.get_codebook(training=False)
        adjectives = codebook[: self.num_adjectives]
        nouns = codebook[self.num_adjectives :]
        adjective = ops.mean(
            ops.take(adjectives, indices[..., : self.top_k], axis=0), axis=-2
        )
        noun = ops.take(nouns, indices[..., self.top_k], axis=0)
        return ops.concatenate([adjective, noun], axis=-1)

    # ------------------------------------------------------------------ call

    def call(self, inputs, training=False):
        inputs = ops.convert_to_tensor(inputs)
        self._check_inputs(inputs)
        self._check_has_prior()
        in_dtype = keras.backend.standardize_dtype(inputs.dtype)
        k, half = self.top_k, self.code_dim
        shape = ops.shape(inputs)
        z = ops.cast(ops.reshape(inputs, (-1, self.embedding_dim)), "float32")
        n_float = ops.cast(ops.shape(z)[0], "float32")

        codebook = self.get_codebook(training=training)
        adjectives = codebook[: self.num_adjectives]
        nouns = codebook[self.num_adjectives :]
        z_adj, z_noun = z[:, :half], z[:, half:]

        adj_ids = nearest_codes(
            ops.stop_gradient(z_adj),
            ops.stop_gradient(adjectives),
            k,
            self.chunk_size,
        )
        noun_ids = nearest_codes(
            ops.stop_gradient(z_noun),
            ops.stop_gradient(nouns),
            1,
            self.chunk_size,
        )[:, 0]
        q_adj = ops.mean(ops.take(adjectives, adj_ids, axis=0), axis=1)
        q_noun = ops.take(nouns, noun_ids, axis=0)

        if self.legacy_beta:
            commitment_w, codebook_w = 1.0, self.beta
        else:
            commitment_w, codebook_w = self.beta, 1.0
        halves = {}
        for name, q, z_half in (
            ("adjective", q_adj, z_adj),
            ("noun", q_noun, z_noun),
        ):
            # Same value, different gradient side: the commitment term
            # trains the encoder, the codebook term the GCN.
            commitment = ops.mean(ops.square(ops.stop_gradient(q) - z_half))
            codebook_term = ops.mean(ops.square(q - ops.stop_gradient(z_half)))
            halves[name] = (
                commitment_w * commitment,
                codebook_w * codebook_term,
            )
        commitment_loss = halves["adjective"][0] + halves["noun"][0]
        codebook_loss = halves["adjective"][1] + halves["noun"][1]
        adjective_loss = halves["adjective"][0] + halves["adjective"][1]
        noun_loss = halves["noun"][0] + halves["noun"][1]

        adj_counts = ops.segment_sum(
            ops.ones_like(ops.reshape(adj_ids, (-1,)), dtype="float32"),
            ops.reshape(adj_ids, (-1,)),
            num_segments=self.num_adjectives,
        )
        noun_counts = ops.segment_sum(
            ops.ones_like(noun_ids, dtype="float32"),
            noun_ids,
            num_segments=self.num_nouns,
        )
        all_counts = ops.concatenate([adj_counts, noun_counts])

        q = ops.concatenate([q_adj, q_noun], axis=-1)
        q = ops.cast(ops.reshape(q, shape), in_dtype)
        # Straight-through: forward value q, gradient identity to inputs.
        quantized = inputs + ops.stop_gradient(q - inputs)
        indices = ops.concatenate([adj_ids, ops.expand_dims(noun_ids, -1)], -1)
        return {
            "quantized": quantized,
            "indices": ops.reshape(indices, tuple(shape[:-1]) + (k + 1,)),
            "loss": commitment_loss + codebook_loss,
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment_loss,
            "contrastive_loss": ops.zeros((), "float32"),
            "perplexity": _perplexity(all_counts, n_float * (k + 1)),
            "usage": ops.mean(ops.cast(all_counts > 0, "float32")),
            "adjective_loss": adjective_loss,
            "noun_loss": noun_loss,
            "adjective_perplexity": _perplexity(adj_counts, n_float * k),
            "noun_perplexity": _perplexity(noun_counts, n_float),
            "adjective_usage": ops.mean(ops.cast(adj_counts > 0, "float32")),
            "noun_usage": ops.mean(ops.cast(noun_counts > 0, "float32")),
        }

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
                f"{self.embedding_dim} (adjective half, then noun half). "
                f"Received shape: {input_shape}"
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
        spec = {
            "quantized": keras.KerasTensor(shape, dtype=inputs.dtype),
            "indices": keras.KerasTensor(
                shape[:-1] + (self.top_k + 1,), dtype="int32"
            ),
        }
        for key in (
            "loss",
            "codebook_loss",
            "commitment_loss",
            "contrastive_loss",
            "perplexity",
            "usage",
            "adjective_loss",
            "noun_loss",
            "adjective_perplexity",
            "noun_perplexity",
            "adjective_usage",
            "noun_usage",
        ):
            spec[key] = scalar
        return spec

    def get_config(self):
        config = super().get_config()
        # The prior arrays are weights (see the class docstring).
        config.update(
            {
                "num_adjectives": self.num_adjectives,
                "num_nouns": self.num_nouns,
                "prior_dim": self.prior_dim,
                "num_edges": self.num_edges,
                "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim,
                "top_k": self.top_k,
                "beta": self.beta,
                "legacy_beta": self.legacy_beta,
                "dropout": self.dropout,
                "inference_cache": self.inference_cache,
                "chunk_size": self.chunk_size,
                "seed": self.seed,
            }
        )
        return config


def _describe(source):
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return "(given object)"

"""LQAE's quantizer: nearest token of a frozen language-model vocabulary."""

import keras
import numpy as np
from keras import ops

from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from keras_lgvq.utils.tensors import l2_normalize
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number

# README run of the official LQAE (`quantizer_loss_commitment=0.005`).
README_COMMITMENT_WEIGHT = 0.005
# Excluded rows are scaled to this norm in the (unit-vector) search space:
# their squared distance to any unit feature is >= 10^2 - 2 * 10 = 80, above
# the largest possible distance to an eligible unit code (4), and 100 to a
# zero feature (against 1), so they are never the nearest.
_EXCLUDED_NORM = 10.0
# Added inside `log` for the perplexity, as VectorQuantizer does.
_LOG_EPS = 1e-10


@keras.saving.register_keras_serializable(package="keras_lgvq")
class FrozenVocabularyQuantizer(VectorQuantizer):
    """Nearest token of a frozen embedding table by cosine (LQAE).

    The codebook is a language model's word-piece embedding table (e.g.
    RoBERTa-base's 50265 x 768), held as a non-trainable weight. Each
    `embedding_dim`-vector of the input goes to the token whose embedding
    has the highest cosine similarity: features and table rows are
    l2-normalised and the squared L2 distance on unit vectors
    (`2 - 2 cos`) is minimised, in float32, by `VectorQuantizer`'s chunked
    matmul (at most one `(chunk_size, vocabulary_size)` block of distances
    is alive; the official code builds `(N, V)` distances and an `(N, V)`
    one-hot matmul). What goes forward is the **raw** (un-normalised) table
    row of the chosen token, through a straight-through estimator
    `z + sg(e - z)`, so the encoder receives the downstream gradient as is.

    Loss: `commitment_weight * mean((sg[e] - z)^2)` on the raw encoder
    output `z` and raw embedding `e` (lqae-spec §1.2). The official code
    also computes the codebook term `mean((e - sg[z])^2)`, which has no
    gradient (the table is a constant), and adds both terms twice (an
    effective commitment weight of 0.01); here `loss` is the commitment
    term alone, `codebook_loss` is 0, and `commitment_weight=0.01`
    reproduces the official gradient.

    Usage metrics are those of the batch's token histogram over the whole
    vocabulary: `usage` = distinct tokens used / `vocabulary_size` (the
    official metric sums the 4-D one-hot over only two axes and counts
    (column, token) pairs, up to `w` times too high; lqae-spec §5), and
    `perplexity` = exp(entropy) of the histogram.

    Tokens listed in `excluded_token_ids` (e.g. `[MASK]`, `[PAD]`) are never
    chosen: the official code lets an image token be `<mask>` or `<pad>`,
    which the masked language model then misreads.

    Args:
        vocabulary_size: int. Rows V of the table.
        embedding_dim: int. Table width D; the input's last axis.
        embedding_table: `(V, D)` float array or `None`. The language
            model's token embeddings. `None` leaves zeros to be filled by
            `set_embedding_table` or by loading weights. Not written into
            `get_config` (it travels with the weights).
        commitment_weight: float >= 0. Defaults to `0.005` (README run).
        excluded_token_ids: sequence of ints in `[0, V)`. Tokens that are
            never selected. Defaults to `()` (all eligible, as official).
        chunk_size: int. Rows per block of the distance computation.
            Defaults to `4096`.
        save_embedding_table: bool. Whether saved weights hold the table.
            `LQAEBackbone` passes `False` when the table is its language
            model's (re-read from the LM asset when the model is rebuilt,
            and `V x D` floats: 15.6 MB for splade-tiny), so `.keras` files
            and presets keep only what was trained. Defaults to `True`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(..., embedding_dim)`.
        training: bool. Unused (no state changes); kept for the interface.

    Returns:
        A dict with `quantized` (input shape and dtype: the raw embedding
        of the chosen token, straight-through), `indices` (int32 token ids,
        the input's leading shape), float32 scalars `loss`,
        `commitment_loss` (both the weighted commitment), `codebook_loss`
        and `contrastive_loss` (0, for the `VectorQuantizer` interface),
        `perplexity` and `usage`.

    Examples:

    ```python
    table = np.random.randn(30522, 128).astype("float32")
    quantizer = keras_lgvq.layers.FrozenVocabularyQuantizer(
        30522, 128, embedding_table=table, excluded_token_ids=(0, 103))
    out = quantizer(np.random.randn(2, 8, 8, 128).astype("float32"))
    out["indices"].shape  # (2, 8, 8) token ids
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        embedding_table=None,
        commitment_weight=README_COMMITMENT_WEIGHT,
        excluded_token_ids=(),
        chunk_size=4096,
        save_embedding_table=True,
        **kwargs,
    ):
        check_int("vocabulary_size", vocabulary_size)
        if not isinstance(save_embedding_table, bool):
            raise ValueError(
                "`save_embedding_table` must be True or False. Received: "
                f"{save_embedding_table!r}"
            )
        check_int("embedding_dim", embedding_dim)
        commitment_weight = check_number(
            "commitment_weight", commitment_weight, low=0.0
        )
        if embedding_table is None:
            initializer = "zeros"
        else:
            initializer = np.asarray(
                ops.convert_to_numpy(embedding_table), "float32"
            )
        super().__init__(
            vocabulary_size,
            embedding_dim,
            beta=commitment_weight,
            l2_normalize=True,
            chunk_size=chunk_size,
            codebook_initializer=initializer,
            trainable_codebook=False,
            **kwargs,
        )
        self.vocabulary_size = vocabulary_size
        self.commitment_weight = commitment_weight
        self.has_embedding_table = embedding_table is not None
        self.save_embedding_table = save_embedding_table
        self.excluded_token_ids = _check_token_ids(
            excluded_token_ids, vocabulary_size
        )
        scale = np.ones((vocabulary_size, 1), "float32")
        scale[list(self.excluded_token_ids)] = _EXCLUDED_NORM
        self._search_scale = scale if self.excluded_token_ids else None

    # ---------------------------------------------------------------- table

    def set_embedding_table(self, table):
        """Writes the `(V, D)` table (e.g. after building without one).

        Args:
            table: float array or tensor of shape
                `(vocabulary_size, embedding_dim)`.
        """
        value = np.asarray(ops.convert_to_numpy(table), "float32")
        expected = (self.vocabulary_size, self.embedding_dim)
        if value.shape != expected:
            raise ValueError(
                f"`table` must have shape (vocabulary_size, embedding_dim) = "
                f"{expected}. Received shape: {value.shape}"
            )
        if not self.built:
            self.build((None, self.embedding_dim))
        self.codebook.assign(value)
        self.has_embedding_table = True

    def save_own_variables(self, store):
        if self.save_embedding_table:
            return super().save_own_variables(store)
        # Every state but the table, keyed by its index as Keras keys them.
        for i, variable in enumerate(self._saved_variables()):
            if variable is not self.codebook:
                store[f"{i}"] = variable

    def load_own_variables(self, store):
        variables = self._saved_variables()
        index = next(
            i for i, v in enumerate(variables) if v is self.codebook
        )
        if len(store.keys()) == len(variables) - 1 and str(index) not in store:
            # Saved without the table (`save_embedding_table=False`): the
            # table stays the one set from the language model.
            for i, variable in enumerate(variables):
                if i != index:
                    variable.assign(store[f"{i}"])
            return
        super().load_own_variables(store)
        # A model saved before its table was set stored zeros; no real
        # embedding table is all zeros.
        table = ops.convert_to_numpy(self.codebook)
        self.has_embedding_table = bool(np.any(table))

    def _saved_variables(self):
        # The order `keras.layers.Layer.save_own_variables` writes.
        return self._trainable_variables + self._non_trainable_variables

    @property
    def embedding_table(self):
        """The frozen `(V, D)` table as a tensor."""
        return ops.convert_to_tensor(self.codebook)

    # --------------------------------------------------------------- search

    def _search_space(self, z, codebook):
        z_s, codebook_s = l2_normalize(z), l2_normalize(codebook)
        if self._search_scale is not None:
            codebook_s = codebook_s * self._search_scale
        return z_s, codebook_s

    def _output_space(self, z, codebook, z_search, codebook_search):
        # Search by cosine, output (and commit to) the raw table rows.
        del z_search, codebook_search
        return z, codebook

    def call(self, inputs, training=False):
        del training
        if not self.has_embedding_table:
            raise ValueError(
                f"{self.name} has no embedding table yet: it quantizes onto "
                "a language model's token embeddings. Pass "
                "`embedding_table=` (the LM's `token_embedding_matrix()`), "
                "call `set_embedding_table`, or load saved weights."
            )
        inputs = ops.convert_to_tensor(inputs)
        self._check_inputs(inputs)
        in_dtype = keras.backend.standardize_dtype(inputs.dtype)
        shape = ops.shape(inputs)
        z = ops.cast(ops.reshape(inputs, (-1, self.embedding_dim)), "float32")
        table = ops.stop_gradient(ops.cast(self.codebook, "float32"))
        z_s, table_s = self._search_space(ops.stop_gradient(z), table)
        indices = self._nearest(z_s, table_s)
        embedding = ops.take(table, indices, axis=0)

        commitment = ops.mean(ops.square(embedding - z))
        commitment_loss = self.commitment_weight * commitment
        zero = ops.zeros((), "float32")

        counts = ops.segment_sum(
            ops.ones_like(indices, dtype="float32"),
            indices,
            num_segments=self.vocabulary_size,
        )
        probs = counts / ops.cast(ops.shape(z)[0], "float32")
        perplexity = ops.exp(-ops.sum(probs * ops.log(probs + _LOG_EPS)))
        usage = ops.mean(ops.cast(counts > 0, "float32"))

        embedding = ops.cast(ops.reshape(embedding, shape), in_dtype)
        # Straight-through: forward the raw embedding, identity gradient.
        quantized = inputs + ops.stop_gradient(embedding - inputs)
        return {
            "quantized": quantized,
            "indices": ops.reshape(indices, shape[:-1]),
            "loss": commitment_loss,
            "codebook_loss": zero,
            "commitment_loss": commitment_loss,
            "contrastive_loss": zero,
            "perplexity": perplexity,
            "usage": usage,
        }

    def get_config(self):
        config = keras.layers.Layer.get_config(self)
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim,
                "commitment_weight": self.commitment_weight,
                "excluded_token_ids": list(self.excluded_token_ids),
                "chunk_size": self.chunk_size,
                "save_embedding_table": self.save_embedding_table,
            }
        )
        return config


def _check_token_ids(token_ids, vocabulary_size):
    if token_ids is None:
        return ()
    if isinstance(token_ids, (str, bytes)) or not hasattr(
        token_ids, "__iter__"
    ):
        raise ValueError(
            "`excluded_token_ids` must be a sequence of ints. Received: "
            f"{token_ids!r}"
        )
    ids = []
    for value in token_ids:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(
                "`excluded_token_ids` must hold ints. Received: "
                f"{list(token_ids)!r}"
            )
        if not 0 <= value < vocabulary_size:
            raise ValueError(
                f"`excluded_token_ids` must be ids in [0, {vocabulary_size}) "
                f"(the vocabulary). Received: {value}"
            )
        ids.append(int(value))
    ids = tuple(sorted(set(ids)))
    if len(ids) >= vocabulary_size:
        raise ValueError(
            "`excluded_token_ids` excludes the whole vocabulary; at least one "
            "token must stay eligible."
        )
    return ids

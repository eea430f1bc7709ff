"""LG-VQ masked-token head: logits tied to a frozen token-embedding matrix."""

import math

import keras
from keras import ops

from keras_lgvq.utils.initializers import TorchBiasUniform
from keras_lgvq.utils.validation import check_int

# `nn.LayerNorm` default epsilon in the official `MlmLayer`.
LAYER_NORM_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="keras_lgvq")
class MaskedTokenHead(keras.layers.Layer):
    """MLM head: `LayerNorm(GELU(Dense(h))) @ E^T + bias` (LG-VQ `MlmLayer`).

    `E` is the text encoder's frozen token-embedding matrix `(V, D)`. It is
    passed at call time and wrapped in `stop_gradient`; it is never a weight
    of this layer. The GELU is the exact (erf) form, as PyTorch's `nn.GELU`
    default. The output bias `(V,)` is learned and initialised to zero; the
    dense layer uses PyTorch's default `nn.Linear` initialisation. Logits are
    computed and returned in float32.

    Args:
        hidden_dim: int. Width of the hidden states and of `E`.
        vocabulary_size: int. Number of rows `V` of `E`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        hidden_states: float tensor `(..., hidden_dim)`.
        token_embeddings: float tensor `(vocabulary_size, hidden_dim)`.
        token_subset: int tensor `(S,)` or `None`. Score only these token
            ids (rows of `E` and entries of the bias, in this order); `None`
            (the default) scores the whole vocabulary.

    Returns:
        float32 logits `(..., vocabulary_size)`, or `(..., S)` with
        `token_subset`.

    Examples:

    ```python
    head = keras_lgvq.layers.guidance.masked_token_head.MaskedTokenHead(512, 49408)
    embeddings = np.random.normal(size=(49408, 512)).astype("float32")
    logits = head(np.random.normal(size=(2, 30, 512)), embeddings)
    ```
    """

    def __init__(self, hidden_dim, vocabulary_size, **kwargs):
        # Keep the frozen embeddings and the bias in float32 under mixed
        # precision; the dense and norm sublayers autocast themselves.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size)
        bound = 1.0 / math.sqrt(hidden_dim)
        # PyTorch `nn.Linear` default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        self.dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=keras.initializers.RandomUniform(-bound, bound),
            bias_initializer=TorchBiasUniform(hidden_dim),
            dtype=self.dtype_policy,
            name="fc",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="ln"
        )

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.hidden_dim:
            raise ValueError(
                f"`hidden_states` must have last dimension hidden_dim="
                f"{self.hidden_dim}. Received: shape={input_shape}"
            )
        shape = tuple(input_shape[:-1]) + (self.hidden_dim,)
        self.dense.build(shape)
        self.layer_norm.build(shape)
        self.bias = self.add_weight(
            shape=(self.vocabulary_size,),
            initializer="zeros",
            dtype="float32",
            name="bias",
        )

    def call(self, hidden_states, token_embeddings, token_subset=None):
        return self.project(
            self.transform(hidden_states),
            token_embeddings,
            token_subset=token_subset,
        )

    def transform(self, hidden_states):
        """The per-row part of the head: `LayerNorm(GELU(Dense(h)))`.

        Row-wise, so it may run on all rows before a caller picks some
        (`MaskedTextDecoder.scored_loss` does, outside its `ops.cond`).

        Args:
            hidden_states: float tensor `(..., hidden_dim)`.

        Returns:
            float32 tensor `(..., hidden_dim)`, the input of `project`.
        """
        h = self.dense(hidden_states)
        h = ops.gelu(h, approximate=False)
        return ops.cast(self.layer_norm(h), "float32")

    def project(self, features, token_embeddings, token_subset=None):
        """Logits `features @ E^T + bias` of `transform`'s output.

        Args:
            features: float tensor `(..., hidden_dim)` from `transform`.
            token_embeddings, token_subset: as in `call`.

        Returns:
            float32 logits, as `call`.
        """
        expected = (self.vocabulary_size, self.hidden_dim)
        if tuple(token_embeddings.shape) != expected:
            raise ValueError(
                f"`token_embeddings` must have shape {expected}. Received: "
                f"shape={tuple(token_embeddings.shape)}"
            )
        h = ops.cast(features, "float32")
        embeddings = ops.stop_gradient(ops.cast(token_embeddings, "float32"))
        bias = ops.cast(self.bias, "float32")
        if token_subset is not None:
            # Gathering S rows first: the matmul costs S, not V, columns.
            token_subset = ops.cast(token_subset, "int32")
            embeddings = ops.take(embeddings, token_subset, axis=0)
            bias = ops.take(bias, token_subset, axis=0)
        logits = ops.matmul(h, ops.transpose(embeddings))
        return logits + bias

    def compute_output_shape(self, input_shape, *args, token_subset=None):
        if token_subset is not None:
            return tuple(input_shape[:-1]) + (token_subset.shape[0],)
        return tuple(input_shape[:-1]) + (self.vocabulary_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "vocabulary_size": self.vocabulary_size,
            }
        )
        return config

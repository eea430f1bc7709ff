"""VQCT's transfer network: a 2-layer GCN from word vectors to codes."""

import keras
from keras import ops

from keras_lgvq.layers.graph_convolution import GraphConvolution


@keras.saving.register_keras_serializable(package="keras_lgvq")
class CodebookTransfer(keras.layers.Layer):
    """Two-layer GCN that turns frozen word vectors into a codebook.

    VQCT (Zhang et al., CVPR 2024) computes its visual codebook from the
    text embeddings of a vocabulary of adjectives and nouns, linked by
    their co-occurrence in captions:
    `GraphConvolution(hidden_dim) -> ReLU -> Dropout(dropout) ->
    GraphConvolution(output_dim)` (PyG `GCNConv` semantics, see
    `GraphConvolution`). The dropout acts in training only, so the codebook
    used in training is stochastic and the one used in evaluation is
    deterministic, as in the official code.

    Args:
        hidden_dim: int. Width of the first GCN layer. Defaults to `256`.
        output_dim: int. Code width (the second layer's units). Defaults
            to `256`.
        dropout: float in [0, 1). Dropout rate on the hidden node features.
            Defaults to `0.5`.
        seed: int or `None`. Seed of the dropout. Defaults to `None`.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`,
            ...).

    Call arguments:
        node_features: float tensor `(N, input_dim)`: the word vectors.
        edge_index: int tensor `(2, E)` (row 0 sources, row 1 targets; both
            directions of every undirected edge).
        edge_weight: float tensor `(E,)` or `None`: edge multiplicities.
        training: bool. Enables the dropout.

    Returns:
        Float tensor `(N, output_dim)`: one code per word.

    Examples:

    ```python
    transfer = keras_lgvq.layers.codebook_transfer.CodebookTransfer(
        hidden_dim=32, output_dim=16
    )
    words = np.random.randn(5, 384).astype("float32")
    edges = np.array([[0, 3, 1, 4], [3, 0, 4, 1]], "int32")
    codes = transfer(words, edges)  # (5, 16)
    ```
    """

    def __init__(
        self, hidden_dim=256, output_dim=256, dropout=0.5, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("hidden_dim", hidden_dim),
            ("output_dim", output_dim),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < 1
            ):
                raise ValueError(
                    f"`{name}` must be an int >= 1. Received: {name}={value!r}"
                )
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not 0.0 <= dropout < 1.0
        ):
            raise ValueError(
                f"`dropout` must be a float in [0, 1). Received: {dropout!r}"
            )
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, int)
        ):
            raise ValueError(
                f"`seed` must be an int or None. Received: {seed!r}"
            )
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        self.dropout = float(dropout)
        self.seed = seed
        policy = self.dtype_policy
        self.first = GraphConvolution(hidden_dim, dtype=policy, name="gcn_1")
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, seed=seed, dtype=policy, name="dropout"
        )
        self.second = GraphConvolution(output_dim, dtype=policy, name="gcn_2")

    def build(
        self, node_features_shape, edge_index_shape=None, edge_weight_shape=None
    ):
        node_features_shape = tuple(node_features_shape)
        self.first.build(node_features_shape, edge_index_shape)
        self.second.build(
            (node_features_shape[0], self.hidden_dim), edge_index_shape
        )
        self.built = True

    def call(self, node_features, edge_index, edge_weight=None, training=False):
        hidden = self.first(node_features, edge_index, edge_weight)
        hidden = ops.relu(hidden)
        hidden = self.dropout_layer(hidden, training=training)
        return self.second(hidden, edge_index, edge_weight)

    def compute_output_shape(
        self, node_features_shape, edge_index_shape=None, edge_weight_shape=None
    ):
        return (node_features_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "output_dim": self.output_dim,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config

"""Graph convolution (Kipf & Welling) on one graph given as an edge list."""

import keras
from keras import ops


def _check_edge_index_shape(shape):
    shape = tuple(shape)
    if len(shape) != 2 or shape[0] != 2:
        raise ValueError(
            "`edge_index` must have shape (2, num_edges): row 0 the source "
            "node of each edge, row 1 its target. Received shape: "
            f"{shape}"
        )


def gcn_normalize(edge_index, num_nodes, edge_weight=None, add_self_loops=True):
    """Symmetric GCN edge weights `D^-1/2 (A + I) D^-1/2`, as an edge list.

    Follows PyG's `gcn_norm` (`GCNConv` with `normalize=True`,
    `improved=False`, flow source -> target):

    - Edges are directed `(source, target)` columns of `edge_index`;
      duplicate columns are kept, so their weights add up (a multi-edge
      counts as its multiplicity). Pass both directions for an undirected
      graph.
    - Self loops (`add_self_loops=True`): every node gets one loop of
      weight 1, except nodes that already have a loop in `edge_index`,
      whose loop keeps its given weight (the largest one when a node has
      several; PyG keeps an unspecified one of them).
    - The degree of a node is the sum of the weights of the edges into
      it (loop included); an edge's weight becomes
      `w / sqrt(deg[source] * deg[target])`; nodes of degree 0 contribute
      nothing.

    Args:
        edge_index: int tensor `(2, E)`.
        num_nodes: int. Number of nodes N (node ids are `[0, N)`).
        edge_weight: float tensor `(E,)` or `None` (all ones).
        add_self_loops: bool. Add the remaining self loops.

    Returns:
        `(sources, targets, weights)`: int32 `(E',)`, int32 `(E',)` and
        float32 `(E',)`, with `E' = E + N` when loops are added (the given
        loops then carry weight 0 and the appended ones the loop weights).

    Examples:

    ```python
    edges = np.array([[0, 1], [1, 0]], "int32")  # 0 -> 1 and 1 -> 0
    sources, targets, weights = gcn_normalize(edges, num_nodes=3)
    ```
    """
    sources, targets, weights = _edges(
        edge_index, num_nodes, edge_weight, add_self_loops
    )
    degree = ops.segment_sum(weights, targets, num_segments=num_nodes)
    positive = degree > 0
    # The inner `where` keeps rsqrt finite (and its gradient NaN-free).
    inv_sqrt = ops.where(
        positive, ops.rsqrt(ops.where(positive, degree, 1.0)), 0.0
    )
    weights = (
        ops.take(inv_sqrt, sources, axis=0)
        * weights
        * ops.take(inv_sqrt, targets, axis=0)
    )
    return sources, targets, weights


@keras.saving.register_keras_serializable(package="keras_lgvq")
class GraphConvolution(keras.layers.Layer):
    """Graph convolution `D^-1/2 (A + I) D^-1/2 X W + b` on an edge list.

    The layer of Kipf & Welling (ICLR 2017) as PyG's `GCNConv` computes it
    (defaults `normalize=True`, `add_self_loops=True`, `bias=True`): the
    node features are transformed by a bias-free kernel, propagated along
    the normalised edges (`gcn_normalize`: multi-edges count with their
    multiplicity, every node gets a self loop of weight 1 unless it has
    one) by a gather / segment-sum over the edges, and a bias is added.
    The graph is given at call time, so one layer serves any graph with
    `input_dim` features per node. Kernel Glorot-uniform and bias zeros, as
    in PyG.

    Args:
        units: int. Output features per node.
        use_bias: bool. Add a bias after the propagation. Defaults to
            `True`.
        normalize: bool. Symmetric normalisation; `False` propagates with
            the raw edge weights (and loops, if added). Defaults to `True`.
        add_self_loops: bool. Add the remaining self loops. Defaults to
            `True`.
        kernel_initializer: initializer. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer. Defaults to `"zeros"`.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`,
            ...).

    Call arguments:
        node_features: float tensor `(N, input_dim)`.
        edge_index: int tensor `(2, E)`: sources in row 0, targets in row 1
            (messages flow source -> target; pass both directions for an
            undirected graph).
        edge_weight: float tensor `(E,)` or `None` (all ones).

    Returns:
        Float tensor `(N, units)`.

    Examples:

    ```python
    gcn = keras_lgvq.layers.graph_convolution.GraphConvolution(8)
    x = np.random.randn(4, 16).astype("float32")
    edges = np.array([[0, 1, 1, 2], [1, 0, 2, 1]], "int32")
    y = gcn(x, edges)  # (4, 8)
    ```
    """

    def __init__(
        self,
        units,
        use_bias=True,
        normalize=True,
        add_self_loops=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(
                f"`units` must be an int >= 1. Received: units={units!r}"
            )
        self.units = units
        self.use_bias = bool(use_bias)
        self.normalize = bool(normalize)
        self.add_self_loops = bool(add_self_loops)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(
        self, node_features_shape, edge_index_shape=None, edge_weight_shape=None
    ):
        node_features_shape = tuple(node_features_shape)
        if len(node_features_shape) != 2 or node_features_shape[-1] is None:
            raise ValueError(
                "`node_features` must have shape (num_nodes, input_dim) with "
                f"a known input_dim. Received shape: {node_features_shape}"
            )
        if edge_index_shape is not None:
            _check_edge_index_shape(edge_index_shape)
        self.kernel = self.add_weight(
            shape=(node_features_shape[-1], self.units),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                initializer=self.bias_initializer,
                name="bias",
            )
        self.built = True

    def call(self, node_features, edge_index, edge_weight=None):
        node_features = ops.convert_to_tensor(node_features)
        num_nodes = node_features.shape[0]
        if num_nodes is None:
            raise ValueError(
                "`node_features` must have a static number of nodes (the "
                "segment sums need it). Received shape: "
                f"{node_features.shape}"
            )
        # PyG order: transform first, so the edge gathers move `units`
        # rather than `input_dim` features.
        transformed = ops.matmul(node_features, self.kernel)
        if self.normalize:
            sources, targets, weights = gcn_normalize(
                edge_index, num_nodes, edge_weight, self.add_self_loops
            )
        else:
            sources, targets, weights = _edges(
                edge_index, num_nodes, edge_weight, self.add_self_loops
            )
        weights = ops.cast(weights, transformed.dtype)
        messages = ops.take(transformed, sources, axis=0) * ops.expand_dims(
            weights, -1
        )
        out = ops.segment_sum(messages, targets, num_segments=num_nodes)
        if self.use_bias:
            out = out + self.bias
        return out

    def compute_output_shape(
        self, node_features_shape, edge_index_shape=None, edge_weight_shape=None
    ):
        return (node_features_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                "normalize": self.normalize,
                "add_self_loops": self.add_self_loops,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config


def _edges(edge_index, num_nodes, edge_weight, add_self_loops):
    """Un-normalised `(sources, targets, weights)`, loops as documented."""
    edge_index = ops.cast(ops.convert_to_tensor(edge_index), "int32")
    _check_edge_index_shape(edge_index.shape)
    sources, targets = edge_index[0], edge_index[1]
    if edge_weight is None:
        weights = ops.ones(ops.shape(sources), "float32")
    else:
        weights = ops.cast(ops.convert_to_tensor(edge_weight), "float32")
        if tuple(weights.shape) != tuple(sources.shape):
            raise ValueError(
                "`edge_weight` must have shape (num_edges,) = "
                f"{tuple(sources.shape)}. Received shape: {weights.shape}"
            )
    if not add_self_loops:
        return sources, targets, weights
    is_loop = ops.equal(sources, targets)
    has_loop = (
        ops.segment_sum(
            ops.cast(is_loop, "float32"), sources, num_segments=num_nodes
        )
        > 0
    )
    # A node's given loop weight (the largest, if it has several); only
    # read where `has_loop`, so the value for loop-free nodes is irrelevant.
    given = ops.segment_max(
        ops.where(is_loop, weights, 0.0), sources, num_segments=num_nodes
    )
    # The given loops are replaced by exactly one loop per node.
    nodes = ops.arange(num_nodes, dtype="int32")
    return (
        ops.concatenate([sources, nodes]),
        ops.concatenate([targets, nodes]),
        ops.concatenate(
            [ops.where(is_loop, 0.0, weights), ops.where(has_loop, given, 1.0)]
        ),
    )

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.layers.graph_convolution import GraphConvolution
from keras_lgvq.layers.graph_convolution import gcn_normalize
from tests.layers.grad_utils import input_grads
from tests.layers.grad_utils import to_numpy

# 6 nodes: 0-1 twice (a multi-edge), 1-2 once, 2-4 three times; 3 and 5
# are isolated. Both directions of every undirected edge are listed.
_PAIRS = [
    (0, 1),
    (0, 1),
    (1, 2),
    (2, 4),
    (2, 4),
    (4, 2),
    (4, 2),
    (2, 4),
    (4, 2),
]
N = 6


def _undirected(pairs):
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    return np.array([src, dst], "int32")


def _np_propagation(edge_index, num_nodes, weights=None, loops=True, norm=True):
    """Dense reference: A[target, source] summed over edges, PyG's loops."""
    src, dst = edge_index
    w = np.ones(len(src)) if weights is None else np.asarray(weights, "float64")
    a = np.zeros((num_nodes, num_nodes))
    loop = {}
    for s, t, v in zip(src, dst, w):
        if s == t and loops:
            loop[s] = max(loop.get(s, -np.inf), v)
        else:
            a[t, s] += v
    if loops:
        for i in range(num_nodes):
            a[i, i] = loop.get(i, 1.0)
    if not norm:
        return a
    deg = a.sum(axis=1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
    return inv[:, None] * a * inv[None, :]


def _layer(units, x, edges, **kwargs):
    layer = GraphConvolution(units, **kwargs)
    layer.build(x.shape, edges.shape)
    if layer.use_bias:
        # A non-zero bias, so the test sees where it is added.
        layer.bias.assign(np.linspace(-1, 1, units).astype("float32"))
    return layer


def test_matches_numpy_normalised_propagation():
    rng = np.random.RandomState(0)
    x = rng.randn(N, 5).astype("float32")
    edges = _undirected(_PAIRS)
    layer = _layer(3, x, edges)
    out = to_numpy(layer(x, edges))
    a_hat = _np_propagation(edges, N)
    # The reference matrix really is D^-1/2 (A + I) D^-1/2 with counts.
    a = np.zeros((N, N))
    for s, t in _PAIRS:
        a[s, t] += 1
        a[t, s] += 1
    a += np.eye(N)
    d = a.sum(1)
    np.testing.assert_allclose(a_hat, a / np.sqrt(np.outer(d, d)))
    kernel, bias = to_numpy(layer.kernel), to_numpy(layer.bias)
    expected = a_hat @ (x @ kernel) + bias
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # Isolated nodes only see themselves: x W + b.
    for i in (3, 5):
        np.testing.assert_allclose(
            out[i], x[i] @ kernel + bias, rtol=1e-5, atol=1e-5
        )


def test_edge_weights_equal_duplicated_edges():
    rng = np.random.RandomState(1)
    x = rng.randn(N, 4).astype("float32")
    duplicated = _undirected(_PAIRS)
    unique, counts = np.unique(duplicated.T, axis=0, return_counts=True)
    layer = _layer(2, x, duplicated)
    a = to_numpy(layer(x, duplicated))
    b = to_numpy(layer(x, unique.T.astype("int32"), counts.astype("float32")))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_given_self_loops_directed_edges_and_weights():
    rng = np.random.RandomState(2)
    x = rng.randn(4, 3).astype("float32")
    # Directed: in-degrees differ from out-degrees; node 1 has two given
    # loops (the larger weight is kept), node 3 has one.
    edges = np.array([[0, 0, 1, 1, 2, 3], [1, 2, 1, 1, 1, 3]], "int32")
    weights = np.array([2.0, 0.5, 3.0, 4.0, 1.5, 0.25], "float32")
    layer = _layer(2, x, edges)
    out = to_numpy(layer(x, edges, weights))
    a_hat = _np_propagation(edges, 4, weights)
    assert a_hat[1, 1] == pytest.approx(
        4.0 / (2.0 + 1.5 + 4.0)
    )  # loop weight 4, in-degree 7.5
    expected = a_hat @ (x @ to_numpy(layer.kernel)) + to_numpy(layer.bias)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loops", [True, False])
def test_without_normalisation(loops):
    rng = np.random.RandomState(3)
    x = rng.randn(N, 3).astype("float32")
    edges = _undirected(_PAIRS)
    layer = _layer(
        2, x, edges, normalize=False, add_self_loops=loops, use_bias=False
    )
    out = to_numpy(layer(x, edges))
    a = _np_propagation(edges, N, loops=loops, norm=False)
    np.testing.assert_allclose(
        out, a @ (x @ to_numpy(layer.kernel)), rtol=1e-5, atol=1e-5
    )


def test_normalised_edge_list():
    edges = _undirected(_PAIRS)
    sources, targets, weights = gcn_normalize(edges, N)
    sources, targets, weights = map(to_numpy, (sources, targets, weights))
    assert sources.shape == targets.shape == (2 * len(_PAIRS) + N,)
    dense = np.zeros((N, N))
    np.add.at(dense, (targets, sources), weights)
    np.testing.assert_allclose(dense, _np_propagation(edges, N), rtol=1e-6)


def test_gradient_matches_transposed_propagation():
    rng = np.random.RandomState(4)
    x = rng.randn(N, 4).astype("float32")
    g = rng.randn(N, 3).astype("float32")
    edges = _undirected(_PAIRS)
    layer = _layer(3, x, edges)
    _, (grad,) = input_grads(
        lambda t: ops.sum(layer(t, edges) * ops.convert_to_tensor(g)), [x]
    )
    a_hat = _np_propagation(edges, N)
    kernel = to_numpy(layer.kernel)
    np.testing.assert_allclose(
        grad, a_hat.T @ g @ kernel.T, rtol=1e-4, atol=1e-5
    )


def test_config_round_trip():
    layer = GraphConvolution(
        7, use_bias=False, normalize=False, add_self_loops=False, name="g"
    )
    clone = GraphConvolution.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = np.ones((3, 2), "float32")
    edges = np.array([[0], [1]], "int32")
    assert tuple(clone(x, edges).shape) == (3, 7)
    assert layer.compute_output_shape((3, 2), (2, 1)) == (3, 7)


def test_bad_inputs():
    with pytest.raises(ValueError, match="units"):
        GraphConvolution(0)
    layer = GraphConvolution(2)
    x = np.ones((3, 4), "float32")
    with pytest.raises(ValueError, match="edge_index"):
        layer(x, np.zeros((3, 2), "int32"))
    with pytest.raises(ValueError, match="node_features"):
        GraphConvolution(2)(
            np.ones((2, 3, 4), "float32"), np.zeros((2, 1), "int32")
        )
    layer = GraphConvolution(2)
    with pytest.raises(ValueError, match="edge_weight"):
        layer(x, np.array([[0, 1], [1, 0]], "int32"), np.ones((3,), "float32"))


def test_runs_inside_a_compiled_model():
    # Symbolic graph inputs of fixed size: the layer works in a functional
    # model (traced by every backend's compiled predict).
    x_in = keras.Input((4,), batch_size=N)
    edges = _undirected(_PAIRS)
    layer = GraphConvolution(2)
    model = keras.Model(x_in, layer(x_in, edges))
    x = np.random.RandomState(5).randn(N, 4).astype("float32")
    out = model.predict(x, batch_size=N, verbose=0)
    expected = _np_propagation(edges, N) @ (x @ to_numpy(layer.kernel))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)

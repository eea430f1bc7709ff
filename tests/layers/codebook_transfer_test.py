import keras
import numpy as np
import pytest

from keras_lgvq.layers.codebook_transfer import CodebookTransfer
from tests.layers.grad_utils import is_zero_grad
from tests.layers.grad_utils import to_numpy
from tests.layers.grad_utils import variable_grads

# 5 nodes; 0-3 twice, 1-3, 2-4; node 2-4 pair also once more; node 5 isolated.
EDGES = np.array(
    [[0, 3, 0, 3, 1, 3, 2, 4, 2, 4], [3, 0, 3, 0, 3, 1, 4, 2, 4, 2]], "int32"
)
N, F = 6, 7


def _a_hat(edges, n):
    a = np.eye(n)
    for s, t in edges.T:
        a[t, s] += 1
    d = a.sum(1)
    return a / np.sqrt(np.outer(d, d))


def _np_transfer(layer, x, edges):
    a = _a_hat(edges, x.shape[0])
    w1, b1 = to_numpy(layer.first.kernel), to_numpy(layer.first.bias)
    w2, b2 = to_numpy(layer.second.kernel), to_numpy(layer.second.bias)
    hidden = np.maximum(a @ (x @ w1) + b1, 0.0)
    return a @ (hidden @ w2) + b2


def _built(**kwargs):
    layer = CodebookTransfer(hidden_dim=5, output_dim=3, seed=3, **kwargs)
    layer.build((N, F), EDGES.shape)
    rng = np.random.RandomState(7)
    for v in (layer.first.bias, layer.second.bias):
        v.assign(rng.randn(*v.shape).astype("float32"))
    return layer


def test_eval_matches_numpy_two_layer_gcn():
    x = np.random.RandomState(0).randn(N, F).astype("float32")
    layer = _built()
    out = to_numpy(layer(x, EDGES))
    np.testing.assert_allclose(
        out, _np_transfer(layer, x, EDGES), rtol=1e-5, atol=1e-5
    )
    # Deterministic outside training.
    np.testing.assert_array_equal(
        out, to_numpy(layer(x, EDGES, training=False))
    )


def test_training_dropout_is_stochastic():
    x = np.random.RandomState(1).randn(N, F).astype("float32")
    layer = _built()
    eval_out = to_numpy(layer(x, EDGES))
    a = to_numpy(layer(x, EDGES, training=True))
    b = to_numpy(layer(x, EDGES, training=True))
    assert not np.allclose(a, b)
    assert not np.allclose(a, eval_out)
    # Without dropout, training and evaluation agree.
    plain = _built(dropout=0.0)
    np.testing.assert_allclose(
        to_numpy(plain(x, EDGES, training=True)),
        to_numpy(plain(x, EDGES)),
        rtol=1e-6,
    )


def test_gradients_reach_both_layers_not_the_features():
    x = np.random.RandomState(2).randn(N, F).astype("float32")
    layer = _built()
    layer(x, EDGES)
    _, grads = variable_grads(
        lambda: keras.ops.sum(keras.ops.square(layer(x, EDGES))),
        layer.trainable_variables,
    )
    assert len(grads) == 4
    assert not any(is_zero_grad(g) for g in grads)


def test_config_and_output_shape():
    layer = CodebookTransfer(hidden_dim=4, output_dim=2, dropout=0.25, seed=1)
    clone = CodebookTransfer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert layer.compute_output_shape((N, F), (2, 10)) == (N, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hidden_dim=0), "hidden_dim"),
        (dict(output_dim=1.5), "output_dim"),
        (dict(dropout=1.0), "dropout"),
        (dict(seed="x"), "seed"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CodebookTransfer(**kwargs)

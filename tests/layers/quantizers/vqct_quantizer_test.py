import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.layers.quantizers.vqct_quantizer import VQCTQuantizer
from keras_lgvq.layers.quantizers.vqct_quantizer import nearest_codes
from tests.layers.grad_utils import input_grads
from tests.layers.grad_utils import is_zero_grad
from tests.layers.grad_utils import to_numpy
from tests.layers.grad_utils import variable_grads

NA, NN, F, D2 = 5, 4, 6, 8  # adjectives, nouns, prior width, latent width
D = D2 // 2
# Adjective i links noun NA + j; (1, 6) twice; adjective 4 and noun 8 are
# isolated. Both directions, as `VQCTPrior.graph` stores them.
PAIRS = [(0, 5), (1, 6), (1, 6), (2, 7), (3, 5), (0, 7)]
EDGE_INDEX = np.array(
    [
        [a for a, n in PAIRS] + [n for a, n in PAIRS],
        [n for a, n in PAIRS] + [a for a, n in PAIRS],
    ],
    "int32",
)
WORDS = np.random.RandomState(0).randn(NA + NN, F).astype("float32")


def _layer(**kwargs):
    kwargs.setdefault("seed", 0)
    return VQCTQuantizer(
        NA,
        NN,
        prior_dim=F,
        num_edges=EDGE_INDEX.shape[1],
        embedding_dim=D2,
        hidden_dim=5,
        word_features=WORDS,
        edge_index=EDGE_INDEX,
        **kwargs,
    )


def _built(**kwargs):
    layer = _layer(**kwargs)
    layer.build((None, D2))
    # Non-zero biases so the reference checks where they enter.
    rng = np.random.RandomState(5)
    for v in (layer.transfer.first.bias, layer.transfer.second.bias):
        v.assign(rng.randn(*v.shape).astype("float32") * 0.3)
    return layer


def _np_codebook(layer):
    """Eval codebook: two GCN layers with D^-1/2 (A + I) D^-1/2 in numpy."""
    n = NA + NN
    a = np.eye(n)
    for s, t in EDGE_INDEX.T:
        a[t, s] += 1.0
    deg = a.sum(1)
    a = a / np.sqrt(np.outer(deg, deg))
    t = layer.transfer
    w1, b1 = to_numpy(t.first.kernel), to_numpy(t.first.bias)
    w2, b2 = to_numpy(t.second.kernel), to_numpy(t.second.bias)
    hidden = np.maximum(a @ (WORDS.astype("float64") @ w1) + b1, 0.0)
    return a @ (hidden @ w2) + b2


def _np_quantize(z, codebook, k=2, beta=0.25, legacy=True):
    """Brute force over all codes, float64."""
    z = z.reshape(-1, D2).astype("float64")
    adj, noun = codebook[:NA], codebook[NA:]
    za, zn = z[:, :D], z[:, D:]
    da = ((za[:, None, :] - adj[None]) ** 2).sum(-1)
    dn = ((zn[:, None, :] - noun[None]) ** 2).sum(-1)
    top = np.argsort(da, axis=1, kind="stable")[:, :k]
    j = dn.argmin(1)
    qa = adj[top].mean(1)
    qn = noun[j]
    mse_a = ((qa - za) ** 2).mean()
    mse_n = ((qn - zn) ** 2).mean()
    cw, bw = (1.0, beta) if legacy else (beta, 1.0)
    return {
        "q": np.concatenate([qa, qn], -1),
        "indices": np.concatenate([top, j[:, None]], -1),
        "qa": qa,
        "qn": qn,
        "commitment_loss": cw * (mse_a + mse_n),
        "codebook_loss": bw * (mse_a + mse_n),
        "adjective_loss": (cw + bw) * mse_a,
        "noun_loss": (cw + bw) * mse_n,
    }


def _np_perplexity(ids, size):
    counts = np.bincount(ids.reshape(-1), minlength=size).astype("float64")
    p = counts / counts.sum()
    return np.exp(-(p * np.log(p + 1e-10)).sum()), (counts > 0).mean()


def _inputs(shape=(2, 3, 3, D2), seed=1):
    return np.random.RandomState(seed).randn(*shape).astype("float32")


@pytest.mark.parametrize("legacy", [True, False])
def test_matches_numpy_brute_force(legacy):
    layer = _built(legacy_beta=legacy)
    x = _inputs()
    out = layer(x)
    ref = _np_quantize(x, _np_codebook(layer), legacy=legacy)
    indices = to_numpy(out["indices"])
    assert indices.shape == (2, 3, 3, 3) and indices.dtype == np.int32
    np.testing.assert_array_equal(indices.reshape(-1, 3), ref["indices"])
    np.testing.assert_allclose(
        to_numpy(out["quantized"]).reshape(-1, D2),
        ref["q"],
        rtol=1e-5,
        atol=1e-5,
    )
    for key in (
        "commitment_loss",
        "codebook_loss",
        "adjective_loss",
        "noun_loss",
    ):
        np.testing.assert_allclose(to_numpy(out[key]), ref[key], rtol=1e-5)
    np.testing.assert_allclose(
        to_numpy(out["loss"]),
        ref["commitment_loss"] + ref["codebook_loss"],
        rtol=1e-5,
    )
    assert float(to_numpy(out["contrastive_loss"])) == 0.0
    # Statistics: per sub-codebook and over all codes (k + 1 slots).
    ids = ref["indices"]
    for key, chosen, size in (
        ("adjective", ids[:, :2], NA),
        ("noun", ids[:, 2], NN),
    ):
        perplexity, usage = _np_perplexity(chosen, size)
        np.testing.assert_allclose(
            to_numpy(out[f"{key}_perplexity"]), perplexity, rtol=1e-5
        )
        np.testing.assert_allclose(
            to_numpy(out[f"{key}_usage"]), usage, rtol=1e-6
        )
    joint = np.concatenate([ids[:, :2].reshape(-1), ids[:, 2] + NA])
    perplexity, usage = _np_perplexity(joint, NA + NN)
    np.testing.assert_allclose(
        to_numpy(out["perplexity"]), perplexity, rtol=1e-5
    )
    np.testing.assert_allclose(to_numpy(out["usage"]), usage, rtol=1e-6)
    # The same keys as VectorQuantizer, plus the per-half extras.
    assert set(out) >= {
        "quantized",
        "indices",
        "loss",
        "codebook_loss",
        "commitment_loss",
        "contrastive_loss",
        "perplexity",
        "usage",
    }


def test_indices_to_codes_inverts_the_layout():
    layer = _built()
    x = _inputs(seed=2)
    out = layer(x)
    codes = to_numpy(layer.indices_to_codes(out["indices"]))
    np.testing.assert_allclose(
        codes, to_numpy(out["quantized"]), rtol=1e-6, atol=1e-6
    )
    # Hand-made ids: adjectives (4, 0) averaged, noun 3.
    book = _np_codebook(layer)
    code = to_numpy(layer.indices_to_codes(np.array([[4, 0, 3]], "int32")))
    np.testing.assert_allclose(
        code[0],
        np.concatenate([(book[4] + book[0]) / 2, book[NA + 3]]),
        rtol=1e-5,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="top_k \\+ 1 = 3"):
        layer.indices_to_codes(np.zeros((2, 2), "int32"))
    with pytest.raises(ValueError, match="integers"):
        layer.indices_to_codes(np.zeros((2, 3), "float32"))


def test_chunked_search_equals_one_block():
    rng = np.random.RandomState(3)
    z = rng.randn(23, 4).astype("float32")
    codes = rng.randn(9, 4).astype("float32")
    for k in (1, 3):
        whole = to_numpy(nearest_codes(z, codes, k, chunk_size=64))
        chunked = to_numpy(nearest_codes(z, codes, k, chunk_size=5))
        np.testing.assert_array_equal(whole, chunked)
        d = ((z[:, None] - codes[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(whole, np.argsort(d, 1)[:, :k])
    layer = _built(chunk_size=4)
    x = _inputs(seed=4)
    np.testing.assert_array_equal(
        to_numpy(layer(x)["indices"]).reshape(-1, 3),
        _np_quantize(x, _np_codebook(layer))["indices"],
    )


def test_straight_through_and_encoder_gradients():
    layer = _built()
    x = _inputs(seed=5)
    g = np.random.RandomState(6).randn(*x.shape).astype("float32")
    _, (grad,) = input_grads(
        lambda t: ops.sum(layer(t)["quantized"] * ops.convert_to_tensor(g)), [x]
    )
    np.testing.assert_allclose(grad, g, rtol=1e-6)
    # Commitment: d/dz mean((sg(q) - z)^2) = 2 (z - q) / (M * D) per half.
    ref = _np_quantize(x, _np_codebook(layer))
    _, (grad,) = input_grads(lambda t: layer(t)["commitment_loss"], [x])
    m = ref["q"].shape[0]
    expected = 2.0 * (x.reshape(-1, D2) - ref["q"]) / (m * D)
    np.testing.assert_allclose(
        grad.reshape(-1, D2), expected, rtol=1e-4, atol=1e-7
    )
    # The codebook term does not train the encoder.
    _, (grad,) = input_grads(lambda t: layer(t)["codebook_loss"], [x])
    assert is_zero_grad(grad)


def test_gcn_learns_only_through_the_codebook_term():
    layer = _built()
    x = _inputs(seed=7)
    layer(x)
    g = np.random.RandomState(8).randn(*x.shape).astype("float32")
    variables = layer.transfer.trainable_variables
    assert len(variables) == 4
    assert layer.trainable_variables == variables  # the prior is frozen

    # A variable input keeps every objective differentiable on torch (its
    # autograd refuses outputs with no grad path at all).
    x_var = keras.Variable(x, name="latent")

    def objectives():
        out = layer(x_var)
        return {
            "output": ops.sum(out["quantized"] * ops.convert_to_tensor(g)),
            "commitment": out["commitment_loss"],
            "codebook": out["codebook_loss"],
        }

    _, grads = variable_grads(objectives, variables + [x_var])
    # The encoder side gets the output and commitment gradients.
    assert not is_zero_grad(grads["output"][-1])
    assert not is_zero_grad(grads["commitment"][-1])
    assert is_zero_grad(grads["codebook"][-1])
    grads = {key: value[:-1] for key, value in grads.items()}
    assert all(is_zero_grad(v) for v in grads["output"])
    assert all(is_zero_grad(v) for v in grads["commitment"])
    assert not any(is_zero_grad(v) for v in grads["codebook"])
    # Closed form for the last bias b2 (every code is a row of A_hat H W2
    # + b2): beta * 2 / (M * D) * sum over rows of (q - z), both halves.
    ref = _np_quantize(x, _np_codebook(layer))
    z = x.reshape(-1, D2).astype("float64")
    m = z.shape[0]
    diff = (ref["qa"] - z[:, :D]).sum(0) + (ref["qn"] - z[:, D:]).sum(0)
    bias_index = [id(v) for v in variables].index(
        id(layer.transfer.second.bias)
    )
    np.testing.assert_allclose(
        grads["codebook"][bias_index],
        0.25 * 2.0 / (m * D) * diff,
        rtol=1e-4,
        atol=1e-7,
    )


def test_codebook_is_stochastic_in_training_only():
    layer = _built()
    x = _inputs(seed=9)
    layer(x)
    a = to_numpy(layer.get_codebook(training=True))
    b = to_numpy(layer.get_codebook(training=True))
    assert not np.allclose(a, b)
    e1, e2 = to_numpy(layer.get_codebook()), to_numpy(layer.get_codebook())
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_allclose(e1, _np_codebook(layer), rtol=1e-5, atol=1e-5)
    # A training call searches the dropped-out codebook.
    out = layer(x, training=True)
    assert to_numpy(out["indices"]).shape == (2, 3, 3, 3)


def test_inference_cache():
    layer = _built(inference_cache=True)
    plain = _built(inference_cache=False)
    x = _inputs(seed=10)
    layer(x)
    for src, dst in zip(layer.transfer.weights, plain.transfer.weights):
        dst.assign(src)
    layer.update_codebook_cache()
    np.testing.assert_allclose(
        to_numpy(layer(x)["quantized"]),
        to_numpy(plain(x)["quantized"]),
        rtol=1e-6,
    )
    # The cache is a snapshot: changing the GCN changes nothing in eval
    # until the cache is refreshed; training calls always run the GCN.
    cached = to_numpy(layer(x)["quantized"])
    bias = layer.transfer.second.bias
    bias.assign(to_numpy(bias) + 5.0)
    np.testing.assert_array_equal(to_numpy(layer(x)["quantized"]), cached)
    fresh = to_numpy(layer.get_codebook(use_cache=False))
    np.testing.assert_allclose(fresh, _np_codebook(layer), rtol=1e-5, atol=1e-5)
    layer.update_codebook_cache()
    np.testing.assert_allclose(to_numpy(layer.get_codebook()), fresh, rtol=1e-6)
    with pytest.raises(ValueError, match="inference_cache=True"):
        plain.update_codebook_cache()


def test_save_and_load_keras_safe_mode(tmp_path):
    layer = _built(inference_cache=True)
    inputs = keras.Input((3, 3, D2))
    out = layer(inputs)
    model = keras.Model(
        inputs, {"quantized": out["quantized"], "indices": out["indices"]}
    )
    layer.update_codebook_cache()
    x = _inputs(seed=11)
    before = model.predict(x, verbose=0)
    path = os.path.join(str(tmp_path), "vqct.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    after = loaded.predict(x, verbose=0)
    np.testing.assert_array_equal(after["indices"], before["indices"])
    np.testing.assert_allclose(
        after["quantized"], before["quantized"], rtol=1e-6
    )
    restored = [l for l in loaded.layers if isinstance(l, VQCTQuantizer)][0]
    np.testing.assert_array_equal(to_numpy(restored.word_features), WORDS)
    np.testing.assert_array_equal(to_numpy(restored.edge_index), EDGE_INDEX)
    # The prior is not in the config, only in the weights.
    config = restored.get_config()
    assert (
        "word_features" not in config
        and config["num_edges"] == EDGE_INDEX.shape[1]
    )
    # Same numbers through the uncached GCN of the restored layer.
    np.testing.assert_allclose(
        to_numpy(restored.get_codebook(use_cache=False)),
        _np_codebook(layer),
        rtol=1e-5,
        atol=1e-5,
    )


def test_config_round_trip_needs_a_prior():
    layer = _built()
    clone = VQCTQuantizer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="has no prior"):
        clone(_inputs())
    clone.set_prior(WORDS, EDGE_INDEX)
    clone(_inputs())
    for src, dst in zip(layer.weights, clone.weights):
        dst.assign(src)
    np.testing.assert_array_equal(
        to_numpy(clone(_inputs())["indices"]),
        to_numpy(layer(_inputs())["indices"]),
    )


def test_half_precision_inputs_keep_their_dtype():
    layer = _built()
    x = _inputs(seed=12)
    out = layer(ops.cast(x, "float16"))
    assert keras.backend.standardize_dtype(out["quantized"].dtype) == "float16"
    assert keras.backend.standardize_dtype(out["loss"].dtype) == "float32"


def test_compute_output_spec():
    layer = _layer()
    spec = layer.compute_output_spec(keras.KerasTensor((None, 4, 4, D2)))
    assert spec["indices"].shape == (None, 4, 4, 3)
    assert spec["quantized"].shape == (None, 4, 4, D2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(embedding_dim=7), "even"),
        (dict(top_k=6), "top_k"),
        (
            dict(word_features=np.zeros((NA + NN, F + 1), "float32")),
            r"7-d but `prior_dim`=6",
        ),
        (dict(word_features=np.zeros((3, F), "float32")), "word_features"),
        (dict(edge_index=EDGE_INDEX + 20), r"node ids in \[0, 9\)"),
        (dict(edge_index=EDGE_INDEX[:, :4]), r"\(2, 12\)"),
        (dict(edge_weight=-np.ones(12, "float32")), ">= 0"),
        (dict(edge_weight=np.ones(3, "float32")), r"\(12,\)"),
        (dict(word_features=None), "both"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_arguments(kwargs, match):
    base = dict(
        num_adjectives=NA,
        num_nouns=NN,
        prior_dim=F,
        num_edges=EDGE_INDEX.shape[1],
        embedding_dim=D2,
        word_features=WORDS,
        edge_index=EDGE_INDEX,
    )
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        VQCTQuantizer(**base)


def test_bad_inputs():
    layer = _built()
    with pytest.raises(ValueError, match="embedding_dim`=8"):
        layer(np.zeros((2, 6), "float32"))
    with pytest.raises(ValueError, match="floating-point"):
        layer(np.zeros((2, D2), "int32"))
    with pytest.raises(ValueError, match="prior_dim"):
        layer.set_prior(np.zeros((NA + NN, 3), "float32"), EDGE_INDEX)


def test_tf_graph_with_unknown_shapes():
    # TF graph mode sees symbolic batch sizes: the chunked search then
    # loops over a tensor-sized number of blocks.
    if keras.backend.backend() != "tensorflow":
        pytest.skip("symbolic batch sizes arise in TF graph mode only")
    import tensorflow as tf

    layer = _built(chunk_size=5)
    x = _inputs(seed=13)
    eager = to_numpy(layer(x)["indices"])
    spec = tf.TensorSpec([None, None, None, D2], tf.float32)
    graph = tf.function(lambda t: layer(t)["indices"], input_signature=[spec])
    np.testing.assert_array_equal(to_numpy(graph(x)), eager)


import keras
import numpy as np
import pytest
from scipy.special import erf

from keras_lgvq.layers.guidance.masked_token_head import MaskedTokenHead

from tests.layers.grad_utils import input_grads  # noqa: E402
from tests.layers.grad_utils import is_zero_grad  # noqa: E402
from tests.layers.grad_utils import to_numpy  # noqa: E402


def np_head(layer, h, embeddings):
    x = h @ to_numpy(layer.dense.kernel) + to_numpy(layer.dense.bias)
    x = 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))  # exact GELU
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    x = (x - mean) / np.sqrt(var + 1e-5)
    x = x * to_numpy(layer.layer_norm.gamma) + to_numpy(layer.layer_norm.beta)
    return x @ embeddings.T + to_numpy(layer.bias)


def test_matches_numpy_and_is_float32():
    rng = np.random.default_rng(0)
    layer = MaskedTokenHead(8, 11)
    h = rng.normal(size=(2, 5, 8)).astype("float32")
    emb = rng.normal(size=(11, 8)).astype("float32")
    logits = layer(h, emb)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert not np.any(to_numpy(layer.bias))  # zero init
    layer.set_weights(
        [
            rng.normal(size=w.shape).astype("float32")
            for w in layer.get_weights()
        ]
    )
    np.testing.assert_allclose(
        to_numpy(layer(h, emb)), np_head(layer, h, emb), atol=1e-5, rtol=1e-5
    )


def test_token_embeddings_are_frozen():
    rng = np.random.default_rng(1)
    layer = MaskedTokenHead(8, 11)
    h = rng.normal(size=(2, 5, 8)).astype("float32")
    emb = rng.normal(size=(11, 8)).astype("float32")
    _, (g_h, g_emb) = input_grads(
        lambda a, e: keras.ops.sum(keras.ops.square(layer(a, e))), [h, emb]
    )
    assert not is_zero_grad(g_h)
    assert is_zero_grad(g_emb)
    # Only the head's own weights are trainable, never the embeddings.
    assert len(layer.trainable_weights) == 5


def test_call_is_project_of_transform():
    # `MaskedTextDecoder.scored_loss` runs the two halves apart.
    rng = np.random.default_rng(3)
    layer = MaskedTokenHead(8, 11)
    h = rng.normal(size=(6, 8)).astype("float32")
    emb = rng.normal(size=(11, 8)).astype("float32")
    logits = to_numpy(layer(h, emb))
    features = layer.transform(h)
    assert keras.backend.standardize_dtype(features.dtype) == "float32"
    np.testing.assert_array_equal(
        to_numpy(layer.project(features, emb)), logits
    )
    subset = np.array([4, 0, 7], "int32")
    # The same columns up to rounding: a 3-column matmul may take another
    # kernel than the 11-column one (seen on CI: 4.8e-7 apart), while a
    # wrong column would be O(1) off.
    np.testing.assert_allclose(
        to_numpy(layer.project(features, emb, token_subset=subset)),
        logits[:, subset],
        rtol=1e-5,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="token_embeddings"):
        layer.project(features, np.zeros((10, 8), "float32"))


def test_config_and_validation():
    layer = MaskedTokenHead(8, 11, name="mlm")
    config = layer.get_config()
    assert MaskedTokenHead.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="token_embeddings"):
        layer(np.zeros((1, 2, 8), "float32"), np.zeros((10, 8), "float32"))
    with pytest.raises(ValueError, match="vocabulary_size"):
        MaskedTokenHead(8, 0)


def test_mixed_precision_keeps_float32_logits():
    rng = np.random.default_rng(2)
    h = rng.normal(size=(2, 5, 8)).astype("float32")
    emb = rng.normal(size=(11, 8)).astype("float32")
    layer = MaskedTokenHead(8, 11, dtype="mixed_bfloat16")
    logits = layer(h, emb)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert keras.backend.standardize_dtype(layer.bias.dtype) == "float32"
    # bf16 hidden states, float32 tied embeddings: close to the reference.
    np.testing.assert_allclose(
        to_numpy(logits), np_head(layer, h, emb), atol=0.15, rtol=0.05
    )

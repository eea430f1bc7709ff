import math

import keras
import numpy as np
import pytest

from keras_lgvq.layers.guidance.global_semantic_alignment import GlobalSemanticAlignment

from tests.layers.grad_utils import input_grads  # noqa: E402
from tests.layers.grad_utils import is_zero_grad  # noqa: E402
from tests.layers.grad_utils import to_numpy  # noqa: E402


def np_gsa(image, sentence, scale=1.0, symmetric=False):
    """The official formula, -log(exp(pos) / (den + 1e-6)), batch mean."""
    image = image.astype("float64")
    sentence = sentence.astype("float64")
    v = image / np.linalg.norm(image, axis=-1, keepdims=True)
    t = sentence / np.linalg.norm(sentence, axis=-1, keepdims=True)
    sim = scale * v @ t.T

    def one_way(s):
        pos = np.diag(s)
        den = np.exp(s).sum(-1)
        return np.mean(-np.log(np.exp(pos) / (den + 1e-6)))

    loss = one_way(sim)
    if symmetric:
        loss = 0.5 * (loss + one_way(sim.T))
    return loss


def _inputs(seed=0, batch=8, dim=16):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(batch, dim)).astype("float32") * 3.0
    sentence = rng.normal(size=(batch, dim)).astype("float32")
    # Correlate the pairs so the positives matter.
    sentence += 0.5 * image
    return image, sentence


def test_faithful_matches_numpy():
    image, sentence = _inputs()
    layer = GlobalSemanticAlignment()
    loss = to_numpy(layer(image, sentence))
    np.testing.assert_allclose(loss, np_gsa(image, sentence), atol=1e-5)
    assert layer.weights == []
    # With tau = 1 the loss can never go below the B=8 floor of ~0.67, and a
    # one-directional loss differs from the symmetric one.
    assert loss > 0.6
    assert abs(np_gsa(image, sentence, symmetric=True) - loss) > 1e-4


def test_symmetric_matches_numpy():
    image, sentence = _inputs(1)
    layer = GlobalSemanticAlignment(symmetric=True)
    np.testing.assert_allclose(
        to_numpy(layer(image, sentence)),
        np_gsa(image, sentence, symmetric=True),
        atol=1e-5,
    )


def test_fixed_temperature_matches_numpy():
    image, sentence = _inputs(2)
    layer = GlobalSemanticAlignment(temperature=0.1)
    np.testing.assert_allclose(
        to_numpy(layer(image, sentence)),
        np_gsa(image, sentence, scale=10.0),
        atol=1e-5,
    )


def test_learnable_temperature():
    image, sentence = _inputs(3)
    layer = GlobalSemanticAlignment(learnable_temperature=True, symmetric=True)
    loss = to_numpy(layer(image, sentence))
    assert len(layer.trainable_weights) == 1
    np.testing.assert_allclose(
        to_numpy(layer.logit_scale), math.log(1 / 0.07), rtol=1e-6
    )
    np.testing.assert_allclose(
        loss, np_gsa(image, sentence, 1 / 0.07, symmetric=True), atol=1e-5
    )
    # The scale is clamped at 100 (CLIP), and large scales do not overflow.
    layer.logit_scale.assign(math.log(1000.0))
    loss = to_numpy(layer(image, sentence))
    assert np.isfinite(loss)
    np.testing.assert_allclose(
        loss, np_gsa(image, sentence, 100.0, symmetric=True), atol=1e-4
    )


def test_sentence_feature_gets_no_gradient():
    image, sentence = _inputs(4)
    layer = GlobalSemanticAlignment()
    _, (g_image, g_sentence) = input_grads(
        lambda a, b: layer(a, b), [image, sentence]
    )
    assert not is_zero_grad(g_image)
    assert is_zero_grad(g_sentence)


def test_get_config_round_trip():
    layer = GlobalSemanticAlignment(
        symmetric=True, learnable_temperature=True, temperature=0.5
    )
    config = layer.get_config()
    clone = GlobalSemanticAlignment.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert restored.symmetric and restored.learnable_temperature


def test_invalid_inputs():
    with pytest.raises(ValueError, match="temperature"):
        GlobalSemanticAlignment(temperature=0.0)
    layer = GlobalSemanticAlignment()
    with pytest.raises(ValueError, match="same width"):
        layer(np.ones((2, 4), "float32"), np.ones((2, 5), "float32"))


def test_mixed_precision_policy_is_float32_loss():
    image, sentence = _inputs(5)
    layer = GlobalSemanticAlignment(dtype="mixed_bfloat16")
    loss = layer(image, sentence)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    # Inputs are not autocast, so the loss is exact.
    np.testing.assert_allclose(
        to_numpy(loss), np_gsa(image, sentence), atol=1e-5
    )

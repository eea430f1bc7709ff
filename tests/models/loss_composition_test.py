"""The generator loss a train step reports is the weighted sum of the terms
it logs, for VQGAN and LGVQ, through the real per-backend train step."""

import keras
import pytest
import tensorflow as tf
from keras import ops

from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_text_batch
from tests.models.tiny_configs import tiny_vqgan

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


class _SquaredError(keras.layers.Layer):
    """A cheap stand-in perceptual loss: per-image mean squared error.

    The model treats `perceptual_loss` as any (x, y) -> per-image loss
    layer; LPIPS itself is tested in tests/losses.
    """

    def call(self, x, y):
        return ops.mean(ops.square(x - y), axis=(1, 2, 3))


def _one_step_logs(model, batch):
    model.compile(learning_rate=1e-4)
    ds = tf.data.Dataset.from_tensor_slices(batch).batch(len(batch["images"]))
    history = model.fit(ds, epochs=1, verbose=0).history
    return {key: float(values[-1]) for key, values in history.items()}


def _check_tokenizer_terms(logs, model):
    # Every term is present and non-zero, so a dropped term cannot hide.
    for key in ("rec_loss", "vq_loss", "g_loss", "d_weight", "disc_factor"):
        assert key in logs and logs[key] != 0.0, (key, logs)
    nll = logs["rec_loss"]
    if model.perceptual_loss is not None:
        assert logs["perceptual_loss"] > 0
        nll += model.perceptual_weight * logs["perceptual_loss"]
    assert logs["nll_loss"] == pytest.approx(nll, rel=1e-5, abs=1e-6)
    return (
        logs["nll_loss"]
        + model.codebook_weight * logs["vq_loss"]
        + logs["d_weight"] * logs["disc_factor"] * logs["g_loss"]
    )


def test_vqgan_loss_is_the_weighted_sum_of_its_logged_terms():
    model = tiny_vqgan(
        perceptual_loss=_SquaredError(name="squared_error"),
        perceptual_weight=0.6,
        codebook_weight=0.7,
        disc_weight=0.8,
        disc_factor=0.9,
    )
    logs = _one_step_logs(model, {"images": tiny_images(4)})
    assert logs["disc_factor"] == pytest.approx(0.9)
    expected = _check_tokenizer_terms(logs, model)
    assert logs["loss"] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_lgvq_loss_is_the_weighted_sum_of_its_logged_terms():
    model = tiny_lgvq(
        codebook_weight=0.7,
        guidance=dict(
            alpha=0.3, beta=0.2, gamma=0.5, decoder_intermediate_dim=32, seed=0
        ),
    )
    batch = tiny_text_batch(4)
    logs = _one_step_logs(model, batch)
    guidance = model.guidance
    for key in ("gsa_loss", "mtp_loss", "ras_loss"):
        assert logs[key] != 0.0, (key, logs)
    lg = (
        guidance.alpha * logs["gsa_loss"]
        + guidance.beta * logs["mtp_loss"]
        + guidance.gamma * logs["ras_loss"]
    )
    assert (guidance.alpha, guidance.beta, guidance.gamma) == (0.3, 0.2, 0.5)
    assert logs["lg_loss"] == pytest.approx(lg, rel=1e-5, abs=1e-6)
    expected = _check_tokenizer_terms(logs, model) + logs["lg_loss"]
    assert logs["loss"] == pytest.approx(expected, rel=1e-5, abs=1e-6)

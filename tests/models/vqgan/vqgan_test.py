import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_lgvq.models.vqgan.vqgan import VQGAN
from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_vqgan

BACKEND = keras.backend.backend()


def _dataset(images, batch_size=4):
    return tf.data.Dataset.from_tensor_slices({"images": images}).batch(
        batch_size
    )


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def test_fit_lowers_reconstruction_loss():
    model = tiny_vqgan(disc_start=1000)
    model.compile(learning_rate=3e-3)
    data = _dataset(tiny_images(8), batch_size=8)
    before = model.evaluate(data, verbose=0, return_dict=True)["rec_loss"]
    model.fit(data, epochs=15, verbose=0)
    after = model.evaluate(data, verbose=0, return_dict=True)["rec_loss"]
    assert after < 0.9 * before, (before, after)


def test_gan_steps_update_both_players_and_log_every_term():
    model = tiny_vqgan(disc_start=0)
    model.compile(learning_rate=1e-3)
    model.build()
    d_before = [np.array(v) for v in model.discriminator.trainable_variables]
    history = model.fit(_dataset(tiny_images(8)), epochs=1, verbose=0)
    logs = history.history
    for key in (
        "loss",
        "rec_loss",
        "nll_loss",
        "vq_loss",
        "codebook_loss",
        "commitment_loss",
        "perplexity",
        "usage",
        "g_loss",
        "d_weight",
        "disc_factor",
        "disc_loss",
        "logits_real",
        "logits_fake",
    ):
        assert key in logs and np.isfinite(logs[key][-1]), key
    assert logs["disc_factor"][-1] == 1.0
    assert logs["d_weight"][-1] > 0.0
    d_after = [np.array(v) for v in model.discriminator.trainable_variables]
    assert max(np.abs(a - b).max() for a, b in zip(d_after, d_before)) > 0
    # Both optimizers stepped once per batch.
    assert int(model.optimizer.generator.iterations) == 2
    assert int(model.optimizer.discriminator.iterations) == 2


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_dict_batches_with_strings_are_accepted():
    images = tiny_images(4)
    ds = tf.data.Dataset.from_tensor_slices(
        {"images": images, "captions": ["a red ball"] * 4, "image_id": ["x"] * 4}
    ).batch(2)
    model = tiny_vqgan(discriminator=None)
    model.compile(learning_rate=1e-3)
    model.fit(ds, epochs=1, verbose=0)
    recon = model.predict(ds, verbose=0)
    assert recon.shape == images.shape


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_gan_is_gated_until_disc_start():
    model = tiny_vqgan(disc_start=100)
    model.compile(learning_rate=1e-3)
    images = tiny_images(4)
    model.build()
    before = [np.array(v) for v in model.discriminator.trainable_variables]
    history = model.fit(_dataset(images), epochs=1, verbose=0)
    assert history.history["disc_factor"][-1] == 0.0
    after = [np.array(v) for v in model.discriminator.trainable_variables]
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_adaptive_weight_gradients_match_references():
    model = tiny_vqgan()
    model.compile()
    images = tiny_images(2)
    outputs = model.backbone.encode_decode(images)
    features = outputs["decoder_features"]
    nll_grad, g_grad = model.adaptive_weight_gradients(images, features)
    nll_grad = ops.convert_to_numpy(nll_grad)
    g_grad = ops.convert_to_numpy(g_grad)

    # nll = mean |x - x_hat| without LPIPS: exact gradient in numpy.
    conv = model.backbone.decoder.conv_out
    kernel = ops.convert_to_numpy(conv.kernel)
    bias = ops.convert_to_numpy(conv.bias)
    h = ops.convert_to_numpy(features)
    kh, kw = kernel.shape[:2]
    padded = np.pad(h, ((0, 0), (kh // 2,) * 2, (kw // 2,) * 2, (0, 0)))
    height, width = h.shape[1:3]
    recon = np.zeros(images.shape, "float64")
    for i in range(kh):
        for j in range(kw):
            recon += np.einsum(
                "bhwc,cd->bhwd",
                padded[:, i : i + height, j : j + width],
                kernel[i, j],
            )
    recon += bias
    upstream = np.sign(recon - images) / images.size
    expected = np.zeros_like(kernel, dtype="float64")
    for i in range(kh):
        for j in range(kw):
            expected[i, j] = np.einsum(
                "bhwc,bhwd->cd", padded[:, i : i + height, j : j + width], upstream
            )
    np.testing.assert_allclose(nll_grad, expected, rtol=1e-3, atol=1e-6)

    # GAN term through the discriminator: central finite difference along
    # the gradient's own direction must give the gradient's norm (the
    # quantity the adaptive weight uses).
    norm = np.linalg.norm(g_grad)
    direction = (g_grad / norm).astype("float32")

    def g_at(k):
        x_hat = ops.conv(h, k, padding="same") + ops.convert_to_tensor(bias)
        logits = model._discriminator_logits_no_update(x_hat)
        return float(ops.convert_to_numpy(-ops.mean(logits)))

    eps = 1e-3
    fd = (g_at(kernel + eps * direction) - g_at(kernel - eps * direction)) / (
        2 * eps
    )
    np.testing.assert_allclose(fd, norm, rtol=5e-2)


def test_train_step_adaptive_weight_equals_the_recomputed_one():
    """TensorFlow and torch take the adaptive weight's gradients from the
    step's own forward pass (no second LPIPS / discriminator forward); the
    weight must equal the one from re-applying the last layer
    (`adaptive_weight_gradients`, JAX's path) on the pre-step state."""
    from keras_lgvq.losses.gan_losses import adaptive_generator_weight

    model = tiny_vqgan(disc_start=0)
    model.compile(learning_rate=1e-3)
    images = tiny_images(4)
    model.build()
    outputs = model.backbone.encode_decode(images, training=False)
    nll_grad, g_grad = model.adaptive_weight_gradients(
        images, outputs["decoder_features"]
    )
    expected = float(
        ops.convert_to_numpy(
            adaptive_generator_weight(nll_grad, g_grad, model.disc_weight)
        )
    )
    logs = model.train_on_batch(images, return_dict=True)
    assert expected > 0.0
    np.testing.assert_allclose(float(logs["d_weight"]), expected, rtol=1e-4)


@pytest.mark.skipif(BACKEND == "torch", reason="jit_compile is TF/JAX only")
def test_jit_compiled_training_step_runs():
    model = tiny_vqgan()
    model.compile(learning_rate=1e-3, jit_compile=True)
    history = model.fit(_dataset(tiny_images(4)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_save_load_gives_identical_outputs_and_resumes(tmp_path):
    images = tiny_images(4)
    model = tiny_vqgan()
    model.compile(learning_rate=1e-3)
    model.fit(_dataset(images), epochs=1, verbose=0)
    path = str(tmp_path / "vqgan.keras")
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert isinstance(restored, VQGAN)
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(images)),
        ops.convert_to_numpy(model(images)),
        atol=1e-6,
    )
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-7)
    assert int(restored.optimizer.iterations) == 1
    # One more identical step on both: training resumes where it stopped.
    model.fit(_dataset(images), epochs=1, verbose=0)
    restored.fit(_dataset(images), epochs=1, verbose=0)
    for a, b in zip(_weights(restored), _weights(model)):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((4, 32, 32), "float32"), "4-D"),
        (np.zeros((4, 32, 32, 4), "float32"), "3 channels"),
        (np.zeros((4, 32, 32, 3), "int32"), "floating point"),
    ],
)
def test_bad_batches_raise_value_error(images, match):
    model = tiny_vqgan(discriminator=None)
    model.compile()
    with pytest.raises(ValueError, match=match):
        model.fit(images, epochs=1, batch_size=2, verbose=0)


def test_compile_rejects_a_loss_and_plain_optimizers():
    model = tiny_vqgan(discriminator=None)
    with pytest.raises(ValueError, match="own losses"):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match="GANOptimizer"):
        model.compile(optimizer=keras.optimizers.Adam())


_PARITY_SCRIPT = textwrap.dedent(
    """
    import os, sys, json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    sys.path.insert(0, os.getcwd())
    from tests.models.tiny_configs import tiny_images, tiny_vqgan
    from keras_lgvq.optimizers import GANOptimizer

    images = tiny_images(4)
    def run(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = tiny_vqgan()
            # SGD: Adam's first step is ~lr * sign(g), which turns float
            # noise on near-zero gradients (biases before GroupNorm) into
            # full-size steps and hides what parity is about.
            model.compile(optimizer=GANOptimizer(
                keras.optimizers.SGD(0.5), keras.optimizers.SGD(0.5)))
        model.load_weights(sys.argv[1])
        ds = tf.data.Dataset.from_tensor_slices({"images": images}).batch(4)
        logs = model.fit(ds, epochs=1, verbose=0).history
        return model, logs

    keras.utils.set_random_seed(0)
    reference = tiny_vqgan(); reference.build()
    reference.save_weights(sys.argv[1])
    single, single_logs = run(tf.distribute.get_strategy())
    mirrored, mirrored_logs = run(
        tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    diffs = [float(np.max(np.abs(np.array(a) - np.array(b))))
             for a, b in zip(single.get_weights(), mirrored.get_weights())]
    moved = [float(np.max(np.abs(np.array(a) - np.array(b))))
             for a, b in zip(single.get_weights(), reference.get_weights())]
    print(json.dumps({"max_diff": max(diffs), "max_moved": max(moved),
                      "single": single_logs, "mirrored": mirrored_logs}))
    """
)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
def test_mirrored_strategy_two_replicas_match_one(tmp_path):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 3))
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    result = subprocess.run(
        [sys.executable, "-c", _PARITY_SCRIPT, str(tmp_path / "w.weights.h5")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["max_moved"] > 1e-4  # the step did change the weights
    assert report["max_diff"] < 1e-5 * max(1.0, report["max_moved"]), report
    for key in ("loss", "rec_loss", "disc_loss", "d_weight"):
        np.testing.assert_allclose(
            report["mirrored"][key], report["single"][key], rtol=1e-4
        )


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_lpips_joins_the_reconstruction_loss(weight):
    from keras_lgvq.losses.lpips import LPIPS
    from keras_lgvq.losses.lpips_assets import heads_path

    if not os.path.exists(heads_path()):
        pytest.skip("LPIPS heads not fetched: python -m keras_lgvq.fetch_assets")
    with pytest.warns(UserWarning):
        lpips = LPIPS(allow_random_backbone=True)
    model = tiny_vqgan(
        discriminator=None, perceptual_loss=lpips, perceptual_weight=weight
    )
    model.compile(learning_rate=1e-3)
    images = tiny_images(2)
    logs = model.evaluate(_dataset(images, 2), verbose=0, return_dict=True)
    assert logs["perceptual_loss"] > 0.0
    np.testing.assert_allclose(
        logs["nll_loss"],
        logs["rec_loss"] + weight * logs["perceptual_loss"],
        rtol=1e-5,
    )
    history = model.fit(_dataset(images, 2), epochs=1, verbose=0).history
    assert np.isfinite(history["perceptual_loss"][-1])
    assert not model.perceptual_loss.trainable_weights


def test_scenes_preset_uses_cosine_codes():
    # Both sides of the main job's comparison build this backbone; cosine
    # codes are what lets a CPU-sized run leave the mean-colour plateau.
    model = VQGAN.from_preset("scenes", discriminator=None)
    quantizer = model.backbone.quantizer
    assert quantizer.l2_normalize and not quantizer.legacy_beta
    assert (quantizer.num_embeddings, quantizer.embedding_dim) == (256, 64)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3))
    codes = model.backbone.encode_decode(images.astype("float32"))["quantized"]
    norms = np.linalg.norm(ops.convert_to_numpy(codes), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)

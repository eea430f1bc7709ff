"""Before `disc_start` the VQGAN step runs without discriminator work, and
trains exactly as the full step whose GAN terms are multiplied by 0."""

import keras
import numpy as np
import tensorflow as tf

from tests.models.tiny_configs import tiny_backbone
from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_vqgan

BACKEND = keras.backend.backend()


def _model(disc_start, steps_per_execution=1, full=False):
    keras.utils.set_random_seed(0)
    # Smaller than the shared tiny config: three fits compile per test.
    backbone = tiny_backbone(ch_mult=(1,), attn_resolutions=())
    model = tiny_vqgan(backbone=backbone, disc_start=disc_start)
    model.compile(learning_rate=1e-3, steps_per_execution=steps_per_execution)
    if full:
        # The reference: the full step for every batch (the GAN terms are
        # computed and multiplied by 0 before `disc_start`).
        model._gan_phase_for = lambda first_step, num_steps: False
    return model


def _is_bn_statistic(variable):
    return "moving_" in variable.path


def _state(model):
    """Every variable but the discriminator's batch-norm statistics."""
    variables = list(model.trainable_variables) + [
        v for v in model.non_trainable_variables if not _is_bn_statistic(v)
    ]
    variables += list(model.optimizer.variables)
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _bn_statistics(model):
    return [
        np.array(keras.ops.convert_to_numpy(v))
        for v in model.discriminator.non_trainable_variables
        if _is_bn_statistic(v)
    ]


class _BatchLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({k: float(v) for k, v in logs.items()})


def _fit(model, images, batch_size):
    recorder = _BatchLogs()
    traces = []
    step = model._generator_step

    def counting_step(*args, **kwargs):
        # Runs once per trace of the compiled step (every step on torch).
        traces.append(1)
        return step(*args, **kwargs)

    model._generator_step = counting_step
    data = tf.data.Dataset.from_tensor_slices({"images": images})
    model.fit(
        data.batch(batch_size), epochs=1, verbose=0, callbacks=[recorder]
    )
    return recorder.logs, len(traces)


def test_skipped_steps_train_exactly_like_the_full_step():
    # Two steps per execution, GAN on from batch 3: the execution of
    # batches 0-1 skips the GAN, the one of 2-3 straddles disc_start and
    # must run in full (batch 2 has factor 0, batch 3 factor 1). A host
    # counter that lags, or a switch on the first step of an execution,
    # would skip batch 3's GAN terms and change the result.
    steps_per_execution, disc_start = 2, 3
    if BACKEND == "torch":
        # torch runs one step per execution: GAN on from batch 2.
        steps_per_execution, disc_start = 1, 2
    images = tiny_images(8)
    reference = _model(disc_start, steps_per_execution, full=True)
    reference.build()
    weights = reference.get_weights()
    model = _model(disc_start, steps_per_execution)
    model.build()
    model.set_weights(weights)
    bn_before = _bn_statistics(model)
    expected, _ = _fit(reference, images, batch_size=2)
    logs, traces = _fit(model, images, batch_size=2)

    assert len(logs) == len(expected) >= 2
    for got, want in zip(logs, expected):
        for key in ("loss", "rec_loss", "vq_loss", "disc_loss", "disc_factor"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)
    # (Batch logs are running means.) The GAN is on by the end: it did
    # change both players, identically.
    assert 0.0 < expected[-1]["disc_factor"] < 1.0
    for got, want in zip(_state(model), _state(reference)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.discriminator.iterations) == len(images) // 2
    # The one semantic change: batch-norm statistics start at disc_start,
    # so they saw fewer batches than the reference's.
    moved = [
        np.abs(a - b).max() for a, b in zip(_bn_statistics(model), bn_before)
    ]
    assert max(moved) > 0
    assert any(
        not np.allclose(a, b)
        for a, b in zip(_bn_statistics(model), _bn_statistics(reference))
    )
    if BACKEND != "torch":
        # One trace (compile) per step variant, not one per step.
        assert traces == 2


def test_no_discriminator_work_before_disc_start():
    model = _model(disc_start=100)
    model.build()
    d_before = [np.array(v) for v in model.discriminator.trainable_variables]
    bn_before = _bn_statistics(model)
    logs, _ = _fit(model, tiny_images(4), batch_size=2)
    # The discriminator never ran in training mode: its batch-norm
    # statistics and weights are untouched ...
    for a, b in zip(_bn_statistics(model), bn_before):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.discriminator.trainable_variables, d_before):
        np.testing.assert_array_equal(np.array(a), b)
    # ... yet its optimizer stepped (on zero gradients), as in the full step.
    assert int(model.optimizer.discriminator.iterations) == 2
    for key in ("g_loss", "d_weight", "disc_factor", "disc_loss",
                "logits_real", "logits_fake"):
        assert logs[-1][key] == 0.0, key
    assert model._gan_skipped_phase is False  # direct steps run in full


def test_train_on_batch_switches_at_disc_start():
    model = _model(disc_start=1)
    model.build()
    images = tiny_images(2)
    bn_before = _bn_statistics(model)
    d_before = [np.array(v) for v in model.discriminator.trainable_variables]
    first = model.train_on_batch({"images": images}, return_dict=True)
    assert first["disc_factor"] == 0.0 and first["logits_real"] == 0.0
    for a, b in zip(_bn_statistics(model), bn_before):
        np.testing.assert_array_equal(a, b)
    second = model.train_on_batch({"images": images}, return_dict=True)
    assert second["disc_factor"] == 1.0 and second["d_weight"] > 0.0
    d_after = [np.array(v) for v in model.discriminator.trainable_variables]
    assert max(np.abs(a - b).max() for a, b in zip(d_after, d_before)) > 0

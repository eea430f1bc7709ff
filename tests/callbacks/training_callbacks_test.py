"""The recipe callbacks on a tiny LG-VQ: logs, checkpoints, images, NaN guard.

One model serves every test of the file (compiling an LG-VQ step is most
of the cost on JAX); the tests run in file order and leave the model with
finite weights.
"""

import csv
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.callbacks import BestAndLastCheckpoint
from keras_lgvq.callbacks import NonFiniteGuard
from keras_lgvq.callbacks import NonFiniteLossError
from keras_lgvq.callbacks import ReconstructionImages
from keras_lgvq.callbacks import ResumableBackup
from keras_lgvq.callbacks import fit_resumable
from keras_lgvq.callbacks.nonfinite_guard import describe_terms
from keras_lgvq.callbacks.nonfinite_guard import nonfinite_terms
from keras_lgvq.callbacks.reconstruction_images import side_by_side
from tests.callbacks.resume_child import build_model
from tests.models.tiny_configs import tiny_text_batch

BATCH = 2


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model()


def _dataset(batch):
    return tf.data.Dataset.from_tensor_slices(batch).batch(BATCH)


def _nan_batch():
    """8 examples; the second batch's sentence features are NaN, so only
    the GSA term (and the totals holding it) is non-finite."""
    batch = tiny_text_batch(8, seed=0)
    batch["sentence_feature"] = batch["sentence_feature"].copy()
    batch["sentence_feature"][2:4] = np.nan
    return batch


def _state(model):
    variables = model.variables + model.optimizer.variables
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def _events(directory):
    """{tag: {step: value}} of the event files under `directory`."""
    found = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = (
                    tf.make_ndarray(value.tensor)
                )
    return found


class _EpochWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.states = {}

    def on_epoch_end(self, epoch, logs=None):
        self.states[epoch] = _state(self.model)


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_logs_checkpoints_and_reconstruction_images(model, tmp_path):
    train = tiny_text_batch(8, seed=0)
    val = tiny_text_batch(4, seed=1)
    log_dir = str(tmp_path / "logs")
    checkpoint = BestAndLastCheckpoint(str(tmp_path))
    weights = _EpochWeights()
    callbacks = [
        NonFiniteGuard("stop"),
        keras.callbacks.TensorBoard(log_dir, write_graph=False),
        ReconstructionImages(val["images"], log_dir, max_images=3),
        keras.callbacks.CSVLogger(str(tmp_path / "history.csv"), append=True),
        checkpoint,
        weights,
    ]
    history = fit_resumable(
        model,
        lambda epoch: _dataset(train),
        epochs=2,
        callbacks=callbacks,
        validation_data=lambda: _dataset(val),
        verbose=0,
    )

    with open(tmp_path / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    for row, value in zip(rows, history.history["val_loss"]):
        assert float(row["val_loss"]) == pytest.approx(value)
    assert {"mtp_loss", "val_gsa_loss", "disc_loss"} <= set(rows[0])

    train_events = _events(os.path.join(log_dir, "train"))
    val_events = _events(os.path.join(log_dir, "validation"))
    assert sorted(train_events["epoch_mtp_loss"]) == [0, 1]
    assert float(val_events["epoch_loss"][1]) == pytest.approx(
        history.history["val_loss"][1]
    )
    images = _events(os.path.join(log_dir, "images"))["reconstructions"]
    assert sorted(images) == [0, 1]
    width, height, *pngs = images[1]
    assert (int(width), int(height), len(pngs)) == (64, 32, 3)
    decoded = tf.io.decode_png(pngs[0]).numpy()
    assert decoded.shape == (32, 64, 3)
    # The left half is the original image.
    expected = side_by_side(val["images"][:1], val["images"][:1])[0]
    np.testing.assert_array_equal(decoded[:, :32], expected[:, :32])

    best = int(np.argmin(history.history["val_loss"]))
    with open(tmp_path / "best.json") as f:
        record = json.load(f)
    assert record["epoch"] == best
    assert record["value"] == pytest.approx(min(history.history["val_loss"]))
    for name, epoch in (("best.keras", best), ("last.keras", 1)):
        loaded = keras.saving.load_model(str(tmp_path / name))
        saved = [
            np.array(keras.ops.convert_to_numpy(v)) for v in loaded.variables
        ]
        expected_state = weights.states[epoch][: len(saved)]
        for a, b in zip(saved, expected_state):
            np.testing.assert_array_equal(a, b)
    assert not glob.glob(str(tmp_path / "partial-*"))

    # A resumed run compares with the best before the interruption.
    again = BestAndLastCheckpoint(str(tmp_path))
    again.on_train_begin()
    assert again.best == record["value"] and again.best_epoch == best


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_stop_names_the_step_and_the_offending_term(model, tmp_path):
    before = _state(model)
    backup = ResumableBackup(
        str(tmp_path / "backup"), save_freq=1, delete_checkpoint=False
    )
    try:
        with pytest.raises(NonFiniteLossError) as info:
            fit_resumable(
                model,
                lambda epoch: _dataset(_nan_batch()),
                epochs=1,
                backup=backup,
                callbacks=[NonFiniteGuard("stop")],
                verbose=0,
            )
        error = info.value
        assert (error.epoch, error.batch) == (0, 1)
        assert list(error.terms)[0] == "gsa_loss"
        assert set(error.terms) == {"gsa_loss", "lg_loss", "loss"}
        assert "epoch 1, batch 2" in str(error)
        assert "gsa_loss=nan (in the totals" in str(error)
        # The backup holds the state after the first batch only.
        with open(tmp_path / "backup" / "training_metadata.json") as f:
            metadata = json.load(f)
        assert (metadata["epoch"], metadata["step"]) == (0, 1)
    finally:
        # The NaN step was applied; give the next test finite weights.
        variables = model.variables + model.optimizer.variables
        for variable, value in zip(variables, before):
            variable.assign(value)


def test_skip_leaves_every_variable_unchanged_for_that_step(model):
    class Snapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.states = []

        def on_train_batch_end(self, batch, logs=None):
            self.states.append(_state(self.model))

    guard = NonFiniteGuard("skip", verbose=False)
    snapshots = Snapshots()
    history = model.fit(
        _dataset(_nan_batch()),
        epochs=1,
        callbacks=[guard, snapshots],
        verbose=0,
    )
    assert model.skip_nonfinite_steps
    after_first, after_skipped, after_third = snapshots.states[:3]
    for a, b in zip(after_first, after_skipped):
        np.testing.assert_array_equal(a, b)
    changed = [
        not np.array_equal(a, b) for a, b in zip(after_skipped, after_third)
    ]
    assert sum(changed) > len(changed) // 2
    assert [(e, b) for e, b, _ in guard.skipped] == [(0, 1)]
    assert list(guard.skipped[0][2]) == ["gsa_loss", "loss", "lg_loss"]
    assert history.history["skipped_steps"] == [1.0]
    assert np.isfinite(history.history["loss"][0])
    # Back to stop: the model no longer skips (its step is rebuilt).
    NonFiniteGuard("stop").set_model(model)
    assert not model.skip_nonfinite_steps
    with pytest.raises(ValueError, match="bool"):
        model.skip_nonfinite_steps = 1


def test_term_helpers_and_bad_arguments():
    terms = nonfinite_terms(
        {"loss": np.nan, "rec_loss": 0.5, "mtp_loss": np.inf}
    )
    assert list(terms) == ["mtp_loss", "loss"]
    assert describe_terms(terms) == "mtp_loss=inf (in the totals loss=nan)"
    assert nonfinite_terms({"skipped_steps": np.nan, "loss": 1.0}) == {}
    with pytest.raises(ValueError, match="policy"):
        NonFiniteGuard("ignore")
    with pytest.raises(ValueError, match="max_consecutive_skips"):
        NonFiniteGuard("skip", max_consecutive_skips=0)
    with pytest.raises(ValueError, match="skip_nonfinite_steps"):
        NonFiniteGuard("skip").set_model(keras.Sequential())
    with pytest.raises(ValueError, match="mode"):
        BestAndLastCheckpoint("x", mode="lowest")
    with pytest.raises(ValueError, match="images"):
        ReconstructionImages(np.zeros((4, 4)), "logs")
    with pytest.raises(ValueError, match="max_images"):
        ReconstructionImages(np.zeros((1, 4, 4, 3)), "logs", max_images=0)

"""`ResumableBackup` + `fit_resumable` on a small Keras model, in process.

The SIGKILL test in `resume_test.py` runs a tiny LG-VQ in subprocesses;
these tests cover the same state machinery quickly on a generic model
(dense layers, seeded dropout, Adam, a metric), and the argument checks.
"""

import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.callbacks import ResumableBackup
from keras_lgvq.callbacks import epoch_seed
from keras_lgvq.callbacks import fit_resumable

EXAMPLES, BATCH, EPOCHS = 12, 3, 3  # 4 steps per epoch


class Interrupt(Exception):
    pass


class InterruptingBackup(ResumableBackup):
    """Dies right after the backup taken at `at` = (epoch, step)."""

    def __init__(self, *args, at, **kwargs):
        super().__init__(*args, **kwargs)
        self.at = at

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self._position == self.at:
            raise Interrupt()


def _model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.5, seed=3),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, 4)).astype("float32")
    y = x.sum(1, keepdims=True) + 1.0
    return x, y


def _epoch_data(epoch):
    x, y = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(EXAMPLES, seed=epoch_seed(0, epoch))
    return ds.batch(BATCH, drop_remainder=True)


def _state(model):
    variables = model.variables + model.optimizer.variables
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def test_interrupted_run_continues_to_the_uninterrupted_result(tmp_path):
    reference = _model()
    expected = fit_resumable(reference, _epoch_data, EPOCHS, verbose=0)

    backup_dir = str(tmp_path / "backup")
    model = _model()
    backup = InterruptingBackup(backup_dir, save_freq=2, at=(1, 2))
    with pytest.raises(Interrupt):
        fit_resumable(model, _epoch_data, EPOCHS, backup=backup, verbose=0)
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        metadata = json.load(f)
    assert (metadata["epoch"], metadata["step"]) == (1, 2)
    # One weights file: the one the metadata names.
    files = [n for n in os.listdir(backup_dir) if n.endswith(".h5")]
    assert files == [metadata["weights"]]

    resumed = _model()  # A new process would build it like this.
    history = fit_resumable(
        resumed,
        _epoch_data,
        EPOCHS,
        backup=ResumableBackup(backup_dir, save_freq=2),
        verbose=0,
    )
    for a, b in zip(_state(reference), _state(resumed)):
        np.testing.assert_array_equal(a, b)
    assert history.epoch == [1, 2]
    # Epoch 2's means cover its 4 batches: 2 restored, 2 trained now.
    for key in ("loss", "mae"):
        assert history.history[key] == expected.history[key][1:], key
    assert int(resumed.optimizer.iterations) == EPOCHS * 4
    assert not os.path.exists(backup_dir)  # Deleted once complete.


def test_a_nan_state_is_not_backed_up(tmp_path):
    model = _model()
    x, y = _data()
    y[6:9] = np.nan  # The third batch of the first epoch.
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    backup = ResumableBackup(
        str(tmp_path), save_freq=1, delete_checkpoint=False
    )
    fit_resumable(model, lambda epoch: data, 1, backup=backup, verbose=0)
    with open(tmp_path / "training_metadata.json") as f:
        metadata = json.load(f)
    # Saved after batches 1 and 2; the NaN steps and epoch end were not.
    assert (metadata["epoch"], metadata["step"]) == (0, 2)


def test_plain_fit_restarts_the_epoch_and_warns(tmp_path):
    backup_dir = str(tmp_path / "backup")
    model = _model()
    with pytest.raises(Interrupt):
        fit_resumable(
            model,
            _epoch_data,
            EPOCHS,
            backup=InterruptingBackup(backup_dir, save_freq=1, at=(1, 1)),
            verbose=0,
        )
    model = _model()
    with pytest.warns(UserWarning, match="fit_resumable"):
        history = model.fit(
            _epoch_data(1),
            epochs=EPOCHS,
            callbacks=[ResumableBackup(backup_dir, save_freq=1)],
            verbose=0,
        )
    assert history.epoch == [1, 2]


def test_epoch_seed_is_fixed_and_differs_per_epoch():
    assert epoch_seed(0, 3) == epoch_seed(0, 3)
    seeds = {epoch_seed(seed, epoch) for seed in (0, 1) for epoch in range(5)}
    assert len(seeds) == 10
    assert all(0 <= s < 2**31 for s in seeds)
    with pytest.raises(ValueError, match="seed"):
        epoch_seed(-1, 0)


def test_bad_arguments_get_clear_errors(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="save_freq"):
        ResumableBackup(str(tmp_path), save_freq=0)
    with pytest.raises(ValueError, match="save_freq"):
        ResumableBackup(str(tmp_path), save_freq=True)
    with pytest.raises(ValueError, match="set_model"):
        ResumableBackup(str(tmp_path)).restore()
    with pytest.raises(ValueError, match="callable"):
        fit_resumable(model, _epoch_data(0), 1)
    with pytest.raises(ValueError, match="ResumableBackup"):
        fit_resumable(
            model,
            _epoch_data,
            1,
            backup=keras.callbacks.BackupAndRestore(str(tmp_path)),
        )
    with pytest.raises(ValueError, match="backup="):
        fit_resumable(
            model,
            _epoch_data,
            1,
            callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path))],
        )
    unknown = _epoch_data(0).filter(lambda x, y: True)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        fit_resumable(model, lambda epoch: unknown, 1, verbose=0)
    with pytest.raises(ValueError, match="fewer than"):
        fit_resumable(model, _epoch_data, 1, steps_per_epoch=9, verbose=0)
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        fit_resumable(model, lambda epoch: _data(), 1, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        fit_resumable(model, _epoch_data, 1, verbose="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_resumable(
            model, lambda e: unknown, 1, steps_per_epoch=2, verbose=0
        )

"""`ResumableBackup`: Keras's BackupAndRestore, exact at any step."""

import json
import os
import shutil
import warnings

import keras
import numpy as np
from keras import ops

from keras_lgvq.callbacks.nonfinite_guard import nonfinite_terms
from keras_lgvq.utils.random_state import seed_generator_states

METADATA_FILE = "training_metadata.json"
_FORMAT = "keras_lgvq.ResumableBackup/1"


def _write_json_atomically(path, data):
    partial = path + ".partial"
    with open(partial, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Backs up the whole training state every `save_freq` steps.

    A `keras.callbacks.BackupAndRestore` (same files: `model.save_weights`
    plus a JSON of the position) with four changes that make a run killed
    at any moment resume to the model an uninterrupted run ends with:

    - **Position.** The metadata records the epoch and the number of its
      batches already trained. Keras's callback restarts a half-done epoch
      from its first batch, training those batches twice;
      `keras_lgvq.callbacks.fit_resumable` reads the position with
      `restore()` and skips exactly the consumed batches (used with a
      plain `fit`, this callback behaves like Keras's and warns).
    - **Atomic pairs.** Weights go to a new file that is renamed into
      place, then the metadata naming that file is renamed into place; a
      kill between any two writes leaves a consistent (weights, position)
      pair, never new weights with an old position.
    - **Epoch ends.** With an integer `save_freq` the state is also saved
      at every epoch end, after validation and the other callbacks'
      epoch-end work, and never at an epoch's last batch, so a resumed run
      neither repeats nor skips that work (evaluation can advance
      random-number state).
    - **Everything.** `model.save_weights` holds the weights, non-trainable
      statistics (EMA, CVQ usage, batch norm) and both optimizers' slots
      and iteration counts. The metadata adds every `SeedGenerator` state
      (Keras does not save them; dropout and masking draws continue where
      they were) and the running means of the epoch's metrics, so the
      resumed epoch logs the same means. A state with non-finite logs is
      never saved (unless the model skips such steps). On torch, a Dropout
      layer created without a seed draws from torch's global generator,
      which no backup holds: keras_lgvq trainers seed theirs at build;
      other models must pass `seed=` to their Dropout layers.

    The model and its compile arguments must be the same when resuming.

    Args:
        backup_dir: string. Directory for the backup; nothing else may
            write there.
        save_freq: `"epoch"` or int >= 1. Save every this many steps (and
            at every epoch end), or at epoch ends only.
        double_checkpoint: bool. Also keep the previous backup and fall
            back to it when the latest cannot be read.
        delete_checkpoint: bool. Delete the backup once the last epoch is
            done.
        write: bool. Whether this process writes the backup. In a
            multi-worker run only the chief (worker 0) writes; every
            worker restores from the same (shared) directory.

    Examples:

    ```python
    backup = keras_lgvq.callbacks.ResumableBackup("runs/x/backup",
                                                  save_freq=500)
    keras_lgvq.callbacks.fit_resumable(
        model, lambda epoch: make_epoch(epoch), epochs=10, backup=backup)
    ```
    """

    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        double_checkpoint=False,
        delete_checkpoint=True,
        write=True,
    ):
        if save_freq != "epoch" and (
            isinstance(save_freq, bool)
            or not isinstance(save_freq, int)
            or save_freq < 1
        ):
            raise ValueError(
                "`save_freq` must be 'epoch' or an int >= 1 (steps). "
                f"Received: save_freq={save_freq!r}"
            )
        super().__init__(
            backup_dir,
            save_freq=save_freq,
            double_checkpoint=double_checkpoint,
            delete_checkpoint=delete_checkpoint,
        )
        self.write = bool(write)
        self._metadata_path = os.path.join(backup_dir, METADATA_FILE)
        self._previous_metadata_path = self._metadata_path + ".bkp"
        self._restored = None
        self._pending_metrics = None
        self._position = (0, 0)
        self._since_save = 0
        self._epoch_offset = 0
        self._first_epoch_of_fit = True
        self._skip_mode = False

    # === Restoring ===

    def restore(self):
        """Loads the latest backup into the model, once.

        Returns:
            `(epoch, step)`: the epoch to continue and how many of its
            batches were already trained; `(0, 0)` without a backup.
        """
        if self._restored is not None:
            return self._restored
        model = self.model
        if model is None:
            raise ValueError(
                "ResumableBackup.restore() needs the model: call "
                "`set_model(model)` first (fit and fit_resumable do)."
            )
        if not model.built:
            raise ValueError(
                "ResumableBackup needs a built model (build or compile it "
                "before `fit`)."
            )
        metadata = None
        for path in (self._metadata_path, self._previous_metadata_path):
            if not os.path.exists(path):
                continue
            try:
                metadata = self._load(model, path)
                break
            except OSError as error:
                if not self.double_checkpoint:
                    raise
                warnings.warn(
                    f"Could not restore the backup named by {path} "
                    f"({error}); trying the previous one.",
                    stacklevel=2,
                )
        if metadata is None:
            self._restored = (0, 0)
        else:
            self._restored = (int(metadata["epoch"]), int(metadata["step"]))
            names = [m.name for m in model.metrics]
            if metadata.get("metric_names") == names:
                self._pending_metrics = metadata.get("metrics")
            states = seed_generator_states(model)
            saved = metadata.get("seed_generator_states") or []
            if len(saved) != len(states):
                raise ValueError(
                    f"The backup in {self.backup_dir} holds {len(saved)} "
                    f"seed-generator states but the model has {len(states)}:"
                    " it was written for another model. Use a new "
                    "`backup_dir` or the model the backup was made with."
                )
            for variable, value in zip(states, saved):
                variable.assign(np.asarray(value, dtype=variable.dtype))
        return self._restored

    def _load(self, model, metadata_path):
        with open(metadata_path) as f:
            metadata = json.load(f)
        if metadata.get("format") != _FORMAT:
            raise ValueError(
                f"{metadata_path} was not written by ResumableBackup "
                f"(format {metadata.get('format')!r}); point `backup_dir` "
                "at a directory of its own."
            )
        weights = os.path.join(self.backup_dir, metadata["weights"])
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        model.load_weights(weights)
        return metadata

    def on_train_begin(self, logs=None):
        self._first_epoch_of_fit = True
        self._skip_mode = bool(
            getattr(self.model, "skip_nonfinite_steps", False)
        )
        if self._restored is not None:
            return
        # A plain `fit`: behave as Keras's BackupAndRestore.
        epoch, step = self.restore()
        self.model._initial_epoch = epoch
        if step:
            warnings.warn(
                f"The backup in {self.backup_dir} was taken after {step} "
                f"batches of epoch {epoch + 1}; a plain `fit` restarts that "
                "epoch from its first batch and trains them twice. Use "
                "keras_lgvq.callbacks.fit_resumable to continue exactly.",
                stacklevel=2,
            )
            self._restored = (epoch, 0)
            self._pending_metrics = None

    # === Position and saving ===

    def on_epoch_begin(self, epoch, logs=None):
        offset = 0
        if self._first_epoch_of_fit:
            # `fit_resumable` starts a resumed epoch at its first unseen
            # batch and says so in the params.
            offset = int(self.params.get("initial_step", 0) or 0)
        self._first_epoch_of_fit = False
        self._epoch_offset = offset
        self._position = (epoch, offset)
        if (
            self._pending_metrics is not None
            and (epoch, offset) == self._restored
            and offset > 0
        ):
            # Keras reset the metrics for the epoch; put back the means of
            # the batches trained before the interruption.
            for variable, value in zip(
                self.model.metrics_variables, self._pending_metrics
            ):
                variable.assign(np.asarray(value, dtype=variable.dtype))
        self._pending_metrics = None

    def on_train_batch_end(self, batch, logs=None):
        self._position = (self._position[0], self._epoch_offset + batch + 1)
        if self.save_freq == "epoch":
            return
        self._since_save += 1
        steps = self.params.get("steps")
        last = steps is not None and batch + 1 >= steps
        if self._since_save >= self.save_freq and not last:
            self._save_if_finite(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._position = (epoch + 1, 0)
        self._save_if_finite(logs)

    def _save_if_finite(self, logs):
        if not self._skip_mode and nonfinite_terms(logs):
            return  # Keep the last good state.
        self._save_model()
        self._since_save = 0

    def _save_model(self):
        if not self.write:
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        model = self.model
        epoch, step = self._position
        name = f"ckpt-epoch{epoch}-step{step}.weights.h5"
        path = os.path.join(self.backup_dir, name)
        partial = os.path.join(self.backup_dir, "partial-" + name)
        model.save_weights(partial, overwrite=True)
        os.replace(partial, path)
        metadata = {
            "format": _FORMAT,
            "epoch": epoch,
            "step": step,
            "weights": name,
            "metric_names": [m.name for m in model.metrics],
            "metrics": [
                ops.convert_to_numpy(v).tolist()
                for v in model.metrics_variables
            ],
            "seed_generator_states": [
                ops.convert_to_numpy(v).tolist()
                for v in seed_generator_states(model)
            ],
        }
        if self.double_checkpoint and os.path.exists(self._metadata_path):
            shutil.copyfile(
                self._metadata_path, self._previous_metadata_path + ".partial"
            )
            os.replace(
                self._previous_metadata_path + ".partial",
                self._previous_metadata_path,
            )
        _write_json_atomically(self._metadata_path, metadata)
        self._remove_unreferenced()

    def _remove_unreferenced(self):
        keep = set()
        for path in (self._metadata_path, self._previous_metadata_path):
            if os.path.exists(path):
                with open(path) as f:
                    keep.add(json.load(f)["weights"])
        for name in os.listdir(self.backup_dir):
            if name.endswith(".weights.h5") and name not in keep:
                os.remove(os.path.join(self.backup_dir, name))

    def on_train_end(self, logs=None):
        epochs = self.params.get("epochs")
        finished = self.model.stop_training or (
            epochs is not None and self._position[0] >= epochs
        )
        if (
            finished
            and self.delete_checkpoint
            and self.write
            and os.path.exists(self.backup_dir)
        ):
            shutil.rmtree(self.backup_dir)

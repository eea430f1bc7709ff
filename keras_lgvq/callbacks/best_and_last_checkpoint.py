"""`BestAndLastCheckpoint`: keep `last.keras` and `best.keras`."""

import json
import math
import os
import warnings

import keras

BEST_FILE = "best.keras"
LAST_FILE = "last.keras"
BEST_RECORD_FILE = "best.json"


class BestAndLastCheckpoint(keras.callbacks.Callback):
    """Saves the model as `last.keras` every epoch and `best.keras` on a
    new best of a monitored value.

    Each file is written under a temporary name and renamed into place, so
    a kill never leaves a half-written `.keras`. The best value and its
    epoch go to `best.json`, which is read back at the start of training:
    a resumed run compares with the best of the run before the
    interruption, not with infinity. Files load with
    `keras.saving.load_model(path)` (safe mode).

    Args:
        directory: string. Where `last.keras`, `best.keras` and `best.json`
            go.
        monitor: string. Epoch-log entry to compare (default `"val_loss"`,
            so validation must run every epoch).
        mode: string. `"min"` or `"max"`.
        write: bool. Whether this process writes (only the chief of a
            multi-worker run should).

    Examples:

    ```python
    checkpoint = keras_lgvq.callbacks.BestAndLastCheckpoint("runs/x")
    model.fit(train, validation_data=val, epochs=5, callbacks=[checkpoint])
    model = keras.saving.load_model("runs/x/best.keras")
    ```
    """

    def __init__(self, directory, monitor="val_loss", mode="min", write=True):
        super().__init__()
        if not isinstance(directory, str) or not directory:
            raise ValueError(
                "`directory` must be a non-empty string. Received: "
                f"{directory!r}"
            )
        if mode not in ("min", "max"):
            raise ValueError(
                f"`mode` must be 'min' or 'max'. Received: mode={mode!r}"
            )
        self.directory = directory
        self.monitor = monitor
        self.mode = mode
        self.write = bool(write)
        self.best = None
        self.best_epoch = None
        self._warned = False

    @property
    def best_path(self):
        return os.path.join(self.directory, BEST_FILE)

    @property
    def last_path(self):
        return os.path.join(self.directory, LAST_FILE)

    def on_train_begin(self, logs=None):
        record = os.path.join(self.directory, BEST_RECORD_FILE)
        if self.best is None and os.path.exists(record):
            with open(record) as f:
                data = json.load(f)
            if data.get("monitor") == self.monitor:
                self.best = float(data["value"])
                self.best_epoch = int(data["epoch"])

    def _improves(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not self.write:
            return
        os.makedirs(self.directory, exist_ok=True)
        model = self.model
        _save_atomically(model, self.last_path)
        if self.monitor not in logs:
            if not self._warned:
                warnings.warn(
                    f"BestAndLastCheckpoint: {self.monitor!r} is not in the "
                    f"epoch logs (available: {sorted(logs)}), so only "
                    f"{LAST_FILE} is kept. Pass validation data (or another "
                    "`monitor`).",
                    stacklevel=2,
                )
                self._warned = True
            return
        value = float(logs[self.monitor])
        if not self._improves(value):
            return
        _save_atomically(model, self.best_path)
        self.best, self.best_epoch = value, epoch
        record = os.path.join(self.directory, BEST_RECORD_FILE)
        with open(record + ".partial", "w") as f:
            json.dump(
                {"monitor": self.monitor, "value": value, "epoch": epoch}, f
            )
        os.replace(record + ".partial", record)


def _save_atomically(model, path):
    # `.keras` is required at the end of the name, hence the prefix.
    directory, name = os.path.split(path)
    partial = os.path.join(directory, "partial-" + name)
    model.save(partial, overwrite=True)
    os.replace(partial, path)

"""The LG-VQ training recipe (`recipes/train_lgvq.py`, behind `scenes.py`,
`cub.py`, `celeba_hq.py`, `textcaps.py`) at a tiny size: checkpoints, logs,
validation, and a run interrupted mid-epoch that the same command resumes.
"""

import csv
import glob
import json
import os

import keras
import pytest

from recipes import common
from recipes import train_lgvq


def _minilm_available():
    from keras_lgvq.text_priors import minilm_assets

    return minilm_assets.is_available()


needs_minilm = pytest.mark.skipif(
    not _minilm_available(),
    reason="MiniLM text prior is not cached (python -m "
    "keras_lgvq.fetch_assets)",
)


def test_training_flags_are_checked():
    args = train_lgvq.parse_args([])
    assert args.checkpoint_every == 500 and args.nan_policy == "stop"
    assert args.strategy == "default" and args.backup_dir is None
    with pytest.raises(ValueError, match="--checkpoint-every"):
        train_lgvq.parse_args(["--checkpoint-every", "-1"])
    with pytest.raises(ValueError, match="--validation-steps"):
        train_lgvq.parse_args(["--validation-steps", "0"])
    for flag, value in (("--nan-policy", "ignore"), ("--strategy", "ring")):
        with pytest.raises(SystemExit):
            train_lgvq.parse_args([flag, value])


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises at the end of a given batch of a given epoch (a crash)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise Interrupt()


@pytest.mark.end_to_end("torch")
@needs_minilm
def test_tiny_run_logs_checkpoints_and_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    argv = [
        "--preset", "scenes",
        "--out", str(out),
        "--data-dir", str(tmp_path / "tfds"),
        "--resolution", "32",
        "--epochs", "2",
        "--steps-per-epoch", "3",
        "--batch-size", "4",
        "--scenes-train-size", "16",
        "--scenes-validation-size", "8",
        "--validation-steps", "1",
        "--checkpoint-every", "1",
        "--verbose", "0",
    ]  # fmt: skip
    original = common.training_callbacks

    def crashing(*args, **kwargs):
        # After the backup of epoch 2, batch 1; before batch 2's.
        return original(*args, **kwargs) + [InterruptAt(1, 1)]

    monkeypatch.setattr(common, "training_callbacks", crashing)
    with pytest.raises(Interrupt):
        train_lgvq.main(argv)
    with open(out / "backup" / "training_metadata.json") as f:
        metadata = json.load(f)
    assert (metadata["epoch"], metadata["step"]) == (1, 1)
    assert (out / "last.keras").exists() and (out / "best.keras").exists()

    monkeypatch.setattr(common, "training_callbacks", original)
    capsys.readouterr()
    model, history = train_lgvq.main(argv)
    printed = capsys.readouterr().out
    assert "Resuming from" in printed
    # LG-VQ read the prior's features of its drawn captions from a cache
    # (the resumed epoch's captions included, or its batches would fail).
    assert "Text features cached" in printed
    assert history.epoch == [1]
    assert int(model.optimizer.iterations) == 2 * 3
    assert not (out / "backup").exists()  # Deleted once complete.

    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(float(row["val_loss"]) > 0 for row in rows)
    with open(out / "history.json") as f:
        assert json.load(f)["epoch"] == [1]
    for part in ("train", "validation", "images"):
        assert glob.glob(str(out / "logs" / part / "events.out.tfevents.*"))
    with open(out / "best.json") as f:
        assert json.load(f)["monitor"] == "val_loss"
    for name in ("best.keras", "last.keras", "model.keras"):
        assert os.path.getsize(out / name) > 0
    assert (out / "preset" / "task.json").exists()

"""recipes/common.py helpers the stage-2 recipes train through: array data
per epoch, one backup folder per model, the flag variants, and a fresh run
that does not compare against an older run's best value."""

import argparse
import json
import os

import keras
import numpy as np
import pytest

from recipes import common


def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(size=(n, 3)).astype("float32"),
        "y": np.arange(n, dtype="int32"),
    }


def _order(ds):
    return np.concatenate([b["y"].numpy() for b in ds]).tolist()


def test_array_epochs_are_reproducible_and_differ():
    epoch_data, validation_data = common.array_datasets(
        _rows(10), _rows(5), batch_size=4, seed=3
    )
    first = _order(epoch_data(0))
    assert sorted(first) == list(range(10))
    assert _order(epoch_data(0)) == first  # rebuilt alone: same order
    assert _order(epoch_data(1)) != first
    assert int(epoch_data(0).cardinality()) == 3  # last batch partial
    assert _order(validation_data()) == list(range(5))  # not shuffled
    _, capped = common.array_datasets(
        _rows(10), _rows(5), batch_size=2, seed=3, validation_steps=1
    )
    assert _order(capped()) == [0, 1]


def test_array_rows_must_be_non_empty_and_of_one_length():
    with pytest.raises(ValueError, match="training rows"):
        common.array_datasets({"x": np.zeros((0, 2))}, _rows(2), 4, 0)
    bad = {"x": np.zeros((3, 2)), "y": np.zeros(2)}
    with pytest.raises(ValueError, match="validation rows"):
        common.array_datasets(_rows(2), bad, 4, 0)
    with pytest.raises(ValueError, match="batch_size"):
        common.array_datasets(_rows(2), _rows(2), 0, 0)


def test_model_arguments_give_each_model_its_backup_folder():
    args = argparse.Namespace(backup_dir="/b", nan_policy="stop")
    assert common.model_arguments(args, "blind").backup_dir == os.path.join(
        "/b", "blind"
    )
    assert args.backup_dir == "/b"  # the original is unchanged
    none = argparse.Namespace(backup_dir=None)
    assert common.model_arguments(none, "image").backup_dir is None


def test_flag_variant_without_strategy_or_skip():
    parser = common.add_training_arguments(
        argparse.ArgumentParser(), strategy=False, skip=False
    )
    args = parser.parse_args(["--nan-policy", "off"])
    assert not hasattr(args, "strategy") and args.verbose == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["--nan-policy", "skip"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--strategy", "mirrored"])
    # Without --verbose (the recipe has its own).
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", type=int, default=2)
    common.add_training_arguments(parser, strategy=False, verbose=False)
    assert parser.parse_args([]).verbose == 2


def _tiny_run(out, epochs=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    rows = _rows(8)
    rows["y"] = rows["y"].astype("float32")

    def to_xy(ds):
        return ds.map(lambda b: (b["x"], b["y"]))

    epoch_data, validation_data = common.array_datasets(rows, rows, 4, 0)
    parser = common.add_training_arguments(
        argparse.ArgumentParser(), strategy=False, skip=False
    )
    args = parser.parse_args(["--verbose", "0", "--checkpoint-every", "1"])
    return common.train(
        model,
        lambda e: to_xy(epoch_data(e)),
        lambda: to_xy(validation_data()),
        args,
        str(out),
        epochs=epochs,
    )


def test_fresh_run_does_not_compare_with_an_older_best(tmp_path):
    # An older run in the same folder reached a better value; a fresh run
    # (no backup) must still write its own best.keras.
    with open(tmp_path / "best.json", "w") as f:
        json.dump({"monitor": "val_loss", "value": -1.0, "epoch": 7}, f)
    history = _tiny_run(tmp_path)
    with open(tmp_path / "best.json") as f:
        record = json.load(f)
    assert record["epoch"] == 0
    assert record["value"] == pytest.approx(history.history["val_loss"][0])
    keras.saving.load_model(str(tmp_path / "best.keras"), safe_mode=True)
    assert not os.path.exists(tmp_path / "backup")  # deleted when done

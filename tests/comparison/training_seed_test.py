"""A row's initial weights depend on its seed only, not on what preparing
the data drew from the global random generators (a first run on a machine
builds the scenes set and caption cache; later runs read them)."""

import keras
import numpy as np
import pytest

from keras_lgvq import comparison
from keras_lgvq.comparison import training


class _Built(Exception):
    """Stops `train_system` once the model is built (no training)."""


def _initial_checksum(monkeypatch, tmp_path, draw_during_data):
    from keras_lgvq import datasets

    real_dataset = datasets.make_dataset

    def make_dataset(*args, **kwargs):
        result = real_dataset(*args, **kwargs)
        if draw_during_data:
            # What a first-time preparation may do to the global state.
            keras.random.normal((3,))
            np.random.rand(5)
        return result

    seen = []

    def build_model(*args, **kwargs):
        model = real_build(*args, **kwargs)
        seen.append(training.backbone_checksum(model))
        raise _Built

    real_build = training.build_model
    monkeypatch.setattr(datasets, "make_dataset", make_dataset)
    monkeypatch.setattr(training, "build_model", build_model)
    settings = comparison.resolve_settings(
        {"smoke": True, "data_dir": str(tmp_path), "train_size": 8,
         "eval_size": 4, "models": "vqgan", "verbose": 0}
    )
    with pytest.raises(_Built):
        training.train_system("vqgan", None, settings, seed=3)
    monkeypatch.undo()
    return seen[0]


def test_initial_weights_do_not_depend_on_data_preparation(
    monkeypatch, tmp_path
):
    plain = _initial_checksum(monkeypatch, tmp_path, False)
    drawn = _initial_checksum(monkeypatch, tmp_path, True)
    assert plain == drawn

import json
import os

import numpy as np
import pytest

from keras_lgvq.comparison import resolve_settings
from keras_lgvq.comparison import result_fingerprint
from keras_lgvq.comparison.run_state import SETTINGS_FILE
from keras_lgvq.comparison.run_state import check_settings
from keras_lgvq.comparison.run_state import load_unit
from keras_lgvq.comparison.run_state import save_unit
from keras_lgvq.comparison.run_state import unit_dir
from keras_lgvq.comparison.run_state import write_json_atomic

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


class Saver:
    """Writes a preset folder the way `save_to_preset` does (a directory
    with files), counting the calls."""

    def __init__(self):
        self.calls = 0

    def save_to_preset(self, path):
        self.calls += 1
        os.makedirs(path)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump({"calls": self.calls}, f)


def test_fingerprint_keeps_result_settings_only():
    a = result_fingerprint(resolve_settings({"smoke": True}))
    # Rows, seeds, output folder, verbosity and bootstrap resamples do not
    # change a stored (system, seed) result.
    b = result_fingerprint(resolve_settings({
        "smoke": True, "models": "lqae,vqae", "seeds": 3, "seed": 4,
        "out": "elsewhere", "verbose": 0, "bootstrap_resamples": 500,
        "jit_compile": "off",
    }))
    assert a == b
    assert a == json.loads(json.dumps(a))
    c = result_fingerprint(resolve_settings({"smoke": True, "epochs": 2}))
    assert c["total_steps"] == 8 and c != a
    assert a["downstream"]["num_episodes"] == 1


def test_check_settings_names_the_difference(tmp_path):
    out = str(tmp_path / "run")
    first = result_fingerprint(resolve_settings({"smoke": True}))
    assert check_settings(out, first) is False
    assert check_settings(out, first) is True
    other = result_fingerprint(
        resolve_settings({"smoke": True, "train_size": 64})
    )
    with pytest.raises(ValueError) as error:
        check_settings(out, other)
    message = str(error.value)
    assert "train_size: 32 there, 64 now" in message
    assert "total_steps: 4 there, 8 now" in message
    assert "--no-resume" in message and "epochs" not in message
    # The stored settings are unchanged by the refused run.
    with open(os.path.join(out, SETTINGS_FILE)) as f:
        assert json.load(f) == first


def test_units_round_trip_and_no_resume_removes_them(tmp_path):
    out = str(tmp_path / "run")
    settings = result_fingerprint(resolve_settings({"smoke": True}))
    check_settings(out, settings)
    rng = np.random.default_rng(0)
    recon = rng.uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    saver = Saver()
    unit = {"kind": "lgvq", "seed": 0, "table_metrics": {"psnr": 20.5},
            "value": np.float32(1.5), "ids": np.arange(3)}
    folder = save_unit(out, "lgvq", 0, unit, recon, saver)
    assert folder == unit_dir(out, "lgvq", 0)
    assert folder.endswith(os.path.join("lgvq", "seed_0"))
    assert not any(n.endswith(".partial") for n in os.listdir(folder))
    loaded = load_unit(out, "lgvq", 0, need_preset=True)
    assert loaded["table_metrics"] == {"psnr": 20.5}
    assert loaded["value"] == 1.5 and loaded["ids"] == [0, 1, 2]
    # Reconstructions come back to within the uint8 step.
    np.testing.assert_allclose(loaded["reconstructions"], recon, atol=1 / 127)
    assert load_unit(out, "lgvq", 1) is None
    assert load_unit(out, "vqgan", 0) is None
    # Saved with --no-save: a run that saves models does not reuse it.
    save_unit(out, "vqgan", 0, {"seed": 0})
    assert load_unit(out, "vqgan", 0) == {"seed": 0}
    assert load_unit(out, "vqgan", 0, need_preset=True) is None
    # A unit without result.json (killed before its end) is not finished.
    os.remove(os.path.join(folder, "result.json"))
    assert load_unit(out, "lgvq", 0) is None
    save_unit(out, "lgvq", 0, unit, recon, saver)
    assert saver.calls == 2
    other = dict(settings, train_size=64)
    check_settings(out, other, resume=False)
    assert load_unit(out, "lgvq", 0) is None
    assert not os.path.isdir(unit_dir(out, "vqgan", 0))
    assert check_settings(out, other) is True


def test_write_json_atomic_replaces_whole_file(tmp_path):
    path = str(tmp_path / "x" / "summary.json")
    write_json_atomic(path, {"a": [1, 2]})
    write_json_atomic(path, {"b": np.int64(3)})
    with open(path) as f:
        assert json.load(f) == {"b": 3}
    assert os.listdir(tmp_path / "x") == ["summary.json"]

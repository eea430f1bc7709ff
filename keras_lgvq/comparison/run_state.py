"""What a comparison keeps in `--out` so that a rerun resumes it.

Layout of `--out`:

- `comparison_settings.json`: the settings every stored result depends on
  (`budgets.result_fingerprint`). A rerun with different ones stops with a
  `ValueError` naming each differing setting, before any work.
- `<system>/seed_<s>/result.json`: one finished (system, seed): metrics,
  per-test-item scores, training log, the small arrays of its figures
  (code counts, retrieval rankings) and its durations. Written last and
  atomically (a temporary file, then `os.replace`), so it exists only
  when everything of that unit is on disk.
- `<system>/seed_<s>/reconstructions.npz`: the first 32 reconstructions
  (uint8) for the report's figure.
- `<system>/seed_<s>/preset/`: the trained model (unless `--no-save`),
  written to `preset.partial/` and renamed when complete.
- `<system>/seed_<s>/captioning.json`: the captioning task of that
  tokenizer (`keras_lgvq.comparison.captioning`), written atomically after
  `result.json`: a run killed while captioning keeps the trained tokenizer
  (its preset) and reruns only the captioners; finished captioners are
  reused.
- `<system>/seed_<s>/vqa.json`, `<system>/seed_<s>/text_to_image.json`
  (and its figure `text_to_image_samples.png`): the VQA and text-to-image
  tasks of that tokenizer, kept the same way.

A rerun with the same `--out` and settings skips every (system, seed) with
a `result.json` (and its preset, when saving), trains the rest and writes
the report over all of them; `--models lgvq` then `--models lgvq,vqgan`
trains only the VQGAN, and a run killed midway loses only the unit it was
in. `--no-resume` starts over (the stored results are deleted).
"""

import json
import os
import shutil

import numpy as np

SETTINGS_FILE = "comparison_settings.json"
RESULT_FILE = "result.json"
RECONSTRUCTIONS_FILE = "reconstructions.npz"
CAPTIONING_FILE = "captioning.json"
VQA_FILE = "vqa.json"
TEXT_TO_IMAGE_FILE = "text_to_image.json"
TEXT_TO_IMAGE_FIGURE = "text_to_image_samples.png"
# The stage-2 files of a unit: made over its tokenizer, so a retrained
# tokenizer invalidates them.
STAGE2_FILES = (CAPTIONING_FILE, VQA_FILE, TEXT_TO_IMAGE_FILE,
                TEXT_TO_IMAGE_FIGURE)


def _default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_json_atomic(path, data):
    """Write `data` as JSON to `path` through a temporary file + rename.

    A reader (or a rerun after a kill) sees either the old file or the
    complete new one, never a partial file.

    Args:
        path: str. Destination.
        data: JSON-ready data (numpy scalars and arrays are converted).

    Examples:

    ```python
    write_json_atomic("runs/x/summary.json", {"psnr": 21.5})
    ```
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.partial"
    with open(temporary, "w") as f:
        json.dump(data, f, indent=2, default=_default)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def unit_dir(out, kind, seed):
    """The folder of one (system, seed) result: `out/<kind>/seed_<seed>`.

    Args:
        out: str. The run's output folder.
        kind: str. `MODELS` key.
        seed: int.

    Examples:

    ```python
    unit_dir("runs/scenes", "lgvq", 0)   # "runs/scenes/lgvq/seed_0"
    ```
    """
    return os.path.join(out, kind, f"seed_{int(seed)}")


def _describe(value):
    return json.dumps(value, sort_keys=True, default=_default)


def check_settings(out, fingerprint, resume=True):
    """Check `out` against the settings of this run and record them.

    Args:
        out: str. The run's output folder (created).
        fingerprint: dict from `budgets.result_fingerprint`.
        resume: bool. False: start over: previous results in `out` are
            deleted and the new settings recorded.

    Returns:
        bool: whether `out` held results of the same settings.

    Raises:
        ValueError: `resume` is True and `out` holds results made with
            other settings; the message names each differing setting, both
            values, and the two ways out.

    Examples:

    ```python
    check_settings("runs/scenes", result_fingerprint(settings))
    ```
    """
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, SETTINGS_FILE)
    stored = None
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
    if stored is not None and stored != fingerprint:
        if resume:
            differences = [
                f"{key}: {_describe(stored.get(key, '<absent>'))} there, "
                f"{_describe(fingerprint.get(key, '<absent>'))} now"
                for key in sorted(set(stored) | set(fingerprint))
                if stored.get(key, "<absent>") != fingerprint.get(
                    key, "<absent>"
                )
            ]
            raise ValueError(
                f"--out {out} holds comparison results made with other "
                "settings (" + "; ".join(differences) + "). Rerun with the "
                "same settings to resume, choose another --out, or pass "
                "--no-resume to delete those results and start over."
            )
    if not resume:
        remove_results(out)
    write_json_atomic(path, fingerprint)
    return stored == fingerprint


def remove_results(out):
    """Delete every stored (system, seed) result below `out`.

    Only the `seed_<s>` folders of the system folders are removed (the
    ones `unit_dir` makes); other files in `out` are left alone.

    Args:
        out: str. The run's output folder.

    Examples:

    ```python
    remove_results("runs/scenes")   # what --no-resume does first
    ```
    """
    if not os.path.isdir(out):
        return
    for kind in os.listdir(out):
        folder = os.path.join(out, kind)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith("seed_") and os.path.isfile(
                os.path.join(folder, name, RESULT_FILE)
            ):
                shutil.rmtree(os.path.join(folder, name))


def load_unit(out, kind, seed, need_preset=False):
    """The stored result of one (system, seed), or None if not finished.

    Args:
        out: str. The run's output folder.
        kind: str. `MODELS` key.
        seed: int.
        need_preset: bool. Also require its `preset/` (a run that saves
            models retrains a unit stored with `--no-save`).

    Returns:
        The dict written by `save_unit` (with `reconstructions` loaded as
        float32 in [-1, 1] when stored), or None.

    Examples:

    ```python
    unit = load_unit("runs/scenes", "lgvq", 0)
    unit and unit["table_metrics"]["psnr"]
    ```
    """
    folder = unit_dir(out, kind, seed)
    path = os.path.join(folder, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    if need_preset and not os.path.isdir(os.path.join(folder, "preset")):
        return None
    with open(path) as f:
        unit = json.load(f)
    arrays = os.path.join(folder, RECONSTRUCTIONS_FILE)
    if os.path.isfile(arrays):
        with np.load(arrays, allow_pickle=False) as data:
            pixels = data["reconstructions"].astype("float32")
        unit["reconstructions"] = pixels / 127.5 - 1.0
    return unit


def save_unit(out, kind, seed, unit, reconstructions=None, model=None):
    """Store one finished (system, seed); `result.json` is written last.

    Args:
        out: str. The run's output folder.
        kind: str. `MODELS` key.
        seed: int.
        unit: dict. JSON-ready result (see `runner.run_unit`).
        reconstructions: float array `(N, H, W, 3)` in [-1, 1] or None.
            Kept as uint8 for the report's figure.
        model: a model with `save_to_preset`, or None (`--no-save`).

    Returns:
        str: the unit's folder.

    Examples:

    ```python
    save_unit("runs/scenes", "lgvq", 0, unit, reconstructions, model)
    ```
    """
    from keras_lgvq.visualization.plotting import to_uint8

    folder = unit_dir(out, kind, seed)
    os.makedirs(folder, exist_ok=True)
    # A result of an earlier, unfinished attempt is not valid any more.
    result = os.path.join(folder, RESULT_FILE)
    if os.path.exists(result):
        os.remove(result)
    # Nor are the stage-2 results (captions, VQA answers, generated
    # images) of the tokenizer that attempt trained.
    for name in STAGE2_FILES:
        stale = os.path.join(folder, name)
        if os.path.exists(stale):
            os.remove(stale)
    if reconstructions is not None:
        temporary = os.path.join(folder, "reconstructions.partial.npz")
        np.savez_compressed(
            temporary, reconstructions=to_uint8(reconstructions)
        )
        os.replace(temporary, os.path.join(folder, RECONSTRUCTIONS_FILE))
    if model is not None:
        partial = os.path.join(folder, "preset.partial")
        final = os.path.join(folder, "preset")
        for path in (partial, final):
            if os.path.isdir(path):
                shutil.rmtree(path)
        model.save_to_preset(partial)
        os.replace(partial, final)
    write_json_atomic(result, unit)
    return folder


def save_task_result(out, kind, seed, filename, result):
    """Store a stage-2 result of one (system, seed), atomically.

    Args:
        out: str. The run's output folder.
        kind: str. `MODELS` key.
        seed: int.
        filename: str. The file in the unit's folder (e.g. `VQA_FILE`).
        result: JSON-ready dict.

    Examples:

    ```python
    save_task_result("runs/scenes", "lgvq", 0, VQA_FILE, result)
    ```
    """
    write_json_atomic(os.path.join(unit_dir(out, kind, seed), filename),
                      result)


def load_task_result(out, kind, seed, filename):
    """A stored stage-2 result of one (system, seed), or None.

    Args:
        out: str. The run's output folder.
        kind: str. `MODELS` key.
        seed: int.
        filename: str. The file in the unit's folder.

    Examples:

    ```python
    load_task_result("runs/scenes", "lgvq", 0, VQA_FILE)
    ```
    """
    path = os.path.join(unit_dir(out, kind, seed), filename)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _task_store(filename, what, producer):
    """`save_<task>(out, kind, seed, result)` and `load_<task>(out, kind,
    seed)`: `save_task_result` / `load_task_result` of `filename`.

    Args:
        filename: str. The file in the unit's folder.
        what: str. The task, as the docstrings name it.
        producer: str. The function whose result is stored.

    Examples:

    ```python
    save_vqa, load_vqa = _task_store(VQA_FILE, "VQA", "run_vqa")
    ```
    """

    def save(out, kind, seed, result):
        save_task_result(out, kind, seed, filename, result)

    def load(out, kind, seed):
        return load_task_result(out, kind, seed, filename)

    save.__doc__ = (
        f"Store the {what} result (from `{producer}`) of one (system, "
        f"seed), atomically: `save_task_result` of `{filename}`."
    )
    load.__doc__ = (
        f"The stored {what} result of one (system, seed), or None: "
        f"`load_task_result` of `{filename}`."
    )
    return save, load


save_captioning, load_captioning = _task_store(
    CAPTIONING_FILE, "captioning",
    "keras_lgvq.comparison.captioning.run_captioning")
save_vqa, load_vqa = _task_store(
    VQA_FILE, "VQA", "keras_lgvq.comparison.vqa.run_vqa")
save_text_to_image, load_text_to_image = _task_store(
    TEXT_TO_IMAGE_FILE, "text-to-image",
    "keras_lgvq.comparison.text_to_image.run_text_to_image")

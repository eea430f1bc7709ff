"""One preset registry and one name-resolution rule for every model.

Each model family keeps its presets beside its code
(`keras_lgvq/models/<family>/<family>_presets.py`, a `PRESETS` dict and
the `PRESET_CLASSES` that can build it); this module collects them.
Every `from_preset` in the package resolves its argument the same way
(`resolve_preset`):

1. an existing directory is a preset directory in keras-hub's layout
   (`config.json` + `model.weights.h5` for the backbone, written by
   keras-hub's own saver, and `task.json` + `task.weights.h5` for the
   trainer model), loaded with trained weights;
2. a string that looks like a path (has a separator, starts with `.` or
   `~`) but is no directory raises `FileNotFoundError("no such
   directory")`;
3. anything else must be a built-in name; a wrong one lists the valid
   names for the calling class.

Built-in presets carry no weights (no public weights exist for the paper
configurations): they build the architecture, which `from_preset` returns
built, so `summary()` and `count_params()` work at once.
"""

import copy
import importlib
import json
import os

import keras

# Family modules whose `PRESETS` are registered. A new family adds its
# module here.
_FAMILY_MODULES = (
    "keras_lgvq.models.lgvq.lgvq_presets",
    "keras_lgvq.models.text_to_image.text_to_image_presets",
    "keras_lgvq.models.captioning.captioning_presets",
    "keras_lgvq.models.vqa.vqa_presets",
    "keras_lgvq.models.vqct.vqct_presets",
    "keras_lgvq.models.lqae.lqae_presets",
)

BACKBONE_CONFIG_FILE = "config.json"
BACKBONE_WEIGHTS_FILE = "model.weights.h5"
TASK_CONFIG_FILE = "task.json"
TASK_WEIGHTS_FILE = "task.weights.h5"
METADATA_FILE = "metadata.json"


def _load_registry():
    registry = {}
    for module_name in _FAMILY_MODULES:
        module = importlib.import_module(module_name)
        for name, spec in module.PRESETS.items():
            if name in registry:
                raise RuntimeError(
                    f"Preset {name!r} is defined twice ({module_name} and "
                    f"{registry[name]['module']})."
                )
            registry[name] = {
                "spec": spec,
                "classes": tuple(module.PRESET_CLASSES),
                "module": module_name,
            }
    return registry


_REGISTRY = _load_registry()
# Name -> spec, for reading (`get_preset` returns copies).
PRESETS = {name: entry["spec"] for name, entry in _REGISTRY.items()}


def list_presets(class_name=None):
    """Sorted built-in preset names, optionally those a class can build.

    Args:
        class_name: optional string, e.g. `"LGVQ"` or `"VQGANBackbone"`.

    Examples:

    ```python
    keras_lgvq.models.presets.list_presets("LGVQ")
    # ['celeba_hq', 'celeba_hq_cvq', 'cub', ...]
    ```
    """
    return sorted(
        name
        for name, entry in _REGISTRY.items()
        if class_name is None or class_name in entry["classes"]
    )


def describe_presets(class_name=None):
    """`{name: description}` of the built-in presets (of one class).

    Args:
        class_name: optional string, e.g. `"VQGAN"`.

    Examples:

    ```python
    for name, text in keras_lgvq.models.presets.describe_presets().items():
        print(name, "-", text)
    ```
    """
    return {
        name: _REGISTRY[name]["spec"].get("description", "")
        for name in list_presets(class_name)
    }


def get_preset(name, class_name=None):
    """The configuration dict of a built-in preset (a deep copy).

    Args:
        name: string. A built-in preset name.
        class_name: optional string. The class asking; a name it cannot
            build is an error naming the classes that can.

    Examples:

    ```python
    keras_lgvq.models.presets.get_preset("cub")["guidance"]
    ```
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        valid = list_presets(class_name)
        who = f" for {class_name}" if class_name else ""
        raise ValueError(
            f"Unknown preset {name!r}{who}. Valid names: {valid}; or pass "
            "a directory written by `save_to_preset`."
        )
    entry = _REGISTRY[name]
    if class_name is not None and class_name not in entry["classes"]:
        raise ValueError(
            f"Preset {name!r} cannot be built by {class_name}; it is built "
            f"by {list(entry['classes'])}. Valid names for {class_name}: "
            f"{list_presets(class_name)}."
        )
    return copy.deepcopy(entry["spec"])


def preset_classes(name):
    """The classes that can build the built-in preset `name` (a tuple).

    Args:
        name: string. A built-in preset name.

    Examples:

    ```python
    keras_lgvq.models.presets.preset_classes("scenes_lqae_trained")
    # ('LQAEBackbone', 'LQAE')
    ```
    """
    get_preset(name)  # A clear error for an unknown name.
    return _REGISTRY[name]["classes"]


def _looks_like_path(preset):
    return (
        os.sep in preset
        or (os.altsep is not None and os.altsep in preset)
        or preset.startswith((".", "~"))
    )


def resolve_preset(preset, class_name):
    """Resolves a `from_preset` argument: `("directory", path)` for a preset
    directory, `("builtin", spec)` for a built-in name.

    Args:
        preset: string or path-like. A built-in name or a local directory.
        class_name: string. The class whose `from_preset` was called.

    Raises:
        FileNotFoundError: a path that is not an existing directory.
        ValueError: an unknown name (the valid ones are listed), a
            directory without a preset config, or a remote handle.

    Examples:

    ```python
    kind, value = keras_lgvq.models.presets.resolve_preset("cub", "LGVQ")
    ```
    """
    if isinstance(preset, os.PathLike):
        preset = os.fspath(preset)
    if not isinstance(preset, str) or not preset:
        raise ValueError(
            "`preset` must be a built-in preset name or a directory path; "
            f"got {preset!r}."
        )
    if "://" in preset:
        raise ValueError(
            f"`preset`={preset!r} is a remote handle; keras_lgvq loads "
            "presets offline only: built-in names "
            f"{list_presets(class_name)} or a local directory."
        )
    expanded = os.path.expanduser(preset)
    if os.path.isdir(expanded):
        files = os.listdir(expanded)
        if BACKBONE_CONFIG_FILE not in files:
            raise ValueError(
                f"{expanded!r} is a directory but not a preset: it has no "
                f"{BACKBONE_CONFIG_FILE} (found {sorted(files)[:10]}). Write "
                "one with `model.save_to_preset(dir)`."
            )
        return "directory", expanded
    if os.path.exists(expanded):
        raise ValueError(
            f"`preset`={preset!r} is a file, not a preset directory: pass "
            "the directory `save_to_preset` wrote (a `.keras` file loads "
            "with `keras.saving.load_model`)."
        )
    if _looks_like_path(preset):
        raise FileNotFoundError(
            f"No such directory: {expanded!r}. `from_preset` takes a "
            "directory written by `save_to_preset` or a built-in name "
            f"({list_presets(class_name)})."
        )
    return "builtin", get_preset(preset, class_name)


def read_json(preset_dir, filename):
    path = os.path.join(preset_dir, filename)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: {preset_dir!r} is not a complete preset "
            "directory (write one with `model.save_to_preset(dir)`)."
        )
    with open(path) as f:
        return json.load(f)


def save_task_preset(model, preset_dir, metadata):
    """Writes a trainer model in keras-hub's preset layout.

    The backbone goes through keras-hub's own saver (`config.json`,
    `model.weights.h5`, `metadata.json`), so
    `keras_hub.models.Backbone.from_preset(dir)` reads it too; the trainer
    adds `task.json` (its config) and `task.weights.h5` (the weights not in
    the backbone: discriminator, guidance heads, text prior).

    Args:
        model: a built keras_lgvq trainer model with a `backbone`.
        preset_dir: string. Directory to create or overwrite files in.
        metadata: dict. Extra fields for `metadata.json`.
    """
    os.makedirs(preset_dir, exist_ok=True)
    model.backbone.save_to_preset(preset_dir)
    config = keras.saving.serialize_keras_object(model)
    _drop_keys(config, ("compile_config", "build_config"))
    with open(os.path.join(preset_dir, TASK_CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)
    keras.saving.save_weights(
        model,
        os.path.join(preset_dir, TASK_WEIGHTS_FILE),
        objects_to_skip=list(model.backbone._flatten_layers()),
    )
    path = os.path.join(preset_dir, METADATA_FILE)
    with open(path) as f:
        merged = json.load(f)
    merged.update(metadata)
    with open(path, "w") as f:
        json.dump(merged, f, indent=2)


def load_task_weights(model, preset_dir):
    """Loads `task.weights.h5` into everything but the backbone."""
    keras.saving.load_weights(
        model,
        os.path.join(preset_dir, TASK_WEIGHTS_FILE),
        objects_to_skip=list(model.backbone._flatten_layers()),
    )


def _drop_keys(config, keys):
    for key in keys:
        config.pop(key, None)
    for value in config.values():
        if isinstance(value, dict):
            _drop_keys(value, keys)

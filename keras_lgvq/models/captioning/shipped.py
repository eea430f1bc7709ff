"""Stage-2 models whose trained weights ship in the package (captioners,
VQA models, text-to-image generators), made by
`recipes/ship_scenes_stage2.py`.

One save / load pair serves every stage-2 model class that holds its frozen
image tokenizer as `model.tokenizer` (`Captioner`, `VQAModel`,
`TextToImage`). A shipped model is a folder
`keras_lgvq/models/<family>/trained/<name>/`:

- `task.json`: the model's Keras config with the image tokenizer left out
  (`tokenizer: null`); the tokenizer is the shipped tokenizer preset the
  model was trained on (`spec["tokenizer_preset"]`, e.g.
  `scenes_lgvq_trained`), attached when loading;
- `task.weights.h5`: the model's weights without the tokenizer's (the
  mapper, the scratch decoder over its compact vocabulary, the heads; the
  generator's transformer);
- `training.json`: command, seed, budget, backend, commit, wall / CPU time,
  the sha256 of `task.weights.h5` and the scores on fixed test scenes.

Frozen pretrained parts stay separate assets, named in the config: the
language model's tokenizer (SmolLM2's BPE, read from the offline GGUF
asset) and a text prior (MiniLM, re-read from its offline asset: a
`TextPrior` saves no variables).

A preset that ships a model has a `shipped_model` entry:
`{"name", "directory" (relative to the keras_lgvq package), "trained_by"}`.
This module keeps its old path (`keras_lgvq.models.captioning.shipped`)
because the captioning and VQA presets and tests import it from here.
"""

import json
import os

import keras

# The shipped scenes tokenizers that stage-2 models are trained on:
# (tokenizer preset, short name in the stage-2 preset names, what its codes
# are). Captioners and VQA models ship for each; text-to-image generators
# for the single-codebook ones (recipes/ship_scenes_stage2.py NOT_SHIPPED).
STAGE2_TOKENIZERS = (
    ("scenes_lgvq_trained", "lgvq", "LG-VQ codes"),
    ("scenes_vqgan_trained", "vqgan", "VQGAN codes"),
    ("scenes_cvq_lg_trained", "cvq_lg", "CVQ+LG codes"),
    ("scenes_vqct_trained", "vqct", "VQCT codes"),
    ("scenes_lqae_trained", "lqae",
     "LQAE codes: the splade-tiny LM's word pieces"),
)
SHIPPED_TASK_CONFIG_FILE = "task.json"
SHIPPED_TASK_WEIGHTS_FILE = "task.weights.h5"
SHIPPED_RECORD_FILE = "training.json"
# keras_lgvq/ (the package folder): `directory` is relative to it.
PACKAGE_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


def shipped_model_entry(family, name,
                        trained_by="recipes/ship_scenes_stage2.py"):
    """The `shipped_model` entry of a preset whose model ships in
    `keras_lgvq/models/<family>/trained/<name>/`.

    Args:
        family: str. Model family folder (`"captioning"`, `"vqa"`,
            `"text_to_image"`).
        name: str. Preset name, also the folder name.
        trained_by: str. The recipe that makes the files.

    Examples:

    ```python
    shipped_model_entry("vqa", "scenes_lgvq_vqa")["directory"]
    ```
    """
    return {
        "name": name,
        "directory": f"models/{family}/trained/{name}",
        "trained_by": trained_by,
    }


def shipped_model_dir(spec):
    """The package folder of a preset's shipped stage-2 model, or None.

    Args:
        spec: a preset dict (`keras_lgvq.models.presets.get_preset`).

    Examples:

    ```python
    spec = keras_lgvq.models.presets.get_preset("scenes_lgvq_captioner")
    shipped_model_dir(spec)  # .../models/captioning/trained/...
    ```
    """
    shipped = spec.get("shipped_model")
    if not shipped:
        return None
    return os.path.join(PACKAGE_ROOT, *shipped["directory"].split("/"))


def is_installed(spec):
    """Whether the preset's shipped model files are in the package.

    Args:
        spec: a preset dict with a `shipped_model` entry.

    Examples:

    ```python
    is_installed(get_preset("scenes_lgvq_captioner"))
    ```
    """
    directory = shipped_model_dir(spec)
    return directory is not None and all(
        os.path.isfile(os.path.join(directory, name))
        for name in (SHIPPED_TASK_CONFIG_FILE, SHIPPED_TASK_WEIGHTS_FILE,
                     SHIPPED_RECORD_FILE)
    )


def install_command(spec):
    """The command that trains and installs a preset's shipped model.

    Args:
        spec: a preset dict with a `shipped_model` entry.

    Examples:

    ```python
    install_command(get_preset("scenes_lgvq_text_to_image"))
    # 'python recipes/ship_scenes_stage2.py --task text_to_image ...'
    ```
    """
    shipped = spec["shipped_model"]
    recipe = shipped.get("trained_by", "recipes/ship_scenes_stage2.py")
    if not recipe.endswith("ship_scenes_stage2.py"):
        return f"python {recipe}"
    # `models/<family>/trained/<name>`: the family is the recipe's --task.
    family = shipped["directory"].split("/")[1]
    return (
        f"python {recipe} --task {family} --tokenizer "
        f"{spec.get('tokenizer_preset')} --out runs/ship_{shipped['name']} "
        "--install"
    )


def _require(spec):
    directory = shipped_model_dir(spec)
    name = spec["shipped_model"]["name"]
    for filename in (SHIPPED_TASK_CONFIG_FILE, SHIPPED_TASK_WEIGHTS_FILE,
                     SHIPPED_RECORD_FILE):
        path = os.path.join(directory, filename)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"The trained model of preset {name!r} is not installed: no "
                f"file {path}. It is made by `{install_command(spec)}` (see "
                "recipes/ship_scenes_stage2.py); reinstall keras-lgvq if it "
                "should be there."
            )
    return directory


def read_shipped_model_record(spec):
    """The `training.json` record of a preset's shipped model.

    Args:
        spec: a preset dict with a `shipped_model` entry.

    Examples:

    ```python
    record = read_shipped_model_record(get_preset("scenes_lgvq_captioner"))
    record["test"]["CIDEr-D"]
    ```
    """
    directory = _require(spec)
    with open(os.path.join(directory, SHIPPED_RECORD_FILE)) as f:
        return json.load(f)


def _tokenizer_layers(model):
    return [] if model.tokenizer is None else list(
        model.tokenizer._flatten_layers()
    )


def save_shipped_model(model, directory):
    """Writes `task.json` and `task.weights.h5` of a trained model (the
    image tokenizer and the optimizer state left out) into `directory`;
    returns their paths.

    Args:
        model: a trained `Captioner`, `VQAModel` or `TextToImage` (any
            model with a `tokenizer` attribute and a `tokenizer` config
            field).
        directory: str. Created if missing.

    Examples:

    ```python
    save_shipped_model(captioner, "runs/ship/captioner")
    ```
    """
    from keras_lgvq.models import presets

    os.makedirs(directory, exist_ok=True)
    config = keras.saving.serialize_keras_object(model)
    presets._drop_keys(config, ("compile_config", "build_config"))
    config["config"]["tokenizer"] = None
    config_path = os.path.join(directory, SHIPPED_TASK_CONFIG_FILE)
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)
    weights_path = os.path.join(directory, SHIPPED_TASK_WEIGHTS_FILE)
    # Nor the optimizer's state (twice the weights, for Adam).
    skip = _tokenizer_layers(model)
    if getattr(model, "optimizer", None) is not None:
        skip.append(model.optimizer)
    keras.saving.save_weights(model, weights_path, objects_to_skip=skip)
    return config_path, weights_path


def load_shipped_model(cls, spec, tokenizer=None, load_weights=True,
                       **kwargs):
    """A preset's shipped model, its tokenizer from its tokenizer preset.

    Args:
        cls: the class asked (`Captioner`, `VQAModel`, `TextToImage`); the
            shipped config must be one.
        spec: the preset dict (with `shipped_model` and `tokenizer_preset`).
        tokenizer: must be None: the weights fit the tokenizer they were
            trained on only.
        load_weights: bool. False: the same architecture, untrained.
        **kwargs: constructor arguments overriding the shipped config's
            (e.g. `max_caption_length`; `text_prior` of a TextToImage).

    Raises:
        FileNotFoundError: the model is not installed (the message names the
            recipe that makes it).
        ValueError: a `tokenizer` was passed, the config holds another
            class, or the weights file is not the recorded one.

    Examples:

    ```python
    model = load_shipped_model(Captioner, get_preset("scenes_lgvq_captioner"))
    ```
    """
    from keras_lgvq.models.text_to_image.text_to_image import load_tokenizer
    from keras_lgvq.models.vqgan.vqgan_presets import file_sha256

    name = spec["shipped_model"]["name"]
    if tokenizer is not None:
        raise ValueError(
            f"Preset {name!r} was trained on the codes of the shipped "
            f"tokenizer {spec['tokenizer_preset']!r}, which it loads itself; "
            "do not pass `tokenizer=` (train a new model for another "
            "tokenizer)."
        )
    directory = _require(spec)
    with open(os.path.join(directory, SHIPPED_TASK_CONFIG_FILE)) as f:
        config = json.load(f)
    registered = config.get("registered_name", config.get("class_name"))
    target = keras.saving.get_registered_object(registered)
    if target is None or not issubclass(target, cls):
        raise ValueError(
            f"Preset {name!r} holds a {registered}, not a {cls.__name__}."
        )
    config["config"]["tokenizer"] = load_tokenizer(spec["tokenizer_preset"])
    config["config"].update(kwargs)
    model = keras.saving.deserialize_keras_object(config)
    if not load_weights:
        return model
    path = os.path.join(directory, SHIPPED_TASK_WEIGHTS_FILE)
    expected = read_shipped_model_record(spec).get("weights_sha256")
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(
            f"{path} is not the file trained for preset {name!r} (sha256 "
            f"{actual[:12]}..., recorded {str(expected)[:12]}...): reinstall "
            "the package, restore the file from the repository, or rerun "
            "recipes/ship_scenes_stage2.py --install."
        )
    keras.saving.load_weights(model, path,
                              objects_to_skip=_tokenizer_layers(model))
    return model

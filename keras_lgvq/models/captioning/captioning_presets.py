"""Captioning presets: ClipCap's two mapper settings (arXiv 2111.09734) over
the offline SmolLM2 LM, for the CPU `scenes` tokenizer and the paper's CUB
tokenizer.

No paper weights are published: those built-in names build an untrained
mapper for the tokenizer passed to `Captioner.from_preset(name,
tokenizer=...)` (else the named tokenizer preset's architecture,
untrained). `scenes_lgvq_captioner` / `scenes_vqgan_captioner` /
`scenes_cvq_lg_captioner` / `scenes_vqct_captioner` / `scenes_lqae_captioner`
are trained scenes captioners that ship in the package once
`recipes/ship_scenes_stage2.py --install` has made them
(`keras_lgvq.models.captioning.shipped`).
"""

from keras_lgvq.models.captioning.shipped import STAGE2_TOKENIZERS
from keras_lgvq.models.captioning.shipped import shipped_model_entry

# The classes that can build these presets.
PRESET_CLASSES = ("Captioner",)


def _spec(description, tokenizer_preset, mapper, training):
    return {
        "description": description,
        "tokenizer_preset": tokenizer_preset,
        "language_model": "smollm2",
        "mapper": mapper,
        "model": dict(max_caption_length=32,
                      language_model_training="frozen"),
        "training": training,
        "paper_weights": False,
    }


_SCENES_TRAINING = dict(
    dataset="scenes", batch_size=16, learning_rate=1e-3, epochs=8
)
_CUB_TRAINING = dict(
    dataset="cub", batch_size=40, learning_rate=2e-5, epochs=10,
    warmup_steps=5000,
)

PRESETS = {
    "captioning_scenes_mlp": _spec(
        "ClipCap MLP mapper (Linear-Tanh-Linear, k=10) from the `scenes` "
        "tokenizer's 16x16 codes into frozen SmolLM2-135M; CPU-sized "
        "hidden width.",
        "scenes",
        dict(kind="mlp", prefix_length=10, hidden_dim=512),
        _SCENES_TRAINING,
    ),
    "captioning_scenes_transformer": _spec(
        "ClipCap transformer mapper (2 blocks of width 128, k=10 learned "
        "constants) from the `scenes` tokenizer's codes into frozen "
        "SmolLM2-135M.",
        "scenes",
        dict(kind="transformer", prefix_length=10, hidden_dim=128,
             num_layers=2, num_heads=4),
        _SCENES_TRAINING,
    ),
    "captioning_cub_mlp": _spec(
        "ClipCap MLP mapper (k=10, hidden (k*576)/2) over the CUB `cub` "
        "tokenizer's 16x16 codes into frozen SmolLM2-135M (the paper's "
        "ClipCap-style setting with SmolLM2 in place of GPT-2).",
        "cub",
        dict(kind="mlp", prefix_length=10, hidden_dim=2880),
        _CUB_TRAINING,
    ),
    "captioning_cub_transformer": _spec(
        "ClipCap transformer mapper (8 blocks, k=40 learned constants) over "
        "the `cub` tokenizer's codes into frozen SmolLM2-135M.",
        "cub",
        dict(kind="transformer", prefix_length=40, hidden_dim=576,
             num_layers=8, num_heads=8),
        _CUB_TRAINING,
    ),
}


def _shipped(name, tokenizer_preset, what):
    """A captioner trained by `recipes/ship_scenes_stage2.py` whose weights
    ship in the package (`keras_lgvq.models.captioning.shipped`)."""
    return {
        "description": (
            f"A trained scenes captioner over the codes of the shipped "
            f"`{tokenizer_preset}` tokenizer ({what}), loaded with no "
            "training: the measured CPU default of `captioning_downstream` "
            "(pooled mapper k = 16 into a 2-block width-256 decoder trained "
            "from scratch over a compact vocabulary of the training "
            "captions' SmolLM2 token ids; SmolLM2's tokenizer comes from "
            "the offline LM asset). Command, seed, budget and the scores "
            "on fixed test scenes: training.json next to the weights "
            "(`shipped.read_shipped_model_record`)."
        ),
        "tokenizer_preset": tokenizer_preset,
        "language_model": "smollm2",
        "shipped_model": shipped_model_entry("captioning", name),
        "paper_weights": False,
    }


for _tokenizer, _short, _what in STAGE2_TOKENIZERS:
    PRESETS[f"scenes_{_short}_captioner"] = _shipped(
        f"scenes_{_short}_captioner", _tokenizer, _what)

"""VQA presets: [image prefix ; question] through the offline SmolLM2 LM,
last hidden state into an answer classifier (the LG-VQ paper's design,
downstream-spec §3), for the CPU `scenes` tokenizer and for COCO-QA.

No paper weights are published: those built-in names build an untrained
mapper and classifier for the tokenizer passed to `VQAModel.from_preset(
name, tokenizer=...)` (else the named tokenizer preset's architecture,
untrained). `scenes_lgvq_vqa` / `scenes_vqgan_vqa` / `scenes_cvq_lg_vqa` /
`scenes_vqct_vqa` / `scenes_lqae_vqa` are trained scenes VQA models that
ship in the package once
`recipes/ship_scenes_stage2.py --install` has made them
(`keras_lgvq.models.captioning.shipped`).
"""

from keras_lgvq.datasets import scenes
from keras_lgvq.datasets.scenes_questions import NUMBER_WORDS
from keras_lgvq.models.captioning.shipped import STAGE2_TOKENIZERS
from keras_lgvq.models.captioning.shipped import shipped_model_entry

# The classes that can build these presets.
PRESET_CLASSES = ("VQAModel",)

# Every answer `scenes_questions.generate_questions` can give: colours,
# shapes (colour / shape / relation questions), sizes, counts, yes / no.
SCENES_ANSWERS = sorted(
    set(scenes.COLORS)
    | set(scenes.SHAPES)
    | set(scenes.SIZES)
    | set(NUMBER_WORDS)
    | {"yes", "no"}
)

PRESETS = {
    "scenes_vqa": {
        "description": (
            "MLP mapper (k=10, hidden 512) from the `scenes` tokenizer's "
            "16x16 codes into frozen SmolLM2-135M; classifier over the "
            f"{len(SCENES_ANSWERS)} answers of the scenes questions "
            "(`keras_lgvq.datasets.scenes_questions`). CPU-sized."
        ),
        "tokenizer_preset": "scenes",
        "language_model": "smollm2",
        "mapper": dict(kind="mlp", prefix_length=10, hidden_dim=512),
        "model": dict(max_question_length=16,
                      language_model_training="frozen"),
        "answer_vocabulary": SCENES_ANSWERS,
        "training": dict(dataset="scenes", batch_size=32,
                         learning_rate=1e-3, epochs=4),
        "paper_weights": False,
    },
    "coco_qa_vqa": {
        "description": (
            "The paper's COCO-QA setting (lgvq-spec §8, Table 9): a "
            "ClipCap transformer mapper (8 blocks of width 576, k=10 "
            "learned constants) over the 16x16 code grid of a 256 px f16 "
            "K=1024 tokenizer into frozen SmolLM2-135M (in place of the "
            "paper's GPT), last hidden state into a classifier over the "
            "training split's answers. The untrained tokenizer architecture "
            "is the `cub` VQGAN (the same f16 / K=1024 / 256 px as the "
            "paper's MS-COCO codebook); pass your trained tokenizer."
        ),
        "tokenizer_preset": "cub",
        "language_model": "smollm2",
        # The transformer mapper, not ClipCap's MLP: flattening 256 code
        # vectors of width 256 into an MLP would need a 189 M-weight layer.
        "mapper": dict(kind="transformer", prefix_length=10, hidden_dim=576,
                       num_layers=8, num_heads=8),
        "model": dict(max_question_length=32,
                      language_model_training="frozen"),
        # COCO-QA's answers come from the user's training split.
        "answer_vocabulary": None,
        "vocabulary_hint": (
            "keras_lgvq.datasets.coco_qa.answer_vocabulary(questions)"
        ),
        # Paper: 50 epochs, batch 60 (2 GPUs); its learning rate is not
        # given, ClipCap's (2e-5, 5,000 warm-up steps) is used.
        "training": dict(dataset="coco_qa", batch_size=60,
                         learning_rate=2e-5, epochs=50, warmup_steps=5000),
        "paper_weights": False,
    },
}


def _shipped(name, tokenizer_preset, what):
    """A VQA model trained by `recipes/ship_scenes_stage2.py` whose weights
    ship in the package (`keras_lgvq.models.captioning.shipped`)."""
    return {
        "description": (
            f"A trained scenes VQA model over the codes of the shipped "
            f"`{tokenizer_preset}` tokenizer ({what}), loaded with no "
            "training: recipes/vqa.py's defaults (pooled mapper k = 16 "
            "into a 2-block width-256 decoder trained from scratch over a "
            "compact vocabulary of the training questions' SmolLM2 token "
            f"ids; classifier over the {len(SCENES_ANSWERS)} scenes "
            "answers). Command, seed, budget and the accuracy on fixed "
            "test scenes: training.json next to the weights."
        ),
        "tokenizer_preset": tokenizer_preset,
        "language_model": "smollm2",
        "answer_vocabulary": SCENES_ANSWERS,
        "shipped_model": shipped_model_entry("vqa", name),
        "paper_weights": False,
    }


for _tokenizer, _short, _what in STAGE2_TOKENIZERS:
    PRESETS[f"scenes_{_short}_vqa"] = _shipped(
        f"scenes_{_short}_vqa", _tokenizer, _what)

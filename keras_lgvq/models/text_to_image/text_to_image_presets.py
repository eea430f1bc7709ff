"""Text-to-image presets: a small CPU generator for the scenes tokenizer and
the paper's VQ-Diffusion-sized transformer (LG-VQ §A.1: 19 layers, width
1024) for CelebA-HQ.

No weights are published for either; a built-in name builds the
architecture untrained. The codebook size and grid come from the tokenizer
passed to `TextToImage.from_preset(name, tokenizer=...)`, else from the
tokenizer preset named here.

`scenes_lgvq_text_to_image`, `scenes_vqgan_text_to_image` and
`scenes_cvq_lg_text_to_image` are the `text_to_image_scenes` generator
trained on the codes of the shipped scenes tokenizers
(`scenes_lgvq_trained`, `scenes_vqgan_trained`, `scenes_cvq_lg_trained`) by
`recipes/ship_scenes_stage2.py --task text_to_image`; their weights ship in
`keras_lgvq/models/text_to_image/trained/<name>/`
(`keras_lgvq.models.captioning.shipped`) and `from_preset` loads them.
"""

import copy

from keras_lgvq.models.captioning.shipped import shipped_model_entry

# The classes that can build these presets.
PRESET_CLASSES = ("TextToImageBackbone", "TextToImage")

PRESETS = {
    "text_to_image_scenes": {
        "description": (
            "Small CPU masked-token generator over the `scenes` tokenizer's "
            "16x16 grid of K=256 codes, conditioned on MiniLM token "
            "features (offline). Not a paper config: sized so that the "
            "recipe trains it in minutes on 2 cores."
        ),
        "tokenizer_preset": "scenes",
        "backbone": dict(
            num_codes=256,
            grid_size=16,
            text_dim=384,
            hidden_dim=128,
            num_layers=4,
            num_heads=4,
            intermediate_dim=256,
            dropout=0.0,
        ),
        "text": dict(text_prior="minilm", sequence_length=30),
        "model": dict(caption_dropout=0.1, mask_schedule="cosine"),
        "training": dict(
            dataset="scenes",
            batch_size=32,
            # 2e-3 (was 1e-3): with the recipe's 1000 steps, validation
            # loss 2.18 at step 800 vs 2.66 after 500 steps at 1e-3
            # (benchmarks/results/text_to_image_measurements.md).
            learning_rate=2e-3,
            weight_decay=0.01,
            warmup_steps=50,
        ),
        "sampling": dict(
            steps=12,
            guidance_scale=3.0,
            temperature=1.0,
            top_k=None,
            # Near-random decoding order (MaskGIT's 4.5 decides the
            # confident background first and leaves few objects): 10.8 vs
            # 8.2 % conditioning accuracy measured on 64 test captions.
            remask_temperature=50.0,
        ),
        "paper_weights": False,
    },
    "text_to_image_celeba_hq": {
        "description": (
            "The paper's text-to-image size (VQ-Diffusion setting, LG-VQ "
            "Appendix A.1): 19 transformer blocks of width 1024 over the "
            "16x16 grid of a K=1024 f16 VQGAN (`celeba_hq` tokenizer), "
            "cross-attending to CLIP ViT-B/32 token features. Built here as "
            "a masked-token (MaskGIT) generator; no weights."
        ),
        "tokenizer_preset": "celeba_hq",
        "backbone": dict(
            num_codes=1024,
            grid_size=16,
            text_dim=512,
            hidden_dim=1024,
            num_layers=19,
            num_heads=16,
            intermediate_dim=4096,
            dropout=0.0,
        ),
        "text": dict(
            text_prior="clip_vit_base_patch32", sequence_length=30
        ),
        "model": dict(caption_dropout=0.1, mask_schedule="cosine"),
        "training": dict(
            dataset="celeba_hq",
            batch_size=24,
            learning_rate=3e-4,
            weight_decay=0.01,
            warmup_steps=5000,
        ),
        "sampling": dict(
            steps=12,
            guidance_scale=3.0,
            temperature=1.0,
            top_k=None,
            remask_temperature=4.5,
        ),
        "paper_weights": False,
    },
}


def _shipped(name, tokenizer_preset, what):
    """The `text_to_image_scenes` generator trained on a shipped tokenizer's
    codes by `recipes/ship_scenes_stage2.py`, its weights in the package."""
    base = PRESETS["text_to_image_scenes"]
    spec = {
        key: copy.deepcopy(base[key])
        for key in ("backbone", "text", "model", "training", "sampling")
    }
    return {
        "description": (
            f"The `text_to_image_scenes` generator (4 x 128 masked-token "
            f"transformer, 0.9 M weights) trained on the codes of the "
            f"shipped `{tokenizer_preset}` tokenizer ({what}), loaded with "
            "no training; MiniLM, the text prior, comes from its offline "
            "asset. Budget: the recipe's CPU default (1,000 steps of 32 on "
            "3,000 scenes x 2 captions, about 10 CPU minutes), short of "
            "convergence: its images follow the caption only weakly. The "
            "masked-token NLL on fixed test scenes and the conditioning "
            "accuracy of the scenes judge (generated, unconditional, "
            "the tokenizer's reconstructions and shuffled-caption chance) "
            "are recorded in training.json next to the weights "
            "(`shipped.read_shipped_model_record`). The preset's `sampling` "
            "settings (remask_temperature=50) are the loaded model's "
            "sampling defaults."
        ),
        "tokenizer_preset": tokenizer_preset,
        **spec,
        "shipped_model": shipped_model_entry("text_to_image", name),
        "paper_weights": False,
    }


PRESETS["scenes_lgvq_text_to_image"] = _shipped(
    "scenes_lgvq_text_to_image", "scenes_lgvq_trained", "LG-VQ codes")
PRESETS["scenes_vqgan_text_to_image"] = _shipped(
    "scenes_vqgan_text_to_image", "scenes_vqgan_trained", "VQGAN codes")
PRESETS["scenes_cvq_lg_text_to_image"] = _shipped(
    "scenes_cvq_lg_text_to_image", "scenes_cvq_lg_trained", "CVQ+LG codes")

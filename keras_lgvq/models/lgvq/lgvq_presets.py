"""LG-VQ presets: the paper configurations (LG-VQ, NeurIPS 2024) and the
embedded CPU preset `scenes`.

No public LG-VQ weights exist: a paper preset builds the architecture and
records the training recipe (lgvq-spec §6.2); trained weights round-trip
through `save_to_preset(dir)` / `from_preset(dir)`. Each preset also
builds the matching baseline through `VQGAN.from_preset(name)` and the
bare tokenizer through `VQGANBackbone.from_preset(name)`.

Three presets ship trained weights inside the package:
`scenes_lgvq_trained` (the `scenes` LG-VQ), `scenes_vqgan_trained` (its
VQGAN baseline, same seed, batches and steps) and `scenes_cvq_lg_trained`
(the `scenes` LG-VQ with the CVQ quantizer, the main job's CVQ+LG row),
trained by `recipes/ship_scenes_tokenizers.py`; the command, budget and
measured PSNR / SSIM are in `training.json` next to the weights. The
trained VQCT is `scenes_vqct_trained` (`vqct_presets.py`).
"""

import copy

from keras_lgvq.models.vqgan.vqgan_presets import CVQ_QUANTIZER
from keras_lgvq.models.vqgan.vqgan_presets import PAPER_BACKBONE
from keras_lgvq.models.vqgan.vqgan_presets import PAPER_GAN

# The classes that can build these presets.
PRESET_CLASSES = ("VQGANBackbone", "VQGAN", "LGVQ")

# CLIP ViT-B/32 text tower (lgvq-spec §2); dims let the model be built
# before the prior is available (training from cached features).
CLIP_TEXT = dict(
    text_prior="clip_vit_base_patch32",
    text_dim=512,
    sentence_dim=512,
    vocabulary_size=49408,
    sequence_length=30,
)
PAPER_TRAINING = dict(
    batch_size=8,
    learning_rate=3.6e-5,
    beta_1=0.5,
    beta_2=0.9,
    # PyTorch's Adam default, also `VQGAN.compile`'s (Keras's is 1e-7).
    epsilon=1e-8,
    image_size=256,
    max_words=27,
)


def _paper(dataset, weights, cvq, description):
    return {
        "description": description,
        "backbone": dict(PAPER_BACKBONE),
        "quantizer": dict(CVQ_QUANTIZER) if cvq else None,
        "text": dict(CLIP_TEXT),
        "guidance": dict(zip(("alpha", "beta", "gamma"), weights)),
        "model": dict(PAPER_GAN),
        "perceptual": "lpips",
        "training": dict(PAPER_TRAINING, dataset=dataset),
        "paper_weights": False,
    }


PRESETS = {
    "cub": _paper(
        "cub", (1e-3, 1e-3, 1e-3), False,
        "LG-VQ on VQGAN f16, K=1024, CUB-200 (cub_lgvqgan.yaml).",
    ),
    "celeba_hq": _paper(
        "celeba_hq", (1e-3, 1e-2, 1e-4), False,
        "LG-VQ on VQGAN f16, K=1024, MM-CelebA-HQ (cele_lgvqgan.yaml).",
    ),
    "textcaps": _paper(
        "textcaps", (1e-3, 1e-2, 1e-4), False,
        "LG-VQ on VQGAN f16, K=1024, TextCaps (textcap_lgvq.yaml).",
    ),
    "cub_cvq": _paper(
        "cub", (1e-3, 1e-3, 1e-3), True,
        "LG-VQ on CVQ f16, K=1024, CUB-200 (cub_lgcvq.yaml).",
    ),
    "celeba_hq_cvq": _paper(
        "celeba_hq", (1e-3, 1e-2, 1e-4), True,
        "LG-VQ on CVQ f16, K=1024, MM-CelebA-HQ (cele_lgcvq.yaml).",
    ),
    "textcaps_cvq": _paper(
        "textcaps", (1e-3, 1e-2, 1e-4), True,
        "LG-VQ on CVQ f16, K=1024, TextCaps (textcap_lgcvq.yaml).",
    ),
    "scenes": {
        "description": (
            "Small CPU LG-VQ for the embedded captioned-scenes set (64 px, "
            "f=4, K=256, cosine codes) with the offline MiniLM text prior. "
            "Not a paper config: quantizer, weights and GAN start are chosen "
            "for short CPU runs, and it uses the documented fixes of the "
            "official code: symmetric GSA InfoNCE with a learnable "
            "temperature (the faithful one-way loss at tau=1 stays near "
            "log B in a short run), leak-free MTP (the decoder reads "
            "features of the *masked* caption, so the codes must carry the "
            "answer) and the MTP padding mask."
        ),
        "backbone": dict(
            resolution=64,
            ch=32,
            ch_mult=(1, 2, 2),
            num_res_blocks=1,
            attn_resolutions=(),
            z_channels=64,
            dropout=0.0,
            num_embeddings=256,
            embedding_dim=64,
            beta=0.25,
            legacy_beta=False,
        ),
        # Cosine (l2-normalised) codes: with taming's plain quantizer the
        # codebook collapses and, in a CPU-sized run, LG-VQ's reconstruction
        # stays on the mean-colour plateau (rec L1 ~0.23 after 480 steps);
        # with cosine codes it falls from step ~80. The VQGAN baseline uses
        # the same backbone.
        "quantizer": dict(beta=0.25, legacy_beta=False, l2_normalize=True),
        "text": dict(
            text_prior="minilm",
            text_dim=384,
            sentence_dim=384,
            vocabulary_size=30522,
            sequence_length=30,
            # MiniLM's [MASK] (bert-base-uncased vocabulary).
            mask_token_id=103,
        ),
        # Weights a tenth of the first scenes preset's (0.1 / 0.05 / 0.1):
        # with the fixes below the guidance gradient is far stronger (a
        # learnable logit scale starts at 1/0.07, and the leak-free MTP
        # loss depends on the codes), and at the old weights the
        # reconstruction stayed on the mean-colour plateau for all 480
        # steps of the main job (rec L1 0.229); at these weights it leaves
        # it by step ~100 (0.122 at step 240) while the InfoNCE still falls.
        "guidance": dict(
            alpha=0.01,
            beta=0.005,
            gamma=0.01,
            decoder_intermediate_dim=384,
            # The fixes (lgvq-spec §9); the paper presets keep the
            # faithful defaults.
            gsa_symmetric=True,
            gsa_learnable_temperature=True,
            mtp_leak_free=True,
            mtp_self_attention_mask=True,
        ),
        "model": dict(
            perceptual_weight=0.0,
            codebook_weight=1.0,
            disc_weight=0.8,
            disc_factor=1.0,
            disc_start=100000,
        ),
        "perceptual": None,
        "training": dict(
            dataset="scenes",
            batch_size=16,
            learning_rate=1e-3,
            beta_1=0.5,
            beta_2=0.9,
            image_size=64,
            max_words=27,
        ),
        "paper_weights": False,
    },
}


# The CVQ quantizer options the main job's CVQ rows add to the `scenes`
# quantizer (`keras_lgvq.comparison.systems`): online re-initialisation of
# rarely used codes, 'probrandom' anchors, contrastive loss.
SCENES_CVQ_QUANTIZER = dict(
    reinit="cvq",
    reinit_decay=0.99,
    anchor="probrandom",
    contrastive_weight=1.0,
)


def _shipped(name, trainer, what, quantizer=None):
    """The `scenes` preset with trained tokenizer weights in the package
    (`quantizer`: options added to the `scenes` quantizer's)."""
    spec = copy.deepcopy(PRESETS["scenes"])
    if quantizer:
        spec["quantizer"].update(quantizer)
    spec["description"] = (
        f"The `scenes` preset with trained weights that ship in the package: "
        f"{what} Loaded by `VQGANBackbone`, `VQGAN` and `LGVQ.from_preset` "
        "(`load_weights=False`: the untrained architecture). Only the "
        "tokenizer (encoder, quantizer, decoder) is trained; the guidance "
        "heads and GAN parts of a trainer built from it start fresh, and "
        "the MiniLM text prior stays the separate offline asset. Training "
        "command, seed, budget and PSNR / SSIM: training.json next to the "
        "weights (`read_shipped_record`)."
    )
    spec["shipped_weights"] = {
        "name": name,
        "directory": f"models/lgvq/trained/{name}",
        # The trainer that produced the weights (the name says it too).
        "trained_by": trainer,
    }
    return spec


PRESETS["scenes_lgvq_trained"] = _shipped(
    "scenes_lgvq_trained",
    "LGVQ",
    "the 64-px scenes tokenizer trained as an LG-VQ (language guidance "
    "with the MiniLM prior, the preset's fixes).",
)
PRESETS["scenes_vqgan_trained"] = _shipped(
    "scenes_vqgan_trained",
    "VQGAN",
    "the 64-px scenes tokenizer trained as the plain VQGAN baseline of "
    "`scenes_lgvq_trained` (same seed, initial weights, batches and "
    "steps; no language guidance, no discriminator, no LPIPS).",
)
PRESETS["scenes_cvq_lg_trained"] = _shipped(
    "scenes_cvq_lg_trained",
    "LGVQ",
    "the 64-px scenes tokenizer with the CVQ quantizer (online "
    "re-initialisation of rarely used codes from encoder features, decay "
    "0.99, 'probrandom' anchors, contrastive weight 1.0) trained as an "
    "LG-VQ: the main job's CVQ+LG row, trained like "
    "`scenes_lgvq_trained` (same seed, batches and steps).",
    quantizer=SCENES_CVQ_QUANTIZER,
)

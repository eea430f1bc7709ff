"""VQCT presets: the paper configurations (VQCT, CVPR 2024; vqct-spec §1.5),
the CPU preset `scenes_vqct` and VQCT+LG `scenes_vqct_lg`.

A VQCT codebook is computed from a language prior, so every preset names
one (`prior`): `scenes_vqct` ships its prior inside the package
(`keras_lgvq/priors/data/scenes_vqct/`, built from the scenes captions
with MiniLM; the command is in `BUILD_COMMAND.txt` there). The paper
presets need the paper's prior (CUB + Oxford-102 + COCO captions, CLIP
ViT-B/32 word vectors), which no one can download: building them without
it raises a `FileNotFoundError` that names the missing file and the
command that builds it into the keras_lgvq cache (or pass `prior=`).
No public VQCT weights exist: the paper presets build untrained models.
`scenes_vqct_trained` is `scenes_vqct` with trained weights that ship in
the package (`keras_lgvq/models/vqct/trained/`, made by
`recipes/ship_scenes_tokenizers.py --model vqct`; command, budget and
PSNR / SSIM in `training.json` next to them).

`VQCTBackbone.from_preset(name)` builds the tokenizer, `VQCT.from_preset`
the trainer, `VQCTLG.from_preset("scenes_vqct_lg")` VQCT+LG; the same
names build the same models through `VQGANBackbone`, `VQGAN` and `LGVQ`
(each spec's `backbone_class` picks the tokenizer).
"""

import copy

from keras_lgvq.models.lgvq.lgvq_presets import PRESETS as _LGVQ_PRESETS
from keras_lgvq.models.vqgan.vqgan_presets import PAPER_BACKBONE
from keras_lgvq.models.vqgan.vqgan_presets import PAPER_GAN

_LGVQ_SCENES = _LGVQ_PRESETS["scenes"]

# The classes that can build these presets. Every spec names its
# tokenizer class (`backbone_class`), so the VQGAN family's classes build
# them as well: `VQGAN` / `VQCT` train VQCT, `LGVQ` / `VQCTLG` train VQCT+LG
# (presets with a `guidance` entry), `VQGANBackbone` / `VQCTBackbone`
# build the tokenizer.
PRESET_CLASSES = (
    "VQGANBackbone",
    "VQCTBackbone",
    "VQGAN",
    "VQCT",
    "LGVQ",
    "VQCTLG",
)
BACKBONE_CLASS = "VQCTBackbone"

# The taming f16 architecture without the learned codebook's fields.
_PAPER_ARCHITECTURE = {
    key: value
    for key, value in PAPER_BACKBONE.items()
    if key not in ("num_embeddings", "embedding_dim", "beta", "legacy_beta")
}
# vqct_VectorQuantizer3 (vqct-spec §1.2, §2.2): a 512-d latent in two
# 256-d halves, top-2 adjective mean, legacy beta, GCN 512 -> 256 -> 256
# with dropout 0.5, and the official node collision (a word that is both
# an adjective and a noun is one node, the noun's).
_PAPER_QUANTIZER = dict(
    embedding_dim=512,
    hidden_dim=256,
    top_k=2,
    beta=0.25,
    legacy_beta=True,
    dropout=0.5,
    official_collision=True,
)
_PAPER_PRIOR = dict(
    name="paper_clip",
    packaged=False,
    build=(
        "python -m keras_lgvq.priors.vqct --captions <CUB text/ dir> "
        "<Oxford-102 text_c10/ dir> <COCO captions_train2014.json> "
        "<COCO captions_val2014.json> --text-prior <local CLIP ViT-B/32 "
        "directory> --out {out}   (or, with the official prior: python -m "
        "keras_lgvq.priors.vqct --official big_nlp_word_knowledge_clip.pkl "
        "--out {out})"
    ),
)


def _paper(dataset, batch_size, learning_rate, description):
    return {
        "description": description,
        "backbone_class": BACKBONE_CLASS,
        "backbone": dict(_PAPER_ARCHITECTURE),
        "quantizer": dict(_PAPER_QUANTIZER),
        "prior": dict(_PAPER_PRIOR),
        "model": dict(PAPER_GAN),
        "perceptual": "lpips",
        # train_net.py: lr = 4.5e-6 x batch x 2 GPUs, Adam (0.5, 0.9).
        "training": dict(
            dataset=dataset,
            batch_size=batch_size,
            learning_rate=learning_rate,
            beta_1=0.5,
            beta_2=0.9,
            image_size=256,
            epochs=500,
        ),
        "paper_weights": False,
    }


_SCENES_BACKBONE = dict(
    resolution=64,
    ch=32,
    ch_mult=(1, 2, 2),
    num_res_blocks=1,
    attn_resolutions=(),
    z_channels=64,
    dropout=0.0,
)
# The fixes of vqct-spec §5: corrected beta placement, no GCN dropout (the
# training codebook is the evaluation codebook), one node per adjective and
# per noun (no collision).
_SCENES_QUANTIZER = dict(
    embedding_dim=64,
    hidden_dim=32,
    top_k=2,
    beta=0.25,
    legacy_beta=False,
    dropout=0.0,
    official_collision=False,
)
_SCENES_PRIOR = dict(
    name="scenes_vqct",
    packaged=True,
    build=(
        "python -m keras_lgvq.priors.vqct --captions scenes --text-prior "
        "minilm --out {out}"
    ),
)
_SCENES_MODEL = dict(
    perceptual_weight=0.0,
    codebook_weight=1.0,
    disc_weight=0.8,
    disc_factor=1.0,
    disc_start=100000,
)
_SCENES_TRAINING = dict(
    dataset="scenes",
    batch_size=16,
    learning_rate=1e-3,
    beta_1=0.5,
    beta_2=0.9,
    image_size=64,
    max_words=27,
)
_SCENES_NOTE = (
    "Not a paper config: sizes, weights and GAN start are chosen for short "
    "CPU runs, and it uses the fixes of the official quantizer (corrected "
    "beta placement, no GCN dropout so training and evaluation share one "
    "codebook, no adjective/noun node collision). Prior: the packaged "
    "scenes prior (46 adjectives, 52 nouns, MiniLM word vectors)."
)

PRESETS = {
    "cub_vqct": _paper(
        "cub", 1, 9e-6,
        "VQCT on VQGAN f16 (512-d latent, top-2 adjectives + noun, GCN "
        "codebook), CUB-200 (cub_vqct.yaml). Needs the paper prior "
        "(CLIP ViT-B/32 words from CUB, Oxford-102 and COCO captions).",
    ),
    "coco_vqct": _paper(
        "coco", 8, 7.2e-5,
        "VQCT on VQGAN f16 (512-d latent, top-2 adjectives + noun, GCN "
        "codebook), MS-COCO 2014 (coco_vqct.yaml). Needs the paper prior.",
    ),
    "ade20k_vqct": _paper(
        "ade20k", 8, 7.2e-5,
        "VQCT on VQGAN f16 (512-d latent, top-2 adjectives + noun, GCN "
        "codebook), ADE20K (ade20k_vqct.yaml). Needs the paper prior.",
    ),
    "scenes_vqct": {
        "description": (
            "Small CPU VQCT for the embedded captioned-scenes set (64 px, "
            "f=4, 64-d latent in two 32-d halves). " + _SCENES_NOTE
        ),
        "backbone_class": BACKBONE_CLASS,
        "backbone": dict(_SCENES_BACKBONE),
        "quantizer": dict(_SCENES_QUANTIZER),
        "prior": dict(_SCENES_PRIOR),
        "model": dict(_SCENES_MODEL),
        "perceptual": None,
        "training": dict(_SCENES_TRAINING),
        "paper_weights": False,
    },
    "scenes_vqct_lg": {
        "description": (
            "VQCT+LG: `scenes_vqct` with LG-VQ's language guidance on its "
            "latent and the offline MiniLM text prior, with the `scenes` "
            "LG-VQ preset's guidance: its weights and its fixes (symmetric "
            "GSA, learnable temperature, leak-free MTP, padding mask; not "
            "a paper preset). " + _SCENES_NOTE
        ),
        "backbone_class": BACKBONE_CLASS,
        "backbone": dict(_SCENES_BACKBONE),
        "quantizer": dict(_SCENES_QUANTIZER),
        "prior": dict(_SCENES_PRIOR),
        # The `scenes` LG-VQ preset's text and guidance, fixes included
        # (symmetric GSA with a learnable temperature, leak-free MTP with
        # the padding mask, weights a tenth), so VQCT+LG and LG-VQ rows of
        # the main job differ only in the quantizer.
        "text": dict(_LGVQ_SCENES["text"]),
        "guidance": dict(_LGVQ_SCENES["guidance"]),
        "model": dict(_SCENES_MODEL),
        "perceptual": None,
        "training": dict(_SCENES_TRAINING),
        "paper_weights": False,
    },
}

PRESETS["scenes_vqct_trained"] = copy.deepcopy(PRESETS["scenes_vqct"])
PRESETS["scenes_vqct_trained"]["description"] = (
    "The `scenes_vqct` preset with trained weights that ship in the "
    "package: the 64-px scenes VQCT (GCN codebook from the packaged scenes "
    "prior), trained like `scenes_vqgan_trained` (same seed, batches, steps "
    "and learning rate; no discriminator, no LPIPS; the main job's VQCT "
    "row). Loaded by `VQCTBackbone`, `VQCT` and `VQGANBackbone.from_preset` "
    "(`load_weights=False`: the untrained architecture). Only the "
    "tokenizer is trained; the GAN parts of a trainer built from it start "
    "fresh. Training command, seed, budget and PSNR / SSIM: training.json "
    "next to the weights (`read_shipped_record`)."
)
PRESETS["scenes_vqct_trained"]["shipped_weights"] = {
    "name": "scenes_vqct_trained",
    "directory": "models/vqct/trained/scenes_vqct_trained",
    "trained_by": "VQCT",
}

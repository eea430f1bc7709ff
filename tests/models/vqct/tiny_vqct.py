"""Tiny VQCT pieces shared by the VQCT tests (32 px, a 6 + 5 word prior)."""

import numpy as np

from keras_lgvq.layers.quantizers.vqct_quantizer import VQCTQuantizer
from keras_lgvq.models.vqct.vqct_backbone import VQCTBackbone
from keras_lgvq.priors import VQCTPrior

ADJECTIVES = ["red", "blue", "small", "big", "round", "dark"]
NOUNS = ["circle", "square", "star", "line", "red"]  # "red" is both
TOP_K = 2
LATENT = 16  # two 8-d halves
ARCH = dict(
    resolution=32,
    ch=32,
    ch_mult=(1, 2),
    num_res_blocks=1,
    attn_resolutions=(16,),
    z_channels=32,
)


def tiny_prior(width=8, seed=0):
    """A synthetic prior: random word vectors, a fixed bigram list."""
    rng = np.random.default_rng(seed)
    edges = [
        ("red", "circle"),
        ("red", "circle"),
        ("blue", "square"),
        ("small", "star"),
        ("big", "circle"),
        ("round", "line"),
        ("dark", "red"),
        ("small", "square"),
    ]
    return VQCTPrior(
        ADJECTIVES,
        NOUNS,
        rng.normal(size=(len(ADJECTIVES), width)).astype("float32"),
        rng.normal(size=(len(NOUNS), width)).astype("float32"),
        {w: 20 for w in ADJECTIVES},
        {w: 20 for w in NOUNS},
        edges,
        metadata={"text_prior": "synthetic"},
    )


def tiny_vqct_backbone(prior=None, dropout=0.0, **overrides):
    quantizer = VQCTQuantizer.from_prior(
        prior or tiny_prior(),
        embedding_dim=LATENT,
        hidden_dim=8,
        top_k=TOP_K,
        legacy_beta=False,
        dropout=dropout,
        seed=0,
        name="quantizer",
    )
    return VQCTBackbone(quantizer, **{**ARCH, **overrides})

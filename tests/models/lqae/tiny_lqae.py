"""Tiny LQAE configurations shared by the LQAE tests (32 px, patch 8)."""

import numpy as np

from keras_lgvq.language_models.masked_lm import MaskedLanguageModel
from keras_lgvq.models import LQAEBackbone

VOCABULARY = 64
WIDTH = 32
TINY_VIT = dict(
    image_size=32,
    patch_size=8,
    hidden_dim=WIDTH,
    encoder_num_layers=1,
    encoder_num_heads=2,
    decoder_num_layers=1,
    decoder_num_heads=2,
    intermediate_dim=64,
)


def tiny_language_model(hidden_dim=WIDTH, seed=0, has_pretrained_head=True):
    """A random 1-layer BERT (real architecture) with a 64-token vocabulary."""
    return MaskedLanguageModel.random(
        vocabulary_size=VOCABULARY,
        hidden_dim=hidden_dim,
        num_layers=1,
        num_heads=2,
        intermediate_dim=64,
        max_sequence_length=32,
        seed=seed,
        has_pretrained_head=has_pretrained_head,
        name="language_model",
    )


def tiny_backbone(language_model=None, **overrides):
    args = dict(TINY_VIT)
    args.update(overrides)
    if language_model is None and "quantizer" not in args:
        language_model = tiny_language_model()
    return LQAEBackbone(language_model=language_model, **args)


def tiny_images(batch=4, seed=0):
    """Smooth colour patterns in [-1, 1] (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 32))
    images = []
    for _ in range(batch):
        a, b, c = rng.uniform(-1, 1, size=3)
        image = np.stack(
            [a * xx, b * yy, c * (xx + yy) / 2], axis=-1
        )
        images.append(image)
    return np.clip(np.asarray(images, "float32"), -1.0, 1.0)

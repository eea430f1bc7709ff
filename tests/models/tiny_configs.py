"""Tiny configurations shared by the model tests (32 px, few channels)."""

import numpy as np

from keras_lgvq.layers.patch_discriminator import PatchDiscriminator

TINY_BACKBONE = dict(
    resolution=32,
    ch=32,
    ch_mult=(1, 2),
    num_res_blocks=1,
    attn_resolutions=(16,),
    z_channels=32,
    num_embeddings=32,
    embedding_dim=16,
)


def tiny_backbone(**overrides):
    from keras_lgvq.models.vqgan_backbone import VQGANBackbone

    return VQGANBackbone(**{**TINY_BACKBONE, **overrides})


def tiny_discriminator():
    return PatchDiscriminator(ndf=8, n_layers=2, name="discriminator")


def tiny_vqgan(**overrides):
    from keras_lgvq.models.vqgan import VQGAN

    kwargs = dict(
        backbone=tiny_backbone(),
        discriminator=tiny_discriminator(),
        disc_start=0,
    )
    kwargs.update(overrides)
    return VQGAN(**kwargs)


def tiny_images(n=8, size=32, seed=0):
    """Smooth colour blobs in [-1, 1]: easy to reconstruct, not constant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.2, 0.8, 3)
        colour = rng.uniform(-1, 1, 3)
        background = rng.uniform(-1, 1, 3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < (r * 0.5) ** 2)[..., None]
        images.append(np.where(mask, colour, background))
    return np.asarray(images, "float32")

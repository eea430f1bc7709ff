"""Tiny configurations shared by the model tests (32 px, few channels)."""

import numpy as np

from keras_lgvq.layers.vqgan.patch_discriminator import PatchDiscriminator

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
    from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

    return VQGANBackbone(**{**TINY_BACKBONE, **overrides})


def tiny_discriminator():
    return PatchDiscriminator(ndf=8, n_layers=2, name="discriminator")


def tiny_vqgan(**overrides):
    from keras_lgvq.models.vqgan.vqgan import VQGAN

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


TINY_TEXT = dict(text_dim=32, sentence_dim=32, vocabulary_size=40, sequence_length=8)
SOT, EOT = 1, 2


def tiny_lgvq(**overrides):
    """A tiny LG-VQ that trains from cached text features (no encoder)."""
    from keras_lgvq.models.lgvq.lgvq import LGVQ

    kwargs = dict(
        backbone=tiny_backbone(),
        discriminator=tiny_discriminator(),
        disc_start=0,
        text_prior=None,
        guidance=dict(
            alpha=1.0,
            beta=1.0,
            gamma=1.0,
            decoder_intermediate_dim=32,
            seed=0,
        ),
        **TINY_TEXT,
    )
    kwargs.update(overrides)
    model = LGVQ(**kwargs)
    rng = np.random.default_rng(1)
    model.set_token_embeddings(
        rng.normal(size=(TINY_TEXT["vocabulary_size"], 32)).astype("float32")
    )
    return model


def tiny_text_batch(n=8, seed=0):
    """Cached-feature captions tied to `tiny_images(n, seed=seed)`.

    Each caption names two attributes of its image (quantised colour of the
    blob and of the background) as tokens, so the text is predictable from
    the image and distinct across images.
    """
    images = tiny_images(n, seed=seed)
    table = np.random.default_rng(7).normal(size=(40, 32)).astype("float32")
    length = TINY_TEXT["sequence_length"]
    token_ids = np.zeros((n, length), "int32")
    for i, image in enumerate(images):
        centre = image[16, 16]
        corner = image[0, 0]
        words = [
            3 + int(np.argmax(centre)),
            6 + int(np.argmax(corner)),
            9 + int(centre[0] > 0) + 2 * int(centre[1] > 0),
            13 + int(corner[2] > 0),
        ]
        token_ids[i, : len(words) + 2] = [SOT] + words + [EOT]
    padding_mask = token_ids > 0
    token_features = table[token_ids] * padding_mask[..., None]
    sentence = token_features.sum(1) / padding_mask.sum(1, keepdims=True)
    sentence /= np.linalg.norm(sentence, axis=-1, keepdims=True)
    return {
        "images": images,
        "token_ids": token_ids,
        "padding_mask": padding_mask,
        "token_features": token_features,
        "sentence_feature": sentence.astype("float32"),
    }

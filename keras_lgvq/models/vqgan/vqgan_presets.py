"""VQGAN / CVQ configurations shared by every family built on the taming
VQGAN (LG-VQ, and later VQCT): backbone, quantizer and GAN settings.

The named presets that use them live with the family that trains them
(`keras_lgvq/models/lgvq/lgvq_presets.py`); `VQGANBackbone`, `VQGAN` and
`LGVQ` all resolve those names through `keras_lgvq.models.presets`, so
`VQGAN.from_preset("cub")` is the VQGAN baseline of the `cub` LG-VQ
preset: the same backbone, quantizer and GAN recipe without guidance.
"""

# taming VQGAN f16 (lgvq-spec §1.1).
PAPER_BACKBONE = dict(
    resolution=256,
    ch=128,
    ch_mult=(1, 1, 2, 2, 4),
    num_res_blocks=2,
    attn_resolutions=(16,),
    z_channels=256,
    dropout=0.0,
    num_embeddings=1024,
    embedding_dim=256,
    beta=0.25,
    legacy_beta=True,
)
# CVQ quantizer (lgvq-spec §1.3): corrected beta, online re-init, contrastive.
CVQ_QUANTIZER = dict(
    beta=0.25,
    legacy_beta=False,
    reinit="cvq",
    reinit_decay=0.99,
    anchor="probrandom",
    contrastive_weight=1.0,
)
PAPER_GAN = dict(
    perceptual_weight=1.0,
    codebook_weight=1.0,
    disc_weight=0.8,
    disc_factor=1.0,
    disc_start=10000,
)

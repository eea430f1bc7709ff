"""Configurations, model builders and data shared by the training and
step-profile benchmarks.

Configs (every one records its exact architecture in the benchmark JSON):

- `tiny`: the `scenes` preset (64 px, f=4, K=256, D=64, cosine codes),
  batch 16, no LPIPS.
- `small`: the `scenes` preset at 128 px, f=8 (ch 64, mult 1-2-2-4), K=512,
  D=64, batch 8, no LPIPS.
- `paper`: the `cub` preset (256 px, f=16, K=1024, D=256) with LPIPS,
  batch 1 on CPU. Its prior (CLIP ViT-B/32) is not an offline asset, so
  LG-VQ reads cached random features of CLIP's dimensions (512 / 49408)
  and there is no on-the-fly kind.
- `official_tiny`: the "official tiny" of issue 17: the official VQGAN
  recipe (the `cub` preset: taming's plain quantizer with legacy beta,
  the paper's LG-VQ loss weights and faithful guidance) scaled to 64 px:
  ch 64, ch_mult (1, 2, 2, 4) (f8, 8x8 grid), num_res_blocks 2 as the
  official VQGAN, attention at the 16-px level (the official
  `attn_resolutions [16]`), z / code dim 256, K=512; batch 8; LPIPS on
  (real heads, random VGG16 when the ImageNet weights are not on disk: the
  same cost); discriminator and adaptive weight active from step 0
  (`disc_start=0`); the MiniLM prior on scenes captions at 64 px.
- `scenes`: the README main job, `VQGAN/LGVQ.from_preset("scenes")` as it
  is (MiniLM, leak-free MTP, `disc_start=100000`, so `fit` runs the
  GAN-off step), batch 16.

Model kinds: `vqgan`; `lgvq_cached` (text features precomputed by the
prior and read from the batch; a leak-free MTP, as in `scenes`, still runs
the prior once per step on the masked caption); `lgvq_fly` (the prior runs
in the step on the caption); `lgvq_fly_vocab` (`lgvq_fly` with the MTP
softmax restricted to the token ids of the benchmark's captions,
`guidance=dict(mtp_vocabulary_subset=...)`: the documented approximation,
off in every preset; run only when named in `--kinds`).
"""

import numpy as np

# Backbone / quantizer fields of the official tiny, as `from_preset`
# overrides of the `cub` preset.
OFFICIAL_TINY_BACKBONE = dict(
    resolution=64,
    ch=64,
    ch_mult=(1, 2, 2, 4),
    num_res_blocks=2,
    attn_resolutions=(16,),
    z_channels=256,
    num_embeddings=512,
    embedding_dim=256,
)

CONFIGS = {
    "tiny": dict(
        preset="scenes",
        overrides={},
        batch_size=16,
        warmup=2,
        steps=6,
        lpips=False,
        disc_start=None,
        prior="minilm",
    ),
    "small": dict(
        preset="scenes",
        overrides=dict(
            resolution=128,
            ch=64,
            ch_mult=(1, 2, 2, 4),
            num_res_blocks=1,
            attn_resolutions=(),
            z_channels=64,
            num_embeddings=512,
            embedding_dim=64,
        ),
        batch_size=8,
        warmup=1,
        steps=4,
        lpips=False,
        disc_start=None,
        prior="minilm",
    ),
    "paper": dict(
        preset="cub",
        overrides={},
        batch_size=1,
        warmup=1,
        steps=2,
        lpips=True,
        disc_start=None,
        # CLIP is not offline: cached random features of its dimensions.
        prior=None,
        text=dict(text_dim=512, sentence_dim=512, vocabulary_size=49408),
    ),
    "official_tiny": dict(
        preset="cub",
        overrides=dict(OFFICIAL_TINY_BACKBONE),
        batch_size=8,
        warmup=4,
        steps=8,
        lpips=True,
        disc_start=0,
        prior="minilm",
    ),
    "scenes": dict(
        preset="scenes",
        overrides={},
        batch_size=16,
        warmup=2,
        steps=6,
        lpips=False,
        disc_start=None,
        prior="minilm",
    ),
}
KINDS = ("vqgan", "lgvq_cached", "lgvq_fly", "lgvq_fly_vocab")
# What runs when no kinds are named (and in interleaved / FLOP runs).
DEFAULT_KINDS = ("vqgan", "lgvq_cached", "lgvq_fly")
SEQUENCE_LENGTH = 30
# `lgvq_fly_vocab` restricts its MTP softmax to the token ids of every
# caption of the first this-many scenes examples; the benchmark data must
# stay inside them (a caption token outside the subset makes the loss NaN).
VOCABULARY_EXAMPLES = 512


def check_config(name):
    if name not in CONFIGS:
        raise ValueError(
            f"Unknown config {name!r}; choose from {sorted(CONFIGS)}."
        )
    return dict(CONFIGS[name])


def kinds_for(config, kinds=DEFAULT_KINDS):
    """The model kinds of `kinds` a config can run (no on-the-fly prior
    offline for the paper config)."""
    if config["prior"] is None:
        return tuple(k for k in kinds if k in ("vqgan", "lgvq_cached"))
    return tuple(kinds)


def gan_skipped_at_start(config, disc_start="config"):
    """Whether `fit`'s first step skips the GAN (before `disc_start`)."""
    from keras_lgvq.models.presets import get_preset

    start = config["disc_start"] if disc_start == "config" else disc_start
    if start is None:
        start = get_preset(config["preset"])["model"]["disc_start"]
    return start > 0


def describe(config, model):
    """The exact configuration a run measured, for the JSON."""
    backbone = model.backbone
    quantizer = backbone.quantizer.get_config()
    out = {
        "preset": config["preset"],
        "overrides": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in config["overrides"].items()
        },
        "batch_size": config["batch_size"],
        "warmup_steps": config["warmup"],
        "timed_steps": config["steps"],
        "resolution": backbone.resolution,
        "ch": backbone.ch,
        "ch_mult": list(backbone.ch_mult),
        "num_res_blocks": backbone.num_res_blocks,
        "attn_resolutions": list(backbone.attn_resolutions),
        "z_channels": backbone.z_channels,
        "code_grid": backbone.grid_size,
        "codebook_size": backbone.num_embeddings,
        "code_dim": backbone.embedding_dim,
        "quantizer_l2_normalize": bool(quantizer.get("l2_normalize", False)),
        "legacy_beta": bool(quantizer.get("legacy_beta", False)),
        "perceptual_loss": model.perceptual_loss is not None,
        "discriminator": model.discriminator is not None,
        "disc_start": model.disc_start,
        "adaptive_disc_weight": model.adaptive_disc_weight,
        "gan_active_at_step_0": bool(
            model.discriminator is not None
            and not model._gan_phase_for(0, 1)
            and model.disc_factor != 0.0
        ),
    }
    guidance = getattr(model, "guidance", None)
    if guidance is not None:
        out["text_prior"] = (
            None
            if model.text_prior is None
            else type(model.text_prior).__name__
        )
        out["vocabulary_size"] = model.vocabulary_size
        out["text_dim"] = model.text_dim
        out["mtp_leak_free"] = guidance.mtp_leak_free
        out["guidance_weights"] = [
            guidance.alpha,
            guidance.beta,
            guidance.gamma,
        ]
    return out


def load_prior():
    from keras_lgvq import text_priors

    return text_priors.get("minilm", sequence_length=SEQUENCE_LENGTH)


def _lpips(notes):
    from keras_lgvq.losses.lpips import LPIPS

    lpips = LPIPS(allow_random_backbone=True)
    if lpips.random_backbone:
        notes.append(
            "LPIPS with a random VGG16 backbone (ImageNet weights not on "
            "disk); same cost as the real one."
        )
    return lpips


def build_model(config, kind, prior=None, disc_start="config"):
    """A VQGAN or LG-VQ of `config`, built, untrained. Returns (model,
    notes).

    Args:
        config: a dict of `CONFIGS`.
        kind: one of `KINDS`.
        prior: the MiniLM prior (shared between models of one process), or
            None for the paper config's cached random features.
        disc_start: "config" (the config's value, None = the preset's) or
            an int override.
    """
    from keras_lgvq.models.lgvq.lgvq import LGVQ
    from keras_lgvq.models.vqgan.vqgan import VQGAN

    if kind not in KINDS:
        raise ValueError(f"Unknown model kind {kind!r}; choose from {KINDS}.")
    notes = []
    kwargs = dict(config["overrides"])
    kwargs["perceptual_loss"] = _lpips(notes) if config["lpips"] else None
    start = config["disc_start"] if disc_start == "config" else disc_start
    if start is not None:
        kwargs["disc_start"] = start
    if kind == "vqgan":
        model = VQGAN.from_preset(
            config["preset"], load_weights=False, **kwargs
        )
    elif config["prior"] is None:
        if kind == "lgvq_fly":
            raise ValueError(
                f"Config with preset {config['preset']!r} has no offline "
                "text prior: only kinds 'vqgan' and 'lgvq_cached' run."
            )
        model = LGVQ.from_preset(
            config["preset"], load_weights=False, text_prior=None, **kwargs
        )
        rng = np.random.default_rng(0)
        model.set_token_embeddings(
            rng.normal(
                0, 0.05, (model.vocabulary_size, model.text_dim)
            ).astype("float32")
        )
        notes.append(
            "LG-VQ reads cached random text features of the preset prior's "
            "dimensions (the prior is not an offline asset)."
        )
    else:
        if prior is None:
            raise ValueError("`prior` is required for this config's LG-VQ.")
        if kind == "lgvq_fly_vocab":
            ids = _caption_vocabulary(config, prior)
            kwargs["guidance"] = dict(mtp_vocabulary_subset=ids)
            notes.append(
                f"MTP softmax over the {len(ids)} token ids of the captions "
                f"of the first {VOCABULARY_EXAMPLES} scenes examples (an "
                "approximation, off in every preset)."
            )
        model = LGVQ.from_preset(
            config["preset"], load_weights=False, text_prior=prior, **kwargs
        )
    model.build()
    return model, notes


def _caption_vocabulary(config, prior):
    from keras_lgvq.datasets.scenes import generate_example
    from keras_lgvq.utils.caption_vocabulary import caption_token_ids

    captions = []
    for i in range(VOCABULARY_EXAMPLES):
        example = generate_example(i, seed=0, image_size=_resolution(config))
        captions.extend(example["captions"])
    return caption_token_ids(captions, tokenizer=prior)


def _resolution(config):
    res = config.get("overrides", {}).get("resolution")
    if res is None:
        from keras_lgvq.models.presets import get_preset

        res = get_preset(config["preset"])["backbone"]["resolution"]
    return res


class BenchmarkData:
    """Images and captions of the scenes set at the config's resolution,
    tokenized and encoded once by the prior (or random features of the
    config's `text` dimensions when it has no prior; images only when
    there is neither, for the VQGAN).

    `batch(kind, n)` gives the arrays a model kind trains on (first `n`
    examples).
    """

    def __init__(self, config, num_examples, prior=None, seed=0):
        from keras import ops

        from keras_lgvq.datasets.scenes import generate_example

        res = _resolution(config)
        images, captions = [], []
        for i in range(num_examples):
            example = generate_example(i, seed=seed, image_size=res)
            images.append(example["image"].astype("float32") / 127.5 - 1.0)
            captions.append(example["captions"][i % len(example["captions"])])
        self.images = np.stack(images)
        self.captions = captions
        self.arrays = {}
        if prior is not None:
            ids, mask = prior.tokenize(captions)
            self.arrays["token_ids"] = np.asarray(
                ops.convert_to_numpy(ids), "int32"
            )
            self.arrays["padding_mask"] = np.asarray(
                ops.convert_to_numpy(mask), bool
            )
            feats, sents = [], []
            for start in range(0, num_examples, 16):
                out = prior(ids[start : start + 16], mask[start : start + 16])
                feats.append(ops.convert_to_numpy(out["token_features"]))
                sents.append(ops.convert_to_numpy(out["sentence_feature"]))
            self.arrays["token_features"] = np.concatenate(feats).astype(
                "float32"
            )
            self.arrays["sentence_feature"] = np.concatenate(sents).astype(
                "float32"
            )
        elif "text" in config:
            text = config["text"]
            rng = np.random.default_rng(seed)
            lengths = rng.integers(6, SEQUENCE_LENGTH - 2, num_examples)
            pad = np.arange(SEQUENCE_LENGTH)[None, :] < lengths[:, None]
            ids = rng.integers(1000, 2000, (num_examples, SEQUENCE_LENGTH))
            feats = rng.normal(
                size=(num_examples, SEQUENCE_LENGTH, text["text_dim"])
            )
            sentence = rng.normal(size=(num_examples, text["sentence_dim"]))
            sentence /= np.linalg.norm(sentence, axis=1, keepdims=True)
            self.arrays.update(
                token_ids=(ids * pad).astype("int32"),
                padding_mask=pad,
                token_features=(feats * pad[..., None]).astype("float32"),
                sentence_feature=sentence.astype("float32"),
            )

    def batch(self, kind, n=None):
        n = len(self.images) if n is None else n
        if kind != "vqgan" and not self.arrays:
            raise ValueError(
                "This data was built without a text prior and the config "
                f"has no cached-feature dimensions: only 'vqgan' runs, not "
                f"{kind!r}."
            )
        if kind == "lgvq_fly_vocab" and n > VOCABULARY_EXAMPLES:
            raise ValueError(
                f"`lgvq_fly_vocab` trains on at most {VOCABULARY_EXAMPLES} "
                f"examples (its MTP vocabulary); asked for n={n}."
            )
        data = {"images": self.images[:n]}
        if kind != "vqgan":
            data["token_ids"] = self.arrays["token_ids"][:n]
            data["padding_mask"] = self.arrays["padding_mask"][:n]
        if kind == "lgvq_cached":
            data["token_features"] = self.arrays["token_features"][:n]
            data["sentence_feature"] = self.arrays["sentence_feature"][:n]
        return data

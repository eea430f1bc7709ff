"""What language guidance buys, and at what cost: LG-VQ against the same
VQGAN (and, with `--all`, every tokenizer pair of the package) on the
scenes set, with uncertainty.

The main job of keras-lgvq on a CPU: build the embedded captioned-scenes
set, train the `scenes` LG-VQ preset and the identical VQGAN (same backbone,
same initial backbone weights, same batches, steps, learning rate and seed;
only the language guidance differs), evaluate both on the same test images
with `keras_lgvq.evaluation`, test every difference and write a report.

Rows (`MODELS`): LG-VQ / VQGAN (`scenes`), CVQ+LG / CVQ (`scenes` with the
CVQ quantizer), VQCT+LG / VQCT (`scenes_vqct_lg`, `scenes_vqct`) and LQAE /
VQAE (`scenes_lqae`, `scenes_vqae`, LQAE trainer). `--models` picks rows
(default `lgvq,vqgan`), `--all` takes every row; a row whose asset is
missing is reported with the reason. Every model gets the same batches,
steps and seed; each guided model and its unguided twin share the initial
backbone. A new family is one more `MODELS` entry.

Uncertainty: each guided-vs-baseline pair gets, per metric, a paired
bootstrap over the test items (`keras_lgvq.evaluation.paired_comparison`;
PSNR, SSIM, probe retrieval R@1/5/10) with its 95% interval; `--seeds N`
trains every model N times and adds mean +- sd per model and the exact
sign-flip test across seeds for every metric
(`keras_lgvq.evaluation.significance`). A metric is called better or worse
only when the test supports it.

Outputs in `--out DIR`: `summary.json` (one key per model, e.g. `lgvq` and
`vqgan`, with every metric, `seed_runs`, plus `significance`,
`seed_statistics`, config, timing and machine info), `report.md` (a
summary first: verdict per metric with its interval, budget and the
per-system settings), the figures `significance.png`, `metrics.png`
(`metrics_seeds.png` with several seeds), `training_curves.png` and
`codebook_usage.png`, and per model `reconstructions.png`,
`codebook_usage.png`, `retrieval_probe.png` (`retrieval_own.png` for the
guided models) and a reloadable `preset/` directory. Figures are drawn with
matplotlib (`pip install keras-lgvq[viz]`).

Budgets (2-core CPU): the default run is sized for <= 30 minutes, `--quick`
for <= 5 minutes; `--all` is hours at the default size; `--smoke` runs the
whole code path in seconds for CI (32 px, a tiny backbone, a handful of
steps and a few dozen images), not a meaningful comparison.

Usage:

```
python recipes/scenes_compare.py --out runs/scenes
python recipes/scenes_compare.py --quick --seeds 3 --out runs/scenes_seeds
python recipes/scenes_compare.py --all --out runs/all
python -m keras_lgvq compare --out runs/scenes
```
"""

import argparse
import dataclasses
import os
import sys

try:
    from recipes import common
except ImportError:  # Run as `python recipes/scenes_compare.py`.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes import common

BUDGETS = {
    "default": dict(
        train_size=2560,
        epochs=3,
        eval_size=512,
        probe_size=1536,
        probe_epochs=4,
        probe_batch_size=32,
        linear_epochs=200,
        image_size=64,
    ),
    "quick": dict(
        train_size=768,
        epochs=1,
        eval_size=256,
        probe_size=384,
        probe_epochs=3,
        probe_batch_size=32,
        linear_epochs=60,
        image_size=64,
    ),
    # CI: the whole code path in seconds; the numbers mean nothing.
    "smoke": dict(
        train_size=32,
        epochs=1,
        batch_size=8,
        eval_size=16,
        probe_size=32,
        probe_epochs=1,
        probe_batch_size=16,
        linear_epochs=5,
        image_size=32,
    ),
}
SMOKE_BACKBONE = dict(
    resolution=32,
    ch=32,
    ch_mult=(1, 1, 1),
    num_res_blocks=1,
    attn_resolutions=(),
    z_channels=32,
    num_embeddings=64,
    embedding_dim=16,
)
# The VQCT tokenizer of `--smoke`: SMOKE_BACKBONE's architecture with a
# 16-d latent (two 8-d halves) and the packaged scenes prior.
SMOKE_VQCT = dict(
    resolution=32,
    ch=32,
    ch_mult=(1, 1, 1),
    num_res_blocks=1,
    attn_resolutions=(),
    z_channels=32,
    embedding_dim=16,
    hidden_dim=8,
)
# One-layer text heads (LG-VQ's guidance and the probes) for `--smoke`.
SMOKE_HEADS = dict(vit_layers=1, decoder_layers=1, decoder_intermediate_dim=64)


def _smoke_vqgan_backbone():
    from keras_lgvq.models import VQGANBackbone

    return VQGANBackbone(**SMOKE_BACKBONE)


def _smoke_vqct_backbone():
    from keras_lgvq.models import VQCTBackbone

    return VQCTBackbone.from_preset("scenes_vqct", **SMOKE_VQCT)


def _smoke_lqae_overrides():
    # The scenes LQAE/VQAE ViT at 32 px with one encoder / decoder layer.
    return dict(image_size=32, encoder_num_layers=1, decoder_num_layers=1)


def _needs_splade(settings):
    from keras_lgvq.language_models import splade_assets

    if splade_assets.is_available():
        return None
    return (
        "the splade-tiny language model (its codebook and masked LM) is not "
        "fetched: run `python -m keras_lgvq.language_models.splade_assets`"
    )


@dataclasses.dataclass(frozen=True)
class ComparedModel:
    """One model of the comparison (one entry of `MODELS`).

    Attributes:
        label: str. Its column and figure label.
        model_class: str. The trainer class in `keras_lgvq.models`.
        preset: str. The built-in preset it is built from.
        guided: bool. Trained with language guidance (gets the text prior
            and the guidance options: smoke-sized heads).
        baseline: str or None. The key of the same model without guidance
            (its initial backbone is the same); the pair is tested for
            significance.
        smoke_backbone: callable or None. Builds the tiny tokenizer of
            `--smoke` (None: `smoke_overrides` instead).
        note: str. A note for the report when the model is compared (one
            per distinct text).
        backbone: callable or None. `backbone(smoke)` builds the tokenizer
            passed to `from_preset` at every size (e.g. the `scenes`
            backbone with the CVQ quantizer); None: the preset's.
        smoke_overrides: callable or None. `from_preset` arguments of the
            `--smoke` size when there is no `smoke_backbone`.
        family: str. "vqgan" (taming VQGAN trainer: Adam, GAN/LPIPS
            settings of the preset) or "lqae" (LQAE trainer: AdamW with
            warm-up, no GAN, no LPIPS).
        requires: callable or None. `requires(settings)` -> None when the
            row can run, else the reason it is skipped (a missing asset).
    """

    label: str
    model_class: str
    preset: str
    guided: bool
    baseline: object
    smoke_backbone: object
    note: str = ""
    backbone: object = None
    smoke_overrides: object = None
    family: str = "vqgan"
    requires: object = None


_VQCT_NOTE = (
    "VQCT models: the codebook is computed by a GCN from the packaged "
    "scenes prior (adjective and noun words, MiniLM vectors); each position "
    "has top-k adjective codes and one noun code. Codebook usage and "
    "perplexity are reported over all codes (adjectives and nouns together, "
    "every slot counted) and per sub-codebook; the usage figure has one "
    "panel per sub-codebook."
)
_CVQ_NOTE = (
    "CVQ models: the `scenes` backbone and guidance with the CVQ quantizer "
    "of lgvq-spec §1.3 (online re-initialisation of rarely used codes from "
    "encoder features, decay 0.99, 'probrandom' anchors, contrastive "
    "weight 1.0) instead of the plain cosine quantizer."
)
_LQAE_NOTE = (
    "LQAE models: a different tokenizer family (ViT encoder/decoder, "
    "`scenes_lqae` / `scenes_vqae`), trained by the LQAE trainer (AdamW "
    "with warm-up, MSE + commitment + masked-LM loss, no GAN, no LPIPS) "
    "for the same steps, batches and seed. LQAE's codebook is the frozen "
    "splade-tiny vocabulary (30,522 word pieces), VQAE's a learned "
    "1024-code one; compare LQAE with VQAE, not with the VQGAN rows."
)
# The CVQ quantizer on the scenes backbone (`from_preset` overrides).
_CVQ_OVERRIDES = dict(
    reinit="cvq",
    reinit_decay=0.99,
    anchor="probrandom",
    contrastive_weight=1.0,
)


def _cvq_backbone(smoke):
    """The `scenes` backbone (or `--smoke`'s) with the scenes quantizer
    settings plus the CVQ re-initialisation and contrastive loss."""
    from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
    from keras_lgvq.models import VQGANBackbone
    from keras_lgvq.models.presets import get_preset

    spec = get_preset("scenes")
    args = dict(SMOKE_BACKBONE if smoke else spec["backbone"])
    quantizer = VectorQuantizer(
        args["num_embeddings"],
        args["embedding_dim"],
        name="quantizer",
        **{**spec["quantizer"], **_CVQ_OVERRIDES},
    )
    return VQGANBackbone(**args, quantizer=quantizer)


# The models `--models` can select, in table order.
MODELS = {
    "lgvq": ComparedModel(
        "LG-VQ", "LGVQ", "scenes", True, "vqgan", _smoke_vqgan_backbone
    ),
    "vqgan": ComparedModel(
        "VQGAN", "VQGAN", "scenes", False, None, _smoke_vqgan_backbone
    ),
    "cvq_lg": ComparedModel(
        "CVQ+LG", "LGVQ", "scenes", True, "cvq", None, _CVQ_NOTE,
        backbone=_cvq_backbone,
    ),
    "cvq": ComparedModel(
        "CVQ", "VQGAN", "scenes", False, None, None, _CVQ_NOTE,
        backbone=_cvq_backbone,
    ),
    "vqct_lg": ComparedModel(
        "VQCT+LG", "VQCTLG", "scenes_vqct_lg", True, "vqct",
        _smoke_vqct_backbone, _VQCT_NOTE,
    ),
    "vqct": ComparedModel(
        "VQCT", "VQCT", "scenes_vqct", False, None, _smoke_vqct_backbone,
        _VQCT_NOTE,
    ),
    "lqae": ComparedModel(
        "LQAE", "LQAE", "scenes_lqae", False, "vqae", None, _LQAE_NOTE,
        smoke_overrides=_smoke_lqae_overrides, family="lqae",
        requires=_needs_splade,
    ),
    "vqae": ComparedModel(
        "VQAE", "LQAE", "scenes_vqae", False, None, None, _LQAE_NOTE,
        smoke_overrides=_smoke_lqae_overrides, family="lqae",
    ),
}
# The default rows: the main comparison at its measured budget.
DEFAULT_MODELS = ("lgvq", "vqgan")
MODEL_NAMES = {kind: spec.label for kind, spec in MODELS.items()}


def parse_models(text, all_rows=False):
    """`--models` text -> tuple of `MODELS` keys (order kept, no repeats).

    Args:
        text: str or None. Comma-separated keys of `MODELS`, or "all".
        all_rows: bool. `--all`: every row (then `text` must be None).

    Raises:
        ValueError: an unknown key (the valid ones are listed), none, or
            both `--all` and `--models`.
    """
    if all_rows:
        if text is not None:
            raise ValueError(
                "Pass either --all (every row) or --models, not both."
            )
        return tuple(MODELS)
    if text is None:
        return DEFAULT_MODELS
    kinds = [k.strip() for k in str(text).split(",") if k.strip()]
    if kinds == ["all"]:
        return tuple(MODELS)
    unknown = [k for k in kinds if k not in MODELS]
    if unknown or not kinds:
        raise ValueError(
            f"--models must be a comma-separated list of {list(MODELS)} "
            f"(or 'all'); received {text!r}"
            + (f" (unknown: {unknown})" if unknown else "")
            + "."
        )
    return tuple(dict.fromkeys(kinds))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Train the scenes LG-VQ and its VQGAN baseline (or every "
            "tokenizer of the package with --all) under the same budget, "
            "evaluate them, test LG against each baseline (paired bootstrap "
            "over test items; with --seeds N also across seeds) and write a "
            "report."
        )
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true", help="<= 5 min budget on 2 CPUs."
    )
    size.add_argument(
        "--smoke",
        action="store_true",
        help=(
            "CI-sized run of the whole code path in seconds (32 px, tiny "
            "backbone); the numbers mean nothing."
        ),
    )
    parser.add_argument("--out", default="runs/scenes_compare")
    parser.add_argument(
        "--models",
        default=None,
        help=(
            "Comma-separated models to train and compare, from "
            f"{', '.join(MODELS)} (or 'all'). Default: "
            f"{','.join(DEFAULT_MODELS)}."
        ),
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help=(
            "Every row the package can train (" + ", ".join(
                spec.label for spec in MODELS.values()
            ) + "); a row whose asset is missing is reported with the "
            "reason. Hours on a CPU at the default size."
        ),
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help=(
            "Train and evaluate every model with N seeds (--seed, --seed+1, "
            "...; same test images): the report adds mean +- sd over seeds "
            "and the exact sign-flip p of each LG-vs-baseline difference. "
            "Multiplies the run time by N."
        ),
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--train-size", type=int, help="Training images.")
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--batch-size", type=int, help="Preset: 16.")
    parser.add_argument("--learning-rate", type=float, help="Preset: 1e-3.")
    parser.add_argument("--eval-size", type=int, help="Test images scored.")
    parser.add_argument(
        "--probe-size", type=int, help="Training images the probes learn on."
    )
    parser.add_argument("--probe-epochs", type=int)
    parser.add_argument("--probe-batch-size", type=int)
    parser.add_argument("--linear-epochs", type=int)
    parser.add_argument(
        "--bootstrap-resamples",
        type=int,
        default=2000,
        help="Resamples of the paired bootstrap over test items.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="TFDS folder for the scenes.")
    parser.add_argument(
        "--with-discriminator",
        action="store_true",
        help=(
            "Keep the PatchGAN even when the run ends before its disc_start "
            "(it then has no effect on training, only a cost)."
        ),
    )
    parser.add_argument(
        "--leak-free-mtp",
        action="store_true",
        help=(
            "Kept for old command lines; a no-op: every guided row's "
            "preset (`scenes`, `scenes_vqct_lg`) already trains with "
            "mtp_leak_free=True."
        ),
    )
    parser.add_argument(
        "--jit-compile", choices=("auto", "on", "off"), default="auto"
    )
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument(
        "--no-save", action="store_true", help="Do not save the models."
    )
    return parser.parse_args(argv)


def resolve_settings(args):
    """Merge the budget of the chosen size with command-line overrides."""
    from keras_lgvq.models.presets import get_preset

    mode = "smoke" if args.smoke else ("quick" if args.quick else "default")
    models = parse_models(args.models, getattr(args, "all", False))
    preset = get_preset("scenes")
    training = preset["training"]
    settings = dict(BUDGETS[mode])
    settings.setdefault("batch_size", training["batch_size"])
    seeds = getattr(args, "seeds", 1)
    if not isinstance(seeds, int) or not 1 <= seeds <= 16:
        raise ValueError(
            f"--seeds must be an integer from 1 to 16; received {seeds!r}."
        )
    settings.update(
        mode=mode,
        all_rows=bool(getattr(args, "all", False)),
        models=list(models),
        learning_rate=training["learning_rate"],
        beta_1=training["beta_1"],
        beta_2=training["beta_2"],
        seed=args.seed,
        seeds=[args.seed + i for i in range(seeds)],
        bootstrap_resamples=getattr(args, "bootstrap_resamples", 2000),
    )
    if settings["bootstrap_resamples"] < 100:
        raise ValueError("--bootstrap-resamples must be >= 100.")
    for key in (
        "epochs",
        "train_size",
        "batch_size",
        "learning_rate",
        "eval_size",
        "probe_size",
        "probe_epochs",
        "probe_batch_size",
        "linear_epochs",
    ):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    for key in ("epochs", "train_size", "batch_size", "eval_size"):
        if settings[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1.")
    if settings["train_size"] < settings["batch_size"]:
        raise ValueError("--train-size must be at least --batch-size.")
    steps = args.steps_per_epoch or (
        settings["train_size"] // settings["batch_size"]
    )
    settings["steps_per_epoch"] = steps
    settings["total_steps"] = steps * settings["epochs"]
    # The earliest GAN start of the compared models' presets (the LQAE
    # family has no GAN).
    gan_models = [k for k in models if MODELS[k].family == "vqgan"]
    disc_start = min(
        (
            get_preset(MODELS[kind].preset)["model"]["disc_start"]
            for kind in gan_models
        ),
        default=None,
    )
    settings["disc_start"] = disc_start
    # Before disc_start the GAN terms are multiplied by 0: the discriminator
    # changes nothing but costs ~40% of a VQGAN step, so it is left out.
    settings["discriminator"] = bool(
        disc_start is not None
        and (args.with_discriminator or settings["total_steps"] >= disc_start)
    )
    settings["leak_free_mtp"] = bool(args.leak_free_mtp)
    settings["jit_compile"] = {"auto": "auto", "on": True, "off": False}[
        args.jit_compile
    ]
    settings["smoke"] = mode == "smoke"
    return settings


def build_model(kind, text_prior, settings):
    """The model `MODELS[kind]` from its preset (with guidance and the text
    prior when it is a guided model)."""
    from keras_lgvq import models

    spec = MODELS[kind]
    kwargs = {}
    if spec.family == "vqgan" and not settings["discriminator"]:
        kwargs["discriminator"] = None
    if spec.backbone is not None:
        kwargs["backbone"] = spec.backbone(settings["smoke"])
    elif settings["smoke"]:
        if spec.smoke_backbone is not None:
            kwargs["backbone"] = spec.smoke_backbone()
        else:
            kwargs.update(spec.smoke_overrides())
    if spec.guided:
        guidance = {}
        if settings["leak_free_mtp"]:
            guidance["mtp_leak_free"] = True
        if settings["smoke"]:
            guidance.update(SMOKE_HEADS)
        if guidance:
            kwargs["guidance"] = guidance
        kwargs["text_prior"] = text_prior
    model_class = getattr(models, spec.model_class)
    model = model_class.from_preset(spec.preset, **kwargs)
    model.build()
    return model


def system_setup(kind, model):
    """What the report states about one system: tokenizer, quantizer,
    GAN / LPIPS settings and optimiser family (the same for every row of
    one family)."""
    spec = MODELS[kind]
    backbone = model.backbone
    quantizer = getattr(backbone, "quantizer", None)
    setup = {
        "preset": spec.preset,
        "trainer": spec.model_class,
        "backbone": type(backbone).__name__,
        "codebook_size": int(backbone.num_embeddings),
        "code_grid": int(backbone.grid_size),
        "quantizer": type(quantizer).__name__ if quantizer else None,
        "cvq_reinit": getattr(quantizer, "reinit", "none") == "cvq",
        "discriminator": getattr(model, "discriminator", None) is not None,
        "lpips": getattr(model, "perceptual_loss", None) is not None,
        "perceptual_weight": float(getattr(model, "perceptual_weight", 0.0)),
        "optimizer": "AdamW (LQAE)" if spec.family == "lqae" else "Adam",
        "language_guidance": spec.guided,
    }
    guidance = getattr(model, "guidance", None)
    if guidance is not None:
        setup["mtp_leak_free"] = bool(guidance.mtp_leak_free)
    return setup


def _backbone_checksum(model):
    import numpy as np
    from keras import ops

    return float(
        sum(
            np.abs(ops.convert_to_numpy(w)).astype("float64").sum()
            for w in model.backbone.weights
        )
    )


# Logged values drawn in training_curves.png (LG-VQ adds its text losses,
# VQCT its sub-codebook terms, LQAE its masked-LM loss).
CURVE_KEYS = (
    "loss",
    "rec_loss",
    "vq_loss",
    "perplexity",
    "lg_loss",
    "gsa_loss",
    "mtp_loss",
    "ras_loss",
    "adjective_loss",
    "noun_loss",
    "mlm_loss",
)


def _step_logger():
    """A callback recording the logged values after every training step.

    Keras's loss trackers are running means that restart each epoch, so
    these are the numbers its progress bar shows, step by step.
    """
    import keras

    class StepLog(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step = 0
            self.log = {}

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            for key, value in (logs or {}).items():
                entry = self.log.setdefault(key, {"steps": [], "values": []})
                entry["steps"].append(self.step)
                entry["values"].append(float(value))

    return StepLog()


def _compile(kind, model, settings):
    spec = MODELS[kind]
    if spec.family == "lqae":
        from keras_lgvq.models.presets import get_preset

        # The LQAE trainer's own recipe (AdamW, warm-up), for the same steps.
        training = get_preset(spec.preset)["training"]
        total = settings["total_steps"]
        model.compile(
            learning_rate=training["learning_rate"],
            weight_decay=training["weight_decay"],
            beta_1=training["beta_1"],
            beta_2=training["beta_2"],
            warmup_steps=min(training["warmup_steps"], max(total // 5, 1)),
            total_steps=total,
            jit_compile=settings["jit_compile"],
        )
        return training["learning_rate"]
    model.compile(
        learning_rate=settings["learning_rate"],
        beta_1=settings["beta_1"],
        beta_2=settings["beta_2"],
        jit_compile=settings["jit_compile"],
    )
    return settings["learning_rate"]


def train(kind, text_prior, settings, args, watch, seed=None):
    """Trains `MODELS[kind]` with `seed` (default: `settings["seed"]`)."""
    import keras
    import numpy as np

    from keras_lgvq.datasets import make_dataset

    seed = settings["seed"] if seed is None else seed
    keras.utils.set_random_seed(seed)
    sizes = common.scenes_sizes(settings["train_size"], settings["eval_size"])
    image_size = settings["image_size"]
    if settings["smoke"] and MODELS[kind].smoke_overrides is not None:
        image_size = MODELS[kind].smoke_overrides().get(
            "image_size", image_size
        )
    # The same pipeline (same seed, same captions) for every model; the
    # unguided ones simply ignore the text.
    dataset = make_dataset(
        "scenes",
        split="train",
        batch_size=settings["batch_size"],
        image_size=image_size,
        seed=seed,
        text_prior=text_prior,
        data_dir=args.data_dir,
        **sizes,
    )
    model = build_model(kind, text_prior, settings)
    checksum = _backbone_checksum(model)
    learning_rate = _compile(kind, model, settings)
    seeds_note = f", seed {seed}" if len(settings["seeds"]) > 1 else ""
    print(
        f"\n== Training {MODEL_NAMES[kind]}{seeds_note}: {settings['epochs']} "
        f"epoch(s) x {settings['steps_per_epoch']} steps of "
        f"{settings['batch_size']} images ({model.count_params():,} "
        "parameters incl. frozen text priors / language models)"
    )
    step_log = _step_logger()
    phase = f"train_{kind}" + (f"_s{seed}" if seeds_note else "")
    with watch.phase(phase):
        history = model.fit(
            dataset.repeat(),
            epochs=settings["epochs"],
            steps_per_epoch=settings["steps_per_epoch"],
            verbose=args.verbose,
            callbacks=[step_log],
        )
    info = {
        "seed": int(seed),
        "parameters": int(model.count_params()),
        "trainable_parameters": int(
            sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        ),
        "steps": settings["total_steps"],
        "batch_size": settings["batch_size"],
        "learning_rate": learning_rate,
        "images_seen": settings["total_steps"] * settings["batch_size"],
        "initial_backbone_abs_sum": checksum,
        "setup": system_setup(kind, model),
        "history": {
            k: [float(x) for x in v] for k, v in history.history.items()
        },
        "step_history": {
            k: step_log.log[k] for k in CURVE_KEYS if k in step_log.log
        },
        "wall_s": round(watch.phases[phase]["wall_s"], 1),
        "cpu_s": round(watch.phases[phase]["cpu_s"], 1),
    }
    return model, info


# Per-item score (paired_comparison) -> (table key, scale to the table).
def _per_item_table_key(name):
    if name in ("psnr", "ssim"):
        return name, 1.0
    source, rest = name.split("_", 1)
    direction, k = rest.rsplit("_R@", 1)
    tag = {"image_to_text": "i2t", "text_to_image": "t2i"}[direction]
    # Hits are 0/1; the table's recalls are percentages.
    return f"retrieval_{tag}_R@{k}_{source}", 100.0


def per_item_table_scores(model, eval_split, artifacts):
    """Per-test-item values of one evaluated model, keyed like the table
    (`retrieval_i2t_R@1_probe`, `psnr`, `ssim`, ...), on the table's scale
    (retrieval hits in %)."""
    from keras_lgvq.evaluation.paired_comparison import per_item_scores

    scores = per_item_scores(
        model, eval_split, artifacts, ks=(1, 5, 10), with_ssim=True
    )
    out = {}
    for name, values in scores.items():
        key, scale = _per_item_table_key(name)
        out[key] = [float(v) * scale for v in values]
    return out


def verdict(result, higher_is_better):
    """'better' / 'worse' (for the first model of the pair) when the
    interval excludes 0 (or, across seeds, the sign-flip test rejects),
    else 'no clear difference'."""
    if higher_is_better is None:
        return "not ranked"
    if not result["significant"]:
        return "no clear difference"
    up = result["difference"] > 0
    return "better" if up == bool(higher_is_better) else "worse"


def significance_tests(kinds, flats_by_seed, items_by_seed, settings):
    """Every guided-vs-baseline pair of `kinds`: paired bootstrap over test
    items (first seed) per metric with per-item values, and with several
    seeds mean +- sd per model and the exact sign-flip test across seeds
    for every metric.

    Args:
        kinds: the models run, in table order.
        flats_by_seed: dict kind -> list (one per seed) of flat metrics.
        items_by_seed: dict kind -> list (one per seed) of per-item scores.
        settings: the resolved settings.

    Returns:
        dict `"{a}_vs_{b}"` -> pair entry (see the module docstring of
        `keras_lgvq.evaluation.significance` for the fields of each test).
    """
    from keras_lgvq.evaluation import METRIC_SPECS
    from keras_lgvq.evaluation.significance import across_seeds
    from keras_lgvq.evaluation.significance import paired_bootstrap
    from keras_lgvq.evaluation.significance import seed_statistics

    seeds = settings["seeds"]
    pairs = {}
    for kind in kinds:
        base = MODELS[kind].baseline
        if base is None or base not in kinds:
            continue
        entry = {
            "models": [kind, base],
            "seeds": list(seeds),
            "per_item_method": (
                f"paired bootstrap over test items (seed {seeds[0]}, "
                f"{settings['bootstrap_resamples']} resamples, 95% "
                "percentile interval)"
            ),
            "metrics": {},
        }
        for key, spec in METRIC_SPECS.items():
            a_vals = [f.get(key) for f in flats_by_seed[kind]]
            b_vals = [f.get(key) for f in flats_by_seed[base]]
            if any(v is None for v in a_vals + b_vals):
                continue
            metric = {
                "label": spec.label,
                "higher_is_better": spec.higher_is_better,
                "a": a_vals[0],
                "b": b_vals[0],
                "difference": a_vals[0] - b_vals[0],
                "per_item": None,
                "across_seeds": None,
            }
            a_items = items_by_seed[kind][0].get(key)
            b_items = items_by_seed[base][0].get(key)
            if a_items is not None and b_items is not None:
                test = paired_bootstrap(
                    a_items,
                    b_items,
                    num_resamples=settings["bootstrap_resamples"],
                    seed=seeds[0],
                )
                test["verdict"] = verdict(test, spec.higher_is_better)
                metric["per_item"] = test
            if len(seeds) > 1:
                test = across_seeds(a_vals, b_vals)
                test["verdict"] = verdict(test, spec.higher_is_better)
                metric["across_seeds"] = test
                metric["seed_statistics"] = {
                    kind: seed_statistics(a_vals),
                    base: seed_statistics(b_vals),
                }
            # The verdict of the row: the per-item interval when there is
            # one, else the across-seed test, else none.
            decisive = metric["per_item"] or metric["across_seeds"]
            metric["verdict"] = (
                decisive["verdict"] if decisive else
                "untested (dataset-level metric: --seeds 6 or more can "
                "test it)"
            )
            metric["tested_by"] = (
                "per_item" if metric["per_item"] else
                ("across_seeds" if metric["across_seeds"] else None)
            )
            entry["metrics"][key] = metric
        pairs[f"{kind}_vs_{base}"] = entry
    return pairs


def run(args):
    """Runs the comparison; returns the summary dict."""
    import keras

    from keras_lgvq import text_priors
    from keras_lgvq import visualization
    from keras_lgvq.evaluation import evaluate_model
    from keras_lgvq.evaluation import flatten_metrics
    from keras_lgvq.models.presets import get_preset

    # Fail before any training if the report's figures cannot be drawn.
    visualization.require_matplotlib()
    watch = common.Stopwatch()
    settings = resolve_settings(args)
    common.quiet_tensorflow()
    os.makedirs(args.out, exist_ok=True)
    machine = common.machine_info()
    print(
        f"keras-lgvq scenes comparison ({settings['mode']}): backend "
        f"{machine['backend']}, {machine['cpu_count']} CPUs, load "
        f"{machine['load_average']}; output in {args.out}"
    )
    skipped = {}
    for kind in settings["models"]:
        reason = MODELS[kind].requires and MODELS[kind].requires(settings)
        if reason:
            skipped[kind] = reason
            print(f"Skipping {MODEL_NAMES[kind]}: {reason}.")
    kinds = tuple(k for k in settings["models"] if k not in skipped)
    if not kinds:
        raise ValueError(
            "No model of --models can run here: "
            + "; ".join(f"{MODEL_NAMES[k]}: {r}" for k, r in skipped.items())
        )
    text = get_preset("scenes")["text"]
    with watch.phase("data"):
        print("\n== Text prior and the scenes set")
        prior = text_priors.get(
            text["text_prior"], sequence_length=text["sequence_length"]
        )
        keras.utils.set_random_seed(settings["seed"])
        splits = {}
        sizes = {
            settings["image_size"],
            *(
                MODELS[k].smoke_overrides().get("image_size")
                for k in kinds
                if settings["smoke"] and MODELS[k].smoke_overrides
            ),
        }
        for size in sorted(sizes):
            splits[size] = common.scenes_splits(
                prior,
                eval_size=settings["eval_size"],
                probe_size=settings["probe_size"],
                image_size=size,
                train_size=settings["train_size"],
                seed=settings["seed"],
                data_dir=args.data_dir,
                verbose=args.verbose,
            )
    probe_config = dict(
        epochs=settings["probe_epochs"],
        batch_size=settings["probe_batch_size"],
        linear_epochs=settings["linear_epochs"],
        jit_compile=settings["jit_compile"],
    )
    if settings["smoke"]:
        probe_config.update(SMOKE_HEADS)
    summary = {}
    flat = {}
    figures = {}
    artifacts_by_model = {}
    flats_by_seed = {k: [] for k in kinds}
    items_by_seed = {k: [] for k in kinds}
    seeds = settings["seeds"]
    for seed in seeds:
        first = seed == seeds[0]
        for kind in kinds:
            model, training = train(kind, prior, settings, args, watch, seed)
            size = model.backbone.resolution
            eval_split, probe_split = splits[size]
            print(f"\n== Evaluating {MODEL_NAMES[kind]} (seed {seed})")
            with watch.phase(f"eval_{kind}"):
                results, artifacts = evaluate_model(
                    model,
                    eval_split,
                    probe_split,
                    text_prior=prior,
                    probe_config=probe_config,
                    seed=seed,
                    verbose=args.verbose,
                    return_artifacts=True,
                )
                items = per_item_table_scores(model, eval_split, artifacts)
            flats_by_seed[kind].append(flatten_metrics(results))
            items_by_seed[kind].append(items)
            if not first:
                summary[kind]["seed_runs"].append(
                    {
                        "seed": seed,
                        "table_metrics": flats_by_seed[kind][-1],
                        "training": {
                            k: v for k, v in training.items()
                            if k not in ("history", "step_history")
                        },
                    }
                )
                del model
                continue
            folder = os.path.join(args.out, kind)
            with watch.phase("figures"):
                figures[kind] = visualization.write_evaluation_figures(
                    folder, artifacts, name=MODEL_NAMES[kind]
                )
            if not args.no_save:
                model.save_to_preset(os.path.join(folder, "preset"))
            results["training"] = training
            results["figures"] = {
                k: os.path.join(kind, v) for k, v in figures[kind].items()
            }
            summary[kind] = results
            flat[kind] = flats_by_seed[kind][0]
            summary[kind]["table_metrics"] = flat[kind]
            summary[kind]["seed_runs"] = []
            artifacts_by_model[kind] = artifacts
            del model
    for kind, reason in skipped.items():
        summary[kind] = {"skipped": True, "reason": reason}

    significance = significance_tests(
        kinds, flats_by_seed, items_by_seed, settings
    )
    seed_stats = _seed_statistics(kinds, flats_by_seed)
    with watch.phase("figures"):
        comparison_figures = visualization.write_comparison_figures(
            args.out,
            flat,
            histories={
                k: summary[k]["training"]["step_history"] for k in flat
            },
            histograms={
                k: visualization.usage_counts(artifacts_by_model[k])
                for k in flat
            },
            names=MODEL_NAMES,
        )
        comparison_figures.update(
            _summary_figures(args.out, significance, seed_stats, kinds)
        )
    rows = visualization.comparison_rows(flat, names=kinds)
    header = (
        ("Metric",)
        + tuple(MODEL_NAMES[k] for k in kinds)
        + ("Chance/baseline", "Better")
    )
    table = visualization.text_table(rows, header)
    print("\n" + table)
    best_counts = {k: sum(r[-1] == k for r in rows) for k in kinds}
    print(_best_sentence(best_counts) + ".")
    for line in _verdict_lines(significance):
        print(line)
    timing = watch.as_dict()
    timing["peak_rss_mb"] = common.peak_rss_mb()
    machine["load_average_at_end"] = common.load_average()
    summary.update(
        config={k: v for k, v in settings.items()},
        comparison={
            "models": list(kinds),
            "skipped": dict(skipped),
            "header": list(header),
            "rows": [list(r) for r in rows],
            **{f"{k}_better": n for k, n in best_counts.items()},
            "figures": comparison_figures,
        },
        significance=significance,
        seed_statistics=seed_stats,
        timing=timing,
        machine=machine,
    )
    summary["notes"] = _notes(settings, summary, kinds)
    common.write_json(os.path.join(args.out, "summary.json"), summary)
    report = _report(summary, rows, header, artifacts_by_model, settings)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    total = timing["total"]
    print(
        f"\nWrote {args.out}/summary.json and report.md. Total wall "
        f"{total['wall_s']:.0f} s, CPU {total['cpu_s']:.0f} s, peak RSS "
        f"{timing['peak_rss_mb']:.0f} MiB."
    )
    return summary


def _seed_statistics(kinds, flats_by_seed):
    """kind -> metric -> `seed_statistics` over the seeds (every metric the
    model has for all seeds)."""
    from keras_lgvq.evaluation import METRIC_SPECS
    from keras_lgvq.evaluation.significance import seed_statistics

    out = {}
    for kind in kinds:
        out[kind] = {}
        for key in METRIC_SPECS:
            values = [f.get(key) for f in flats_by_seed[kind]]
            if values and all(v is not None for v in values):
                out[kind][key] = seed_statistics(values)
    return out


def _best_sentence(best_counts):
    """The sentence 'LG-VQ better on 9, VQGAN better on 4 of the metrics
    both models have', for any number of models."""
    parts = [f"{MODEL_NAMES[k]} better on {n}" for k, n in best_counts.items()]
    who = "both" if len(best_counts) == 2 else "all"
    if len(best_counts) == 1:
        return f"{parts[0]} (one model: nothing to compare)"
    return ", ".join(parts) + f" of the metrics {who} models have"


def _fmt(value):
    from keras_lgvq import visualization

    return visualization.format_value(value)


def _ci_text(test):
    """'+1.17 [+0.39, +1.95]' from a paired_bootstrap result."""
    return (
        f"{test['difference']:+.3g} [{test['ci_low']:+.3g}, "
        f"{test['ci_high']:+.3g}]"
    )


def _verdict_lines(significance):
    """One printed line per pair: how many metrics are better / worse /
    unclear for the guided model."""
    lines = []
    for entry in significance.values():
        a, b = entry["models"]
        counts = {}
        for metric in entry["metrics"].values():
            counts[metric["verdict"]] = counts.get(metric["verdict"], 0) + 1
        lines.append(
            f"{MODEL_NAMES[a]} vs {MODEL_NAMES[b]}: better on "
            f"{counts.get('better', 0)}, worse on {counts.get('worse', 0)}, "
            f"no clear difference on "
            f"{counts.get('no clear difference', 0)} metric(s); "
            f"{sum(v for k, v in counts.items() if k.startswith('untested'))}"
            " untested."
        )
    return lines


_VERDICT_COLORS = {
    "better": "tab:green",
    "worse": "tab:red",
    "no clear difference": "0.45",
}


def _summary_figures(directory, significance, seed_stats, kinds):
    """`significance.png`: per pair, one small panel per tested metric with
    the difference (guided minus baseline) and its 95% interval (green:
    better beyond the interval, red: worse, grey: unclear); with several
    seeds also `metrics_seeds.png`, the seed means with +- sd bars."""
    from keras_lgvq import visualization
    from keras_lgvq.evaluation import METRIC_SPECS
    from keras_lgvq.visualization.plotting import new_figure
    from keras_lgvq.visualization.plotting import save_figure

    written = {}
    panels = []
    for entry in significance.values():
        a, b = entry["models"]
        for key, metric in entry["metrics"].items():
            test = metric["per_item"] or metric["across_seeds"]
            if test is None:
                continue
            panels.append((a, b, key, metric, test))
    if panels:
        columns = min(4, len(panels))
        rows = -(-len(panels) // columns)
        figure = new_figure(3.0 * columns, 1.25 * rows + 0.5)
        axes = figure.subplots(rows, columns, squeeze=False).reshape(-1)
        for ax, (a, b, key, metric, test) in zip(axes, panels):
            if "ci_low" in test:
                low, high = test["ci_low"], test["ci_high"]
            else:
                # Across seeds: mean difference +- sd of the differences.
                low = test["difference"] - test["difference_std"]
                high = test["difference"] + test["difference_std"]
            color = _VERDICT_COLORS.get(metric["verdict"], "0.45")
            ax.plot([low, high], [0, 0], color=color, linewidth=4)
            ax.plot([test["difference"]], [0], "o", color="black")
            ax.axvline(0.0, color="0.3", linestyle="--", linewidth=1)
            # A zero-width interval at 0 (e.g. both models at chance) gets
            # a unit axis instead of a 1e-9 one.
            span = max(abs(low), abs(high)) * 1.3 or 1.0
            ax.set_xlim(-span, span)
            ax.set_yticks([])
            arrow = {True: " ↑", False: " ↓", None: ""}[
                METRIC_SPECS[key].higher_is_better
            ]
            title = f"{metric['label']}{arrow}"
            if len(significance) > 1:
                title = f"{MODEL_NAMES[a]}-{MODEL_NAMES[b]}: " + title
            ax.set_title(title, fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
        for ax in axes[len(panels):]:
            ax.axis("off")
        figure.suptitle(
            "Guided minus baseline: 95% bootstrap interval over test items "
            "(metrics without per-item values: mean +- sd of the per-seed "
            "differences); green: better, red: worse, grey: unclear",
            fontsize=9,
        )
        figure.tight_layout()
        save_figure(figure, os.path.join(directory, "significance.png"))
        written["significance.png"] = "significance.png"
    if any(
        stats.get("n", 1) > 1
        for per_model in seed_stats.values()
        for stats in per_model.values()
    ):
        values, errors, labels = {}, {}, {}
        for key, spec in METRIC_SPECS.items():
            per_model = {
                MODEL_NAMES[k]: seed_stats[k][key]["mean"]
                for k in kinds if key in seed_stats[k]
            }
            if not per_model:
                continue
            values[key] = per_model
            errors[key] = {
                MODEL_NAMES[k]: seed_stats[k][key]["std"]
                for k in kinds if key in seed_stats[k]
            }
            arrow = {True: " ↑", False: " ↓", None: ""}[
                spec.higher_is_better
            ]
            labels[key] = spec.label + arrow
        visualization.plot_metric_bars(
            values,
            errors=errors,
            labels=labels,
            path=os.path.join(directory, "metrics_seeds.png"),
            title="Mean over seeds, error bars +- sd",
        )
        written["metrics_seeds.png"] = "metrics_seeds.png"
    return written


def _budget_sentence(settings, summary, kinds):
    mode = settings["mode"] + (" --all" if settings["all_rows"] else "")
    return (
        f"Budget `{mode}`: every system trains {settings['total_steps']} "
        f"steps of {settings['batch_size']} images "
        f"({settings['epochs']} epoch(s) of {settings['steps_per_epoch']} "
        f"steps) at {settings['image_size']} px, seed(s) "
        f"{', '.join(map(str, settings['seeds']))}; "
        f"{summary[kinds[0]]['num_eval_images']} test images scored; probes "
        f"trained on {settings['probe_size']} training images for "
        f"{settings['probe_epochs']} epoch(s)."
    )


def _setup_table(summary, kinds):
    """Markdown rows stating each system's backbone / quantizer / GAN /
    LPIPS settings."""
    lines = [
        "| System | Preset | Tokenizer | Codes | Grid | CVQ re-init | GAN | "
        "LPIPS | Optimizer | LG | Leak-free MTP |",
        "|---|---|---|---:|---:|---|---|---|---|---|---|",
    ]
    yes = {True: "yes", False: "no", None: "-"}
    for kind in kinds:
        setup = summary[kind]["training"]["setup"]
        lines.append(
            f"| {MODEL_NAMES[kind]} | `{setup['preset']}` | "
            f"{setup['backbone']} | {setup['codebook_size']} | "
            f"{setup['code_grid']}x{setup['code_grid']} | "
            f"{yes[setup['cvq_reinit']]} | {yes[setup['discriminator']]} | "
            f"{yes[setup['lpips']]} (weight {setup['perceptual_weight']:g}) "
            f"| {setup['optimizer']} | {yes[setup['language_guidance']]} | "
            f"{yes[setup.get('mtp_leak_free')]} |"
        )
    return lines


def _summary_section(summary, settings, kinds):
    """The one-page summary at the top of the report: per LG-vs-baseline
    pair, the verdict per metric with its interval."""
    significance = summary["significance"]
    seeds = settings["seeds"]
    lines = ["## Summary", ""]
    if not significance:
        lines += [
            "No guided model ran with its baseline, so nothing is tested "
            "(run LG-VQ with VQGAN, CVQ+LG with CVQ, VQCT+LG with VQCT, or "
            "LQAE with VQAE).",
            "",
        ]
    for entry in significance.values():
        a, b = entry["models"]
        name_a, name_b = MODEL_NAMES[a], MODEL_NAMES[b]
        metrics = entry["metrics"]
        by_verdict = {}
        for key, metric in metrics.items():
            by_verdict.setdefault(metric["verdict"], []).append(metric)

        def listed(verdict_name):
            items = by_verdict.get(verdict_name, [])
            return ", ".join(
                f"{m['label']} ({_fmt(m['a'])} vs {_fmt(m['b'])})"
                for m in items
            ) or "none"

        lines += [
            f"### {name_a} vs {name_b}",
            "",
            f"- **{name_a} better** (95% interval of the difference "
            f"excludes 0): {listed('better')}.",
            f"- **{name_a} worse**: {listed('worse')}.",
            f"- **No clear difference** (interval contains 0): "
            f"{len(by_verdict.get('no clear difference', []))} metric(s).",
        ]
        untested = [
            m for v, ms in by_verdict.items() if v.startswith("untested")
            for m in ms
        ]
        if untested:
            lines.append(
                f"- **Untested** ({len(untested)}: dataset-level metrics "
                "with no per-item values; `--seeds N` gives their spread "
                "and, from 6 seeds, a test): "
                + ", ".join(m["label"] for m in untested) + "."
            )
        lines += [""]
        header = f"| Metric | {name_a} | {name_b} | Δ [95% CI] over items | "
        rule = "|---|---:|---:|---|"
        if len(seeds) > 1:
            header += (
                f"{name_a} mean ± sd | {name_b} mean ± sd | Δ over seeds | "
                "sign-flip p | "
            )
            rule += "---:|---:|---:|---:|"
        header += "Verdict |"
        rule += "---|"
        lines += [header, rule]
        for key, metric in metrics.items():
            arrow = {True: " ↑", False: " ↓", None: ""}[
                metric["higher_is_better"]
            ]
            ci = _ci_text(metric["per_item"]) if metric["per_item"] else "-"
            row = (
                f"| {metric['label']}{arrow} | {_fmt(metric['a'])} | "
                f"{_fmt(metric['b'])} | {ci} | "
            )
            if len(seeds) > 1:
                stats = metric["seed_statistics"]
                test = metric["across_seeds"]
                row += (
                    f"{_fmt(stats[a]['mean'])} ± {_fmt(stats[a]['std'])} | "
                    f"{_fmt(stats[b]['mean'])} ± {_fmt(stats[b]['std'])} | "
                    f"{test['difference']:+.3g} | {test['p_value']:.3g} | "
                )
            row += f"{metric['verdict']} |"
            lines.append(row)
        lines.append("")
    lines += [
        "How to read it: Δ is "
        + (
            "the guided model minus its baseline"
        )
        + f". The interval is a paired bootstrap over the test items "
        f"(seed {seeds[0]}, {settings['bootstrap_resamples']} resamples): "
        "it says how sure the ranking is on *these* test images for "
        "*this* training run, not across training runs. "
        + (
            f"Across the {len(seeds)} seeds, the exact sign-flip test "
            "pairs the runs by seed; with fewer than 6 seeds it cannot "
            "reach p < 0.05, so read the mean ± sd. "
            if len(seeds) > 1 else
            "Training-seed variation is not measured in this run "
            "(`--seeds N` adds it). "
        )
        + "A verdict of 'better' needs the interval to exclude 0; metrics "
        "without per-item values (codebook usage/perplexity, masked-word "
        "recall, relation MSE, attribute probes) are tested across seeds "
        "only.",
        "",
    ]
    figures = summary["comparison"]["figures"]
    if "significance.png" in figures:
        lines += [
            f"![Differences with intervals]({figures['significance.png']})",
            "",
        ]
    lines += [_budget_sentence(settings, summary, kinds), ""]
    lines += _setup_table(summary, kinds)
    lines.append("")
    return lines


def _notes(settings, summary, kinds):
    notes = []
    for kind in kinds:
        spec = MODELS[kind]
        if spec.baseline in kinds:
            twin = MODELS[spec.baseline]
            same = spec.family == "vqgan"
            notes.append(
                f"{spec.label} and {twin.label}: "
                + (
                    f"the `{spec.preset}` preset backbone (identical "
                    "initial weights, see "
                    "training.initial_backbone_abs_sum); only the language "
                    "guidance differs."
                    if same else
                    f"the `{spec.preset}` / `{twin.preset}` ViT; only the "
                    "codebook differs (frozen language-model vocabulary vs "
                    "learned codes)."
                )
            )
    if len(kinds) > 1:
        notes.append(
            f"{'Both' if len(kinds) == 2 else 'All'} models: the same "
            "batches, steps and seed; the VQGAN-family rows the same "
            "learning rate and betas, the same GAN setting (no "
            "discriminator before disc_start) and no LPIPS term (the "
            "`scenes` presets set perceptual_weight 0), see the table "
            "above."
        )
    for kind, reason in summary["comparison"]["skipped"].items():
        notes.append(f"{MODEL_NAMES[kind]} not run: {reason}.")
    notes += list(
        dict.fromkeys(MODELS[k].note for k in kinds if MODELS[k].note)
    )
    own = {
        MODEL_NAMES[k]: summary[k]["training"]["setup"].get("mtp_leak_free")
        for k in kinds if MODELS[k].guided
    }
    leak_free = [n for n, v in own.items() if v]
    faithful = [n for n, v in own.items() if v is False]
    mtp_note = (
        "Probes are trained on each model's frozen codes with the same "
        "budget and seed. The masked-word probe is leak-free (it reads the "
        "text features of the caption with [MASK] in place of the hidden "
        "tokens)."
    )
    if leak_free:
        mtp_note += (
            f" Own MTP head of {', '.join(leak_free)}: leak-free (trained "
            "so), comparable with the probe."
        )
    if faithful:
        mtp_note += (
            f" Own MTP head of {', '.join(faithful)}: faithful (it reads "
            "features of the unmasked caption, which leak the answer), not "
            "comparable with the probe."
        )
    notes += [
        mtp_note,
        "PSNR/SSIM on reconstructions clipped to [-1, 1] (data range 2). "
        "Codebook usage and perplexity over the whole evaluation split.",
        "Attribute linear probes (bag of codes + 2x2-pooled code vectors) "
        "use single-object images for shape/colour/size/fill; the object "
        "count uses all images. The test split contains attribute "
        "combinations held out of training.",
    ]
    if not settings["discriminator"] and settings["disc_start"] is not None:
        notes.append(
            f"No discriminator: the run has {settings['total_steps']} steps, "
            f"fewer than the preset's disc_start={settings['disc_start']}, "
            "so the GAN terms would be multiplied by 0 (pass "
            "--with-discriminator to keep it anyway)."
        )
    from keras_lgvq import visualization

    notes += visualization.unavailable_notes(summary.get(kinds[0], {}))
    if settings["smoke"]:
        notes.append("SMOKE (CI) configuration: the numbers are meaningless.")
    return notes


def _report(summary, rows, header, artifacts_by_model, settings):
    from keras_lgvq import visualization

    timing = summary["timing"]
    comparison_figures = summary["comparison"]["figures"]
    kinds = summary["comparison"]["models"]
    best_counts = {k: summary["comparison"][f"{k}_better"] for k in kinds}
    lines = [
        "# " + " vs ".join(MODEL_NAMES[k] for k in kinds)
        + " on the scenes set",
        "",
    ]
    lines += _summary_section(summary, settings, kinds)
    lines += [
        "## All metrics",
        "",
        visualization.markdown_table(rows, header),
        "",
        _best_sentence(best_counts)
        + " (higher/lower is better as marked; 'Better' is the larger "
        "number only — see the summary for which differences the test "
        "supports).",
        "",
        "The same metrics as bars (dashed line: chance level or baseline):",
        f"![Metrics]({comparison_figures['metrics.png']})",
        "",
    ]
    if "metrics_seeds.png" in comparison_figures:
        lines += [
            "Mean over seeds with ± sd error bars:",
            f"![Metrics over seeds]({comparison_figures['metrics_seeds.png']})",
            "",
        ]
    lines += ["## Notes", ""]
    lines += [f"- {n}" if not n.startswith("- ") else n for n in summary[
        "notes"
    ]]
    lines += ["", "## Figures", ""]
    lines += [
        "Training losses per step (Keras's running means, which restart "
        "each epoch):",
        f"![Training curves]({comparison_figures['training_curves.png']})",
        "",
        "Codebook usage of each model (count per code on a log scale, red "
        "ticks = unused codes; one panel per sub-codebook for VQCT; last "
        "panel: counts sorted by rank):",
        f"![Codebook usage]({comparison_figures['codebook_usage.png']})",
        "",
    ]
    for kind, artifacts in artifacts_by_model.items():
        name = MODEL_NAMES[kind]
        figs = summary[kind]["figures"]
        lines.append(f"### {name}")
        lines.append("")
        lines.append(
            f"Reconstructions (odd rows: input, even rows: reconstruction):\n"
            f"![{name} reconstructions]({figs['reconstructions.png']})"
        )
        lines.append("")
        for key, tag, title in visualization.report.RETRIEVAL_SOURCES:
            fig = figs.get(f"retrieval_{tag}.png")
            if fig:
                lines.append(
                    f"{title} (per row: the caption's own image, black frame, "
                    "then the top-5 images; green = correct):\n"
                    f"![{name} {title}]({fig})"
                )
                lines.append("")
                lines.append(
                    visualization.retrieval_markdown(artifacts, key, title)
                )
    lines += ["", "## Timing", "", "| Phase | Wall (s) | CPU (s) |",
              "|---|---:|---:|"]
    for phase, entry in timing.items():
        if isinstance(entry, dict):
            lines.append(f"| {phase} | {entry['wall_s']} | {entry['cpu_s']} |")
    lines += [
        "",
        f"Peak RSS {timing['peak_rss_mb']} MiB. Machine: "
        f"{summary['machine']['cpu_count']} CPUs, load average "
        f"{summary['machine']['load_average']} at start and "
        f"{summary['machine']['load_average_at_end']} at the end (a load "
        "above the CPU count means the machine was shared and wall times "
        "are pessimistic; CPU seconds are the machine-independent cost).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

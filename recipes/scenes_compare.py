"""LG-VQ against the same VQGAN without language guidance, on the scenes set.

The main job of keras-lgvq on a CPU: build the embedded captioned-scenes
set, train the `scenes` LG-VQ preset and the identical VQGAN (same backbone,
same initial backbone weights, same batches, steps, learning rate and seed;
only the language guidance differs), evaluate both on the same test images
with `keras_lgvq.evaluation` and write a side-by-side table.

`--models` picks the rows (default `lgvq,vqgan`): the registry `MODELS`
also has `vqct` (VQCT, `scenes_vqct`) and `vqct_lg` (VQCT+LG,
`scenes_vqct_lg`), e.g. `--models lgvq,vqgan,vqct,vqct_lg` or
`--models all`. Every model gets the same batches, steps, learning rate and
seed; each guided model and its unguided twin share the initial backbone.
A new family is one more `MODELS` entry.

Outputs in `--out DIR`: `summary.json` (one key per model, e.g. `lgvq` and
`vqgan`, with every metric, plus config, timing and machine info),
`report.md`, the comparison figures `metrics.png`, `training_curves.png`
and `codebook_usage.png`, and per model `reconstructions.png`,
`codebook_usage.png`, `retrieval_probe.png` (`retrieval_own.png` for the
guided models) and a reloadable `preset/` directory. Figures are drawn with
matplotlib (`pip install keras-lgvq[viz]`).

Budgets (2-core CPU): the default run is sized for <= 30 minutes, `--quick`
for <= 5 minutes; `--smoke` runs the whole code path in seconds for CI
(32 px, a tiny backbone, a handful of steps and a few dozen images), not a
meaningful comparison.

Usage:

```
python recipes/scenes_compare.py --quick --out runs/scenes_quick
python recipes/scenes_compare.py --quick --models all --out runs/all
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


@dataclasses.dataclass(frozen=True)
class ComparedModel:
    """One model of the comparison (one entry of `MODELS`).

    Attributes:
        label: str. Its column and figure label.
        model_class: str. The trainer class in `keras_lgvq.models`.
        preset: str. The built-in preset it is built from.
        guided: bool. Trained with language guidance (gets the text prior
            and the guidance options: leak-free MTP, smoke-sized heads).
        baseline: str or None. The key of the same model without guidance
            (its initial backbone is the same).
        smoke_backbone: callable. Builds the tiny tokenizer of `--smoke`.
        note: str. A note for the report when the model is compared (one
            per distinct text).
    """

    label: str
    model_class: str
    preset: str
    guided: bool
    baseline: object
    smoke_backbone: object
    note: str = ""


_VQCT_NOTE = (
    "VQCT models: the codebook is computed by a GCN from the packaged "
    "scenes prior (adjective and noun words, MiniLM vectors); each position "
    "has top-k adjective codes and one noun code. Codebook usage and "
    "perplexity are reported over all codes (adjectives and nouns together, "
    "every slot counted) and per sub-codebook; the usage figure has one "
    "panel per sub-codebook."
)
# The models `--models` can select, in table order.
MODELS = {
    "lgvq": ComparedModel(
        "LG-VQ", "LGVQ", "scenes", True, "vqgan", _smoke_vqgan_backbone
    ),
    "vqgan": ComparedModel(
        "VQGAN", "VQGAN", "scenes", False, None, _smoke_vqgan_backbone
    ),
    "vqct": ComparedModel(
        "VQCT", "VQCT", "scenes_vqct", False, None, _smoke_vqct_backbone,
        _VQCT_NOTE,
    ),
    "vqct_lg": ComparedModel(
        "VQCT+LG", "VQCTLG", "scenes_vqct_lg", True, "vqct",
        _smoke_vqct_backbone, _VQCT_NOTE,
    ),
}
# The default rows: the main comparison at its measured budget.
DEFAULT_MODELS = ("lgvq", "vqgan")
MODEL_NAMES = {kind: spec.label for kind, spec in MODELS.items()}


def parse_models(text):
    """`--models` text -> tuple of `MODELS` keys (order kept, no repeats).

    Args:
        text: str. Comma-separated keys of `MODELS`, or "all".

    Raises:
        ValueError: an unknown key (the valid ones are listed) or none.
    """
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
            "Train the scenes LG-VQ and its VQGAN baseline (optionally VQCT "
            "and VQCT+LG, see --models) under the same budget, evaluate "
            "them and write a side-by-side report."
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
            "Train the guided models (LG-VQ, VQCT+LG) with "
            "mtp_leak_free=True (not the faithful recipe)."
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
    models = parse_models(args.models)
    preset = get_preset("scenes")
    training = preset["training"]
    settings = dict(BUDGETS[mode])
    settings.setdefault("batch_size", training["batch_size"])
    settings.update(
        mode=mode,
        models=list(models),
        learning_rate=training["learning_rate"],
        beta_1=training["beta_1"],
        beta_2=training["beta_2"],
        seed=args.seed,
    )
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
    # The earliest GAN start of the compared models' presets.
    disc_start = min(
        get_preset(MODELS[kind].preset)["model"]["disc_start"]
        for kind in models
    )
    settings["disc_start"] = disc_start
    # Before disc_start the GAN terms are multiplied by 0: the discriminator
    # changes nothing but costs ~40% of a VQGAN step, so it is left out.
    settings["discriminator"] = bool(
        args.with_discriminator or settings["total_steps"] >= disc_start
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
    if not settings["discriminator"]:
        kwargs["discriminator"] = None
    if settings["smoke"]:
        kwargs["backbone"] = spec.smoke_backbone()
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
# VQCT its sub-codebook terms).
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


def train(kind, text_prior, settings, args, watch):
    import keras
    import numpy as np

    from keras_lgvq.datasets import make_dataset

    keras.utils.set_random_seed(settings["seed"])
    sizes = common.scenes_sizes(settings["train_size"], settings["eval_size"])
    # The same pipeline (same seed, same captions) for every model; the
    # unguided ones simply ignore the text.
    dataset = make_dataset(
        "scenes",
        split="train",
        batch_size=settings["batch_size"],
        image_size=settings["image_size"],
        seed=settings["seed"],
        text_prior=text_prior,
        data_dir=args.data_dir,
        **sizes,
    )
    model = build_model(kind, text_prior, settings)
    checksum = _backbone_checksum(model)
    model.compile(
        learning_rate=settings["learning_rate"],
        beta_1=settings["beta_1"],
        beta_2=settings["beta_2"],
        jit_compile=settings["jit_compile"],
    )
    print(
        f"\n== Training {MODEL_NAMES[kind]}: {settings['epochs']} epoch(s) x "
        f"{settings['steps_per_epoch']} steps of {settings['batch_size']} "
        f"images ({model.count_params():,} parameters incl. the frozen "
        "text prior)"
    )
    step_log = _step_logger()
    with watch.phase(f"train_{kind}"):
        history = model.fit(
            dataset.repeat(),
            epochs=settings["epochs"],
            steps_per_epoch=settings["steps_per_epoch"],
            verbose=args.verbose,
            callbacks=[step_log],
        )
    info = {
        "parameters": int(model.count_params()),
        "trainable_parameters": int(
            sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        ),
        "steps": settings["total_steps"],
        "batch_size": settings["batch_size"],
        "learning_rate": settings["learning_rate"],
        "images_seen": settings["total_steps"] * settings["batch_size"],
        "initial_backbone_abs_sum": checksum,
        "history": {
            k: [float(x) for x in v] for k, v in history.history.items()
        },
        "step_history": {
            k: step_log.log[k] for k in CURVE_KEYS if k in step_log.log
        },
        "wall_s": round(watch.phases[f"train_{kind}"]["wall_s"], 1),
        "cpu_s": round(watch.phases[f"train_{kind}"]["cpu_s"], 1),
    }
    return model, info


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
    text = get_preset("scenes")["text"]
    with watch.phase("data"):
        print("\n== Text prior and the scenes set")
        prior = text_priors.get(
            text["text_prior"], sequence_length=text["sequence_length"]
        )
        keras.utils.set_random_seed(settings["seed"])
        eval_split, probe_split = common.scenes_splits(
            prior,
            eval_size=settings["eval_size"],
            probe_size=settings["probe_size"],
            image_size=settings["image_size"],
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
    kinds = tuple(settings["models"])
    for kind in kinds:
        model, training = train(kind, prior, settings, args, watch)
        print(f"\n== Evaluating {MODEL_NAMES[kind]}")
        with watch.phase(f"eval_{kind}"):
            results, artifacts = evaluate_model(
                model,
                eval_split,
                probe_split,
                text_prior=prior,
                probe_config=probe_config,
                seed=settings["seed"],
                verbose=args.verbose,
                return_artifacts=True,
            )
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
        flat[kind] = flatten_metrics(results)
        summary[kind]["table_metrics"] = flat[kind]
        artifacts_by_model[kind] = artifacts
        del model

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
    timing = watch.as_dict()
    timing["peak_rss_mb"] = common.peak_rss_mb()
    machine["load_average_at_end"] = common.load_average()
    summary.update(
        config={k: v for k, v in settings.items()},
        comparison={
            "models": list(kinds),
            "header": list(header),
            "rows": [list(r) for r in rows],
            **{f"{k}_better": n for k, n in best_counts.items()},
            "figures": comparison_figures,
        },
        timing=timing,
        machine=machine,
        notes=_notes(settings, summary),
    )
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


def _best_sentence(best_counts):
    """The sentence 'LG-VQ better on 9, VQGAN better on 4 of the metrics
    both models have', for any number of models."""
    parts = [f"{MODEL_NAMES[k]} better on {n}" for k, n in best_counts.items()]
    who = "both" if len(best_counts) == 2 else "all"
    if len(best_counts) == 1:
        return f"{parts[0]} (one model: nothing to compare)"
    return ", ".join(parts) + f" of the metrics {who} models have"


def _notes(settings, summary):
    kinds = settings["models"]
    notes = []
    for kind in kinds:
        spec = MODELS[kind]
        if spec.baseline in kinds:
            twin = MODELS[spec.baseline]
            notes.append(
                f"{spec.label} and {twin.label}: the `{spec.preset}` preset "
                "backbone (identical initial weights, see "
                "training.initial_backbone_abs_sum); only the language "
                "guidance differs."
            )
    if len(kinds) > 1:
        notes.append(
            f"{'Both' if len(kinds) == 2 else 'All'} models: the same "
            "batches, steps, learning rate, betas and seed."
        )
    notes += list(
        dict.fromkeys(MODELS[k].note for k in kinds if MODELS[k].note)
    )
    notes += [
        "Probes are trained on each model's frozen codes with the same "
        "budget and seed. The masked-word probe is leak-free (it reads the "
        "text features of the caption with [MASK] in place of the hidden "
        "tokens); a guided model's own MTP head follows its training mode "
        + (
            "(leak-free)."
            if settings["leak_free_mtp"]
            else "(faithful: it reads features of the unmasked caption, "
            "which leak the answer, so its recall is not comparable with the "
            "probe's)."
        ),
        "PSNR/SSIM on reconstructions clipped to [-1, 1] (data range 2). "
        "Codebook usage and perplexity over the whole evaluation split.",
        "Attribute linear probes (bag of codes + 2x2-pooled code vectors) "
        "use single-object images for shape/colour/size/fill; the object "
        "count uses all images. The test split contains attribute "
        "combinations held out of training.",
    ]
    if not settings["discriminator"]:
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
    kinds = settings["models"]
    best_counts = {k: summary["comparison"][f"{k}_better"] for k in kinds}
    lines = [
        "# " + " vs ".join(MODEL_NAMES[k] for k in kinds)
        + " on the scenes set",
        "",
        f"Mode `{settings['mode']}`: {settings['total_steps']} training "
        f"steps of {settings['batch_size']} images at "
        f"{settings['image_size']} px for each model (learning rate "
        f"{settings['learning_rate']}, seed {settings['seed']}); "
        f"{summary[kinds[0]]['num_eval_images']} test images scored; probes "
        f"trained on {settings['probe_size']} training images for "
        f"{settings['probe_epochs']} epoch(s).",
        "",
        visualization.markdown_table(rows, header),
        "",
        _best_sentence(best_counts)
        + " (higher/lower is better as marked; no significance test — "
        "small differences are noise).",
        "",
        "The same metrics as bars (dashed line: chance level or baseline):",
        f"![Metrics]({comparison_figures['metrics.png']})",
        "",
        "## Notes",
        "",
    ]
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

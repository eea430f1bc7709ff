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
(`metrics_seeds.png` with several seeds), `training_curves.png`,
`codebook_usage.png` and, with captioning, `stage2_examples.png` (the
first test images with every system's caption and VQA answer), and per
model `reconstructions.png`,
`codebook_usage.png`, `retrieval_probe.png` (`retrieval_own.png` for the
guided models), a reloadable `preset/` directory (the first seed's) and
`seed_<s>/` with each seed's stored result and preset (see Resuming);
the LQAE rows also a downstream table in the report. Figures are drawn
with matplotlib (`pip install keras-lgvq[viz]`).

Resuming: every finished (system, seed) is stored under `--out`
(`<system>/seed_<s>/`: metrics JSON written last and atomically, and the
preset); a rerun with the same `--out` and settings skips it, so a run
killed midway resumes where it stopped, and `--models lgvq` followed by
`--models lgvq,vqgan` trains only the VQGAN. Different settings in the same
`--out` stop with an error naming them; `--no-resume` starts over. Every
training and evaluation step prints `[i/N] ... elapsed, ETA` estimated
from the steps measured so far.

Downstream captioning (the default budget and `--all`; `--no-captioning`
turns it off, `--quick` has none): for each VQGAN-family row (LG-VQ,
VQGAN, CVQ+LG, CVQ, VQCT+LG, VQCT), a
captioner trained over the frozen codes and the same captioner fed one
constant code grid (blind), both scored on the same scenes test images
with BLEU-4 / METEOR / ROUGE-L / CIDEr-D; the report puts the blind row
beside each system, tests image vs blind and, between rows (LG-VQ vs
VQGAN), every metric with a paired bootstrap over the per-image scores.
Sizes: `CAPTIONING_DEFAULTS` of `keras_lgvq.evaluation.
captioning_downstream` (about 220 CPU-s per row); the captioners are
stored per (system, seed) and reused by a resumed run.

Downstream VQA (`--all` and `--smoke`; off in the default budget, which
it would take past 30 minutes; `--no-vqa` turns it off, `--quick` has
none): for each VQGAN-family row, a VQA model ([image prefix ; question]
through a small decoder, answer classifier) trained over the frozen codes
and the same model fed one constant code grid (blind), both answering the
same scenes test questions (and the held-out-combination questions),
scored with accuracy / WUPS@0.9 / WUPS@0.0; the report shows the blind
model and the type prior beside each system and tests image vs blind and,
between rows, every metric with a paired bootstrap over the questions.
Sizes: `VQA_DEFAULTS` / `VQA_SIZES` of `keras_lgvq.evaluation.
vqa_downstream` (about 15 CPU-minutes per row on 2 cores); stored per
(system, seed) (`vqa.json`) and reused by a resumed run.

Downstream text-to-image and completion (`--all` and `--smoke`; off in the
default budget, which it would take past 30 minutes;
`--no-text-to-image` turns it off, `--quick` has none): for LG-VQ, VQGAN,
CVQ+LG and CVQ (one code per position; not VQCT, not LQAE), a
masked-token generator trained over the frozen codes draws the same
scenes test captions and completes the bottom half of the same test
images; one attribute-classifier judge, trained once per run on real
scenes and cached in `--out`, scores conditioning accuracy against the
shuffled-caption chance (and on held-out attribute combinations),
completion PSNR / SSIM / conditioning against completion without the
caption; between rows, every metric gets a paired bootstrap over the
captions / images. Sizes: `T2I_SIZES` / `T2I_DEFAULTS` of
`keras_lgvq.evaluation.text_to_image_downstream` (recipes/
text_to_image.py's CPU default, about 15 CPU-minutes per row on 2 cores);
stored per (system, seed) (`text_to_image.json`, with a sample grid) and
reused by a resumed run.

LQAE rows (`--models lqae,vqae` or `--all`) add their own downstream
numbers: linear probes of the scene attributes over encoder / LM layers and
few-shot prompting of the local SmolLM2 (a missing SmolLM2 gives a warning
and a note, not a crash).

The code lives in the package `keras_lgvq.comparison` (this file is its
command line; `keras_lgvq.comparison.run_comparison` runs it from Python).

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
import os
import sys

try:
    import keras_lgvq  # noqa: F401
except ImportError:  # Run as `python recipes/scenes_compare.py` uninstalled.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )

from keras_lgvq.comparison import DEFAULT_MODELS  # noqa: E402
from keras_lgvq.comparison import MODELS  # noqa: E402
from keras_lgvq.comparison import run_comparison  # noqa: E402


def parse_args(argv=None):
    """The command line as an `argparse.Namespace` (the options of
    `keras_lgvq.comparison.DEFAULT_OPTIONS`).

    Args:
        argv: list of str or None (`sys.argv[1:]`).

    Examples:

    ```python
    args = parse_args(["--smoke", "--out", "runs/smoke"])
    ```
    """
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
        "--text-cache",
        choices=("on", "off"),
        default="on",
        help=(
            "on: guided rows read the frozen text prior's features of the "
            "captions they draw (float16) from a cache built before "
            "training, each distinct caption encoded once, instead of "
            "running the prior on each caption in the step (a leak-free "
            "MTP runs it on the masked caption either way). off: the prior "
            "runs in the step (keras_lgvq.comparison.budgets."
            "text_cache_enabled)."
        ),
    )
    parser.add_argument(
        "--jit-compile", choices=("auto", "on", "off"), default="auto"
    )
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument(
        "--no-save", action="store_true", help="Do not save the models."
    )
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help=(
            "Start over: delete the per-system results stored in --out by "
            "an earlier run instead of reusing them (by default a rerun "
            "with the same settings skips every finished system and seed)."
        ),
    )
    parser.add_argument(
        "--no-captioning",
        action="store_true",
        help=(
            "Leave out the captioning task (tokenizer metrics only). By "
            "default every LG-VQ / VQGAN-family row gets an image and a "
            "blind captioner trained over its codes and scored with "
            "BLEU-4 / METEOR / ROUGE-L / CIDEr-D; --quick has none."
        ),
    )
    parser.add_argument(
        "--no-vqa",
        action="store_true",
        help=(
            "Leave out the VQA task. It runs with --all (every VQGAN-family "
            "row gets an image and a blind VQA model over its codes, scored "
            "with accuracy / WUPS) and at --smoke size; the default budget "
            "and --quick have none."
        ),
    )
    parser.add_argument(
        "--no-text-to-image",
        action="store_true",
        help=(
            "Leave out the text-to-image and completion task. It runs with "
            "--all (LG-VQ, VQGAN, CVQ+LG and CVQ each get a generator over "
            "their codes, judged by one attribute classifier) and at "
            "--smoke size; the default budget and --quick have none."
        ),
    )
    parser.add_argument(
        "--captioning-lm",
        default="smollm2",
        help=(
            "LM source of the captioners and VQA models (their decoder, or "
            "the tokenizer of a scratch decoder): 'smollm2' (default), a "
            ".gguf path or a keras-hub preset directory."
        ),
    )
    return parser.parse_args(argv)


def run(args):
    """Runs the comparison of parsed arguments; returns the summary dict.

    Args:
        args: `argparse.Namespace` from `parse_args`.

    Examples:

    ```python
    summary = run(parse_args(["--smoke", "--out", "runs/smoke"]))
    ```
    """
    return run_comparison(args)


def main(argv=None):
    """Command-line entry point (also `python -m keras_lgvq compare`).

    Args:
        argv: list of str or None (`sys.argv[1:]`).

    Examples:

    ```python
    main(["--quick", "--out", "runs/scenes_quick"])
    ```
    """
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())

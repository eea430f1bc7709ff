"""Is a main-job training run bit-reproducible from one process to the next?

Trains a row of the main job (`keras_lgvq.comparison.train_system`, the
default budget's model, batches and seed) for `--steps` steps in
`--repeats` fresh processes per variant, and compares their per-step
losses and final backbone weights:

    python benchmarks/reproducibility_benchmark.py \
        --models lgvq --variants plain,op_determinism_no_onednn,hashseed0 \
        --out benchmarks/results/reproducibility_tensorflow_lgvq.json
    python benchmarks/reproducibility_benchmark.py --models vqgan \
        --variants plain \
        --out benchmarks/results/reproducibility_tensorflow_vqgan.json

Variants (each worker process sets them before importing TensorFlow):
`plain`; `op_determinism` (`tf.config.experimental.enable_op_determinism()`);
`op_determinism_no_onednn` (also `TF_ENABLE_ONEDNN_OPTS=0`); `hashseed0`
(`PYTHONHASHSEED=0`); `no_grappler` (TensorFlow's graph optimiser off:
`tf.config.optimizer.set_experimental_options({"disable_meta_optimizer":
True})`). The TensorFlow-only variants are skipped on other
backends. `--smoke` uses the `--smoke` sizes (32 px, tiny backbone).

Writes JSON: per model and variant, each process's weight checksum (sum of
|w|, float64) and losses (`repr`), whether all processes agree bit for bit,
the largest loss difference and the first step where they part.
"""

import argparse
import json
import os
import subprocess
import sys

try:
    from recipes.common import write_json
except ImportError:  # Run as `python benchmarks/reproducibility_benchmark.py`.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes.common import write_json

# name -> (environment added to the worker's, TensorFlow only)
VARIANTS = {
    "plain": ({}, False),
    "op_determinism": ({"LGVQ_BENCH_OP_DETERMINISM": "1"}, True),
    "op_determinism_no_onednn": (
        {"LGVQ_BENCH_OP_DETERMINISM": "1", "TF_ENABLE_ONEDNN_OPTS": "0"},
        True,
    ),
    "hashseed0": ({"PYTHONHASHSEED": "0"}, False),
    "no_grappler": ({"LGVQ_BENCH_NO_GRAPPLER": "1"}, True),
}
MARKER = "REPRODUCIBILITY_RESULT "


def worker(model, steps, smoke):
    """Train `model` for `steps` steps in this process; print its result."""
    if os.environ.get("LGVQ_BENCH_OP_DETERMINISM") == "1":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if os.environ.get("LGVQ_BENCH_NO_GRAPPLER") == "1":
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": True}
        )
    from keras_lgvq import text_priors
    from keras_lgvq.comparison import resolve_settings
    from keras_lgvq.comparison.training import backbone_checksum
    from keras_lgvq.comparison.training import train_system
    from keras_lgvq.models.presets import get_preset

    text = get_preset("scenes")["text"]
    prior = text_priors.get(
        text["text_prior"], sequence_length=text["sequence_length"]
    )
    settings = resolve_settings(
        {
            "smoke": smoke,
            "epochs": 1,
            "steps_per_epoch": steps,
            "verbose": 0,
            "no_captioning": True,
            "models": model,
        }
    )
    trained, info = train_system(model, prior, settings, seed=0)
    losses = info["step_history"]["loss"]["values"]
    print(
        MARKER
        + json.dumps(
            {
                "checksum": repr(backbone_checksum(trained)),
                "losses": [repr(float(v)) for v in losses],
            }
        ),
        flush=True,
    )


def run_worker(model, variant, steps, smoke, backend):
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.update(VARIANTS[variant][0])
    command = [
        sys.executable, os.path.abspath(__file__), "--worker", model,
        "--steps", str(steps),
    ] + (["--smoke"] if smoke else [])
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )
    lines = [
        line for line in result.stdout.splitlines() if line.startswith(MARKER)
    ]
    if result.returncode != 0 or not lines:
        raise RuntimeError(
            f"The {model} / {variant} worker failed (exit "
            f"{result.returncode}):\n{result.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len(MARKER):])


def compare(runs):
    """Agreement of several processes' results."""
    losses = [[float(v) for v in run["losses"]] for run in runs]
    identical = all(
        run["checksum"] == runs[0]["checksum"]
        and run["losses"] == runs[0]["losses"]
        for run in runs
    )
    first_difference = None
    largest = 0.0
    for step in range(min(len(values) for values in losses)):
        column = [values[step] for values in losses]
        spread = max(column) - min(column)
        largest = max(largest, spread)
        if spread > 0 and first_difference is None:
            first_difference = step + 1
    checksums = [float(run["checksum"]) for run in runs]
    return {
        "bit_identical": identical,
        "first_step_that_differs": first_difference,
        "largest_loss_difference": largest,
        "checksum_spread": max(checksums) - min(checksums),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--models", default="lgvq,vqgan")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument(
        "--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow")
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.steps, args.smoke)
        return None
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(
            f"--variants: unknown {unknown}; choose from {sorted(VARIANTS)}."
        )
    if args.repeats < 2 or args.steps < 1:
        raise ValueError(
            "--repeats must be >= 2 and --steps >= 1; received "
            f"{args.repeats} and {args.steps}."
        )
    results = {}
    for model in [m for m in args.models.split(",") if m]:
        for variant in variants:
            if VARIANTS[variant][1] and args.backend != "tensorflow":
                continue
            runs = [
                run_worker(model, variant, args.steps, args.smoke, args.backend)
                for _ in range(args.repeats)
            ]
            entry = {"runs": runs, **compare(runs)}
            results.setdefault(model, {})[variant] = entry
            print(
                f"{model} / {variant}: bit-identical {entry['bit_identical']}"
                f", largest loss difference {entry['largest_loss_difference']:.3g}"
                f", first differing step {entry['first_step_that_differs']}"
            )
    report = {
        "backend": args.backend,
        "steps": args.steps,
        "repeats": args.repeats,
        "smoke": args.smoke,
        "variants": {name: VARIANTS[name][0] for name in variants},
        "results": results,
    }
    if args.out:
        write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()

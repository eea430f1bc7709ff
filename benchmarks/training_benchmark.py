"""Training and tokenization throughput of VQGAN and LG-VQ on one backend.

Configurations (exact architectures in `benchmark_configs.py` and in the
JSON): `tiny` (scenes preset, batch 16), `small` (128 px f8, batch 8),
`paper` (cub preset, 256 px f16 with LPIPS, batch 1 on CPU),
`official_tiny` (issue 17's "official tiny": 64 px, ch 64, f8, 2 res
blocks, attention at 16 px, K=512, D=256, batch 8, LPIPS, discriminator and
adaptive weight from step 0, 4 warm-up + 8 timed steps) and `scenes` (the
README main job's `from_preset("scenes")`, batch 16).

For each config and model kind (`vqgan`, `lgvq_cached`: text features
precomputed by the prior; `lgvq_fly`: the MiniLM prior runs in the step on
real scenes captions) it measures the training throughput (batch / median
step time over the timed steps; the first step, which compiles, is
reported apart), the encode throughput and the peak resident memory, each
(config, kind) in its own subprocess so that peak RSS is its own; then the
LG / plain step-time ratios (cached and on the fly).

`--interleaved` adds, per config, one subprocess that builds every kind,
warms each up, then times them in rotating rounds (A, B, C, B, C, A, ...),
so the LG / plain ratios see the same machine load; both sets of ratios
are reported (`lg_over_plain_*` from the separate processes,
`interleaved.ratios` from the rounds).

FLOP efficiency: `--count-flops` (KERAS_BACKEND=torch) counts the FLOPs of
one full train step per (config, kind, batch) with torch's
FlopCounterMode and stores them in `benchmarks/results/step_flops.json`;
every backend's run then reports `gflops_per_s` and `share_of_fp32_peak`
(peak 333 GFLOP/s, see `flop_count.PEAK_DERIVATION`; `--peak-gflops`
overrides it).

LPIPS uses the real heads and a random VGG16 when the ImageNet weights are
not on disk (the cost is identical). Before `disc_start` `fit` runs the
GAN-off step (no discriminator work): that is the case for `tiny`,
`small`, `paper` and `scenes` (their presets' `disc_start`); the JSON
records `gan_active_at_step_0` per config.

Usage (the lead's sitting; FLOPs first, once):

```
KERAS_BACKEND=torch python benchmarks/training_benchmark.py --count-flops \
    --configs official_tiny,scenes,tiny,small,paper
KERAS_BACKEND=tensorflow python benchmarks/training_benchmark.py \
    --jit-compile on --configs official_tiny,scenes --interleaved
KERAS_BACKEND=tensorflow python benchmarks/training_benchmark.py \
    --jit-compile off --configs official_tiny,scenes --interleaved
KERAS_BACKEND=jax python benchmarks/training_benchmark.py \
    --configs official_tiny,scenes --interleaved
KERAS_BACKEND=torch python benchmarks/training_benchmark.py \
    --configs official_tiny,scenes --interleaved
# bf16 on the CPU (AVX-512 BF16) or a GPU: add --mixed-precision bf16
# On a GPU also: --mixed-precision bf16 --paper-batch-size 8
```

Results: `benchmarks/results/training_<backend>[_xla|_noxla][_bf16].json`.
Quick check of the plumbing: `--configs official_tiny --warmup 1 --steps 1
--no-encode --out runs/x.json`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchmark_configs  # noqa: E402
import flop_count  # noqa: E402

from keras_lgvq.utils.machine import load_average  # noqa: E402
from keras_lgvq.utils.machine import machine_info  # noqa: E402
from keras_lgvq.utils.machine import peak_rss_mb  # noqa: E402

CONFIGS = benchmark_configs.CONFIGS
KINDS = benchmark_configs.KINDS


def _backend():
    import keras

    return keras.backend.backend()


def resolved_config(name, paper_batch=None, warmup=None, steps=None):
    config = benchmark_configs.check_config(name)
    if name == "paper" and paper_batch:
        config["batch_size"] = paper_batch
    if warmup is not None:
        config["warmup"] = warmup
    if steps is not None:
        config["steps"] = steps
    return config


# === Timing helpers ===


def _block(value):
    from keras import ops

    return ops.convert_to_numpy(value)


def timed_fit(model, data, batch_size, num_batches, last_logs=None):
    """Runs one `fit` over `num_batches` batches. Returns (seconds from
    `fit`'s start to the first batch end, [seconds between consecutive
    batch ends]). `last_logs`, a dict, receives the last batch's logs."""
    import keras

    marks = []
    if last_logs is None:
        last_logs = {}

    class Timer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks.append(time.perf_counter())

        def on_train_batch_end(self, step, logs=None):
            # Waits for the step (JAX and torch may dispatch asynchronously).
            float(_block(logs["loss"]))
            marks.append(time.perf_counter())
            last_logs.update(logs)

    n = batch_size * num_batches
    model.fit(
        {k: v[:n] for k, v in data.items()},
        batch_size=batch_size,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[Timer()],
    )
    times = [b - a for a, b in zip(marks[:-1], marks[1:])]
    return times[0], times[1:]


def _encode_fn(backbone, jit):
    """A compiled `images -> indices` for the backend (eager for torch)."""
    backend = _backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(backbone.encode, jit_compile=bool(jit))
    if backend == "jax":
        import jax
        from keras import StatelessScope

        variables = backbone.variables

        @jax.jit
        def encode(values, images):
            with StatelessScope(state_mapping=list(zip(variables, values))):
                return backbone.encode(images)

        values = [v.value for v in variables]
        return lambda images: encode(values, images)

    import torch

    def encode(images):
        with torch.no_grad():
            return backbone.encode(images)

    return encode


def _set_policy(mixed_precision):
    import keras

    if mixed_precision == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")


def _prior_for(config):
    if config["prior"] is None:
        return None
    return benchmark_configs.load_prior()


# === Worker: one (config, kind) pair ===


def worker(
    config_name,
    kind,
    jit,
    mixed_precision,
    paper_batch=None,
    warmup=None,
    steps=None,
    encode=True,
):
    import keras
    import numpy as np

    config = resolved_config(config_name, paper_batch, warmup, steps)
    _set_policy(mixed_precision)
    keras.utils.set_random_seed(0)
    rss_before = peak_rss_mb()
    prior = _prior_for(config) if kind != "vqgan" else None
    batch = config["batch_size"]
    num_batches = config["warmup"] + config["steps"]
    data = benchmark_configs.BenchmarkData(
        config, batch * num_batches, prior=prior
    )
    model, notes = benchmark_configs.build_model(config, kind, prior)
    model.compile(learning_rate=1e-4, jit_compile=jit)
    logs = {}
    first, times = timed_fit(
        model, data.batch(kind), batch, num_batches, last_logs=logs
    )
    timed = times[config["warmup"] - 1 :] if config["warmup"] > 0 else times
    step_s = statistics.median(timed)
    result = {
        "batch_size": batch,
        "trainable_parameters": int(
            sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        ),
        "first_step_s": round(first, 3),
        "warmup_steps": config["warmup"],
        "timed_steps": len(timed),
        "step_times_s": [round(t, 4) for t in timed],
        "step_s_median": round(step_s, 4),
        "train_images_per_s": round(batch / step_s, 3),
        "config": benchmark_configs.describe(config, model),
        "last_step_logs": {
            k: round(float(_block(v)), 6) for k, v in logs.items()
        },
        "notes": notes,
    }
    if encode:
        fn = _encode_fn(model.backbone, jit)
        images = keras.ops.convert_to_tensor(data.images[:batch])
        t0 = time.perf_counter()
        _block(fn(images))
        result["encode_first_call_s"] = round(time.perf_counter() - t0, 3)
        encode_times = []
        for _ in range(max(3, config["steps"])):
            t0 = time.perf_counter()
            _block(fn(images))
            encode_times.append(time.perf_counter() - t0)
        encode_s = statistics.median(encode_times)
        result["encode_s_median"] = round(encode_s, 4)
        result["encode_images_per_s"] = round(batch / encode_s, 2)
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_before_model_mb"] = rss_before
    return result


# === Interleaved worker: every kind of one config in one process ===


def interleaved_worker(
    config_name,
    jit,
    mixed_precision,
    paper_batch=None,
    warmup=None,
    steps=None,
    rounds=4,
):
    import keras

    config = resolved_config(config_name, paper_batch, warmup, steps)
    _set_policy(mixed_precision)
    kinds = benchmark_configs.kinds_for(config)
    prior = _prior_for(config)
    batch = config["batch_size"]
    per_round = max(1, -(-config["steps"] // rounds))
    num_batches = max(config["warmup"], per_round) + 1
    data = benchmark_configs.BenchmarkData(
        config, batch * num_batches, prior=prior
    )
    models, ready_s = {}, {}
    for kind in kinds:
        keras.utils.set_random_seed(0)
        start = time.perf_counter()
        models[kind], _ = benchmark_configs.build_model(config, kind, prior)
        models[kind].compile(learning_rate=1e-4, jit_compile=jit)
        # Warm-up (compiles, and runs the config's warm-up steps).
        timed_fit(models[kind], data.batch(kind), batch, config["warmup"] + 1)
        ready_s[kind] = round(time.perf_counter() - start, 1)
    times = {kind: [] for kind in kinds}
    load_start = load_average()
    for r in range(rounds):
        order = list(kinds[r % len(kinds) :]) + list(kinds[: r % len(kinds)])
        for kind in order:
            _, t = timed_fit(
                models[kind], data.batch(kind), batch, per_round + 1
            )
            times[kind] += t
    results = {}
    for kind in kinds:
        median = statistics.median(times[kind])
        results[kind] = {
            "step_s_median": round(median, 4),
            "step_times_s": [round(t, 4) for t in times[kind]],
            "train_images_per_s": round(batch / median, 3),
            "build_and_warmup_s": ready_s[kind],
        }
    return {
        "rounds": rounds,
        "steps_per_round": per_round,
        "results": results,
        "ratios": _ratios(results),
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


def _ratios(results):
    """LG / plain step-time ratios (from step times, not rounded img/s)."""
    ratios = {}
    plain = results.get("vqgan", {})
    for kind, name in (
        ("lgvq_cached", "lg_over_plain_cached"),
        ("lgvq_fly", "lg_over_plain_fly"),
        ("lgvq_fly_vocab", "lg_over_plain_fly_vocab"),
    ):
        entry = results.get(kind, {})
        if "step_s_median" in entry and "step_s_median" in plain:
            ratios[name] = round(
                entry["step_s_median"] / plain["step_s_median"], 3
            )
    return ratios


# === FLOP counting (torch) ===


def count_flops(config_names, paper_batch=None, path=flop_count.DEFAULT_PATH):
    import gc

    import keras

    entries = {}
    for name in config_names:
        config = resolved_config(name, paper_batch)
        prior = _prior_for(config)
        batch = config["batch_size"]
        data = benchmark_configs.BenchmarkData(config, batch, prior=prior)
        for kind in benchmark_configs.kinds_for(config):
            # The step `fit` runs at step 0, and, where that skips the
            # GAN (before `disc_start`), also the full GAN step that
            # step_profile_benchmark.py profiles (`disc_start=0`).
            skipped = True
            for disc_start in ("config", 0):
                if not skipped:
                    break  # the config's own step is the full one
                keras.utils.set_random_seed(0)
                model, _ = benchmark_configs.build_model(
                    config, kind, prior, disc_start=disc_start
                )
                model.compile(learning_rate=1e-4)
                flops, per_op, skipped = flop_count.train_step_flops(
                    model, data.batch(kind)
                )
                entry = flop_count.record(
                    name, kind, batch, flops, skipped, per_op
                )
                entries[flop_count.key(name, kind, batch, skipped)] = entry
                print(
                    f"{name}/{kind} (GAN step skipped: {skipped}): "
                    f"{entry['gflop_per_step']} GFLOP per step "
                    f"({entry['gflop_per_image']} per image)",
                    flush=True,
                )
                del model
                gc.collect()
    flop_count.store(entries, path)
    return entries


# === Driver ===


def _run(cmd_tail, args):
    cmd = (
        [sys.executable, os.path.abspath(__file__)]
        + cmd_tail
        + [
            "--jit-compile",
            args.jit_compile,
            "--mixed-precision",
            args.mixed_precision,
            "--paper-batch-size",
            str(args.paper_batch_size),
        ]
    )
    for flag in ("warmup", "steps"):
        if getattr(args, flag) is not None:
            cmd += [f"--{flag}", str(getattr(args, flag))]
    if args.no_encode:
        cmd.append("--no-encode")
    cmd += ["--rounds", str(args.rounds)]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - start
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result["worker_wall_s"] = round(wall, 1)
            return result
    tail = (proc.stderr or proc.stdout)[-3000:]
    return {"error": f"worker failed (rc={proc.returncode}): {tail}"}


def _efficiency(flops, name, kind, config, result, peak_gflops):
    """GFLOP/s and share of peak of a measured step from the stored
    FLOP count of the same step variant."""
    stored = flops.get(
        flop_count.key(
            name,
            kind,
            config["batch_size"],
            benchmark_configs.gan_skipped_at_start(config),
        )
    )
    efficiency = flop_count.efficiency(
        stored, result.get("step_s_median"), peak_gflops
    )
    return efficiency or (
        "not counted: run --count-flops under KERAS_BACKEND=torch"
    )


def _jit_value(flag):
    return {"on": True, "off": False, "auto": "auto"}[flag]


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="official_tiny,scenes")
    parser.add_argument(
        "--kinds",
        default=",".join(benchmark_configs.DEFAULT_KINDS),
        help="Model kinds of the per-kind runs (a config without an "
        "offline prior skips lgvq_fly).",
    )
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="TensorFlow: XLA on/off. JAX always compiles; torch runs "
        "eagerly unless 'on' (torch.compile).",
    )
    parser.add_argument(
        "--mixed-precision", choices=("none", "bf16"), default="none"
    )
    parser.add_argument("--paper-batch-size", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--no-encode", action="store_true")
    parser.add_argument(
        "--interleaved",
        action="store_true",
        help="Also time every kind of a config in one process, in "
        "rotating rounds.",
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--count-flops",
        action="store_true",
        help="KERAS_BACKEND=torch only: count one step's FLOPs per (config, "
        "kind) and store them in results/step_flops.json.",
    )
    parser.add_argument("--flops-file", default=flop_count.DEFAULT_PATH)
    parser.add_argument(
        "--peak-gflops", type=float, default=flop_count.PEAK_GFLOPS
    )
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "KIND"))
    parser.add_argument("--interleaved-worker", metavar="CONFIG")
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    names = args.configs.split(",")
    for name in names:
        if name not in CONFIGS:
            parser.error(
                f"Unknown config {name!r}; choose from {list(CONFIGS)}"
            )
    kinds = args.kinds.split(",")
    for kind in kinds:
        if kind not in KINDS:
            parser.error(f"Unknown kind {kind!r}; choose from {list(KINDS)}")
    if args.peak_gflops <= 0:
        parser.error("--peak-gflops must be > 0")
    jit = _jit_value(args.jit_compile)

    if args.worker:
        result = worker(
            args.worker[0],
            args.worker[1],
            jit,
            args.mixed_precision,
            args.paper_batch_size,
            args.warmup,
            args.steps,
            encode=not args.no_encode,
        )
        print("RESULT " + json.dumps(result))
        return 0
    if args.interleaved_worker:
        result = interleaved_worker(
            args.interleaved_worker,
            jit,
            args.mixed_precision,
            args.paper_batch_size,
            args.warmup,
            args.steps,
            args.rounds,
        )
        print("RESULT " + json.dumps(result))
        return 0
    backend = _backend()
    if args.count_flops:
        if backend != "torch":
            parser.error("--count-flops needs KERAS_BACKEND=torch")
        count_flops(names, args.paper_batch_size, args.flops_file)
        print(f"Wrote {args.flops_file}")
        return 0

    if backend == "torch" and args.jit_compile == "auto":
        args.jit_compile = "off"
    machine = machine_info()
    flops = flop_count.load(args.flops_file)["entries"]
    results, described = {}, {}
    for name in names:
        config = resolved_config(name, args.paper_batch_size)
        entry = {}
        for kind in kinds:
            if kind not in benchmark_configs.kinds_for(config, KINDS):
                continue
            print(f"[{backend}] {name} / {kind} ...", flush=True)
            entry[kind] = _run(["--worker", name, kind], args)
            print(f"    {entry[kind]}", flush=True)
            if "config" in entry[kind]:
                described[name] = entry[kind].pop("config")
            entry[kind]["flops"] = _efficiency(
                flops, name, kind, config, entry[kind], args.peak_gflops
            )
        entry.update(_ratios(entry))
        if args.interleaved:
            print(f"[{backend}] {name} interleaved ...", flush=True)
            entry["interleaved"] = _run(["--interleaved-worker", name], args)
            print(f"    {entry['interleaved']}", flush=True)
            for kind, res in entry["interleaved"].get("results", {}).items():
                res["flops"] = _efficiency(
                    flops, name, kind, config, res, args.peak_gflops
                )
        results[name] = entry
    tag = backend
    if backend == "tensorflow":
        tag += "_noxla" if args.jit_compile == "off" else "_xla"
    if args.mixed_precision != "none":
        tag += f"_{args.mixed_precision}"
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"training_{tag}.json",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    machine["load_average_at_end"] = load_average()
    report = {
        "benchmark": "training_benchmark",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend,
        "jit_compile": args.jit_compile,
        "mixed_precision": args.mixed_precision,
        "machine": machine,
        "peak_gflops": round(args.peak_gflops, 1),
        "peak_derivation": flop_count.PEAK_DERIVATION,
        "configs": described,
        "results": results,
        "notes": [
            "Training img/s = batch / median step time over the timed steps "
            "(after the warm-up steps; the first, which compiles, is "
            "first_step_s).",
            "Compare ratios measured in one run (the interleaved ones "
            "above all) rather than absolute figures across runs (see "
            "machine.load_average).",
            "lgvq_cached: text features precomputed by the prior; with a "
            "leak-free MTP (scenes) the prior still runs once per step on "
            "the masked caption. lgvq_fly: the prior runs in the step.",
            "FLOPs: "
            + flop_count.METHOD
            + "; share_of_fp32_peak against "
            + flop_count.PEAK_DERIVATION
            + ".",
            "No GPU run." if not machine.get("gpu") else "GPU run.",
        ],
    }
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""LG-VQ overhead at the `scenes` config, interleaved in one process.

The README main job's config: the `scenes` preset as it is (64 px, f=4,
K=256, batch 16, MiniLM prior, leak-free MTP, PatchGAN with
`disc_start=100000`), on real scenes captions. Every variant is built in
the same process, compiled once, then timed in rounds (A, B, C, ..., A, B,
C, ...; the order rotates each round), so the ratios between variants see
the same machine load. Variants:

- `vqgan`: `VQGAN.from_preset("scenes")` (no discriminator work before
  `disc_start`); `vqgan_gan_always`: the same with the full GAN step every
  batch (the terms multiplied by 0, as before that change).
- `lgvq_fly`: `LGVQ.from_preset("scenes")`, text prior on the fly (MiniLM
  on the caption, and again on the masked caption for the leak-free MTP);
  `lgvq_fly_full_logits`: the same with `mtp_full_logits=True` (the MTP
  loss from all `B x L x 30522` logits: the head before it scored masked
  positions only); `lgvq_fly_before`: full logits and the full GAN step
  (the package before both changes).
- `lgvq_cached`: cached text features (token and sentence features
  precomputed); the leak-free MTP still runs MiniLM once per step on the
  masked caption. `lgvq_cached_full_logits` as above.
- `lgvq_cached_no_leak_free`: cached features with `mtp_leak_free=False`
  (no text encoder in the step), to price the leak-free re-encoding.
- `lgvq_fly_subset`: `mtp_vocabulary_subset` = the ids of the training
  captions (an approximation, off in the presets).
- `--bf16` adds `vqgan_bf16` and `lgvq_fly_bf16` (`mixed_bfloat16`).

Step time = median over the timed steps (intervals between consecutive
batch ends inside a `fit` call, so `fit`'s set-up is excluded). Peak RSS
comes from one subprocess per variant (`--rss`), each building and running
that variant alone.

Usage (once per backend):

```
KERAS_BACKEND=tensorflow python benchmarks/lg_overhead_benchmark.py --bf16
KERAS_BACKEND=jax python benchmarks/lg_overhead_benchmark.py --bf16
KERAS_BACKEND=torch python benchmarks/lg_overhead_benchmark.py --bf16
```

Results: `benchmarks/results/lg_overhead_<backend>.json`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from keras_lgvq.utils.machine import load_average
from keras_lgvq.utils.machine import machine_info
from keras_lgvq.utils.machine import peak_rss_mb

BATCH_SIZE = 16
CAPTION_IMAGES = 256  # training captions the vocabulary subset comes from

VARIANTS = {
    "vqgan": dict(kind="vqgan"),
    "vqgan_gan_always": dict(kind="vqgan", gan_always=True),
    "lgvq_fly": dict(kind="lgvq", text="fly"),
    "lgvq_fly_full_logits": dict(kind="lgvq", text="fly", full_logits=True),
    "lgvq_fly_before": dict(
        kind="lgvq", text="fly", full_logits=True, gan_always=True
    ),
    "lgvq_cached": dict(kind="lgvq", text="cached"),
    "lgvq_cached_full_logits": dict(
        kind="lgvq", text="cached", full_logits=True
    ),
    "lgvq_cached_no_leak_free": dict(
        kind="lgvq", text="cached", leak_free=False
    ),
    "lgvq_fly_subset": dict(kind="lgvq", text="fly", subset=True),
    "vqgan_bf16": dict(kind="vqgan", bf16=True),
    "lgvq_fly_bf16": dict(kind="lgvq", text="fly", bf16=True),
}
BF16_VARIANTS = ("vqgan_bf16", "lgvq_fly_bf16")
# Left out unless named in --variants (the head change is priced on the
# on-the-fly pair).
OPTIONAL_VARIANTS = ("lgvq_cached_full_logits",)
RSS_VARIANTS = (
    "vqgan",
    "lgvq_fly",
    "lgvq_fly_full_logits",
    "lgvq_cached",
)
RATIOS = {
    # name: (numerator variant, denominator variant), step-time ratios.
    "lg_over_plain_fly": ("lgvq_fly", "vqgan"),
    "lg_over_plain_fly_full_logits": ("lgvq_fly_full_logits", "vqgan"),
    "lg_over_plain_fly_before": ("lgvq_fly_before", "vqgan_gan_always"),
    "lg_over_plain_cached": ("lgvq_cached", "vqgan"),
    "lg_over_plain_cached_full_logits": ("lgvq_cached_full_logits", "vqgan"),
    "lg_over_plain_cached_no_leak_free": (
        "lgvq_cached_no_leak_free",
        "vqgan",
    ),
    "lg_over_plain_fly_subset": ("lgvq_fly_subset", "vqgan"),
    "head_full_over_scored_fly": ("lgvq_fly_full_logits", "lgvq_fly"),
    "vqgan_gan_always_over_skipped": ("vqgan_gan_always", "vqgan"),
    "bf16_over_fp32_vqgan": ("vqgan_bf16", "vqgan"),
    "bf16_over_fp32_lgvq_fly": ("lgvq_fly_bf16", "lgvq_fly"),
    "lg_over_plain_bf16": ("lgvq_fly_bf16", "vqgan_bf16"),
}


def _backend():
    import keras

    return keras.backend.backend()


# === Data ===


def _scenes_data(num_batches, seed=0):
    """Images in [-1, 1] and one caption per image from the scenes set."""
    from keras_lgvq.datasets.scenes import generate_example

    n = BATCH_SIZE * num_batches
    images, captions = [], []
    for i in range(n):
        example = generate_example(i, seed=seed, image_size=64)
        images.append(example["image"].astype("float32") / 127.5 - 1.0)
        captions.append(example["captions"][i % len(example["captions"])])
    return np.stack(images), captions


def _training_captions():
    from keras_lgvq.datasets.scenes import generate_example

    captions = []
    for i in range(CAPTION_IMAGES):
        captions.extend(generate_example(i, seed=0)["captions"])
    return captions


class _Shared:
    """The text prior, tokens and cached features, built once."""

    def __init__(self, num_batches):
        from keras import ops

        from keras_lgvq import text_priors
        from keras_lgvq.utils.caption_vocabulary import caption_token_ids

        self.images, captions = _scenes_data(num_batches)
        self.prior = text_priors.get("minilm", sequence_length=30)
        ids, mask = self.prior.tokenize(captions)
        self.token_ids = np.asarray(ops.convert_to_numpy(ids), "int32")
        self.padding_mask = np.asarray(ops.convert_to_numpy(mask), bool)
        features, sentences = [], []
        for start in range(0, len(captions), BATCH_SIZE):
            out = self.prior(
                ids[start : start + BATCH_SIZE],
                mask[start : start + BATCH_SIZE],
            )
            features.append(ops.convert_to_numpy(out["token_features"]))
            sentences.append(ops.convert_to_numpy(out["sentence_feature"]))
        self.token_features = np.concatenate(features).astype("float32")
        self.sentence_feature = np.concatenate(sentences).astype("float32")
        self.subset = caption_token_ids(
            _training_captions(), tokenizer=self.prior
        )
        self.mean_tokens = float(self.padding_mask.sum(1).mean())

    def batch(self, spec):
        data = {"images": self.images}
        if spec["kind"] == "lgvq":
            data.update(
                token_ids=self.token_ids, padding_mask=self.padding_mask
            )
            if spec["text"] == "cached":
                data.update(
                    token_features=self.token_features,
                    sentence_feature=self.sentence_feature,
                )
        return data


def _build(name, shared, jit_compile):
    import keras

    from keras_lgvq.models.lgvq.lgvq import LGVQ
    from keras_lgvq.models.vqgan.vqgan import VQGAN

    spec = VARIANTS[name]
    previous = keras.mixed_precision.global_policy()
    if spec.get("bf16"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        if spec["kind"] == "vqgan":
            model = VQGAN.from_preset("scenes")
        else:
            guidance = {}
            if spec.get("full_logits"):
                guidance["mtp_full_logits"] = True
            if spec.get("leak_free") is False:
                guidance["mtp_leak_free"] = False
            if spec.get("subset"):
                guidance["mtp_vocabulary_subset"] = [
                    int(i) for i in shared.subset
                ]
            prior = shared.prior
            if spec.get("bf16"):
                from keras_lgvq import text_priors

                # The frozen prior in bf16 too (built under the policy).
                prior = text_priors.get("minilm", sequence_length=30)
            model = LGVQ.from_preset(
                "scenes", text_prior=prior, guidance=guidance
            )
        if spec.get("gan_always"):
            # The step before the change: the GAN terms (times 0) and the
            # discriminator update run every batch.
            model._gan_phase_for = lambda first_step, num_steps: False
        model.compile(learning_rate=1e-4, jit_compile=jit_compile)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def _block(value):
    from keras import ops

    return float(ops.convert_to_numpy(value))


def _timed_fit(model, data, steps):
    """Seconds per step between consecutive batch ends of one `fit`."""
    import keras

    marks = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            _block(logs["loss"])  # JAX and torch may dispatch asynchronously
            marks.append(time.perf_counter())

    n = BATCH_SIZE * (steps + 1)
    x = {k: v[:n] for k, v in data.items()}
    model.fit(
        x,
        batch_size=BATCH_SIZE,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[Timer()],
    )
    return [b - a for a, b in zip(marks[:-1], marks[1:])]


# === The interleaved run ===


def interleaved(names, rounds, steps, jit_compile):
    shared = _Shared(num_batches=steps + 1)
    models, compile_s = {}, {}
    for name in names:
        print(f"building {name} ...", flush=True)
        start = time.perf_counter()
        models[name] = _build(name, shared, jit_compile)
        # Warm-up: compiles (and, for `fit` before disc_start, builds the
        # GAN-off step).
        _timed_fit(models[name], shared.batch(VARIANTS[name]), 1)
        compile_s[name] = round(time.perf_counter() - start, 1)
        print(f"    ready in {compile_s[name]} s", flush=True)
    times = {name: [] for name in names}
    load_start = load_average()
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name] += _timed_fit(
                models[name], shared.batch(VARIANTS[name]), steps
            )
        print(
            f"round {r + 1}/{rounds}: "
            + ", ".join(
                f"{n} {statistics.median(times[n]):.3f}s" for n in names
            ),
            flush=True,
        )
    load_end = load_average()
    results = {}
    for name in names:
        median = statistics.median(times[name])
        results[name] = {
            "step_s_median": round(median, 4),
            "step_s_quartiles": (
                [round(q, 4) for q in statistics.quantiles(times[name], n=4)]
                if len(times[name]) > 1
                else None
            ),
            "timed_steps": len(times[name]),
            "train_images_per_s": round(BATCH_SIZE / median, 3),
            "build_and_first_fit_s": compile_s[name],
        }
    ratios = {}
    for key, (num, den) in RATIOS.items():
        if num in results and den in results:
            ratios[key] = round(
                results[num]["step_s_median"] / results[den]["step_s_median"],
                3,
            )
    if "lgvq_cached" in results and "lgvq_cached_no_leak_free" in results:
        cached = results["lgvq_cached"]["step_s_median"]
        no_leak = results["lgvq_cached_no_leak_free"]["step_s_median"]
        ratios["leak_free_share_of_lgvq_cached_step"] = round(
            (cached - no_leak) / cached, 3
        )
    extra = {
        "load_average_start": load_start,
        "load_average_end": load_end,
        "mean_caption_tokens": round(shared.mean_tokens, 2),
        "caption_vocabulary_size": int(len(shared.subset)),
    }
    return results, ratios, extra


# === Peak RSS: one subprocess per variant ===


def rss_worker(name, steps, jit_compile):
    shared = _Shared(num_batches=steps + 1)
    before = peak_rss_mb()
    model = _build(name, shared, jit_compile)
    _timed_fit(model, shared.batch(VARIANTS[name]), steps)
    return {"peak_rss_mb": peak_rss_mb(), "rss_before_model_mb": before}


def _run_rss(name, args):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--rss-worker",
        name,
        "--jit-compile",
        args.jit_compile,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"error": f"rc={proc.returncode}: {(proc.stderr or '')[-1500:]}"}


def _jit_value(flag):
    return {"on": True, "off": False, "auto": "auto"}[flag]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=None)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument(
        "--jit-compile", choices=("auto", "on", "off"), default="auto"
    )
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--rss-worker", default=None)
    args = parser.parse_args(argv)
    jit = _jit_value(args.jit_compile)

    if args.rss_worker:
        result = rss_worker(args.rss_worker, 2, jit)
        print("RESULT " + json.dumps(result))
        return 0

    backend = _backend()
    if args.variants:
        names = args.variants.split(",")
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            parser.error(f"Unknown variants {unknown}; see {list(VARIANTS)}")
    else:
        names = [
            n
            for n in VARIANTS
            if n not in OPTIONAL_VARIANTS
            and (args.bf16 or n not in BF16_VARIANTS)
        ]
    machine = machine_info()
    wall = time.time()
    results, ratios, extra = interleaved(names, args.rounds, args.steps, jit)
    rss = {}
    if not args.no_rss:
        for name in RSS_VARIANTS:
            if name in names:
                print(f"peak RSS of {name} ...", flush=True)
                rss[name] = _run_rss(name, args)
    machine["load_average_at_end"] = load_average()
    tag = backend
    if backend == "tensorflow" and args.jit_compile == "on":
        tag += "_xla"
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"lg_overhead_{tag}.json",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    report = {
        "benchmark": "lg_overhead_benchmark",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend,
        "jit_compile": args.jit_compile,
        "config": "scenes preset as it is (64 px, f=4, K=256, D=64, "
        "batch 16, MiniLM 384/30522, leak-free MTP, mask padding, "
        "disc_start=100000)",
        "batch_size": BATCH_SIZE,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "machine": machine,
        **extra,
        "results": results,
        "ratios": ratios,
        "peak_rss_mb": rss,
        "wall_s": round(time.time() - wall, 1),
        "notes": [
            "All variants ran interleaved in one process (order rotated "
            "each round); compare ratios, not absolute figures across runs "
            "(load_average_* records the machine's load).",
            "Ratios are step-time ratios (>1: the numerator is slower).",
            "Peak RSS: one subprocess per variant (2 steps).",
        ],
    }
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({"ratios": ratios, **extra}, indent=2))
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

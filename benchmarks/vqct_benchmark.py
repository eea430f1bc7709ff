"""VQCT training throughput next to VQGAN's at the CPU config, and the
GCN's share of the step.

Builds `VQGAN.from_preset("scenes")` and `VQCT.from_preset("scenes_vqct")`
(the same 64 px, f=4 encoder / decoder, latent width 64; VQGAN: K=256
learned cosine codes; VQCT: 46 adjective + 52 noun codes from the packaged
scenes prior through a 384 -> 32 -> 32 GCN, top-2 adjectives), and times
`train_on_batch` on random images (batch 16 by default): the first step
(compilation) separately, then the median of the timed steps, as images/s.
Both presets keep a discriminator whose GAN terms are off until step
100000, so a step is the generator update plus the discriminator update
with factor 0, as in a short CPU run.

GCN share: the median time of one codebook computation
(`quantizer.get_codebook(training=True)`, forward only, eager, the same
work the quantizer does once per training call) divided by the median
VQCT step time. The backward pass through the GCN is not included, so the
real share is somewhat larger (roughly up to twice this).

Usage:

```
KERAS_BACKEND=tensorflow python benchmarks/vqct_benchmark.py
KERAS_BACKEND=jax python benchmarks/vqct_benchmark.py --steps 3
KERAS_BACKEND=torch python benchmarks/vqct_benchmark.py
```

Results go to `benchmarks/results/vqct_<backend>.json`.
"""

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

from keras_lgvq.models import VQCT, VQGAN
from keras_lgvq.utils.machine import load_average, machine_info


def _block(value):
    # Wait for asynchronous backends (JAX) before stopping the clock.
    keras.ops.convert_to_numpy(value)


def time_training(model, images, warmup, steps):
    model.compile(learning_rate=1e-3)
    start = time.perf_counter()
    _block(model.train_on_batch(images, return_dict=True)["loss"])
    first = time.perf_counter() - start
    for _ in range(warmup):
        _block(model.train_on_batch(images, return_dict=True)["loss"])
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        _block(model.train_on_batch(images, return_dict=True)["loss"])
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "first_step_s": round(first, 3),
        "median_step_s": round(median, 4),
        "step_times_s": [round(t, 4) for t in times],
        "images_per_s": round(len(images) / median, 3),
    }


def time_gcn(quantizer, repeats):
    _block(quantizer.get_codebook(training=True))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(quantizer.get_codebook(training=True))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch_size, 64, 64, 3)).astype(
        "float32"
    )
    load_before = load_average()
    results = {}
    vqgan = VQGAN.from_preset("scenes")
    results["vqgan_scenes"] = time_training(
        vqgan, images, args.warmup, args.steps
    )
    del vqgan
    vqct = VQCT.from_preset("scenes_vqct")
    results["vqct_scenes_vqct"] = time_training(
        vqct, images, args.warmup, args.steps
    )
    gcn_s = time_gcn(vqct.backbone.quantizer, max(args.steps, 5))
    step_s = results["vqct_scenes_vqct"]["median_step_s"]
    results["gcn_forward_s"] = round(gcn_s, 5)
    results["gcn_forward_share_of_vqct_step"] = round(gcn_s / step_s, 4)
    results["vqct_step_over_vqgan_step"] = round(
        step_s / results["vqgan_scenes"]["median_step_s"], 3
    )
    report = {
        "benchmark": "vqct_benchmark",
        "backend": backend,
        "batch_size": args.batch_size,
        "warmup": args.warmup,
        "steps": args.steps,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
        "results": results,
    }
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"vqct_{backend}.json",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(results, indent=2))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()

"""Where JAX's convolution gap to TensorFlow-XLA comes from: one 3x3
`Conv2D` + swish, forward and backward (`train_on_batch` with SGD at
learning rate 0), at the official-tiny encoder/decoder levels, timed on each
backend and, for JAX, under XLA:CPU's oneDNN flags.

    python benchmarks/conv_kernel_benchmark.py \
        --out benchmarks/results/conv_kernels.json

Each variant runs in its own process (`XLA_FLAGS` must be set before JAX
starts). Writes JSON: milliseconds per call (median of `--steps`) per shape
and variant, and each variant's ratio to TensorFlow-XLA.
"""

import argparse
import json
import os
import subprocess
import sys
import time

# (batch, size, channels) of the official tiny config's levels (64 px,
# ch 64, ch_mult 1-2-2-4, batch 8) plus the 64-px level at 128 channels.
SHAPES = ((8, 64, 64), (8, 32, 128), (8, 16, 128), (8, 8, 256), (8, 64, 128))
# (name, KERAS_BACKEND, jit_compile, XLA_FLAGS)
VARIANTS = (
    ("tensorflow_xla", "tensorflow", True, ""),
    ("tensorflow_noxla", "tensorflow", False, ""),
    ("jax", "jax", True, ""),
    ("jax_onednn_custom_call", "jax", True,
     "--xla_cpu_experimental_onednn_custom_call=true"),
    ("jax_use_onednn", "jax", True, "--xla_cpu_use_onednn=true"),
    ("jax_classic_runtime", "jax", True, "--xla_cpu_use_thunk_runtime=false"),
    ("torch", "torch", False, ""),
)


def time_shape(shape, jit_compile, steps=5, warmup=2):
    """Median ms of one conv forward + backward on the current backend.

    Args:
        shape: `(batch, size, channels)`.
        jit_compile: bool. Keras `jit_compile`.
        steps: int. Timed calls.
        warmup: int. Untimed calls (compilation).
    """
    import keras
    import numpy as np

    batch, size, channels = shape
    model = keras.Sequential(
        [
            keras.Input((size, size, channels)),
            keras.layers.Conv2D(channels, 3, padding="same", activation="silu"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=jit_compile
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, channels)).astype("float32")
    y = np.zeros_like(x)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 2)


def worker(jit_compile, steps, shapes=SHAPES):
    return {
        "x".join(map(str, shape)): time_shape(shape, jit_compile, steps)
        for shape in shapes
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--jit", default="1", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.jit == "1", args.steps)))
        return None
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from keras_lgvq.utils.machine import load_average
    from recipes import common

    results = {}
    for name, backend, jit, flags in VARIANTS:
        env = dict(os.environ, KERAS_BACKEND=backend, XLA_FLAGS=flags)
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", name,
             "--jit", "1" if jit else "0", "--steps", str(args.steps)],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        results[name] = {
            "backend": backend, "jit_compile": jit, "xla_flags": flags,
            "ms": json.loads(out),
        }
        print(name, results[name]["ms"], flush=True)
    base = results["tensorflow_xla"]["ms"]
    for entry in results.values():
        entry["over_tensorflow_xla"] = {
            k: round(v / base[k], 2) for k, v in entry["ms"].items()
        }
    report = {
        "what": "3x3 Conv2D + swish forward and backward (train_on_batch, "
        "SGD lr 0), median ms per call",
        "shapes": "batch x size x channels",
        "steps": args.steps,
        "load_average": load_average(),
        "variants": results,
    }
    if args.out:
        common.write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()

"""Throughput of `VectorQuantizer` training-mode calls on the current backend.

Times one `call(z, training=True)` on N = 8 x 16 x 16 = 2048 vectors (one
LG-VQ batch of latents) for K in {1024, 16384} and D in {8, 256}, for the
plain (VQGAN), EMA and CVQ (re-init + contrastive) configurations. Each
timed call returns the indices, the quantized grid and the loss, so no term
of the forward pass is pruned by the compiler. The call is compiled where
the backend compiles (tf.function, jax.jit of `stateless_call`; torch runs
eagerly with autograd recording). Throughput is vectors per second from
the median of the timed repeats. Results and
machine information go to `benchmarks/results/quantizer_<backend>.json`.

Usage:

```
KERAS_BACKEND=jax python benchmarks/quantizer_benchmark.py [--repeats 5]
```
"""

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from keras_lgvq.utils.machine import machine_info

MODES = {
    "vqgan": dict(legacy_beta=True),
    "ema": dict(ema_decay=0.99),
    "cvq": dict(reinit="cvq", contrastive_weight=1.0),
}


def _fetched(outputs):
    # Indices *and* the loss: fetching only the indices would let XLA and
    # tf.function prune the loss terms (CVQ's contrastive sort included).
    return outputs["indices"], outputs["quantized"], outputs["loss"]


def _make_step(layer, backend):
    """Returns `step(z) -> outputs` (forced to finish) for the backend."""
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda z: _fetched(layer(z, training=True)))
        return lambda z: [t.numpy() for t in fn(z)]
    if backend == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        state = {"nt": [v.value for v in layer.non_trainable_variables]}

        @jax.jit
        def fn(trainable, non_trainable, z):
            out, non_trainable = layer.stateless_call(
                trainable, non_trainable, z, training=True
            )
            return _fetched(out), non_trainable

        def step(z):
            fetched, state["nt"] = fn(trainable, state["nt"], z)
            return jax.block_until_ready(fetched)

        return step
    return lambda z: [
        keras.ops.convert_to_numpy(t)
        for t in _fetched(layer(z, training=True))
    ]


def bench(num_embeddings, dim, mode, repeats, warmup, backend):
    layer = VectorQuantizer(num_embeddings, dim, seed=0, **MODES[mode])
    z = np.random.RandomState(0).randn(8, 16, 16, dim).astype("float32")
    layer.build(z.shape)
    z = keras.ops.convert_to_tensor(z)
    step = _make_step(layer, backend)
    start = time.perf_counter()
    step(z)
    first = time.perf_counter() - start
    for _ in range(warmup):
        step(z)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(z)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    n = 8 * 16 * 16
    return {
        "num_embeddings": num_embeddings,
        "embedding_dim": dim,
        "mode": mode,
        "num_vectors": n,
        "first_call_s": round(first, 4),
        "median_s": round(median, 5),
        "min_s": round(min(times), 5),
        "vectors_per_s": round(n / median, 1),
        "repeats": repeats,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated subset"
    )
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    backend = keras.backend.backend()
    results = []
    for mode in args.modes.split(","):
        for num_embeddings in (1024, 16384):
            for dim in (8, 256):
                row = bench(
                    num_embeddings, dim, mode, args.repeats, args.warmup,
                    backend,
                )
                print(json.dumps(row), flush=True)
                results.append(row)
    output = args.output or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"quantizer_{backend}.json",
    )
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w") as f:
        json.dump(
            {"machine": machine_info(), "results": results},
            f,
            indent=2,
        )
    print(f"wrote {output}")


if __name__ == "__main__":
    main()

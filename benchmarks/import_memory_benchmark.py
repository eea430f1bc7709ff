"""Resident memory of the imports alone, per backend: Python + the backend,
+ Keras, + `keras_lgvq`'s LG-VQ (which imports keras-hub, and keras-hub
imports TensorFlow whenever it is installed, also under JAX and torch).

    python benchmarks/import_memory_benchmark.py \
        --out benchmarks/results/import_memory.json

Each (backend, stage) runs in a fresh process; the figure is that process's
peak RSS (`VmHWM`, Linux) in MB, and whether TensorFlow was loaded. The part
of a training run's peak RSS that is imports, not model or activations.
"""

import argparse
import os
import subprocess
import sys

STAGES = (
    ("python", "pass"),
    ("backend", "import {backend}"),
    ("keras", "import keras"),
    ("keras_lgvq_lgvq", "import keras; from keras_lgvq import LGVQ"),
)
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
# VmHWM, not `ru_maxrss`: Linux keeps a process's `ru_maxrss` across exec,
# so a child of a big parent would report the parent's size.
_PROBE = (
    "import sys\n{code}\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
    "print(int(hwm[0].split()[1]) / 1024, 'tensorflow' in sys.modules)"
)


def measure(backend, code):
    """`(peak RSS MB, tensorflow loaded)` of a fresh process running
    `code` under `backend`."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(code=code)],
        env=env, cwd=root, capture_output=True, text=True, check=True,
    ).stdout.split()
    return round(float(out[-2]), 1), out[-1] == "True"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    args = parser.parse_args(argv)
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes import common

    results = {}
    for backend in args.backends.split(","):
        results[backend] = {}
        for stage, code in STAGES:
            rss, tf_loaded = measure(
                backend, code.format(backend=BACKEND_MODULES[backend])
            )
            results[backend][stage] = {
                "peak_rss_mb": rss, "tensorflow_loaded": tf_loaded,
            }
            print(backend, stage, rss, "MB", "(TF loaded)" if tf_loaded
                  else "", flush=True)
    report = {"what": "peak RSS of a fresh process after each import stage",
              "results": results}
    if args.out:
        common.write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()

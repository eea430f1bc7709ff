"""benchmarks/conv_kernel_benchmark.py times a conv forward + backward on
the current backend (tiny shape, one call)."""

import os
import sys

import keras

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "benchmarks"
)
sys.path.insert(0, BENCHMARKS)

import conv_kernel_benchmark  # noqa: E402


def test_worker_times_each_shape():
    result = conv_kernel_benchmark.worker(
        # The benchmark runs torch eagerly (torch.compile takes ~40 s).
        jit_compile=keras.backend.backend() != "torch",
        steps=1,
        shapes=((2, 8, 4), (1, 4, 8)),
    )
    assert set(result) == {"2x8x4", "1x4x8"}
    assert all(v > 0 for v in result.values())


def test_variants_name_tensorflow_xla_as_the_baseline():
    names = [v[0] for v in conv_kernel_benchmark.VARIANTS]
    assert "tensorflow_xla" in names and len(set(names)) == len(names)
    assert {v[1] for v in conv_kernel_benchmark.VARIANTS} == {
        "tensorflow", "jax", "torch"
    }

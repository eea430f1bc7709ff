"""benchmarks/import_memory_benchmark.py measures a fresh process."""

import os
import sys

import pytest

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "benchmarks"
)
sys.path.insert(0, BENCHMARKS)

import import_memory_benchmark  # noqa: E402

pytestmark = pytest.mark.host_only


def test_measure_reports_peak_rss_and_whether_tensorflow_loaded():
    bare, bare_tf = import_memory_benchmark.measure("torch", "pass")
    big, _ = import_memory_benchmark.measure(
        "torch", "import numpy; x = numpy.ones(64 * 2**20 // 8)"
    )
    assert not bare_tf
    assert 0 < bare < big and big - bare > 50  # the 64 MB array shows

"""benchmarks/reproducibility_benchmark.py: its comparison of processes'
results and its argument checks (the measurement itself spawns training
processes: benchmarks/results/reproducibility_tensorflow_*.json)."""

import os
import sys

import pytest

# No Keras backend op runs in this file (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "benchmarks"
)
sys.path.insert(0, BENCHMARKS)

import reproducibility_benchmark as bench  # noqa: E402


def _run(checksum, *losses):
    return {"checksum": repr(checksum), "losses": [repr(v) for v in losses]}


def test_compare_finds_the_first_step_that_differs():
    same = bench.compare([_run(1.5, 0.3, 0.2), _run(1.5, 0.3, 0.2)])
    assert same["bit_identical"] is True
    assert same["first_step_that_differs"] is None
    assert same["largest_loss_difference"] == 0.0
    parted = bench.compare(
        [_run(1.5, 0.3, 0.2, 0.1), _run(1.25, 0.3, 0.2000001, 0.1003)]
    )
    assert parted["bit_identical"] is False
    assert parted["first_step_that_differs"] == 2
    assert parted["largest_loss_difference"] == pytest.approx(3e-4)
    assert parted["checksum_spread"] == 0.25
    # Equal losses but different weights are not identical either.
    assert bench.compare([_run(1.0, 0.5), _run(2.0, 0.5)])[
        "bit_identical"
    ] is False


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="--variants: unknown"):
        bench.main(["--variants", "plain,nope"])
    with pytest.raises(ValueError, match="--repeats must be >= 2"):
        bench.main(["--repeats", "1"])

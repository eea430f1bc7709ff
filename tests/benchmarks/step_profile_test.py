"""The step profile's `--quick` run on the tiny config (batch 4): every
component of the LG-VQ step is timed, with the full step and a residual."""

import json
import os
import sys

import pytest

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "benchmarks"
)
sys.path.insert(0, BENCHMARKS)

import step_profile_benchmark  # noqa: E402


# A whole benchmark-script run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
def test_quick_profile_of_tiny(tmp_path):
    out = str(tmp_path / "profile.json")
    step_profile_benchmark.main(
        ["--configs", "tiny", "--quick", "--batch-size", "4", "--out", out]
    )
    with open(out) as f:
        report = json.load(f)
    result = report["results"]["tiny"]
    assert result["model_kind"] == "lgvq_fly"
    # tiny profiles the full GAN step (disc_start=0).
    assert result["gan_in_step"]
    expected = set(step_profile_benchmark.COMPONENTS) - {"lpips"}
    assert set(result["components"]) == expected
    for name, component in result["components"].items():
        assert component["seconds"] > 0, name
    assert result["full_step_s"] > 0
    in_step = sum(
        c["seconds"] for c in result["components"].values() if c["in_step"]
    )
    assert result["residual_s"] == round(result["full_step_s"] - in_step, 5)
    # The leak-free MTP re-encodes the masked caption: two prior calls.
    assert result["text_prior_calls_per_step"] == 2
    profiler = result["profiler"]
    assert profiler["steps"] == 2
    if report["backend"] == "torch":
        assert profiler["top_ops"][0]["self_cpu_ms"] > 0
    else:
        trace_dir = os.path.join(str(tmp_path), profiler["trace_dir"])
        assert os.listdir(trace_dir)
    if report["backend"] == "jax":
        assert profiler["xla_cost_analysis"]["gflop"] > 0

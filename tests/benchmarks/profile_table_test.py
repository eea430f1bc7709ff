"""The Markdown table of the step profiles (host only: reads JSON)."""

import json
import os
import sys

import pytest

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "benchmarks"
)
sys.path.insert(0, BENCHMARKS)

import profile_table  # noqa: E402

pytestmark = pytest.mark.host_only


def _report(backend, step, decoder_share):
    return {
        "backend": backend,
        "results": {
            "tiny": {
                "model_kind": "lgvq_fly",
                "gan_in_step": True,
                "config": {
                    "resolution": 64,
                    "ch_mult": [1, 2, 2],
                    "codebook_size": 256,
                    "batch_size": 16,
                },
                "full_step_s": step,
                "components": {
                    "decoder": {
                        "seconds": step * decoder_share,
                        "share_of_full_step": decoder_share,
                        "in_step": True,
                    },
                    "host_data": {
                        "seconds": 0.01,
                        "share_of_full_step": 0.01 / step,
                        "in_step": False,
                    },
                },
                "residual_share": 1 - decoder_share,
                "profiler": {"tool": "t", "trace_dir": "x"},
            }
        },
    }


def test_table_has_one_row_per_backend(tmp_path):
    for name, backend, step, share in (
        ("step_profile_torch.json", "torch", 2.0, 0.5),
        ("step_profile_tensorflow_noxla.json", "tensorflow", 1.0, 0.25),
    ):
        with open(tmp_path / name, "w") as f:
            json.dump(_report(backend, step, share), f)
    reports = profile_table.load_reports(str(tmp_path))
    text = profile_table.component_table(reports)
    assert "**tiny** (64 px, f4, K=256, batch 16" in text
    assert "| TF, no XLA | 1.000 | 25 % | (1.0 %) | 75 % |" in text
    assert "| torch | 2.000 | 50 % | (0.5 %) | 50 % |" in text
    assert "trace x" in profile_table.profiler_table(reports)

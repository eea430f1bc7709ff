"""benchmarks/text_cache_benchmark.py at the main job's smoke sizes: the
drawn-caption cache holds fewer captions than the split's."""

import os
import sys

import pytest

from keras_lgvq.text_priors import minilm_assets

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "benchmarks"
)
sys.path.insert(0, BENCHMARKS)

import text_cache_benchmark  # noqa: E402


@pytest.mark.skipif(
    not minilm_assets.is_available(),
    reason="MiniLM text prior is not cached (python -m "
    "keras_lgvq.fetch_assets)",
)
def test_smoke_sizes(tmp_path):
    result = text_cache_benchmark.run(
        {"smoke": True, "data_dir": str(tmp_path)}
    )
    drawn, split = result["drawn_cache"], result["split_cache"]
    # Smoke: 32 scenes in batches of 8, 4 steps: one whole pass.
    assert result["draws"] == 32
    assert 0 < drawn["distinct_captions"] <= result["draws"]
    assert drawn["distinct_captions"] < split["distinct_captions"]
    assert split["distinct_captions"] <= result["split_captions"] == 32 * 10
    assert drawn["mib"] < split["mib"]

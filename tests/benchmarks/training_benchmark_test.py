"""The training benchmark's `official_tiny` config builds issue 17's
architecture and trains with LPIPS, discriminator and adaptive weight from
step 0 (one warm-up + one timed step)."""

import os
import sys

import pytest

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "benchmarks"
)
sys.path.insert(0, BENCHMARKS)

import benchmark_configs  # noqa: E402
import training_benchmark  # noqa: E402


# A benchmark worker run (64-px VQGAN with LPIPS and a discriminator): under
# one backend only; the step it times is tested on every backend in
# tests/models.
@pytest.mark.end_to_end("torch")
def test_official_tiny_worker_builds_issue_architecture():
    result = training_benchmark.worker(
        "official_tiny",
        "vqgan",
        "auto",
        "none",
        warmup=1,
        steps=1,
        encode=False,
    )
    config = result["config"]
    assert config["resolution"] == 64
    assert config["ch"] == 64
    assert config["ch_mult"] == [1, 2, 2, 4]
    assert config["num_res_blocks"] == 2
    assert config["attn_resolutions"] == [16]
    assert config["code_grid"] == 8
    assert config["codebook_size"] == 512
    assert config["code_dim"] == 256
    assert config["batch_size"] == 8
    assert config["perceptual_loss"] and config["discriminator"]
    assert config["disc_start"] == 0
    assert config["gan_active_at_step_0"]
    assert result["timed_steps"] == 1
    assert result["step_s_median"] > 0
    logs = result["last_step_logs"]
    # The GAN terms and LPIPS really ran in the step (0 when skipped).
    assert logs["perceptual_loss"] > 0
    assert logs["d_weight"] > 0
    assert logs["disc_factor"] == 1.0
    assert logs["logits_real"] != 0.0


def test_kinds_and_config_validation():
    assert benchmark_configs.kinds_for(benchmark_configs.CONFIGS["paper"]) == (
        "vqgan",
        "lgvq_cached",
    )
    assert "lgvq_fly" in benchmark_configs.kinds_for(
        benchmark_configs.CONFIGS["scenes"]
    )
    with pytest.raises(ValueError, match="Unknown config"):
        benchmark_configs.check_config("huge")
    with pytest.raises(ValueError, match="Unknown model kind"):
        benchmark_configs.build_model(
            benchmark_configs.CONFIGS["tiny"], "lgvq"
        )


def test_ratios_from_step_times():
    ratios = training_benchmark._ratios(
        {
            "vqgan": {"step_s_median": 2.0},
            "lgvq_cached": {"step_s_median": 2.2},
            "lgvq_fly": {"step_s_median": 3.0},
        }
    )
    assert ratios == {"lg_over_plain_cached": 1.1, "lg_over_plain_fly": 1.5}


def test_vocabulary_kind_runs_only_when_named():
    scenes = benchmark_configs.CONFIGS["scenes"]
    assert "lgvq_fly_vocab" not in benchmark_configs.kinds_for(scenes)
    assert "lgvq_fly_vocab" in benchmark_configs.kinds_for(
        scenes, benchmark_configs.KINDS
    )
    assert "lgvq_fly_vocab" not in benchmark_configs.kinds_for(
        benchmark_configs.CONFIGS["paper"], benchmark_configs.KINDS
    )
    ratios = training_benchmark._ratios(
        {
            "vqgan": {"step_s_median": 2.0},
            "lgvq_fly_vocab": {"step_s_median": 2.4},
        }
    )
    assert ratios == {"lg_over_plain_fly_vocab": 1.2}


class _CountingTokenizer:
    """Word-level stand-in for a prior's `tokenize` (ids 1..V, pad 0)."""

    def __init__(self):
        self.words = {}

    def tokenize(self, captions):
        import numpy as np

        rows = [
            [self.words.setdefault(w, len(self.words) + 1) for w in c.split()]
            for c in captions
        ]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), "int32")
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
        return ids, ids > 0


def test_vocabulary_covers_the_benchmark_captions_and_refuses_more(
    monkeypatch,
):
    monkeypatch.setattr(benchmark_configs, "VOCABULARY_EXAMPLES", 24)
    config = benchmark_configs.CONFIGS["scenes"]
    tokenizer = _CountingTokenizer()
    ids = benchmark_configs._caption_vocabulary(config, tokenizer)
    # Every caption the benchmark data draws from those examples is inside.
    data = benchmark_configs.BenchmarkData(config, 24)
    used = {tokenizer.words[w] for c in data.captions for w in c.split()}
    assert used <= set(ids.tolist())
    assert len(ids) == len(tokenizer.words)  # all captions, not just some
    data.arrays = {"token_ids": None, "padding_mask": None}
    with pytest.raises(ValueError, match="at most 24"):
        data.batch("lgvq_fly_vocab", n=25)

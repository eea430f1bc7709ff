import numpy as np
import pytest

from keras_lgvq import visualization
from keras_lgvq.evaluation import flatten_metrics
from tests.evaluation.metric_table_test import _results

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _artifacts(n=10, with_text=True):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (n, 8, 8, 3)).astype("float32")
    artifacts = {
        "eval_images": images,
        "images": images[:8],
        "reconstructions": -images[:8],
        "histogram": rng.integers(0, 5, 16),
    }
    if with_text:
        ranking = {
            "text_to_image_top5": np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]),
            "image_to_text_top3": np.array([[0, 1, 2], [2, 3, 4]]),
        }
        artifacts["retrieval_rankings"] = {
            "probe_image_embeddings": ranking,
            "own_image_embeddings": ranking,
        }
        artifacts["captions"] = [f"caption {i}" for i in range(n)]
    return artifacts


def test_write_evaluation_figures(tmp_path):
    written = visualization.write_evaluation_figures(
        str(tmp_path), _artifacts(), prefix="m_", name="LG-VQ"
    )
    assert written == {
        "reconstructions.png": "m_reconstructions.png",
        "codebook_usage.png": "m_codebook_usage.png",
        "retrieval_probe.png": "m_retrieval_probe.png",
        "retrieval_own.png": "m_retrieval_own.png",
    }
    for name in written.values():
        assert visualization.read_png(str(tmp_path / name)).shape[2] == 3
    plain = visualization.write_evaluation_figures(
        str(tmp_path / "b"), _artifacts(with_text=False)
    )
    assert set(plain) == {"reconstructions.png", "codebook_usage.png"}


def test_write_comparison_figures(tmp_path):
    flat = flatten_metrics(_results())
    written = visualization.write_comparison_figures(
        str(tmp_path),
        {"lgvq": flat, "vqgan": flatten_metrics(_results(guidance=False))},
        histories={"lgvq": {"loss": [2.0, 1.0]}, "vqgan": {"loss": [3.0]}},
        histograms={"lgvq": np.arange(4), "vqgan": np.ones(4)},
        names={"lgvq": "LG-VQ", "vqgan": "VQGAN"},
    )
    assert set(written) == {
        "metrics.png", "training_curves.png", "codebook_usage.png"
    }
    for name in written.values():
        assert (tmp_path / name).stat().st_size > 0


def test_metric_chart_values_follow_the_keys():
    a = flatten_metrics(_results())
    b = flatten_metrics(_results(guidance=False))
    values, references, labels = visualization.metric_chart_values(
        {"lgvq": a, "vqgan": b}, names={"lgvq": "LG-VQ"}
    )
    assert values["psnr"] == {"LG-VQ": 21.0, "vqgan": 21.0}
    assert values["relation_mse_own"] == {"LG-VQ": 0.3, "vqgan": None}
    assert "rfid" not in values  # no model has it
    assert labels["relation_mse_own"].endswith("↓")
    assert references["retrieval_i2t_R@1_probe"] == a["chance_retrieval_R@1"]
    assert not any(k.startswith(("chance_", "baseline_")) for k in values)


def test_retrieval_markdown_and_notes():
    text = visualization.retrieval_markdown(
        _artifacts(), "probe_image_embeddings", "Probe"
    )
    assert "“caption 0” (hit@1)" in text and "“caption 1” (hit@5)" in text
    assert "**caption 0**" in text
    assert visualization.retrieval_markdown(_artifacts(), "nope", "x") == ""
    notes = visualization.unavailable_notes(_results())
    assert notes == ["- RFID not computed: no weights"]

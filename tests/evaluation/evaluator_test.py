import math

import numpy as np
import pytest

from keras_lgvq.evaluation import evaluator
from keras_lgvq.evaluation import flatten_metrics
from keras_lgvq.evaluation import splits
from tests.evaluation.fakes import FakePrior
from tests.evaluation.fakes import batches
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_vqgan

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


PROBE_CONFIG = dict(
    epochs=1,
    batch_size=8,
    linear_epochs=2,
    decoder_intermediate_dim=32,
)


@pytest.fixture(scope="module")
def prepared():
    prior = FakePrior()
    eval_split = splits.prepare_split(batches(16, seed=1), prior, verbose=0)
    probe_split = splits.prepare_split(
        batches(16, seed=2), prior, seed=1, protocol_mask_counts=(),
        training_masks=True, verbose=0,
    )
    return prior, eval_split, probe_split


def test_evaluate_model_lgvq_with_probes(prepared):
    prior, eval_split, probe_split = prepared
    lgvq = tiny_lgvq()
    lgvq.build()
    results, artifacts = evaluator.evaluate_model(
        lgvq, eval_split, probe_split, text_prior=prior,
        probe_config=PROBE_CONFIG, verbose=0, return_artifacts=True,
    )
    assert results["model"] == "LGVQ" and results["language_guidance"]
    assert results["num_eval_images"] == 16
    own = results["own_heads"]
    for block in (own["retrieval"], results["retrieval_probe"]):
        for direction in ("image_to_text", "text_to_image"):
            assert set(block[direction]) == {"R@1", "R@5", "R@10"}
            assert all(0 <= v <= 100 for v in block[direction].values())
    for block in (own["masked_word"], results["masked_word_probe"]):
        assert block["mask1"]["masked_tokens"] == 16
        assert 0 <= block["mask3"]["recall_at_1"] <= 100
    assert "majority_token_baseline" in results["masked_word_probe"]["mask1"]
    assert results["relation_mse_probe"]["all"] >= 0
    assert own["relation_mse"]["valid"] >= own["relation_mse"]["all"] - 1e-6
    assert set(results["attribute_probe"]) >= {"shape", "color", "num_objects"}
    assert results["probe_training"]["steps"] == 2
    for name in ("lpips", "rfid"):
        assert "available" in results[name]
        if not results[name]["available"]:
            assert results[name]["reason"]
    assert artifacts["reconstructions"].shape == (16, 32, 32, 3)
    ranking = artifacts["retrieval_rankings"]["probe_image_embeddings"]
    assert ranking["text_to_image_top5"].shape == (8, 5)
    assert ranking["image_to_text_top3"].shape == (8, 3)
    flat = flatten_metrics(results)
    assert flat["retrieval_i2t_R@1_own"] is not None
    assert flat["codebook_usage_pct"] == pytest.approx(
        100 * results["codebook_usage"]
    )
    # Everything that applies to an LG-VQ is a finite number; usage per
    # sub-codebook applies only to tokenizers that have them (VQCT).
    sub_codebook_keys = {
        k for k in flat
        if k.startswith(("codebook_usage_pct_", "codebook_perplexity_"))
    }
    assert sub_codebook_keys and results["sub_codebooks"] is None
    skip = {"lpips", "rfid"} | sub_codebook_keys
    for key, value in flat.items():
        if key in sub_codebook_keys:
            assert value is None, key
        elif key not in skip:
            assert value is not None and math.isfinite(value), key


def test_evaluate_model_vqgan_without_probes(prepared):
    prior, eval_split, _ = prepared
    vqgan = tiny_vqgan()
    vqgan.build()
    base = evaluator.evaluate_model(
        vqgan, eval_split, probe_split=None, text_prior=prior, verbose=0
    )
    assert base["own_heads"]["available"] is False
    assert "retrieval_probe" not in base
    flat = flatten_metrics(base)
    assert flat["retrieval_i2t_R@1_own"] is None
    assert flat["psnr"] == pytest.approx(base["psnr"])
    assert np.isfinite(base["codebook_perplexity"])

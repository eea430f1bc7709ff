import pytest

from keras_lgvq.evaluation import METRIC_SPECS
from keras_lgvq.evaluation import REFERENCE_KEYS
from keras_lgvq.evaluation import flatten_metrics

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _results(guidance=True):
    recall = {"R@1": 10.0, "R@5": 40.0, "R@10": 70.0}
    mask = {"recall_at_1": 20.0, "majority_token_baseline": 5.0}
    results = {
        "num_eval_images": 50,
        "psnr": 21.0,
        "ssim": 0.6,
        "lpips": {"available": True, "value": 0.2},
        "rfid": {"available": False, "reason": "no weights"},
        "codebook_usage": 0.5,
        "codebook_perplexity": 100.0,
        "retrieval_probe": {"image_to_text": recall, "text_to_image": recall},
        "masked_word_probe": {"mask1": mask, "mask3": dict(mask)},
        "relation_mse_probe": {"all": 0.1, "valid": 0.2},
        "attribute_probe": {
            "shape": 90.0, "color": 80.0, "size": 70.0, "fill": 60.0,
            "num_objects": 50.0,
            "chance_majority": {
                "shape": 20.0, "color": 15.0, "size": 40.0, "fill": 35.0,
                "num_objects": 34.0,
            },
        },
    }
    if guidance:
        results["own_heads"] = {
            "retrieval": {"image_to_text": recall, "text_to_image": recall},
            "masked_word": {"mask1": mask, "mask3": mask},
            "relation_mse": {"all": 0.3, "valid": 0.4},
        }
    else:
        results["own_heads"] = {"available": False, "reason": "none"}
    return results


def test_flatten_emits_exactly_the_specified_keys_in_order():
    # A key renamed in `flatten_metrics` but not in `METRIC_SPECS` (or the
    # reverse) fails here, so the report cannot lose it unnoticed.
    flat = flatten_metrics(_results())
    assert list(flat) == list(METRIC_SPECS) + list(REFERENCE_KEYS)
    assert list(flatten_metrics({})) == list(flat)


def test_flatten_values():
    flat = flatten_metrics(_results())
    assert flat["psnr"] == 21.0 and flat["lpips"] == 0.2
    assert flat["rfid"] is None
    assert flat["codebook_usage_pct"] == pytest.approx(50.0)
    assert flat["retrieval_t2i_R@5_own"] == 40.0
    assert flat["mask3_recall_probe"] == 20.0
    assert flat["relation_mse_own"] == 0.3
    assert flat["attr_num_objects_acc"] == 50.0
    assert flat["chance_retrieval_R@10"] == pytest.approx(20.0)
    assert flat["baseline_mask1"] == 5.0
    assert flat["chance_attr_fill"] == 35.0
    base = flatten_metrics(_results(guidance=False))
    assert base["retrieval_i2t_R@1_own"] is None
    assert base["relation_mse_own"] is None


def test_every_reference_is_a_reference_key():
    for key, spec in METRIC_SPECS.items():
        assert spec.label and spec.higher_is_better in (True, False), key
        if spec.reference is not None:
            assert spec.reference in REFERENCE_KEYS
    assert not set(REFERENCE_KEYS) & set(METRIC_SPECS)

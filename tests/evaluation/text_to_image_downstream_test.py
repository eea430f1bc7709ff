"""Within-generator conditioning tests of the text-to-image downstream
task (`scaled_passes`, `conditioning_tests`) on hand-built per-caption
lists; the whole task runs in tests/comparison/text_to_image_test.py."""

import numpy as np
import pytest

from keras_lgvq.evaluation import text_to_image_downstream as lib


def _lists(passed, checks, present=None):
    present = passed if present is None else present
    return {"passed": list(passed), "checks": list(checks),
            "presence_passed": list(present), "presence_checks": list(checks)}


def test_conditioning_tests_compare_the_same_captions():
    checks = [4, 2, 3, 5] * 10
    rng = np.random.default_rng(0)
    generated = [int(rng.integers(c // 2, c + 1)) for c in checks]
    chance = [max(g - c // 2, 0) for g, c in zip(generated, checks)]
    per_caption = {
        "generated": _lists(generated, checks),
        "generated_mismatched": _lists(chance, checks),
        # The unconditional samples pass as often as the generated ones.
        "unconditional": {"passed": generated, "checks": checks},
    }
    tests = lib.conditioning_tests(per_caption, num_resamples=500, seed=1)
    # No presence lists for the unconditional samples: no such test.
    assert set(tests) == {"generated_vs_mismatched",
                          "presence_generated_vs_mismatched",
                          "generated_vs_unconditional"}
    own = tests["generated_vs_mismatched"]
    # The difference is the difference of the pooled shares.
    assert own["difference"] == pytest.approx(
        (sum(generated) - sum(chance)) / sum(checks))
    assert own["significant"] and own["ci_low"] > 0
    same = tests["generated_vs_unconditional"]
    assert same["difference"] == 0.0 and not same["significant"]
    # Missing lists (a result without the mismatched control) are skipped.
    assert lib.conditioning_tests(
        {"generated": per_caption["generated"]}) == {}


def test_per_attribute_presence_tests():
    from keras_lgvq.metrics.conditioning_accuracy import PRESENCE_ATTRIBUTES

    assert {v[3] for v in lib.CONDITIONING_TESTS.values()} - {None} == set(
        PRESENCE_ATTRIBUTES)
    checks = [2, 1, 2, 1] * 10
    own = _lists([1] * 40, [4] * 40)
    chance = _lists([1] * 40, [4] * 40)
    # Colour: present in every generated image, in a quarter by chance;
    # fill: as often either way; no caption asks for a region.
    for lists, colour, fill in ((own, checks, [1] * 40),
                                (chance, [c // 2 for c in checks],
                                 [1] * 40)):
        lists["presence_color_passed"] = colour
        lists["presence_color_checks"] = checks
        lists["presence_fill_passed"] = fill
        lists["presence_fill_checks"] = [2] * 40
        lists["presence_region_passed"] = [0] * 40
        lists["presence_region_checks"] = [0] * 40
    tests = lib.conditioning_tests(
        {"generated": own, "generated_mismatched": chance},
        num_resamples=300)
    colour = tests["presence_color_generated_vs_mismatched"]
    assert colour["difference"] == pytest.approx(
        (sum(checks) - sum(c // 2 for c in checks)) / sum(checks))
    assert colour["significant"]
    assert tests["presence_fill_generated_vs_mismatched"][
        "difference"] == 0.0
    # No check of an attribute (region) or no list for it (shape, size):
    # no test.
    for name in ("region", "shape", "size"):
        assert f"presence_{name}_generated_vs_mismatched" not in tests


def test_scaled_passes_average_to_the_pooled_share():
    lists = _lists([1, 3, 0], [2, 4, 2], present=[2, 4, 1])
    assert np.mean(lib.scaled_passes(lists)) == pytest.approx(4 / 8)
    assert np.mean(lib.scaled_passes(lists, presence=True)) == (
        pytest.approx(7 / 8))
    with pytest.raises(ValueError, match="presence_passed"):
        lib.scaled_passes({"presence_passed": [1],
                           "presence_checks": [1, 2]}, presence=True)


def test_eval_images_below_two_is_refused_before_any_work():
    # Every chance level judges a test image against another's caption.
    with pytest.raises(ValueError, match="eval_images"):
        lib.text_to_image_downstream_scenes("not a tokenizer", eval_images=1)
    with pytest.raises(ValueError, match="mismatched_rolls"):
        lib.text_to_image_downstream_scenes("not a tokenizer",
                                            mismatched_rolls=0)

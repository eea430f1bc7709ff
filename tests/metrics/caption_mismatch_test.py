"""The chance level of a set of images: the same images judged against
other images' captions (`keras_lgvq.metrics.caption_mismatch`), and the
presence checks of `judge_caption`, on hand-built detections (no judge
training)."""

import pytest

from keras_lgvq.metrics import caption_mismatch as lib
from keras_lgvq.metrics import conditioning_accuracy as ca

CAPTIONS = [
    "a big red star above a small blue circle",
    "a green hexagon on a checkered background",
    "two shapes: a yellow box and a purple heart",
    "a small orange triangle in the bottom left",
    "a big blue striped star and a little black hollow box",
]


def _object(shape, color, size="medium", fill="solid", x=0.5, y=0.5):
    return {"shape": shape, "color": color, "size": size, "fill": fill,
            "x": x, "y": y, "region": ca._region(x, y), "confidence": 1.0}


def _detection(objects, background="plain", tone="dark"):
    return {"objects": objects, "background": background, "tone": tone}


def _faithful(caption):
    """Objects drawn exactly as the caption asks (defaults elsewhere)."""
    parsed = ca.parse_scene_caption(caption)
    objects = []
    for k, obj in enumerate(parsed["objects"]):
        objects.append(dict(
            _object(obj["shape"], obj.get("color", "gray"),
                    obj.get("size", "medium"), obj.get("fill", "solid"),
                    x=0.2 + 0.6 * k, y=0.5),
            **{key: obj[key] for key in ("region",) if key in obj}))
    return _detection(objects, parsed["background"] or "plain",
                      parsed["tone"] or "dark")


def test_rolled_captions_have_no_fixed_point():
    assert lib.rolled_captions(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert lib.rolled_captions(["a", "b", "c"], 2) == ["c", "a", "b"]
    for offset in (0, 3):
        with pytest.raises(ValueError, match="offset"):
            lib.rolled_captions(["a", "b", "c"], offset)


def test_mismatched_accuracy_is_the_pooled_share_over_the_shifts():
    detections = [_faithful(c) for c in CAPTIONS]
    summary, per_caption = lib.mismatched_caption_accuracy(
        detections, CAPTIONS, rolls=3)
    assert summary["rolls"] == 3
    # Independent count: judge each shift separately and pool the counts.
    passed = checks = present = asked = 0
    for offset in (1, 2, 3):
        shifted = CAPTIONS[offset:] + CAPTIONS[:offset]
        for row in ca.judge_detections(detections, shifted)["per_caption"]:
            passed += row["passed"]
            checks += row["checks"]
            present += row["presence_passed"]
            asked += row["presence_checks"]
    assert summary["overall"] == pytest.approx(passed / checks)
    assert summary["checks"] == checks
    assert summary["presence_overall"] == pytest.approx(present / asked)
    # Per image: the mean over the shifts; each caption is used once per
    # shift, so the checks add up to the matched ones.
    own = ca.judge_detections(detections, CAPTIONS)
    assert sum(per_caption["checks"]) == pytest.approx(own["checks"])
    assert sum(per_caption["passed"]) == pytest.approx(passed / 3)
    assert len(per_caption["presence_passed"]) == len(CAPTIONS)
    assert sum(per_caption["presence_color_checks"]) == pytest.approx(sum(
        row["presence_color_checks"] for row in own["per_caption"]))
    # Faithful images (objects side by side, so "above" fails) pass their
    # own captions' checks far more often than the others'.
    assert own["overall"] > 0.9
    assert summary["overall"] < 0.5


def test_images_that_ignore_their_captions_sit_at_their_own_chance():
    # One image for every caption: matched and mismatched pairings judge
    # the same image against the same captions, so they are equal.
    same = _faithful(CAPTIONS[0])
    detections = [same] * len(CAPTIONS)
    own = ca.judge_detections(detections, CAPTIONS)
    chance, _ = lib.mismatched_caption_accuracy(detections, CAPTIONS)
    assert chance["rolls"] == len(CAPTIONS) - 1  # capped at n - 1
    assert chance["overall"] == pytest.approx(own["overall"])
    assert chance["presence_overall"] == pytest.approx(
        own["presence_overall"])


def test_presence_counts_an_attribute_on_any_object():
    parsed = ca.parse_scene_caption("a big red star above a small blue circle")
    # A red blob read as a circle and a blue box: every bound check of
    # the star fails, its colour and size are still in the image.
    blob = _object("circle", "red", "large", x=0.5, y=0.2)
    box = _object("box", "blue", "small", x=0.5, y=0.8)
    judged = ca.judge_caption(parsed, [blob, box])
    assert judged["checks"]["color"] == [False, False]
    assert judged["presence"]["color"] == [True, True]
    assert judged["presence"]["shape"] == [False, True]
    assert judged["presence"]["size"] == [True, True]
    counts = ca.caption_counts(judged)
    assert counts["presence_color_passed"] == 2
    assert counts["presence_shape_passed"] == 1
    assert counts["presence_region_checks"] == 0
    assert counts["presence_checks"] == sum(
        counts[f"presence_{a}_checks"] for a in ca.PRESENCE_ATTRIBUTES)
    assert counts["presence_checks"] == sum(
        len(v) for v in judged["presence"].values())
    assert counts["presence_passed"] == sum(
        sum(v) for v in judged["presence"].values())
    summary = ca.summarise_judged([judged])
    assert summary["presence"]["color"]["accuracy"] == 1.0
    assert summary["presence_overall"] == pytest.approx(
        counts["presence_passed"] / counts["presence_checks"])
    empty = ca.judge_caption(parsed, [])
    assert not any(any(v) for v in empty["presence"].values())


def test_bad_arguments_name_the_argument():
    detections = [_faithful(c) for c in CAPTIONS]
    with pytest.raises(ValueError, match="at least 2"):
        lib.mismatched_caption_accuracy(detections[:1], CAPTIONS[:1])
    with pytest.raises(ValueError, match="one caption per image"):
        lib.mismatched_caption_accuracy(detections, CAPTIONS[:3])
    with pytest.raises(ValueError, match="rolls"):
        lib.mismatched_caption_accuracy(detections, CAPTIONS, rolls=0)
    with pytest.raises(ValueError, match="captions"):
        lib.mismatched_caption_accuracy(detections, "a red star")

"""Scenes questions: answers re-derived independently from the recorded
object attributes and coordinates; determinism, balance, held-out split."""

import collections
import re

import pytest

from keras_lgvq.datasets import scenes
from keras_lgvq.datasets import scenes_questions as sq

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

NUMBERS = {"zero": 0, "one": 1, "two": 2, "three": 3}


def _geometric_relation(a, b):
    # From the coordinates (not the recorded relations): a with respect to b.
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _independent_answer(question, objects):
    """Answers a generated question from the objects alone, or raises if it
    is ambiguous."""
    q = question
    if m := re.fullmatch(r"what color is the (\w+)\?", q):
        found = [o for o in objects if o["shape"] == m[1]]
        assert len(found) == 1, q
        return found[0]["color"]
    if m := re.fullmatch(r"what shape is the (\w+) object\?", q):
        found = [o for o in objects if o["color"] == m[1]]
        assert len(found) == 1, q
        return found[0]["shape"]
    if m := re.fullmatch(r"what size is the (\w+) (\w+)\?", q):
        found = [o for o in objects if (o["color"], o["shape"]) ==
                 (m[1], m[2])]
        assert len(found) == 1, q
        return found[0]["size"]
    if q == "how many objects are there?":
        return sq.NUMBER_WORDS[len(objects)]
    if m := re.fullmatch(r"how many (\w+) objects are there\?", q):
        return sq.NUMBER_WORDS[sum(o["color"] == m[1] for o in objects)]
    if m := re.fullmatch(r"is there an? (\w+) (\w+)\?", q):
        present = any((o["color"], o["shape"]) == (m[1], m[2])
                      for o in objects)
        return "yes" if present else "no"
    if m := re.fullmatch(
        r"what shape is (left of|right of|above|below) the (\w+) (\w+)\?", q
    ):
        anchors = [o for o in objects if (o["color"], o["shape"]) ==
                   (m[2], m[3])]
        assert len(anchors) == 1, q
        found = [o for o in objects if o is not anchors[0]
                 and _geometric_relation(o, anchors[0]) == m[1]]
        assert len(found) == 1, q
        return found[0]["shape"]
    raise AssertionError(f"unexpected question form: {q!r}")


def test_answers_match_an_independent_check_of_the_attributes():
    questions = sq.generate_questions(60, seed=3, include_images=False,
                                      balance=False, questions_per_image=50)
    assert {q["type"] for q in questions} == set(sq.QUESTION_TYPES)
    for q in questions:
        assert _independent_answer(q["question"], q["scene"]["objects"]) == (
            q["answer"]
        ), q["question"]


def test_deterministic_per_seed_and_images_match_the_scenes():
    a = sq.generate_questions(12, seed=1, image_size=32)
    b = sq.generate_questions(12, seed=1, image_size=32)
    c = sq.generate_questions(12, seed=2, image_size=32, include_images=False)
    strip = [(q["question"], q["answer"], q["image_id"]) for q in a]
    assert strip == [(q["question"], q["answer"], q["image_id"]) for q in b]
    assert strip != [(q["question"], q["answer"], q["image_id"]) for q in c]
    example = scenes.generate_example(a[0]["image_index"], seed=1,
                                      image_size=32,
                                      holdout=scenes.DEFAULT_HOLDOUT)
    assert (example["image"] == a[0]["image"]).all()


def test_answers_are_balanced_within_each_type():
    questions = sq.generate_questions(150, seed=0, include_images=False)
    counts = collections.defaultdict(collections.Counter)
    for q in questions:
        counts[q["type"]][q["answer"]] += 1
    for kind, by_answer in counts.items():
        assert len(set(by_answer.values())) == 1, (kind, by_answer)
    assert set(counts["exist"]) == {"yes", "no"}
    assert len(counts["color"]) >= 5


def test_holdout_split_asks_about_held_out_combinations_only():
    train = sq.generate_questions(80, seed=0, include_images=False,
                                  balance=False, questions_per_image=50)
    for q in train:
        assert not any(scenes._matches(o, scenes.DEFAULT_HOLDOUT)
                       for o in q["scene"]["objects"])
    held = sq.generate_questions(80, seed=0, split="holdout",
                                 include_images=False, balance=False)
    assert held
    for q in held:
        objects = q["scene"]["objects"]
        assert any(scenes._matches(objects[i], scenes.DEFAULT_HOLDOUT)
                   for i in q["objects"])
        assert _independent_answer(q["question"], objects) == q["answer"]


def test_bad_arguments():
    for kwargs, match in (({"num_images": 0}, "num_images"),
                          ({"num_images": 2, "questions_per_image": 0},
                           "questions_per_image"),
                          ({"num_images": 2, "split": ""}, "split")):
        with pytest.raises(ValueError, match=match):
            sq.generate_questions(**kwargs)

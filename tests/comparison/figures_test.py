"""`stage2_examples.png` of the comparison, from hand-built stored
examples (no model runs)."""

import pytest

from keras_lgvq.comparison import figures
from keras_lgvq.datasets import scenes
from keras_lgvq.visualization import read_png

# No Keras backend op runs in this file (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _summary(ids, seed_questions=True):
    def captioning(prefix):
        return {"examples": [
            {"image_id": i, "references": ["r"], "image": f"{prefix} {i}",
             "blind": "b"} for i in ids]}

    def vqa(answer):
        return {"examples": [
            {"question_id": f"{i}#{q}", "question": f"q{q} of {i}?",
             "answer": "red", "image": answer, "blind": "blue"}
            for i in ids for q in range(2)]}

    summary = {
        "lgvq": {"captioning": captioning("lg")},
        "vqgan": {"captioning": captioning("vq")},
        "lqae": {},
    }
    if seed_questions:
        summary["lgvq"]["vqa"] = vqa("red")
        summary["vqgan"]["vqa"] = vqa("green")
    return summary


def test_stage2_examples_show_every_system_on_the_seeds_test_images(
        tmp_path, monkeypatch):
    drawn = list(scenes.generate(6, seed=2, image_size=32, split="test",
                                 holdout=None))
    ids = [e["image_id"] for e in drawn]
    seen = {}
    from keras_lgvq.visualization.caption_figures import (
        systems_answers_figure,
    )

    def fake(images, references, captions, questions, answers, by_system,
             path, title):
        seen.update(images=images, references=references,
                    captions=captions, questions=questions,
                    answers=answers, by_system=by_system, path=path)
        return systems_answers_figure(images, references, captions,
                                      questions, answers, by_system,
                                      path=path, title=title)

    monkeypatch.setattr(
        "keras_lgvq.visualization.caption_figures.systems_answers_figure",
        fake)
    written = figures.stage2_examples_figure(
        str(tmp_path), _summary(ids), ["lgvq", "vqgan", "lqae"], 32, 2)
    assert written == {"stage2_examples.png": "stage2_examples.png"}
    count = figures.STAGE2_EXAMPLE_IMAGES
    # The seed's first test images, in order, with their true captions.
    assert (seen["images"] == [e["image"] for e in drawn[:count]]).all()
    assert seen["references"] == [e["captions"][0] for e in drawn[:count]]
    assert seen["captions"] == {
        "LG-VQ": [f"lg {i}" for i in ids[:count]],
        "VQGAN": [f"vq {i}" for i in ids[:count]]}
    # The first question of each image; every system's answer to it.
    assert seen["questions"] == [f"q0 of {i}?" for i in ids[:count]]
    assert seen["by_system"] == {"LG-VQ": ["red"] * count,
                                 "VQGAN": ["green"] * count}
    assert read_png(str(tmp_path / "stage2_examples.png")).shape[-1] == 3


def test_stage2_examples_need_the_seeds_images_and_some_captions(tmp_path):
    drawn = list(scenes.generate(4, seed=2, image_size=32, split="test",
                                 holdout=None))
    ids = [e["image_id"] for e in drawn]
    # Stored examples that are not the first test images: no figure.
    assert figures.stage2_examples_figure(
        str(tmp_path), _summary(ids[1:]), ["lgvq"], 32, 2) == {}
    assert figures.stage2_examples_figure(
        str(tmp_path), {"lgvq": {}}, ["lgvq"], 32, 2) == {}
    # Captions without VQA: a captions-only figure.
    assert figures.stage2_examples_figure(
        str(tmp_path), _summary(ids, seed_questions=False),
        ["lgvq", "vqgan"], 32, 2)

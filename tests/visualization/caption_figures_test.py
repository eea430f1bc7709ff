"""Figures of captioned images and answered questions."""

import numpy as np
import pytest

from keras_lgvq.visualization import read_png
from keras_lgvq.visualization.caption_figures import answered_questions_figure
from keras_lgvq.visualization.caption_figures import captioned_images_figure
from keras_lgvq.visualization.caption_figures import systems_answers_figure

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _texts(figure):
    return {t.get_text(): t.get_color() for ax in figure.axes
            for t in ax.texts}


def _images(n):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 16, 16, 3)).astype("uint8")


def test_captioned_images_figure_writes_every_caption(tmp_path):
    path = str(tmp_path / "captions.png")
    figure = captioned_images_figure(
        _images(5), ["a red cube", "two blue balls", "c", "d", "e"],
        references=["a red cube", "blue balls", "c", "d", "e"],
        baseline=["a cube", "a ball", "x", "y", "z"], path=path,
        title="t", columns=3)
    texts = _texts(figure)
    assert texts["model: two blue balls"] == "black"
    assert texts["true: blue balls"] == "darkgreen"
    assert texts["blind: a ball"] == "grey"
    # 5 tiles in rows of 3: 5 image axes and 5 text axes.
    assert len(figure.axes) == 10
    png = read_png(path)
    assert png.ndim == 3 and png.shape[0] > 50 and png.shape[1] > 50
    # Float images in [-1, 1] are accepted too.
    captioned_images_figure(np.zeros((1, 8, 8, 3), "float32"), ["x"])


def test_answered_questions_figure_marks_right_and_wrong(tmp_path):
    figure = answered_questions_figure(
        _images(2), ["what color is it?", "how many?"], ["red", "two"],
        ["red", "three"], baseline=["blue", "one"],
        path=str(tmp_path / "answers.png"))
    texts = _texts(figure)
    assert texts["model: red (right)"] == "darkgreen"
    assert texts["model: two (wrong)"] == "firebrick"
    assert "true: three" in texts and "blind: one" in texts
    assert read_png(str(tmp_path / "answers.png")).shape[-1] == 3


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="images"):
        captioned_images_figure(np.zeros((2, 8, 8)), ["a", "b"])
    with pytest.raises(ValueError, match="one per image"):
        captioned_images_figure(_images(2), ["a"])
    with pytest.raises(ValueError, match="list of 2 str"):
        captioned_images_figure(_images(2), "a b")
    with pytest.raises(ValueError, match="answers"):
        answered_questions_figure(_images(2), ["q", "q"], ["a", "b"], ["a"])


def test_systems_answers_figure_puts_every_system_under_each_image(tmp_path):
    path = str(tmp_path / "systems.png")
    figure = systems_answers_figure(
        _images(2), ["a red star", "two blue boxes"],
        {"LG-VQ": ["a red star", "a box"], "VQGAN": ["a star", "boxes"]},
        ["what color is the star?", "how many boxes?"], ["red", "two"],
        {"LG-VQ": ["red", "one"], "VQGAN": ["blue", "two"]}, path=path)
    texts = _texts(figure)
    assert texts["true: two blue boxes"] == "darkgreen"
    assert texts["VQGAN: boxes"] == "black"
    assert texts["Q: how many boxes? (true: two)"] == "black"
    assert texts["LG-VQ: red"] == "darkgreen"
    assert texts["LG-VQ: one"] == "firebrick"
    assert texts["VQGAN: two"] == "darkgreen"
    assert read_png(path).shape[-1] == 3
    # Captions only.
    captions_only = _texts(systems_answers_figure(
        _images(1), ["x"], {"LG-VQ": ["y"]}))
    assert set(captions_only) == {"true: x", "LG-VQ: y"}
    with pytest.raises(ValueError, match="answers_by_system"):
        systems_answers_figure(_images(1), ["x"], {"A": ["y"]}, ["q?"],
                               ["a"])
    with pytest.raises(ValueError, match="one per image"):
        systems_answers_figure(_images(2), ["x", "y"], {"A": ["y"]})

"""Figures of captioned images and answered questions (matplotlib).

Drawn like the rest of `keras_lgvq.visualization`: `Figure` objects without
pyplot, matplotlib imported only when a figure is made (the `viz` extra).
Each tile is an image with its text underneath.
"""

import textwrap

import numpy as np

from keras_lgvq.visualization.plotting import new_figure
from keras_lgvq.visualization.plotting import save_figure
from keras_lgvq.visualization.plotting import to_uint8


def _images(images, name):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"`{name}` must be images (N, H, W, 3), uint8 or float in "
            f"[-1, 1]; received shape {images.shape}."
        )
    return images if images.dtype == np.uint8 else to_uint8(images)


def _texts(texts, name, count):
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise ValueError(
            f"`{name}` must be a list of {count} str; received "
            f"{type(texts).__name__}."
        )
    if len(texts) != count:
        raise ValueError(
            f"`{name}` has {len(texts)} entries for {count} images; pass "
            "one per image."
        )
    return [str(t) for t in texts]


def _wrap(text, width):
    return "\n".join(textwrap.wrap(text, width)) or "(empty)"


def _grid(images, blocks, columns, tile_inches, text_lines, title, path):
    """Tiles of image + a text block (list of (text, colour) lines)."""
    count = len(images)
    columns = max(1, min(int(columns), count))
    rows = -(-count // columns)
    text_inches = 0.13 * text_lines
    fig = new_figure(
        columns * tile_inches * 1.6,
        rows * (tile_inches + text_inches) + (0.3 if title else 0),
    )
    grid = fig.add_gridspec(
        rows * 2, columns,
        height_ratios=[tile_inches, text_inches] * rows,
        hspace=0.02, wspace=0.05,
    )
    for i in range(count):
        r, c = divmod(i, columns)
        ax = fig.add_subplot(grid[2 * r, c])
        ax.imshow(images[i], interpolation="nearest")
        ax.axis("off")
        ax = fig.add_subplot(grid[2 * r + 1, c])
        ax.axis("off")
        y = 1.0
        for text, colour in blocks[i]:
            lines = text.count("\n") + 1
            ax.text(0.0, y, text, ha="left", va="top", fontsize=6,
                    color=colour, transform=ax.transAxes)
            y -= lines / max(text_lines, 1)
    if title:
        fig.suptitle(title, fontsize=9)
    if path is not None:
        save_figure(fig, path)
    return fig


def captioned_images_figure(images, captions, references=None,
                            baseline=None, path=None, title=None,
                            columns=4, tile_inches=1.3, wrap=34):
    """Images with their generated caption (and reference, baseline).

    Args:
        images: `(N, H, W, 3)` uint8 or float in [-1, 1].
        captions: list of N str. The model's captions (shown in black).
        references: optional list of N str. A true caption (green).
        baseline: optional list of N str. E.g. the blind model's caption
            (grey).
        path: str or None. Where to save the PNG.
        title: str or None.
        columns: int. Tiles per row.
        tile_inches: float. Image size.
        wrap: int. Characters per text line.

    Returns:
        The `matplotlib.figure.Figure`.

    Examples:

    ```python
    captioned_images_figure(images[:8], captioner.generate(codes=codes[:8]),
                            references=true_captions[:8],
                            path="captions.png")
    ```
    """
    images = _images(images, "images")
    count = len(images)
    rows = [("model", _texts(captions, "captions", count), "black")]
    if references is not None:
        rows.append(("true", _texts(references, "references", count),
                     "darkgreen"))
    if baseline is not None:
        rows.append(("blind", _texts(baseline, "baseline", count), "grey"))
    blocks = [
        [(_wrap(f"{label}: {texts[i]}", wrap), colour)
         for label, texts, colour in rows]
        for i in range(count)
    ]
    text_lines = max(
        sum(t.count("\n") + 1 for t, _ in block) for block in blocks
    )
    return _grid(images, blocks, columns, tile_inches, text_lines, title,
                 path)


def answered_questions_figure(images, questions, predicted, answers,
                              baseline=None, path=None, title=None,
                              columns=4, tile_inches=1.3, wrap=34):
    """Images with a question, the predicted and the true answer.

    A correct prediction is drawn in green, a wrong one in red.

    Args:
        images: `(N, H, W, 3)` uint8 or float in [-1, 1].
        questions: list of N str.
        predicted: list of N str. The model's answers.
        answers: list of N str. The true answers.
        baseline: optional list of N str. E.g. the blind model's answers.
        path: str or None. Where to save the PNG.
        title: str or None.
        columns: int. Tiles per row.
        tile_inches: float. Image size.
        wrap: int. Characters per text line.

    Returns:
        The `matplotlib.figure.Figure`.

    Examples:

    ```python
    answered_questions_figure(images, questions, model.answer(
        questions, codes=codes), answers, path="answers.png")
    ```
    """
    images = _images(images, "images")
    count = len(images)
    questions = _texts(questions, "questions", count)
    predicted = _texts(predicted, "predicted", count)
    answers = _texts(answers, "answers", count)
    if baseline is not None:
        baseline = _texts(baseline, "baseline", count)
    blocks = []
    for i in range(count):
        ok = predicted[i] == answers[i]
        block = [
            (_wrap(f"Q: {questions[i]}", wrap), "black"),
            (f"model: {predicted[i]} ({'right' if ok else 'wrong'})",
             "darkgreen" if ok else "firebrick"),
            (f"true: {answers[i]}", "black"),
        ]
        if baseline is not None:
            block.append((f"blind: {baseline[i]}", "grey"))
        blocks.append(block)
    text_lines = max(
        sum(t.count("\n") + 1 for t, _ in block) for block in blocks
    )
    return _grid(images, blocks, columns, tile_inches, text_lines, title,
                 path)


def systems_answers_figure(images, references, captions_by_system,
                           questions=None, answers=None,
                           answers_by_system=None, path=None, title=None,
                           columns=4, tile_inches=1.5, wrap=40):
    """Test images with what several systems said about each: their
    captions under the true one and, optionally, their answers to one
    question (green: right, red: wrong).

    Args:
        images: `(N, H, W, 3)` uint8 or float in [-1, 1].
        references: list of N str. A true caption per image (green).
        captions_by_system: dict `{system name: list of N captions}`.
        questions: optional list of N str (one question per image).
        answers: list of N str, the true answers (with `questions`).
        answers_by_system: dict `{system name: list of N answers}` (with
            `questions`).
        path: str or None. Where to save the PNG.
        title: str or None.
        columns: int. Tiles per row.
        tile_inches: float. Image size.
        wrap: int. Characters per text line.

    Returns:
        The `matplotlib.figure.Figure`.

    Examples:

    ```python
    systems_answers_figure(
        images, true_captions, {"LG-VQ": lgvq_captions, "VQGAN": vqgan},
        questions, answers, {"LG-VQ": lgvq_answers, "VQGAN": vqgan_answers},
        path="stage2_examples.png")
    ```
    """
    images = _images(images, "images")
    count = len(images)
    references = _texts(references, "references", count)
    captions = {
        name: _texts(texts, f"captions_by_system[{name!r}]", count)
        for name, texts in captions_by_system.items()
    }
    if questions is not None:
        questions = _texts(questions, "questions", count)
        answers = _texts(answers, "answers", count)
        if not answers_by_system:
            raise ValueError(
                "`answers_by_system` must give each system's answers when "
                "`questions` is given."
            )
        answered = {
            name: _texts(texts, f"answers_by_system[{name!r}]", count)
            for name, texts in answers_by_system.items()
        }
    blocks = []
    for i in range(count):
        block = [(_wrap(f"true: {references[i]}", wrap), "darkgreen")]
        block += [(_wrap(f"{name}: {texts[i]}", wrap), "black")
                  for name, texts in captions.items()]
        if questions is not None:
            block.append((_wrap(f"Q: {questions[i]} (true: {answers[i]})",
                                wrap), "black"))
            for name, texts in answered.items():
                ok = texts[i] == answers[i]
                block.append((f"{name}: {texts[i]}",
                              "darkgreen" if ok else "firebrick"))
        blocks.append(block)
    text_lines = max(
        sum(t.count("\n") + 1 for t, _ in block) for block in blocks
    )
    return _grid(images, blocks, columns, tile_inches, text_lines, title,
                 path)

"""The README's "Your own captioned images" snippet runs as written.

The test executes the README's code block itself, with only the sizes made
tiny and the folder pointed at a tree it writes; every substitution must
match exactly, so an edit of the README that the test no longer covers
fails here.
"""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
SECTION = "### Your own captioned images"


def _snippet():
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    assert text.count(SECTION) == 1
    section = text.split(SECTION, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def _write_tree(root, count):
    rng = np.random.default_rng(0)
    colours = {"red": (220, 30, 30), "blue": (30, 30, 220)}
    for i in range(count):
        name = list(colours)[i % 2]
        image = np.zeros((36, 36, 3), np.uint8) + np.asarray(
            colours[name], np.uint8
        )
        image[rng.integers(0, 20):, : rng.integers(10, 36)] = 255
        folder = os.path.join(root, name)
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(
            os.path.join(folder, f"{i}.png"), tf.io.encode_png(image)
        )
        with open(os.path.join(folder, f"{i}.txt"), "w") as handle:
            handle.write(f"a {name} square\na {name} image with white\n")


# A whole README-snippet run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
def test_readme_snippet_runs(tmp_path, capsys):
    from keras_lgvq.text_priors import minilm_assets

    if not minilm_assets.is_available():
        pytest.fail(
            "MiniLM is not in the keras_lgvq cache; fetch it with "
            f"`{minilm_assets.fetch_command()}`."
        )
    code = _snippet()
    assert len(code.strip().splitlines()) < 15
    # One batch each: the cost is compilation, not data.
    _write_tree(str(tmp_path / "photos" / "train"), 2)
    _write_tree(str(tmp_path / "photos" / "val"), 2)
    replacements = {
        'resolution=64': "resolution=32",
        "batch_size=16": "batch_size=2",
        "epochs=3": "epochs=1",
        '"photos/': f'"{tmp_path}/photos/',
    }
    for old, new in replacements.items():
        assert old in code, f"README snippet no longer contains {old!r}"
        code = code.replace(old, new)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    model = namespace["model"]
    assert model.backbone.resolution == 32
    assert model.backbone.quantizer.get_config()["l2_normalize"] is True
    batch = next(iter(namespace["val"]))
    assert batch["images"].shape == (2, 32, 32, 3)
    # Sorted sub-folders: blue (0) first, unshuffled when not training.
    assert batch["label"].numpy().tolist() == [0, 1]
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert np.isfinite(float(printed))

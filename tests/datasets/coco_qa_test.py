"""The COCO-QA builder on a tiny fake release tree (tiny JPEGs)."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from keras_lgvq.datasets import coco_qa
from keras_lgvq.datasets.coco_qa import QUESTION_TYPES
from keras_lgvq.datasets.coco_qa import LgvqCocoQa
from keras_lgvq.datasets.coco_qa import answer_vocabulary
from keras_lgvq.datasets.coco_qa import load_coco_qa
from keras_lgvq.datasets.coco_qa import question_records

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

# (question, answer, COCO id, type code) per split, as the release lists
# them: questions of one image need not be adjacent.
TRAIN = [
    ("what is the man holding ?", "umbrella", 9, 0),
    ("how many dogs are on the bed ?", "two", 25, 1),
    ("what  color is the   bus ?", "Red", 9, 2),
    ("where is the cat sitting ?", "table", 30, 3),
]
TEST = [
    ("what is on the plate ?", "pizza", 42, 0),
    ("what color is the kite ?", "blue", 42, 2),
]


def _jpeg(path, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=3)
    array = np.broadcast_to(base, (12, 16, 3)).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format="JPEG", quality=95)
    return array


def _write_split(folder, rows):
    os.makedirs(folder, exist_ok=True)
    for i, name in enumerate(coco_qa.QA_FILES):
        with open(os.path.join(folder, name), "w") as f:
            f.write("".join(f"{row[i]}\n" for row in rows))


def make_tree(root, qa_folder="cocoqa-2015-05-17"):
    qa_root = os.path.join(root, qa_folder)
    _write_split(os.path.join(qa_root, "train"), TRAIN)
    _write_split(os.path.join(qa_root, "test"), TEST)
    arrays = {}
    for coco_id in sorted({r[2] for r in TRAIN}):
        arrays[coco_id] = _jpeg(
            os.path.join(root, "train2014",
                         f"COCO_train2014_{coco_id:012d}.jpg"), coco_id)
    for coco_id in sorted({r[2] for r in TEST}):
        arrays[coco_id] = _jpeg(
            os.path.join(root, "val2014", f"COCO_val2014_{coco_id:012d}.jpg"),
            coco_id)
    return qa_root, arrays


def test_builder_groups_questions_per_image(tmp_path):
    manual = str(tmp_path / "manual")
    _, arrays = make_tree(manual)
    data_dir = str(tmp_path / "tfds")
    train = question_records(load_coco_qa("train", data_dir=data_dir,
                                          manual_dir=manual))
    # Images in order of first appearance; each image's questions in file
    # order; normalised text; type names from the codes.
    assert [(r["image_id"], r["question"], r["answer"], r["type"])
            for r in train] == [
        ("000000000009", "what is the man holding ?", "umbrella", "object"),
        ("000000000009", "what color is the bus ?", "red", "color"),
        ("000000000025", "how many dogs are on the bed ?", "two", "number"),
        ("000000000030", "where is the cat sitting ?", "table", "location"),
    ]
    assert [r["image_index"] for r in train] == [0, 0, 1, 2]
    for record in train:
        image = record["image"]
        assert image.shape == (12, 16, 3) and image.dtype == np.uint8
        ref = arrays[int(record["image_id"])].astype(int)
        assert np.abs(image.astype(int) - ref).mean() < 3
    test = question_records(load_coco_qa("test", data_dir=data_dir),
                            include_images=False)
    assert [(r["image_id"], r["answer"], r["type"]) for r in test] == [
        ("000000000042", "pizza", "object"),
        ("000000000042", "blue", "color"),
    ]
    assert "image" not in test[0]
    assert answer_vocabulary(train) == ["red", "table", "two", "umbrella"]
    assert QUESTION_TYPES == ("object", "number", "color", "location")


def test_each_missing_file_is_named(tmp_path):
    manual = str(tmp_path / "manual")
    qa_root, _ = make_tree(manual, qa_folder="")
    os.remove(os.path.join(qa_root, "train", "types.txt"))
    os.remove(os.path.join(qa_root, "test", "img_ids.txt"))
    with pytest.raises(FileNotFoundError) as error:
        load_coco_qa("train", data_dir=str(tmp_path / "tfds"),
                     manual_dir=manual)
    message = str(error.value)
    assert "missing (2)" in message
    assert os.path.join(qa_root, "train", "types.txt") in message
    assert os.path.join(qa_root, "test", "img_ids.txt") in message
    assert os.path.join(qa_root, "train", "questions.txt") not in message


def test_no_release_and_no_images_are_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    os.makedirs(empty / "something")
    with pytest.raises(FileNotFoundError, match="question folders not found"):
        load_coco_qa("train", data_dir=str(tmp_path / "a"),
                     manual_dir=str(empty))
    manual = str(tmp_path / "manual")
    qa_root, _ = make_tree(manual, qa_folder="cocoqa")
    with pytest.raises(FileNotFoundError, match="image folders not found"):
        load_coco_qa("train", data_dir=str(tmp_path / "b"),
                     manual_dir=manual, images_dir=str(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    "file,lines,match",
    [
        ("types.txt", ["0", "1", "7", "3"], r"types.txt: line 3 is '7'"),
        ("img_ids.txt", ["9", "x25", "9", "30"],
         r"img_ids.txt: line 2 is 'x25'"),
        ("answers.txt", ["a", "", "b", "c"], r"answers.txt: line 2 is empty"),
        ("questions.txt", ["q ?", "r ?"], "line counts differ"),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path, file, lines, match):
    manual = str(tmp_path / "manual")
    qa_root, _ = make_tree(manual)
    with open(os.path.join(qa_root, "train", file), "w") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        coco_qa.read_split(qa_root, "train")


def test_missing_and_corrupt_images_skip_or_raise(tmp_path):
    manual = str(tmp_path / "manual")
    make_tree(manual)
    os.remove(os.path.join(manual, "train2014",
                           "COCO_train2014_000000000025.jpg"))
    with open(os.path.join(manual, "train2014",
                           "COCO_train2014_000000000030.jpg"), "wb") as f:
        f.write(b"\xff\xd8 not a jpeg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = question_records(load_coco_qa(
            "train", data_dir=str(tmp_path / "a"), manual_dir=manual),
            include_images=False)
    assert [r["answer"] for r in train] == ["umbrella", "red"]
    text = " ".join(str(w.message) for w in caught)
    assert "skipped 2 of 3" in text and "missing image" in text
    builder = LgvqCocoQa(data_dir=str(tmp_path / "b"), strict=True)
    import tensorflow_datasets as tfds

    with pytest.raises(ValueError, match="000000000025.jpg: missing image"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual))


def test_test_images_fall_back_to_the_other_folder(tmp_path):
    manual = str(tmp_path / "manual")
    make_tree(manual)
    src = os.path.join(manual, "val2014", "COCO_val2014_000000000042.jpg")
    os.makedirs(os.path.join(manual, "train2014"), exist_ok=True)
    os.replace(src, os.path.join(manual, "train2014",
                                 "COCO_train2014_000000000042.jpg"))
    test = question_records(load_coco_qa(
        "test", data_dir=str(tmp_path / "tfds"), manual_dir=manual))
    assert len(test) == 2 and test[0]["image"].shape == (12, 16, 3)

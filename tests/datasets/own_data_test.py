"""The own-data loaders: folder, table, arrays, tfds; extra fields; bad
input named by file and line."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.datasets import from_arrays
from keras_lgvq.datasets import from_folder
from keras_lgvq.datasets import from_table
from keras_lgvq.datasets import from_tfds
from keras_lgvq.datasets import make_dataset

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(np.asarray(image, np.uint8)))


def _image(seed, shape=(32, 32, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _tree(root):
    """cat/a (2 captions), cat/b, dog/c (grayscale), top-level d."""
    _write_png(f"{root}/cat/a.png", _image(0))
    _write_text(f"{root}/cat/a.txt", "a small cat\n\n  the cat sits  \n")
    _write_png(f"{root}/cat/b.png", _image(1))
    _write_text(f"{root}/cat/b.txt", "a grey cat\n")
    _write_png(f"{root}/dog/c.png", _image(2, (32, 32, 1)))
    _write_text(f"{root}/dog/c.txt", "a dog\n")
    _write_png(f"{root}/d.png", _image(3, (32, 32, 4)))
    _write_text(f"{root}/d.txt", "a bird\n")


def _by_id(ds):
    return {
        e["image_id"].numpy().decode(): {
            k: v.numpy() for k, v in e.items() if k != "image_id"
        }
        for e in ds
    }


def test_from_folder_reads_captions_classes_and_paths(tmp_path):
    _tree(str(tmp_path))
    examples = _by_id(from_folder(tmp_path))
    assert sorted(examples) == ["cat/a.png", "cat/b.png", "d.png", "dog/c.png"]
    a = examples["cat/a.png"]
    captions = [c.decode() for c in a["captions"]]
    assert captions == ["a small cat", "the cat sits"]
    # Classes are sorted sub-folder names: "" (top), "cat", "dog".
    assert {k: int(v["label"]) for k, v in examples.items()} == {
        "cat/a.png": 1, "cat/b.png": 1, "d.png": 0, "dog/c.png": 2,
    }
    assert examples["dog/c.png"]["class_name"] == b"dog"
    decoded = tf.io.decode_png(a["image"]).numpy()
    np.testing.assert_array_equal(decoded, _image(0))
    assert a["path"].decode() == os.path.join(str(tmp_path), "cat", "a.png")
    flat = _by_id(from_folder(tmp_path, recursive=False))
    assert sorted(flat) == ["d.png"]


def test_from_folder_with_a_parallel_captions_tree(tmp_path):
    _write_png(f"{tmp_path}/images/001.Gull/x.png", _image(0))
    _write_text(f"{tmp_path}/text_c10/001.Gull/x.txt", "a gull\na white gull\n")
    examples = _by_id(
        from_folder(f"{tmp_path}/images", captions_dir=f"{tmp_path}/text_c10")
    )
    assert [c for c in examples["001.Gull/x.png"]["captions"]] == [
        b"a gull", b"a white gull"
    ]


def test_extra_fields_pass_through_make_dataset_batches(tmp_path):
    _tree(str(tmp_path))
    ds = make_dataset(
        from_folder(tmp_path),
        batch_size=4,
        image_size=32,
        training=False,
        extra_fields=("label", "class_name"),
    )
    batch = next(iter(ds))
    assert batch["images"].shape == (4, 32, 32, 3)
    ids = [i.decode() for i in batch["image_id"].numpy()]
    labels = dict(zip(ids, batch["label"].numpy().tolist()))
    assert labels == {
        "cat/a.png": 1, "cat/b.png": 1, "d.png": 0, "dog/c.png": 2,
    }
    assert batch["label"].dtype == tf.int64
    assert set(batch["class_name"].numpy()) == {b"", b"cat", b"dog"}
    # Without the request, the extra fields stay out of the batches.
    plain = next(iter(make_dataset(from_folder(tmp_path), batch_size=4,
                                   image_size=32, training=False)))
    assert "label" not in plain and "path" not in plain
    with pytest.raises(ValueError, match=r"\['class_name', 'label', 'path'\]"):
        make_dataset(from_folder(tmp_path), batch_size=2, image_size=32,
                     extra_fields=("labels",))


def test_gray_and_rgba_files_become_rgb(tmp_path):
    _tree(str(tmp_path))
    ds = make_dataset(from_folder(tmp_path), batch_size=4, image_size=32,
                      training=False, transform="none")
    batch = next(iter(ds))
    ids = [i.decode() for i in batch["image_id"].numpy()]
    images = dict(zip(ids, np.round((batch["images"].numpy() + 1) * 127.5)))
    gray = _image(2, (32, 32, 1))
    np.testing.assert_array_equal(images["dog/c.png"], np.repeat(gray, 3, -1))
    rgba = _image(3, (32, 32, 4))
    np.testing.assert_array_equal(images["d.png"], rgba[..., :3])


def test_from_folder_skips_with_a_count_or_raises_under_strict(tmp_path):
    _tree(str(tmp_path))
    _write_png(f"{tmp_path}/cat/nocaption.png", _image(4))
    _write_text(f"{tmp_path}/cat/broken.png", "not an image")
    _write_text(f"{tmp_path}/cat/broken.txt", "a broken cat\n")
    _write_png(f"{tmp_path}/cat/empty.png", _image(5))
    _write_text(f"{tmp_path}/cat/empty.txt", "\n \n")
    with pytest.warns(UserWarning, match="skipped 3 of 7 images") as record:
        ds = from_folder(tmp_path)
    message = str(record[0].message)
    assert "1 without a caption file" in message and "nocaption.png" in message
    assert "1 unreadable" in message and "broken.png" in message
    assert "1 without a caption (" in message and "empty.txt" in message
    assert len(_by_id(ds)) == 4
    with pytest.raises(ValueError, match=r"broken\.png.*strict=True"):
        from_folder(tmp_path, strict=True)


def test_from_folder_empty_or_all_skipped(tmp_path):
    with pytest.raises(ValueError, match="No image files"):
        from_folder(tmp_path)
    _write_text(f"{tmp_path}/notes.txt", "hello")
    with pytest.raises(ValueError, match="No image files"):
        from_folder(tmp_path)
    _write_png(f"{tmp_path}/x.png", _image(0))
    with pytest.raises(ValueError, match="skipped 1 of 1 .*No image is left"):
        from_folder(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        from_folder(f"{tmp_path}/missing")


def test_from_table_csv_merges_rows_and_types_columns(tmp_path):
    for i in range(3):
        _write_png(f"{tmp_path}/img/{i}.png", _image(i))
    _write_text(
        f"{tmp_path}/captions.csv",
        "file,text,label,weight,kind\n"
        "img/0.png,a red cat,0,0.5,pet\n"
        "img/1.png,a dog|a brown dog,1,1.5,pet\n"
        "img/0.png,the red cat,0,0.5,pet\n"
        "img/2.png,a car,2,2,thing\n",
    )
    ds = from_table(f"{tmp_path}/captions.csv", image_column="file",
                    caption_column="text", caption_separator="|")
    examples = _by_id(ds)
    assert list(examples) == ["img/0.png", "img/1.png", "img/2.png"]
    assert list(examples["img/0.png"]["captions"]) == [
        b"a red cat", b"the red cat"
    ]
    assert list(examples["img/1.png"]["captions"]) == [b"a dog", b"a brown dog"]
    assert ds.element_spec["label"].dtype == tf.int64
    assert ds.element_spec["weight"].dtype == tf.float32
    assert ds.element_spec["kind"].dtype == tf.string
    assert examples["img/2.png"]["weight"] == 2.0
    batch = next(iter(make_dataset(ds, batch_size=3, image_size=32,
                                   training=False,
                                   extra_fields=("label", "kind"))))
    assert sorted(batch["label"].numpy().tolist()) == [0, 1, 2]


def test_from_table_jsonl_lists_and_types(tmp_path):
    _write_png(f"{tmp_path}/a.png", _image(0))
    _write_png(f"{tmp_path}/b.png", _image(1, (20, 28, 3)))
    rows = [
        {"image": "a.png", "caption": ["one", "two"], "label": 3, "ok": True},
        {"image": "b.png", "caption": "three", "label": 4, "ok": False},
    ]
    _write_text(f"{tmp_path}/t.jsonl",
                "\n".join(json.dumps(r) for r in rows) + "\n\n")
    ds = from_table(f"{tmp_path}/t.jsonl", extra_columns=["label"])
    assert "ok" not in ds.element_spec
    examples = _by_id(ds)
    assert list(examples["a.png"]["captions"]) == [b"one", b"two"]
    assert examples["b.png"]["label"] == 4
    batch = next(iter(make_dataset(ds, batch_size=2, image_size=16,
                                   training=False)))
    assert batch["images"].shape == (2, 16, 16, 3)


def test_from_table_bad_input_names_file_and_line(tmp_path):
    _write_png(f"{tmp_path}/a.png", _image(0))
    csv_path = f"{tmp_path}/t.csv"
    _write_text(csv_path, "image,text\na.png,a cat\n")
    with pytest.raises(ValueError, match=r"t\.csv: missing column\(s\) "
                       r"\['caption'\]; the table has columns "
                       r"\['image', 'text'\]"):
        from_table(csv_path)
    _write_text(csv_path, "image,caption\na.png,a cat\n,a dog\n")
    with pytest.raises(ValueError, match=r"t\.csv, line 3: column 'image'"):
        from_table(csv_path)
    _write_text(csv_path, "image,caption,label\na.png,a cat,1\na.png,x,2\n")
    with pytest.raises(ValueError, match=r"line 3: extra column\(s\) "
                       r"\['label'\] differ from line 2"):
        from_table(csv_path)
    jsonl = f"{tmp_path}/t.jsonl"
    _write_text(jsonl, '{"image": "a.png", "caption": "ok"}\n'
                       '{"image": "a.png", "caption": 7}\n')
    with pytest.raises(ValueError, match=r"t\.jsonl, line 2, column "
                       r"'caption': captions must be a string"):
        from_table(jsonl)
    _write_text(jsonl, '{"image": "a.png", "caption": ["ok", null]}\n')
    with pytest.raises(ValueError, match=r"line 1.*captions must be strings; "
                       "got NoneType"):
        from_table(jsonl)
    _write_text(jsonl, '{"image": "a.png", "caption": "ok"}\n{"image": \n')
    with pytest.raises(ValueError, match=r"t\.jsonl, line 2: not valid JSON"):
        from_table(jsonl)
    _write_text(jsonl, '{"image": "a.png", "caption": "ok", "l": 1}\n'
                       '{"image": "b.png", "caption": "ok"}\n')
    with pytest.raises(ValueError, match=r"line 2: the row has no 'l' value"):
        from_table(jsonl)


def test_from_table_skips_missing_images_and_captions(tmp_path):
    _write_png(f"{tmp_path}/a.png", _image(0))
    _write_text(f"{tmp_path}/bad.png", "garbage")
    path = f"{tmp_path}/t.csv"
    _write_text(path, "image,caption\na.png,a cat\ngone.png,a dog\n"
                      "bad.png,a car\nc.png,\n")
    with pytest.warns(UserWarning, match="skipped 3 of 4") as record:
        ds = from_table(path)
    message = str(record[0].message)
    assert "1 unreadable" not in message  # two are unreadable
    assert "2 unreadable" in message and "line 3" in message
    assert "1 without a caption (first: " in message and "line 5" in message
    assert list(_by_id(ds)) == ["a.png"]
    with pytest.raises(ValueError, match=r"line 3: cannot read .*gone\.png"):
        from_table(path, strict=True)


def test_from_arrays_lists_gray_floats_and_extras():
    gray = _image(0, (24, 24))
    rgba = _image(1, (32, 20, 4))
    floats = np.random.default_rng(2).uniform(-1, 1, (16, 16, 3))
    with pytest.warns(UserWarning, match=r"skipped 1 of 4 .*images\[3\]"):
        ds = from_arrays(
            [gray, rgba, floats, gray],
            ["a gray square", ["x", "  ", "y"], "floats", ["  "]],
            image_ids=["g", "r", "f", "none"],
            extra_fields={"label": [0, 1, 2, 3], "name": ["g", "r", "f", "n"]},
            image_value_range=(-1, 1),
        )
    examples = _by_id(ds)
    assert list(examples) == ["g", "r", "f"]
    np.testing.assert_array_equal(
        examples["g"]["image"], np.stack([gray] * 3, -1)
    )
    np.testing.assert_array_equal(examples["r"]["image"], rgba[..., :3])
    expected = np.round((floats + 1) * 127.5).astype(np.uint8)
    np.testing.assert_array_equal(examples["f"]["image"], expected)
    assert list(examples["r"]["captions"]) == [b"x", b"y"]
    assert examples["f"]["label"] == 2 and examples["r"]["name"] == b"r"
    batch = next(iter(make_dataset(ds, batch_size=3, image_size=32,
                                   training=False, extra_fields=("name",))))
    assert batch["images"].shape == (3, 32, 32, 3)
    assert sorted(batch["name"].numpy().tolist()) == [b"f", b"g", b"r"]


def test_from_arrays_bad_input():
    images = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=r"captions\[1\]: captions must be "
                       r"strings; got int 5"):
        from_arrays(images, ["a", [5]])
    with pytest.raises(ValueError, match="2 images"):
        from_arrays(images, ["a"])
    with pytest.raises(ValueError, match=r"images\[1\] .*has no caption"):
        from_arrays(images, ["a", ""], strict=True)
    with pytest.raises(ValueError, match=r"extra field 'label' has 1 values"):
        from_arrays(images, ["a", "b"], extra_fields={"label": [1]})
    with pytest.raises(ValueError, match=r"clash"):
        from_arrays(images, ["a", "b"], extra_fields={"images": [1, 2]})
    with pytest.raises(ValueError, match=r"mixes int and str"):
        from_arrays(images, ["a", "b"], extra_fields={"label": [1, "b"]})
    with pytest.raises(ValueError, match="empty"):
        from_arrays(np.zeros((0, 8, 8, 3), np.uint8), [])


def test_from_tfds_nested_keys_ids_and_extras():
    source = tf.data.Dataset.from_tensor_slices({
        "picture": _image(0, (3, 16, 16, 1)),
        "meta": {"text": [["a", "b"], ["c", "d"], ["e", "f"]],
                 "id": [7, 8, 9]},
        "label": [0, 1, 0],
    })
    ds = from_tfds(source, image_key="picture", text_key="meta/text",
                   id_key="meta/id")
    examples = _by_id(ds)
    assert list(examples) == ["7", "8", "9"]
    assert examples["8"]["image"].shape == (16, 16, 3)
    assert list(examples["9"]["captions"]) == [b"e", b"f"]
    batch = next(iter(make_dataset(ds, batch_size=3, image_size=16,
                                   training=False, extra_fields=("label",))))
    assert sorted(batch["label"].numpy().tolist()) == [0, 0, 1]
    with pytest.raises(ValueError, match=r"'meta/txt' is not a feature.*"
                       r"\['label', 'meta/id', 'meta/text', 'picture'\]"):
        from_tfds(source, image_key="picture", text_key="meta/txt")
    with pytest.raises(ValueError, match="must be a string feature"):
        from_tfds(source, image_key="picture", text_key="label")
    with pytest.raises(ValueError, match="is not prepared"):
        from_tfds("mnist", data_dir=os.path.join(os.getcwd(), "no_tfds_here"))

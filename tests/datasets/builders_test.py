"""The TFDS builders over local files, on tiny fake upstream-layout trees."""

import json
import os
import pickle

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_lgvq.datasets import caption_iterator
from keras_lgvq.datasets import load

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _jpeg(path, seed, size=(24, 32), mode="RGB"):
    rng = np.random.default_rng(seed)
    # Smooth content so JPEG round trips stay close (checked below).
    base = rng.integers(40, 216, size=3)
    yy, xx = np.mgrid[: size[0], : size[1]]
    array = np.clip(
        base[None, None, :] + (xx[..., None] * 2 - yy[..., None]), 0, 255
    )
    array = array.astype(np.uint8)
    image = Image.fromarray(array).convert(mode)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, format="JPEG", quality=95)
    return array


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _captions(tag, n=10):
    return "".join(
        f"This  Bird {tag} number {i} has a {'long ' * (i % 3)}beak\n"
        for i in range(n)
    )


def _materialize(ds):
    out = []
    for ex in tfds.as_numpy(ds):
        out.append(ex)
    return out


# === CUB ===


def make_cub(root, classes=(1, 2), per_class=3):
    base = os.path.join(root, "CUB_200_2011")
    lines, split, arrays = [], [], {}
    k = 0
    for c in classes:
        folder = f"{c:03d}.Bird_{c}"
        for j in range(per_class):
            k += 1
            rel = f"{folder}/Bird_{c}_{j:04d}.jpg"
            arrays[rel[:-4]] = _jpeg(os.path.join(base, "images", rel), k)
            lines.append(f"{k} {rel}\n")
            split.append(f"{k} {1 if j < per_class - 1 else 0}\n")
            _write(
                os.path.join(root, "birds", "text", rel[:-4] + ".txt"),
                _captions(k),
            )
    _write(os.path.join(base, "images.txt"), "".join(lines))
    _write(os.path.join(base, "train_test_split.txt"), "".join(split))
    return arrays


def test_cub(tmp_path):
    manual = str(tmp_path / "cub")
    arrays = make_cub(manual)
    data_dir = str(tmp_path / "tfds")
    train = _materialize(
        load("cub", "train", data_dir=data_dir, manual_dir=manual)
    )
    test = _materialize(
        load("cub", "test", data_dir=data_dir, manual_dir=manual)
    )
    assert [e["image_id"].decode() for e in train] == [
        "001.Bird_1/Bird_1_0000",
        "001.Bird_1/Bird_1_0001",
        "002.Bird_2/Bird_2_0000",
        "002.Bird_2/Bird_2_0001",
    ]
    assert [e["image_id"].decode() for e in test] == [
        "001.Bird_1/Bird_1_0002",
        "002.Bird_2/Bird_2_0002",
    ]
    assert [int(e["label"]) for e in test] == [0, 1]
    ex = train[0]
    assert ex["image"].shape == (24, 32, 3) and ex["image"].dtype == np.uint8
    ref = arrays[ex["image_id"].decode()].astype(int)
    assert np.abs(ex["image"].astype(int) - ref).mean() < 3
    assert ex["captions"].shape == (10,)
    # Stored normalised: lower case, single spaces.
    assert ex["captions"][0].decode() == "this bird 1 number 0 has a beak"
    # "validation" falls back to the official test split.
    val = _materialize(
        load("cub", "validation", data_dir=data_dir, manual_dir=manual)
    )
    assert [e["image_id"] for e in val] == [e["image_id"] for e in test]
    # Already prepared: no manual_dir needed any more.
    again = _materialize(load("cub", "train", data_dir=data_dir))
    assert len(again) == 4
    ids = [i for i, _ in caption_iterator("cub", "train", data_dir=data_dir)]
    assert ids == [e["image_id"].decode() for e in train]


def test_cub_bad_inputs(tmp_path):
    manual = str(tmp_path / "cub")
    make_cub(manual)
    base = os.path.join(manual, "CUB_200_2011")
    # A corrupt JPEG (truncated), a grey image, an empty caption file and one
    # caption file whose only line is too long.
    corrupt = os.path.join(base, "images", "001.Bird_1", "Bird_1_0001.jpg")
    with open(corrupt, "rb") as f:
        data = f.read()
    with open(corrupt, "wb") as f:
        f.write(data[: len(data) // 3])
    _jpeg(
        os.path.join(base, "images", "002.Bird_2", "Bird_2_0000.jpg"),
        9,
        mode="L",
    )
    _write(
        os.path.join(manual, "birds", "text", "002.Bird_2", "Bird_2_0001.txt"),
        "\n  \n",
    )
    _write(
        os.path.join(manual, "birds", "text", "001.Bird_1", "Bird_1_0002.txt"),
        "word " * 40 + "\n",
    )
    with pytest.warns(UserWarning) as record:
        train = _materialize(
            load(
                "cub", "train", data_dir=str(tmp_path / "a"), manual_dir=manual
            )
        )
    messages = " ".join(str(w.message) for w in record)
    assert "skipped 2 of 4" in messages
    assert "1 corrupt image" in messages and "1 no usable caption" in messages
    assert "Bird_1_0001.jpg" in messages and "Bird_2_0001.txt" in messages
    ids = [e["image_id"].decode() for e in train]
    assert ids == ["001.Bird_1/Bird_1_0000", "002.Bird_2/Bird_2_0000"]
    # The grey JPEG became 3 channels.
    assert train[1]["image"].shape == (24, 32, 3)
    with pytest.raises(ValueError, match="Bird_1_0001.jpg.*corrupt image"):
        load(
            "cub",
            "train",
            data_dir=str(tmp_path / "b"),
            manual_dir=manual,
            strict=True,
        )


def test_cub_missing_and_malformed_files(tmp_path):
    manual = str(tmp_path / "cub")
    make_cub(manual)
    base = os.path.join(manual, "CUB_200_2011")
    os.remove(os.path.join(base, "train_test_split.txt"))
    with pytest.raises(
        FileNotFoundError, match="train_test_split.txt.*expected lines"
    ):
        load("cub", "train", data_dir=str(tmp_path / "a"), manual_dir=manual)
    _write(os.path.join(base, "train_test_split.txt"), "1 1\n2 1\nthree 0\n")
    with pytest.raises(
        ValueError, match="train_test_split.txt: line 3 is malformed"
    ):
        load("cub", "train", data_dir=str(tmp_path / "b"), manual_dir=manual)
    with pytest.raises(FileNotFoundError, match="manual directory"):
        load(
            "cub",
            "train",
            data_dir=str(tmp_path / "c"),
            manual_dir=str(tmp_path / "nothing"),
        )


# === CelebA-HQ ===


def make_celeba(root, stems=("0", "1", "2", "3", "4"), text_lists=False):
    for i, stem in enumerate(stems):
        _jpeg(os.path.join(root, "images", f"{stem}.jpg"), i, size=(32, 32))
        _write(
            os.path.join(root, "celeba-caption", f"{stem}.txt"), _captions(stem)
        )
    train, test = list(stems[:3]), list(stems[3:])
    for split, names in (("train", train), ("test", test)):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        if text_lists:
            _write(
                os.path.join(root, split, "filenames.txt"),
                "\n".join(names) + "\n",
            )
        else:
            # Python 2 style (protocol 2), as the AttnGAN-era releases.
            with open(os.path.join(root, split, "filenames.pickle"), "wb") as f:
                pickle.dump(names, f, protocol=2)


@pytest.mark.parametrize("text_lists", [False, True])
def test_celeba_hq(tmp_path, text_lists):
    manual = str(tmp_path / "celeba")
    make_celeba(manual, text_lists=text_lists)
    data_dir = str(tmp_path / "tfds")
    train = _materialize(
        load("celeba_hq", "train", data_dir=data_dir, manual_dir=manual)
    )
    test = _materialize(load("celeba_hq", "test", data_dir=data_dir))
    assert [e["image_id"].decode() for e in train] == ["0", "1", "2"]
    assert [e["image_id"].decode() for e in test] == ["3", "4"]
    assert train[0]["image"].shape == (32, 32, 3)
    assert len(train[0]["captions"]) == 10


def test_celeba_hq_rejects_unsafe_pickle(tmp_path):
    manual = str(tmp_path / "celeba")
    make_celeba(manual)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(os.path.join(manual, "train", "filenames.pickle"), "wb") as f:
        pickle.dump([Evil()], f)
    with pytest.raises(ValueError, match="filenames.pickle.*list of strings"):
        load(
            "celeba_hq",
            "train",
            data_dir=str(tmp_path / "tfds"),
            manual_dir=manual,
        )


# === TextCaps ===


def make_textcaps(root):
    ids = ["0a1b", "0c2d", "1e3f", "2a4b"]
    for i, image_id in enumerate(ids):
        _jpeg(
            os.path.join(root, "train_images", f"{image_id}.jpg"),
            i,
            size=(20, 40),
        )
        _write(
            os.path.join(root, "text", f"{image_id}.txt"),
            _captions(image_id, n=5),
        )
    with open(os.path.join(root, "train_filenames.pickle"), "wb") as f:
        pickle.dump(ids[:3], f, protocol=4)
    with open(os.path.join(root, "valid_filenames.pickle"), "wb") as f:
        pickle.dump(ids[3:], f, protocol=0)


def test_textcaps(tmp_path):
    manual = str(tmp_path / "textcaps")
    make_textcaps(manual)
    data_dir = str(tmp_path / "tfds")
    train = _materialize(
        load("textcaps", "train", data_dir=data_dir, manual_dir=manual)
    )
    val = _materialize(load("textcaps", "val", data_dir=data_dir))
    assert [e["image_id"].decode() for e in train] == ["0a1b", "0c2d", "1e3f"]
    assert [e["image_id"].decode() for e in val] == ["2a4b"]
    assert train[0]["image"].shape == (20, 40, 3)
    assert len(train[0]["captions"]) == 5
    # A missing caption file is reported by name.
    os.remove(os.path.join(manual, "text", "0c2d.txt"))
    with pytest.warns(UserWarning, match="0c2d.txt.*missing caption file"):
        train = _materialize(
            load(
                "textcaps",
                "train",
                data_dir=str(tmp_path / "b"),
                manual_dir=manual,
            )
        )
    assert len(train) == 2


# === COCO ===


def make_coco(root, karpathy=True):
    ids = {"train2014": [9, 1234567], "val2014": [42, 391895]}
    annotations = {}
    entries = []
    for folder, folder_ids in ids.items():
        images, anns = [], []
        for k, coco_id in enumerate(folder_ids):
            name = f"COCO_{folder}_{coco_id:012d}.jpg"
            _jpeg(os.path.join(root, folder, name), coco_id % 97, size=(30, 20))
            images.append({"id": coco_id, "file_name": name})
            caps = [f"A photo {coco_id} of thing {j}" for j in range(5 + k)]
            anns += [
                {"image_id": coco_id, "id": 100 * coco_id + j, "caption": c}
                for j, c in enumerate(caps)
            ]
            split = {9: "train", 1234567: "restval", 42: "val", 391895: "test"}[
                coco_id
            ]
            entries.append(
                {
                    "filepath": folder,
                    "filename": name,
                    "cocoid": coco_id,
                    "split": split,
                    "sentences": [
                        {"raw": c, "tokens": c.lower().split()} for c in caps
                    ],
                }
            )
        annotations[folder] = {"images": images, "annotations": anns}
    for folder, content in annotations.items():
        _write(
            os.path.join(root, "annotations", f"captions_{folder}.json"),
            json.dumps(content),
        )
    if karpathy:
        _write(
            os.path.join(root, "dataset_coco.json"),
            json.dumps({"images": entries, "dataset": "coco"}),
        )


def test_coco_karpathy_and_official(tmp_path):
    manual = str(tmp_path / "coco")
    make_coco(manual)
    data_dir = str(tmp_path / "tfds")
    train = _materialize(
        load("coco", "train", data_dir=data_dir, manual_dir=manual)
    )
    assert [e["image_id"].decode() for e in train] == [
        "000000000009",
        "000001234567",
    ]
    assert [len(e["captions"]) for e in train] == [5, 6]
    assert train[1]["captions"][0].decode() == "a photo 1234567 of thing 0"
    val = _materialize(load("coco", "validation", data_dir=data_dir))
    test = _materialize(load("coco", "test", data_dir=data_dir))
    assert [e["image_id"].decode() for e in val] == ["000000000042"]
    assert [e["image_id"].decode() for e in test] == ["000000391895"]
    assert int(test[0]["coco_id"]) == 391895
    official = _materialize(
        load(
            "coco",
            "validation",
            data_dir=data_dir,
            manual_dir=manual,
            config="official",
        )
    )
    assert [e["image_id"].decode() for e in official] == [
        "000000000042",
        "000000391895",
    ]


def test_coco_malformed_json(tmp_path):
    manual = str(tmp_path / "coco")
    make_coco(manual, karpathy=False)
    _write(
        os.path.join(manual, "annotations", "captions_val2014.json"),
        "{not json",
    )
    with pytest.raises(
        ValueError, match="captions_val2014.json: not valid JSON"
    ):
        load(
            "coco", "train", data_dir=str(tmp_path / "tfds"), manual_dir=manual
        )
    with pytest.raises(
        FileNotFoundError, match="Karpathy split file not found"
    ):
        load(
            "coco",
            "train",
            data_dir=str(tmp_path / "tfds2"),
            manual_dir=manual,
            config="karpathy",
        )


def test_load_arguments(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset"):
        load("imagenet", "train", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown arguments"):
        load("cub", "train", data_dir=str(tmp_path), image_size=64)
    with pytest.raises(ValueError, match="strict"):
        load("cub", "train", data_dir=str(tmp_path), strict="yes")

"""The `lgvq_scenes` TFDS builder, `load("scenes")` and `caption_iterator`."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_lgvq.datasets import caption_iterator
from keras_lgvq.datasets import get_builder
from keras_lgvq.datasets import load
from keras_lgvq.datasets import loading
from keras_lgvq.datasets import scenes
from keras_lgvq.datasets import scenes_builder
from keras_lgvq.datasets import scenes_split_sizes

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

SMALL = dict(image_size=32, train_size=10, validation_size=4, test_size=3)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _check_against_generator(ds, split, n, holdout):
    reference = list(
        scenes.generate(n, seed=0, image_size=32, split=split, holdout=holdout)
    )
    examples = list(tfds.as_numpy(ds))
    assert len(examples) == n
    for ex, ref in zip(examples, reference):
        assert ex["image_id"].decode() == ref["image_id"]
        np.testing.assert_array_equal(ex["image"], ref["image"])
        assert [c.decode() for c in ex["captions"]] == ref["captions"]
        assert int(ex["num_objects"]) == len(ref["objects"])
        for key, vocab in (
            ("shape", scenes.SHAPES),
            ("color", scenes.COLORS),
            ("size", scenes.SIZES),
            ("fill", scenes.FILLS),
        ):
            assert [vocab[i] for i in ex["objects"][key]] == [
                o[key] for o in ref["objects"]
            ]
        np.testing.assert_allclose(
            ex["objects"]["x"], [o["x"] for o in ref["objects"]], rtol=1e-6
        )
        assert [scenes.RELATIONS[i] for i in ex["relations"]["relation"]] == [
            r["relation"] for r in ref["relations"]
        ]
        assert scenes.BACKGROUNDS[ex["background"]] == ref["background"]


def test_split_sizes_default():
    assert scenes_split_sizes == {
        "train": 20000,
        "validation": 2000,
        "test": 2000,
    }
    config = scenes_builder.scenes_config()
    assert (config.train_size, config.validation_size, config.test_size) == (
        20000,
        2000,
        2000,
    )
    assert config.holdout == scenes.normalize_holdout(scenes.DEFAULT_HOLDOUT)
    # The default values name the predefined config (TFDS refuses a copy).
    builder = get_builder("scenes", data_dir="/nonexistent")
    assert builder.builder_config.name == config.name
    assert builder.builder_config.train_size == 20000


def test_load_matches_generator(data_dir):
    train = load("scenes", "train", data_dir=data_dir, **SMALL)
    assert train.element_spec["image"].shape == (32, 32, 3)
    assert train.element_spec["captions"].shape == (10,)
    _check_against_generator(train, "train", 10, scenes.DEFAULT_HOLDOUT)
    val = load("scenes", "val", data_dir=data_dir, **SMALL)
    _check_against_generator(val, "validation", 4, None)
    test = load("scenes", "test", data_dir=data_dir, **SMALL)
    _check_against_generator(test, "test", 3, None)
    pairs = list(
        caption_iterator("scenes", "validation", data_dir=data_dir, **SMALL)
    )
    reference = list(
        scenes.generate(4, seed=0, image_size=32, split="validation")
    )
    assert pairs == [(r["image_id"], r["captions"]) for r in reference]


def test_tfds_entry_points(data_dir):
    config = scenes_builder.scenes_config(**SMALL)
    load("scenes", "train", data_dir=data_dir, config=config)
    ds = tfds.load(
        "lgvq_scenes",
        split="test",
        data_dir=data_dir,
        builder_kwargs={"config": config},
    )
    assert len(list(ds)) == 3
    builder = tfds.builder_from_directory(
        f"{data_dir}/lgvq_scenes/{config.name}/"
        f"{scenes_builder.LgvqScenes.VERSION}"
    )
    assert builder.info.splits["train"].num_examples == 10
    assert builder.info.disable_shuffling


def test_parallel_generation_is_identical(tmp_path, monkeypatch):
    monkeypatch.setattr(scenes_builder, "_PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(scenes_builder, "_CHUNK", 3)
    holdout = [{"shape": "circle"}]
    kwargs = dict(
        image_size=32,
        train_size=10,
        validation_size=0,
        test_size=0,
        holdout=holdout,
    )
    ds = load(
        "scenes", "train", data_dir=str(tmp_path), num_workers=2, **kwargs
    )
    _check_against_generator(ds, "train", 10, holdout)
    for ex in tfds.as_numpy(ds):
        assert scenes.SHAPES.index("circle") not in ex["objects"]["shape"]


def test_config_names_and_validation():
    a = scenes_builder.scenes_config(**SMALL)
    b = scenes_builder.scenes_config(**dict(SMALL, seed=1))
    c = scenes_builder.scenes_config(**dict(SMALL, holdout=None))
    assert len({a.name, b.name, c.name}) == 3
    with pytest.raises(ValueError, match="train_size"):
        scenes_builder.scenes_config(train_size=-1)
    with pytest.raises(ValueError, match="image_size"):
        scenes_builder.scenes_config(image_size=512)
    with pytest.raises(ValueError, match="split sizes"):
        scenes_builder.scenes_config(
            train_size=0, validation_size=0, test_size=0
        )
    with pytest.raises(ValueError, match="Unknown arguments"):
        load("scenes", "train", data_dir="/nonexistent", train_sizes=3)
    with pytest.raises(ValueError, match="num_workers"):
        scenes_builder.LgvqScenes(config=a, num_workers=0)


_WAITER = """
import sys
from keras_lgvq.datasets import loading
builder = loading.get_builder("scenes", data_dir=sys.argv[1], **{small})
open(sys.argv[2], "w").close()   # its builder exists; the data does not yet
loading.prepare(builder)
print(builder.info.splits["train"].num_examples,
      sum(1 for _ in builder.as_dataset(split="validation")))
"""


def test_concurrent_prepares_wait_and_reuse_one_build(tmp_path):
    # A second process that made its builder before the data existed waits
    # for the build under way, then reads the files (and their splits).
    data_dir = str(tmp_path / "tfds")
    marker = str(tmp_path / "builder_made")
    builder = loading.get_builder("scenes", data_dir=data_dir, **SMALL)
    with loading._prepare_lock(builder):
        waiter = subprocess.Popen(
            [sys.executable, "-c", _WAITER.format(small=SMALL), data_dir,
             marker],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 300
        while not os.path.exists(marker):
            assert waiter.poll() is None, waiter.communicate()[1][-2000:]
            assert time.time() < deadline, "the waiting process never started"
            time.sleep(0.2)
        time.sleep(1.0)
        # The waiter is blocked on the lock: it has not finished.
        assert waiter.poll() is None
        builder.download_and_prepare()
    out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err[-2000:]
    assert out.split()[-2:] == [
        str(SMALL["train_size"]), str(SMALL["validation_size"])
    ]
    # One build: no second copy, no leftover incomplete directory.
    versions = os.listdir(os.path.dirname(builder.data_dir))
    assert [v for v in versions if "incomplete" in v] == []

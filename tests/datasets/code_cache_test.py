import json
import os

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_lgvq.datasets import code_cache as lib
from tests.models.tiny_configs import tiny_backbone
from tests.models.tiny_configs import tiny_images

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


def _batches(images, batch=3, prefix="img"):
    return [
        {
            "images": images[i : i + batch],
            "image_id": [
                f"{prefix}{j}" for j in range(i, min(i + batch, len(images)))
            ],
        }
        for i in range(0, len(images), batch)
    ]


def test_build_and_read_back_the_codes(tmp_path):
    tokenizer = tiny_backbone(num_embeddings=16)
    images = tiny_images(7)
    path = lib.code_cache_path(str(tmp_path), "toy", "train", "tiny")
    cache = lib.build_code_cache(
        tokenizer, _batches(images), path, "toy", "train", verbose=0
    )
    expected = np.asarray(ops.convert_to_numpy(tokenizer.encode(images)))
    np.testing.assert_array_equal(cache.codes, expected)
    assert cache.codes.dtype == np.int32
    assert list(cache.image_ids) == [f"img{i}" for i in range(7)]
    assert len(cache) == 7 and cache.grid_size == tokenizer.grid_size
    # Plain numpy files, readable without pickle; compact dtype on disk.
    raw = np.load(os.path.join(path, lib.CODES_FILE), allow_pickle=False)
    assert raw.dtype == np.uint16
    np.load(os.path.join(path, lib.IDS_FILE), allow_pickle=False)
    with open(os.path.join(path, lib.MANIFEST)) as f:
        manifest = json.load(f)
    assert manifest["num_codes"] == 16 and manifest["num_images"] == 7
    assert manifest["tokenizer_fingerprint"] == lib.tokenizer_fingerprint(
        tokenizer
    )
    # Per-image dataset in split order.
    rows = list(cache.as_dataset().as_numpy_iterator())
    assert rows[3]["image_id"] == b"img3"
    np.testing.assert_array_equal(rows[3]["codes"], expected[3])


def test_tf_dataset_input_and_max_images(tmp_path):
    tokenizer = tiny_backbone(num_embeddings=16)
    images = tiny_images(6)
    ds = tf.data.Dataset.from_tensor_slices(
        {"images": images, "image_id": [f"x{i}" for i in range(6)]}
    ).batch(4)
    cache = lib.build_code_cache(
        tokenizer, ds, str(tmp_path / "c"), "toy", "val", max_images=5,
        verbose=0,
    )
    assert len(cache) == 5 and cache.image_ids[-1] == "x4"


def test_cache_refuses_another_tokenizer_and_overwrites_only_on_request(
    tmp_path,
):
    tokenizer = tiny_backbone(num_embeddings=16)
    other = tiny_backbone(num_embeddings=16)
    path = str(tmp_path / "c")
    lib.build_code_cache(
        tokenizer, _batches(tiny_images(4)), path, "toy", "train", verbose=0
    )
    lib.CodeCache(path, tokenizer=tokenizer, dataset="toy", split="train")
    with pytest.raises(ValueError, match="tokenizer_fingerprint"):
        lib.CodeCache(path, tokenizer=other)
    with pytest.raises(ValueError, match="split"):
        lib.CodeCache(path, split="test")
    with pytest.raises(FileExistsError, match="overwrite"):
        lib.build_code_cache(
            tokenizer, _batches(tiny_images(4)), path, "toy", "train",
            verbose=0,
        )
    lib.build_code_cache(
        other, _batches(tiny_images(4)), path, "toy", "train",
        overwrite=True, verbose=0,
    )
    lib.CodeCache(path, tokenizer=other)
    with pytest.raises(FileNotFoundError, match="build_code_cache"):
        lib.CodeCache(str(tmp_path / "missing"))


def test_bad_inputs_are_clear_errors(tmp_path):
    tokenizer = tiny_backbone(num_embeddings=16)
    images = tiny_images(4)
    with pytest.raises(ValueError, match="repeats image ids"):
        lib.build_code_cache(
            tokenizer,
            [{"images": images, "image_id": ["a", "a", "b", "c"]}],
            str(tmp_path / "a"), "toy", "train", verbose=0,
        )
    with pytest.raises(ValueError, match="px"):
        lib.build_code_cache(
            tokenizer,
            [{"images": tiny_images(2, size=16), "image_id": ["a", "b"]}],
            str(tmp_path / "b"), "toy", "train", verbose=0,
        )
    with pytest.raises(ValueError, match="tokenizer"):
        lib.build_code_cache(object(), [], str(tmp_path / "c"), "toy", "train")
    with pytest.raises(ValueError, match="image_id"):
        lib.build_code_cache(
            tokenizer, [{"images": images}], str(tmp_path / "d"), "toy",
            "train", verbose=0,
        )


class _FakeFeatureCache:
    """Duck-typed text-feature cache: C = 4 rows, the first `real` real."""

    def __init__(self, ids, real, num_images=None):
        self.ids = ids
        self.real = real
        self.num_images = num_images or len(ids)

    def as_dataset(self):
        n, c, length, dim = len(self.ids), 4, 3, 2
        features = np.zeros((n, c, length, dim), "float16")
        # Row r of every image is filled with the value r.
        features += np.arange(c, dtype="float16")[None, :, None, None]
        return tf.data.Dataset.from_tensor_slices(
            {
                "image_id": list(self.ids),
                "token_ids": np.zeros((n, c, length), "int32"),
                "padding_mask": np.ones((n, c, length), bool),
                "token_features": features,
                "sentence_feature": np.zeros((n, c, dim), "float32"),
                "caption_mask": np.arange(c)[None].repeat(n, 0)
                < np.asarray(self.real)[:, None],
            }
        )


def test_code_dataset_samples_real_captions_deterministically(tmp_path):
    tokenizer = tiny_backbone(num_embeddings=16)
    images = tiny_images(6)
    cache = lib.build_code_cache(
        tokenizer, _batches(images), str(tmp_path / "c"), "toy", "train",
        verbose=0,
    )
    real = [1, 2, 3, 4, 2, 1]
    features = _FakeFeatureCache(cache.image_ids, real)

    def draws(seed, epochs=30):
        ds = lib.make_code_dataset(
            cache, features, batch_size=6, training=False, seed=seed
        )
        out = []
        for _ in range(epochs):
            batch = next(iter(ds))
            out.append(np.asarray(batch["caption_index"]))
            rows = np.asarray(batch["token_features"])[:, 0, 0]
            np.testing.assert_array_equal(rows, out[-1])
        return np.stack(out)

    a = draws(0)
    # Only real captions, each of them used, fresh draws per epoch.
    assert (a < np.asarray(real)[None]).all()
    for image, count in enumerate(real):
        assert set(a[:, image]) == set(range(count))
    np.testing.assert_array_equal(a, draws(0))
    assert (a != draws(1)).any()
    batch = next(iter(lib.make_code_dataset(cache, features, batch_size=4)))
    assert batch["codes"].shape == (4, tokenizer.grid_size, tokenizer.grid_size)
    assert batch["padding_mask"].dtype == tf.bool
    plain = next(iter(lib.make_code_dataset(cache, batch_size=2)))
    assert "token_features" not in plain


def test_code_dataset_checks_the_feature_cache(tmp_path):
    tokenizer = tiny_backbone(num_embeddings=16)
    cache = lib.build_code_cache(
        tokenizer, _batches(tiny_images(4)), str(tmp_path / "c"), "toy",
        "train", verbose=0,
    )
    with pytest.raises(ValueError, match="same split"):
        lib.make_code_dataset(
            cache, _FakeFeatureCache(cache.image_ids, [1] * 4, num_images=5)
        )
    shuffled = _FakeFeatureCache(cache.image_ids[::-1], [1] * 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="different"):
        next(iter(lib.make_code_dataset(cache, shuffled, training=False)))
    with pytest.raises(ValueError, match="as_dataset"):
        lib.make_code_dataset(cache, object())

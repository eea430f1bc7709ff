"""`make_dataset`: shapes, dtypes, ranges, transforms, sampling, caches."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_lgvq.datasets import caption_iterator
from keras_lgvq.datasets import load
from keras_lgvq.datasets import make_dataset
from keras_lgvq.datasets import scenes
from keras_lgvq.datasets.pipeline import transform_image

SMALL = dict(train_size=12, validation_size=6, test_size=3)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _scenes(data_dir, split="train", **kwargs):
    kwargs = {
        **dict(batch_size=4, image_size=32, data_dir=data_dir),
        **SMALL,
        **kwargs,
    }
    return make_dataset("scenes", split, **kwargs)


def _epoch(ds):
    return [{k: v.numpy() for k, v in batch.items()} for batch in ds]


def test_training_batches(data_dir):
    ds = _scenes(data_dir)
    batches = _epoch(ds)
    assert len(batches) == 3
    b = batches[0]
    assert (
        b["images"].shape == (4, 32, 32, 3) and b["images"].dtype == np.float32
    )
    assert b["captions"].shape == (4,) and b["captions"].dtype == object
    assert b["image_id"].shape == (4,)
    assert -1.0 <= b["images"].min() and b["images"].max() <= 1.0
    ids = [i.decode() for batch in batches for i in batch["image_id"]]
    assert sorted(ids) == [f"train_{i:06d}" for i in range(12)]
    assert ids != sorted(ids), "training batches are shuffled"
    stored = {
        r["image_id"]: r
        for r in scenes.generate(
            12, seed=0, image_size=32, holdout=scenes.DEFAULT_HOLDOUT
        )
    }
    for batch in batches:
        for image_id, caption, image in zip(
            batch["image_id"], batch["captions"], batch["images"]
        ):
            ref = stored[image_id.decode()]
            assert caption.decode() in ref["captions"]
            # Scenes are never flipped or cropped: exact pixels.
            np.testing.assert_allclose(
                image, ref["image"] / 127.5 - 1.0, atol=1e-6
            )


def test_sampling_deterministic_and_varies_across_epochs(data_dir):
    a = _scenes(data_dir, seed=3)
    b = _scenes(data_dir, seed=3)
    a1, a2 = _epoch(a), _epoch(a)
    b1, b2 = _epoch(b), _epoch(b)
    for x, y in zip(a1 + a2, b1 + b2):
        np.testing.assert_array_equal(x["captions"], y["captions"])
        np.testing.assert_array_equal(x["image_id"], y["image_id"])
        np.testing.assert_array_equal(x["images"], y["images"])

    def by_id(epoch):
        return {
            i: c
            for batch in epoch
            for i, c in zip(batch["image_id"], batch["captions"])
        }

    first, second = by_id(a1), by_id(a2)
    assert set(first) == set(second)
    assert (
        sum(first[k] != second[k] for k in first) >= 6
    ), "a new caption each epoch"
    other = by_id(_epoch(_scenes(data_dir, seed=4)))
    assert sum(first[k] != other[k] for k in first) >= 6


def test_evaluation_order_resize_and_attributes(data_dir):
    ds = _scenes(
        data_dir,
        "validation",
        image_size=48,
        source_image_size=32,
        include_attributes=True,
    )
    batches = _epoch(ds)
    assert [len(b["image_id"]) for b in batches] == [
        4,
        2,
    ], "no drop_remainder when evaluating"
    reference = list(
        scenes.generate(6, seed=0, image_size=32, split="validation")
    )
    ids = [i.decode() for b in batches for i in b["image_id"]]
    assert ids == [r["image_id"] for r in reference]
    images = np.concatenate([b["images"] for b in batches])
    assert images.shape == (6, 48, 48, 3)
    for image, ref in zip(images, reference):
        expected = np.asarray(
            Image.fromarray(ref["image"]).resize((48, 48), Image.BILINEAR),
            dtype=np.float64,
        )
        assert np.abs((image + 1.0) * 127.5 - expected).mean() < 2.0
    for key, vocab in (
        ("shape", scenes.SHAPES),
        ("color", scenes.COLORS),
        ("size", scenes.SIZES),
        ("fill", scenes.FILLS),
    ):
        values = np.concatenate([b[key] for b in batches])
        assert values.shape == (6, 3) and values.dtype == np.int32
        for row, ref in zip(values, reference):
            n = len(ref["objects"])
            assert [vocab[i] for i in row[:n]] == [
                o[key] for o in ref["objects"]
            ]
            assert (row[n:] == -1).all()
    counts = np.concatenate([b["num_objects"] for b in batches])
    assert counts.tolist() == [len(r["objects"]) for r in reference]


class FakePrior:
    """Hashes words to ids; TF ops only, so it runs inside Dataset.map."""

    length = 8

    def tokenize(self, strings):
        words = tf.strings.split(strings)
        ids = tf.strings.to_hash_bucket_fast(words, 1000) + 1
        ids = ids[:, : self.length].to_tensor(
            default_value=0, shape=[None, self.length]
        )
        return tf.cast(ids, tf.int32), ids > 0


def test_text_prior_tokens(data_dir):
    batch = next(iter(_scenes(data_dir, "validation", text_prior=FakePrior())))
    ids, mask = batch["token_ids"].numpy(), batch["padding_mask"].numpy()
    assert ids.shape == (4, 8) and ids.dtype == np.int32 and mask.dtype == bool
    for caption, row, m in zip(batch["captions"].numpy(), ids, mask):
        words = caption.decode().split()[:8]
        expected = tf.strings.to_hash_bucket_fast(words, 1000).numpy() + 1
        np.testing.assert_array_equal(row[: len(words)], expected)
        assert m.sum() == len(words) and (row[len(words) :] == 0).all()


class FakeCache:
    """Rows encode (image index, caption index) so selection can be checked."""

    def __init__(self, pairs, order=None, length=5, dim=3):
        self.pairs = pairs
        self.order = order or list(range(len(pairs)))
        self.length, self.dim = length, dim

    def as_dataset(self):
        ids, tokens, masks, feats, sents = [], [], [], [], []
        for i in self.order:
            image_id, captions = self.pairs[i]
            c = len(captions)
            ids.append(image_id)
            tok = np.zeros((c, self.length), np.int32)
            tok[:, 0] = i
            tok[:, 1] = np.arange(c)
            tokens.append(tok)
            masks.append(tok >= 0)
            feats.append(
                np.broadcast_to(
                    tok[:, :, None], (c, self.length, self.dim)
                ).astype(np.float16)
            )
            sents.append(
                np.tile(np.arange(c, dtype=np.float32)[:, None], (1, 4))
            )
        return tf.data.Dataset.from_tensor_slices(
            {
                "image_id": ids,
                "token_ids": np.stack(tokens),
                "padding_mask": np.stack(masks),
                "token_features": np.stack(feats),
                "sentence_feature": np.stack(sents),
            }
        )


def test_feature_cache_rows_follow_sampled_caption(data_dir):
    pairs = list(
        caption_iterator(
            "scenes", "train", data_dir=data_dir, image_size=32, **SMALL
        )
    )
    captions_of = dict(pairs)
    index_of = {image_id: i for i, (image_id, _) in enumerate(pairs)}
    ds = _scenes(
        data_dir, feature_cache=FakeCache(pairs), text_prior=FakePrior()
    )
    seen = 0
    for batch in _epoch(ds):
        assert batch["token_features"].dtype == np.float32
        assert batch["token_features"].shape == (4, 5, 3)
        assert batch["sentence_feature"].shape == (4, 4)
        for k, image_id in enumerate(batch["image_id"]):
            image_id = image_id.decode()
            row = batch["token_ids"][k]
            assert row[0] == index_of[image_id]
            assert (
                captions_of[image_id][row[1]] == batch["captions"][k].decode()
            )
            assert batch["sentence_feature"][k, 0] == row[1]
            np.testing.assert_array_equal(batch["token_features"][k, :, 0], row)
            seen += 1
    assert seen == 12


def test_feature_cache_mismatch_fails_loudly(data_dir):
    pairs = list(
        caption_iterator(
            "scenes", "train", data_dir=data_dir, image_size=32, **SMALL
        )
    )
    shuffled = FakeCache(pairs, order=[1, 0] + list(range(2, 12)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="out of order"):
        _epoch(_scenes(data_dir, feature_cache=shuffled))
    with pytest.raises(
        ValueError, match="holds 11 images but the split has 12"
    ):
        _scenes(data_dir, feature_cache=FakeCache(pairs[:11]))
    with pytest.raises(ValueError, match="as_dataset"):
        _scenes(data_dir, feature_cache=object())


def _photo_dataset(sizes, captions):
    def gen():
        for k, (h, w) in enumerate(sizes):
            yy, xx = np.mgrid[:h, :w]
            image = np.stack(
                [xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) % 256], -1
            )
            yield {
                "image": image.astype(np.uint8),
                "captions": np.array(captions[k], dtype=object),
                "image_id": f"img{k}",
            }

    return tf.data.Dataset.from_generator(
        gen,
        output_signature={
            "image": tf.TensorSpec((None, None, 3), tf.uint8),
            "captions": tf.TensorSpec((None,), tf.string),
            "image_id": tf.TensorSpec((), tf.string),
        },
    )


def _reference(image, size, mode):
    pil = Image.fromarray(image)
    w, h = pil.size
    if mode == "squash":
        return np.asarray(pil.resize((size, size), Image.BILINEAR), np.float64)
    if h <= w:
        new = (int(size * w / h), size)
    else:
        new = (size, int(size * h / w))
    pil = pil.resize(new, Image.BILINEAR)
    array = np.asarray(pil, np.float64)
    top = int(round((array.shape[0] - size) / 2.0))
    left = int(round((array.shape[1] - size) / 2.0))
    return array[top : top + size, left : left + size]


@pytest.mark.parametrize(
    "transform, mode",
    [
        ("cub", "crop"),
        ("coco", "crop"),
        ("celeba_hq", "crop"),
        ("textcaps", "squash"),
    ],
)
def test_evaluation_transforms_match_pil(transform, mode):
    sizes = [(40, 60), (50, 30)]
    ds = _photo_dataset(sizes, [["a bird"], ["a bird"]])
    out = _epoch(
        make_dataset(
            ds, "test", batch_size=2, image_size=16, transform=transform
        )
    )
    assert out[0]["images"].shape == (2, 16, 16, 3)
    for k, (h, w) in enumerate(sizes):
        source = next(iter(_photo_dataset([(h, w)], [["x"]])))["image"].numpy()
        expected = _reference(source, 16, mode)
        got = (out[0]["images"][k] + 1.0) * 127.5
        assert np.abs(got - expected).mean() < 3.0, transform


def test_cub_training_crops_and_flips():
    ds = _photo_dataset([(40, 60)] * 6, [["a bird"]] * 6)
    made = make_dataset(
        ds,
        "train",
        batch_size=6,
        image_size=16,
        transform="cub",
        shuffle_buffer=0,
    )
    first, second = _epoch(made)[0]["images"], _epoch(made)[0]["images"]
    assert first.shape == (6, 16, 16, 3)
    centre = _epoch(
        make_dataset(ds, "test", batch_size=6, image_size=16, transform="cub")
    )[0]["images"]
    # Random crops / flips: differ from the centre crop and across epochs.
    assert not np.allclose(first, centre)
    assert not np.allclose(first, second)
    # A flip reverses the red (x) ramp for some images.
    slopes = np.sign(first[:, 8, -1, 0] - first[:, 8, 0, 0])
    assert set(slopes.tolist()) == {-1.0, 1.0}
    again = make_dataset(
        ds,
        "train",
        batch_size=6,
        image_size=16,
        transform="cub",
        shuffle_buffer=0,
    )
    np.testing.assert_array_equal(_epoch(again)[0]["images"], first)


def test_caption_filter_drops_images_without_usable_caption():
    long = " ".join(["word"] * 30)
    # Empty strings pad the caption lists (0 words: never usable).
    captions = [
        ["  A Short  ONE ", long, ""],
        [long, "", ""],
        ["two words", "three words here", long],
    ]
    ds = tf.data.Dataset.from_tensor_slices(
        {
            "image": np.zeros((3, 20, 20, 3), np.uint8),
            "captions": np.array(captions, dtype=object),
            "image_id": ["img0", "img1", "img2"],
        }
    )
    for max_words in (27, 2):
        seen = {}
        made = make_dataset(
            ds,
            "train",
            batch_size=3,
            image_size=8,
            max_words=max_words,
            drop_remainder=False,
        )
        for _ in range(5):
            for batch in _epoch(made):
                for image_id, caption in zip(
                    batch["image_id"], batch["captions"]
                ):
                    seen.setdefault(image_id.decode(), set()).add(
                        caption.decode()
                    )
        assert "img1" not in seen
        if max_words == 27:
            assert seen["img0"] == {"a short one"}  # normalised
            assert seen["img2"] == {"two words", "three words here"}
        else:
            assert "img0" not in seen
            assert seen["img2"] == {"two words"}


def test_bad_arguments(data_dir):
    ds = _photo_dataset([(20, 20)], [["a"]])
    with pytest.raises(ValueError, match="batch_size"):
        make_dataset(ds, batch_size=0, image_size=8)
    with pytest.raises(ValueError, match="transform"):
        make_dataset(ds, image_size=8, transform="zoom")
    with pytest.raises(ValueError, match="image_size"):
        make_dataset(ds)
    with pytest.raises(ValueError, match="objects"):
        make_dataset(ds, image_size=8, include_attributes=True)
    with pytest.raises(ValueError, match="tokenize"):
        make_dataset(ds, image_size=8, text_prior=object())
    with pytest.raises(ValueError, match="builder arguments"):
        make_dataset(ds, image_size=8, train_size=3)
    with pytest.raises(ValueError, match="missing"):
        make_dataset(
            tf.data.Dataset.from_tensor_slices(
                {"image": np.zeros((1, 4, 4, 3), np.uint8)}
            )
        )
    with pytest.raises(ValueError, match="Unknown dataset"):
        make_dataset("imagenet")
    floats = tf.data.Dataset.from_tensor_slices(
        {
            "image": np.zeros((1, 4, 4, 3), np.float32),
            "captions": [["a"]],
            "image_id": ["x"],
        }
    )
    with pytest.raises(ValueError, match="uint8"):
        make_dataset(floats, image_size=8)


def test_keras_fit_and_distribute(data_dir):
    ds = _scenes(data_dir).map(lambda b: (b["images"], b["images"]))
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(3, 1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    assert int(ds.cardinality()) == 3, "known length for Keras"
    history = model.fit(ds, epochs=2, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    batch = next(iter(_scenes(data_dir)))
    tensor = keras.ops.convert_to_tensor(np.asarray(batch["images"]))
    assert tuple(tensor.shape) == (4, 32, 32, 3)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    dist = strategy.experimental_distribute_dataset(_scenes(data_dir))
    first = next(iter(dist))
    assert first["images"].shape == (4, 32, 32, 3)


def test_load_examples_for_pipeline(data_dir):
    # The tfds split (decoded) also feeds make_dataset directly.
    ds = load("scenes", "test", data_dir=data_dir, image_size=32, **SMALL)
    batch = next(
        iter(make_dataset(ds, "test", batch_size=3, include_attributes=True))
    )
    assert batch["images"].shape == (3, 32, 32, 3)
    assert batch["shape"].shape == (3, 3)


def test_transform_image_scaling_and_stateless_seeds():
    image = (np.arange(6 * 9 * 3) * 7 % 256).astype(np.uint8).reshape(6, 9, 3)
    seed = tf.constant([5, 0], tf.int64)
    out = transform_image(tf.constant(image), "none", None, False, seed).numpy()
    np.testing.assert_allclose(
        out, image.astype(np.float64) / 127.5 - 1.0, atol=1e-6
    )
    # Exact crop (no resampling) when the shorter side already has the size.
    crop = transform_image(tf.constant(image), "cub", 6, False, seed).numpy()
    np.testing.assert_allclose(
        crop, image[:, 2:8].astype(np.float64) / 127.5 - 1.0, atol=1e-6
    )
    a = transform_image(tf.constant(image), "cub", 6, True, seed).numpy()
    b = transform_image(tf.constant(image), "cub", 6, True, seed).numpy()
    np.testing.assert_array_equal(a, b)
    windows = {
        transform_image(
            tf.constant(image), "cub", 6, True, tf.constant([s, 0], tf.int64)
        )
        .numpy()
        .tobytes()
        for s in range(12)
    }
    assert len(windows) > 2  # several crops / flips
    # Every training output is a (possibly flipped) window of the source.
    scaled = image.astype(np.float64) / 127.5 - 1.0
    candidates = [scaled[:, k : k + 6] for k in range(4)]
    candidates += [c[:, ::-1] for c in candidates]
    assert any(np.allclose(a, c, atol=1e-6) for c in candidates)

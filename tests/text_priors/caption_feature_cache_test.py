"""The caption-keyed feature cache: each distinct caption encoded once."""

import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.datasets.pipeline import make_dataset
from keras_lgvq.datasets.pipeline import sample_caption
from keras_lgvq.text_priors import CaptionFeatureCache
from keras_lgvq.text_priors.caption_feature_cache import normalize_captions

LENGTH = 8
WORDS = "a photo of cat dog bird small red".split()


class CountingPrior:
    """A tiny context-free prior that counts the rows it encodes."""

    name_or_path = "counting"
    sequence_length = LENGTH
    hidden_dim = 4
    sentence_dim = 4
    vocabulary_size = len(WORDS) + 3
    start_token_id, end_token_id, pad_token_id, mask_token_id = 1, 2, 0, 3

    def __init__(self):
        self.rows = 0
        self.calls = 0
        table = np.random.default_rng(0).normal(size=(self.vocabulary_size, 4))
        self.table = table.astype("float32")

    def tokenize(self, strings):
        ids = np.zeros((len(strings), LENGTH), "int32")
        for i, text in enumerate(strings):
            row = [1] + [WORDS.index(w) + 3 for w in text.split()] + [2]
            ids[i, : len(row)] = row[:LENGTH]
        return ids, ids > 0

    def encode_tokens(self, token_ids, padding_mask, batch_size=64):
        self.rows += len(token_ids)
        self.calls += 1
        feats = self.table[token_ids] * padding_mask[..., None]
        return {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "token_features": feats,
            "sentence_feature": feats.sum(1),
        }


CAPTIONS = ["a photo of a cat", "a photo of a dog", "A  photo of a CAT "]


def test_each_distinct_caption_is_encoded_once():
    prior = CountingPrior()
    cache = CaptionFeatureCache(prior, batch_size=2)
    # 300 captions, 3 distinct after normalisation ("A  photo of a CAT ").
    captions = (CAPTIONS + ["a small red bird"]) * 75
    assert cache.add(captions) == 3
    assert prior.rows == cache.encoded_rows == 3 == len(cache)
    assert prior.calls == 2  # batches of 2 captions
    assert cache.add(CAPTIONS) == 0 and prior.rows == 3
    out = cache.features(captions[:4])
    # Repeats share one row, bit for bit.
    np.testing.assert_array_equal(
        out["sentence_feature"][0], out["sentence_feature"][2]
    )
    expected = prior.encode_tokens(*prior.tokenize(["a small red bird"]))
    np.testing.assert_allclose(
        out["sentence_feature"][3], expected["sentence_feature"][0], rtol=1e-6
    )
    assert out["token_features"].dtype == np.float16


def test_keys_match_the_pipeline_normalisation():
    raw = ["  A Photo\tof  a CAT ", "Ünïcode  CAPS"]
    sampled = [
        sample_caption(tf.constant([c]), 27, tf.constant([0, 0], tf.int64))[0]
        .numpy()
        .decode()
        for c in raw
    ]
    assert normalize_captions(raw) == sampled


def test_save_load_round_trip_and_prior_check(tmp_path):
    cache = CaptionFeatureCache(CountingPrior())
    cache.add(CAPTIONS)
    cache.save(str(tmp_path / "c"))
    with pytest.raises(FileExistsError):
        cache.save(str(tmp_path / "c"))
    loaded = CaptionFeatureCache.load(str(tmp_path / "c"))
    assert loaded.captions == cache.captions
    np.testing.assert_array_equal(
        loaded.features(["a photo of a dog"], add_missing=False)[
            "token_features"
        ],
        cache.features(["a photo of a dog"])["token_features"],
    )
    with pytest.raises(ValueError, match="no `prior`"):
        loaded.add(["a red bird"])
    other = CountingPrior()
    other.hidden_dim = 8
    with pytest.raises(ValueError, match="another prior"):
        CaptionFeatureCache.load(str(tmp_path / "c"), prior=other)


def test_bad_inputs():
    with pytest.raises(ValueError, match="tokenize"):
        CaptionFeatureCache(object())
    cache = CaptionFeatureCache(CountingPrior())
    with pytest.raises(ValueError, match="list of str"):
        cache.add("a cat")
    with pytest.raises(ValueError, match=r"`captions`\[1\] must be a str"):
        cache.add(["a cat", 3])
    with pytest.raises(ValueError, match="empty"):
        cache.tf_lookup()


def _examples(captions):
    n = len(captions)
    images = np.random.default_rng(0).integers(0, 255, (n, 16, 16, 3))
    return tf.data.Dataset.from_tensor_slices(
        {
            "image": images.astype("uint8"),
            "captions": [[c] for c in captions],
            "image_id": [f"img{i}" for i in range(n)],
        }
    )


def test_pipeline_looks_features_up_by_caption():
    prior = CountingPrior()
    captions = ["a photo of a cat", "a photo of a dog"] * 6
    examples = _examples(captions)
    cache = CaptionFeatureCache.from_examples(prior, examples)
    assert prior.rows == 2
    ds = make_dataset(
        examples, batch_size=4, image_size=16, training=False,
        feature_cache=cache,
    )
    seen = 0
    for batch in ds.as_numpy_iterator():
        want = cache.features([c.decode() for c in batch["captions"]])
        for key in ("token_ids", "padding_mask", "sentence_feature"):
            np.testing.assert_array_equal(batch[key], want[key])
        np.testing.assert_array_equal(
            batch["token_features"], want["token_features"].astype("float32")
        )
        assert batch["token_ids"].dtype == np.int32
        assert batch["padding_mask"].dtype == bool
        seen += len(batch["captions"])
    assert seen == 12 and prior.rows == 2  # nothing encoded again


def test_pipeline_names_a_caption_missing_from_the_cache():
    cache = CaptionFeatureCache(CountingPrior())
    cache.add(["a photo of a cat"])
    ds = make_dataset(
        _examples(["a photo of a cat", "a photo of a dog"]), batch_size=2,
        image_size=16, training=False, feature_cache=cache,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="a photo of a dog"):
        next(iter(ds))

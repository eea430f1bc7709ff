import json
import os

import numpy as np
import pytest

import keras

from keras_lgvq.text_priors.clip_text_prior import CLIPTextPrior
from keras_lgvq.text_priors.feature_cache import FeatureCache
from keras_lgvq.text_priors.feature_cache import build_feature_cache
from keras_lgvq.text_priors.feature_cache import cache_path
from keras_lgvq.text_priors.feature_cache import prior_cache_name
from tests.text_priors import reference_impls as ref

EXAMPLES = [
    ("img_000", ["the small bird", "a red crown", "the bird with a crown"]),
    ("img_001", ["", "a bird " * 30]),  # empty and truncated captions
    ("img_002", ["Café naïve 2023"]),
    ("img_003", ["red", "crown", "bird"]),
    ("img_004", ["the wing and the crown"]),
]


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tiny_clip_cache"))
    ref.write_tiny_hf_clip(directory)
    return CLIPTextPrior(directory)


@pytest.fixture(scope="module")
def cache(prior, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("caches"))
    path = cache_path(root, "toy", "train", prior, 30)
    return build_feature_cache(
        prior,
        iter(EXAMPLES),
        path,
        dataset="toy",
        split="train",
        batch_size=4,
        images_per_shard=2,
    )


def test_cache_path_and_manifest(prior, cache):
    name = os.path.basename(prior.name_or_path)
    assert prior_cache_name(prior) == name
    assert prior_cache_name("minilm") == "minilm"
    assert cache.path.endswith(os.path.join("toy", "train", f"{name}-L30"))
    manifest = cache.manifest
    assert manifest["dataset"] == "toy" and manifest["split"] == "train"
    assert manifest["prior"] == name and manifest["sequence_length"] == 30
    assert manifest["captions_per_image"] == 3 and len(cache) == 5
    assert manifest["num_captions"] == 10
    assert [s["num_images"] for s in manifest["shards"]] == [2, 2, 1]
    assert not os.path.exists(cache.path + ".partial")


def test_cached_equals_on_the_fly(prior, cache):
    elements = list(cache.as_dataset())
    assert [e["image_id"].numpy().decode() for e in elements] == [
        e[0] for e in EXAMPLES
    ]
    for element, (_, captions) in zip(elements, EXAMPLES):
        padded = [captions[i % len(captions)] for i in range(3)]
        ids, mask = prior.tokenize(padded)
        out = prior(ids, mask)
        assert element["token_ids"].dtype.name == "int32"
        assert element["padding_mask"].dtype.name == "bool"
        assert element["token_features"].dtype.name == "float16"
        assert element["sentence_feature"].dtype.name == "float32"
        assert tuple(element["token_features"].shape) == (3, 30, 32)
        np.testing.assert_array_equal(
            element["token_ids"].numpy(), keras.ops.convert_to_numpy(ids)
        )
        np.testing.assert_array_equal(
            element["padding_mask"].numpy(), keras.ops.convert_to_numpy(mask)
        )
        np.testing.assert_allclose(
            element["token_features"].numpy().astype("float32"),
            keras.ops.convert_to_numpy(out["token_features"]),
            rtol=1e-3,
            atol=2e-3,
        )
        np.testing.assert_allclose(
            element["sentence_feature"].numpy(),
            keras.ops.convert_to_numpy(out["sentence_feature"]),
            atol=1e-5,
        )
        np.testing.assert_array_equal(
            element["caption_mask"].numpy(), np.arange(3) < len(captions)
        )


def test_refuses_mismatched_requests(prior, cache):
    FeatureCache(cache.path, prior=prior, dataset="toy", split="train")
    with pytest.raises(ValueError, match="sequence_length"):
        FeatureCache(cache.path, prior=prior.name_or_path, sequence_length=20)
    with pytest.raises(ValueError, match="prior"):
        FeatureCache(cache.path, prior="minilm")
    with pytest.raises(ValueError, match="split"):
        FeatureCache(cache.path, split="test")
    with pytest.raises(FileExistsError):
        build_feature_cache(
            prior, EXAMPLES, cache.path, dataset="toy", split="train"
        )


def test_bad_inputs(prior, tmp_path):
    path = str(tmp_path / "c")
    with pytest.raises(ValueError, match="caption 1 must be a str"):
        build_feature_cache(
            prior, [("a", ["ok", 3])], path, dataset="d", split="s"
        )
    with pytest.raises(ValueError, match="no captions"):
        build_feature_cache(prior, [("a", [])], path, dataset="d", split="s")
    with pytest.raises(ValueError, match="captions_per_image"):
        build_feature_cache(
            prior,
            [("a", ["x", "y"])],
            path,
            dataset="d",
            split="s",
            captions_per_image=1,
        )
    with pytest.raises(FileNotFoundError, match="No feature cache"):
        FeatureCache(path)
    # A partial build (no manifest) is never taken for a cache.
    os.makedirs(path)
    with open(os.path.join(path, "features-00000-of-00001.tfrecord"), "w"):
        pass
    with pytest.raises(FileNotFoundError):
        FeatureCache(path)
    with open(os.path.join(path, "manifest.json"), "w") as f:
        json.dump({"format": "something else"}, f)
    with pytest.raises(ValueError, match="not a keras_lgvq feature cache"):
        FeatureCache(path)

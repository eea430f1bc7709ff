import numpy as np
import pytest

from keras_lgvq.evaluation import masking
from keras_lgvq.evaluation import splits
from tests.evaluation.fakes import MASK_ID
from tests.evaluation.fakes import FakePrior
from tests.evaluation.fakes import batches


def test_prepare_split_shapes_and_leak_free_features():
    prior = FakePrior()
    split = splits.prepare_split(
        batches(24), prior, max_images=20, seed=4, training_masks=True,
        verbose=0,
    )
    assert split["num_images"] == 20
    assert split["images"].shape == (20, 32, 32, 3)
    assert split["captions"] is None
    assert split["num_objects"].shape == (20,)
    for name in splits.ATTRIBUTES:
        assert split[name].shape == (20, 3)
    ids, pad = split["token_ids"], split["padding_mask"]
    for key, feats in (
        ("mask_1", "masked_features_1"),
        ("mask_3", "masked_features_3"),
        ("train_mask", "masked_features_train"),
    ):
        mask = split[key]
        expected = prior.features(np.where(mask, MASK_ID, ids), pad)
        np.testing.assert_allclose(
            split[feats].astype("float32"), expected, atol=2e-3
        )
    np.testing.assert_array_equal(
        split["mask_3"], masking.protocol_masks(ids, pad, 3, seed=4)
    )
    np.testing.assert_array_equal(
        split["train_mask"], masking.sample_training_masks(pad, seed=4)
    )
    np.testing.assert_allclose(
        np.linalg.norm(split["sentence_feature"], axis=1), 1.0, atol=1e-5
    )


def test_prepare_split_without_prior_keeps_images_only():
    split = splits.prepare_split(batches(16), max_images=10, verbose=0)
    assert split["num_images"] == 10
    assert "token_features" not in split and "mask_1" not in split


def test_prepare_split_rejects_bad_input():
    with pytest.raises(ValueError, match="max_images"):
        splits.prepare_split(batches(8), max_images=0, verbose=0)
    with pytest.raises(ValueError, match="images"):
        splits.prepare_split([{"x": np.zeros(3)}], verbose=0)
    with pytest.raises(ValueError, match="no images"):
        splits.prepare_split([], verbose=0)

"""A text prior called with more tokens than its `sequence_length` raises
(it does not truncate: only `tokenize` truncates, keeping the end token),
also when a traced function's length is dynamic."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.text_priors.clip_text_prior import CLIPTextPrior
from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX
from tests.text_priors import reference_impls as ref

BACKEND = keras.backend.backend()


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tiny_hf_clip"))
    ref.write_tiny_hf_clip(directory)
    return CLIPTextPrior(directory, sequence_length=8)


def test_longer_ids_raise(prior):
    ids, mask = prior.tokenize(["a bird", "the red crown"])
    assert tuple(ids.shape) == (2, 8)
    prior(ids, mask)  # the prior's own length is fine
    shorter = keras.ops.convert_to_numpy(ids)[:, :5]
    prior(shorter, shorter > 0)  # shorter too
    longer = np.pad(keras.ops.convert_to_numpy(ids), [(0, 0), (0, 3)])
    with pytest.raises(ValueError, match="sequence_length=8"):
        prior(longer, longer > 0)
    with pytest.raises(ValueError, match="11 tokens"):
        prior({"token_ids": longer})


def test_tokenize_truncates_keeping_the_end_token(prior):
    ids, mask = prior.tokenize(["one two three four five six seven eight"])
    ids = keras.ops.convert_to_numpy(ids)
    assert ids.shape == (1, 8) and ids[0, -1] == prior.end_token_id


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="tf.function with a dynamic length"
)
def test_dynamic_length_is_checked_at_run_time(prior):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def encode(token_ids):
        return prior(token_ids, token_ids > 0)["sentence_feature"]

    encode(tf.ones([2, 8], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=TEXT_CHECK_PREFIX):
        encode(tf.ones([2, 12], tf.int32))

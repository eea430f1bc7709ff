"""`make_dataset` refuses what would train silently into a wrong state:
bad caption tokens (checked on the host side, in tf.data) and splits that
yield no batch at all."""

import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.datasets import make_dataset
from keras_lgvq.datasets.pipeline import validate_text_batch
from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

SMALL = dict(train_size=12, validation_size=6, test_size=3)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _examples(n=4):
    return tf.data.Dataset.from_tensor_slices(
        {
            "image": np.zeros((n, 16, 16, 3), np.uint8),
            "captions": [[f"caption number {i}"] for i in range(n)],
            "image_id": [f"img{i}" for i in range(n)],
        }
    )


class BadPrior:
    """Tokenizes every caption to one fixed (bad) row."""

    vocabulary_size = 10
    sequence_length = 6

    def __init__(self, ids, mask):
        self.ids = np.asarray(ids, np.int32)
        self.mask = np.asarray(mask, bool)

    def tokenize(self, strings):
        n = tf.shape(strings)[0]
        ids = tf.tile(tf.constant(self.ids)[None], [n, 1])
        mask = tf.tile(tf.constant(self.mask)[None], [n, 1])
        return ids, mask


GOOD = ([1, 5, 2, 0, 0, 0], [1, 1, 1, 0, 0, 0])
BAD = {
    "id_too_large": (([1, 10, 2, 0, 0, 0], GOOD[1]), "vocabulary_size=10"),
    "negative_id": (([1, -1, 2, 0, 0, 0], GOOD[1]), ">= 0"),
    "all_padding": (([0] * 6, [0] * 6), "at least one real token"),
    "not_a_prefix": ((GOOD[0], [0, 1, 1, 1, 0, 0]), "prefix of ones"),
}


def test_valid_tokens_pass():
    ds = make_dataset(_examples(), "validation", batch_size=2, image_size=8,
                      text_prior=BadPrior(*GOOD))
    batches = list(ds)
    assert len(batches) == 2
    np.testing.assert_array_equal(batches[0]["token_ids"][0], GOOD[0])


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_tokens_fail_the_iteration_with_a_named_problem(kind):
    (ids, mask), match = BAD[kind]
    ds = make_dataset(_examples(), "validation", batch_size=2, image_size=8,
                      text_prior=BadPrior(ids, mask))
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        list(ds)
    assert TEXT_CHECK_PREFIX in str(error.value)
    assert match in str(error.value)


def test_validate_text_batch_checks_length_and_passes_image_batches():
    images = {"images": tf.zeros([2, 8, 8, 3])}
    assert validate_text_batch(images, 10) is images
    batch = {
        "token_ids": tf.ones([2, 7], tf.int32),
        "padding_mask": tf.ones([2, 7], tf.bool),
    }
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence_len"):
        validate_text_batch(batch, 10, sequence_length=6)
    with pytest.raises(ValueError, match="padding_mask"):
        validate_text_batch({"token_ids": tf.ones([2, 3], tf.int32)}, 10)
    with pytest.raises(ValueError, match="integer"):
        validate_text_batch(
            {
                "token_ids": tf.ones([2, 3]),
                "padding_mask": tf.ones([2, 3], tf.bool),
            },
            10,
        )


def test_split_smaller_than_the_batch_yields_no_batch_error(data_dir):
    # 3 test images, batch 4, drop_remainder=True: zero batches.
    with pytest.raises(ValueError, match="fewer than batch_size=4"):
        make_dataset(
            "scenes",
            "test",
            batch_size=4,
            image_size=32,
            data_dir=data_dir,
            drop_remainder=True,
            **SMALL,
        )
    # Keeping the partial batch is the fix.
    ds = make_dataset(
        "scenes",
        "test",
        batch_size=4,
        image_size=32,
        data_dir=data_dir,
        drop_remainder=False,
        **SMALL,
    )
    assert [int(b["images"].shape[0]) for b in ds] == [3]

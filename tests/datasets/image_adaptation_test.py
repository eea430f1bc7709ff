"""Input-image rules: gray -> RGB, RGBA -> RGB, uint8 / integer / float
ranges, in numpy (loaders) and in the tf.data pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.datasets import make_dataset
from keras_lgvq.datasets.image_adaptation import adapt_image_array
from keras_lgvq.datasets.image_adaptation import adapt_image_tensor
from keras_lgvq.datasets.image_adaptation import check_value_range

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _rng_image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 1), (6, 5, 2)])
def test_gray_is_replicated(shape):
    image = _rng_image(shape)
    gray = image.reshape(6, 5, -1)[..., 0]
    expected = np.stack([gray] * 3, axis=-1)
    np.testing.assert_array_equal(adapt_image_array(image), expected)
    np.testing.assert_array_equal(
        adapt_image_tensor(tf.constant(image)).numpy(), expected
    )


def test_rgba_drops_alpha_and_rgb_passes():
    rgba = _rng_image((4, 7, 4))
    np.testing.assert_array_equal(adapt_image_array(rgba), rgba[..., :3])
    np.testing.assert_array_equal(
        adapt_image_tensor(tf.constant(rgba)).numpy(), rgba[..., :3]
    )
    rgb = rgba[..., :3]
    np.testing.assert_array_equal(adapt_image_array(rgb), rgb)


def test_dynamic_channel_count_in_a_graph():
    fn = tf.function(
        adapt_image_tensor,
        input_signature=[tf.TensorSpec([None, None, None], tf.uint8)],
    )
    gray = _rng_image((3, 3, 1))
    np.testing.assert_array_equal(fn(gray).numpy(), np.repeat(gray, 3, -1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="1 to 4"):
        fn(_rng_image((3, 3, 5)))


@pytest.mark.parametrize(
    "value_range, low, high",
    [((0, 1), 0.0, 1.0), ((-1, 1), -1.0, 1.0), ((0, 255), 0.0, 255.0)],
)
def test_float_ranges_map_to_uint8_levels(value_range, low, high):
    levels = np.arange(256, dtype=np.float64).reshape(16, 16, 1)
    image = (low + levels / 255.0 * (high - low)).astype(np.float32)
    expected = np.repeat(levels.astype(np.uint8), 3, -1)
    np.testing.assert_array_equal(
        adapt_image_array(image, value_range), expected
    )
    np.testing.assert_array_equal(
        adapt_image_tensor(tf.constant(image), value_range).numpy(), expected
    )


def test_float_without_range_or_outside_it_is_an_error():
    with pytest.raises(ValueError, match=r"explicit `image_value_range`.*"
                       r"span \[0, 1\]"):
        adapt_image_array(np.linspace(0, 1, 12).reshape(2, 2, 3))
    levels = np.array([[0.0, 17.0, 255.0]] * 2, np.float32).reshape(2, 1, 3)
    with pytest.raises(ValueError, match="look like uint8 levels"):
        adapt_image_array(levels, where="row 4")
    with pytest.raises(ValueError, match=r"row 4: with image_value_range="
                       r"\(0, 1\).*span \[0, 255\]"):
        adapt_image_array(levels, (0, 1), where="row 4")
    with pytest.raises(ValueError, match=r"span \[-1, 1\]"):
        adapt_image_array(np.array([[[-1.0, 0.0, 1.0]]]), (0, 1))
    with pytest.raises(ValueError, match="NaN"):
        adapt_image_array(np.full((2, 2, 3), np.nan), (0, 1))
    with pytest.raises(ValueError, match="explicit `image_value_range`"):
        adapt_image_tensor(tf.zeros([2, 2, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image_value_range=\(0, 1\)"):
        adapt_image_tensor(tf.constant(levels), (0, 1))
    with pytest.raises(ValueError, match=r"one of \(\(0.0, 1.0\)"):
        check_value_range((0, 2))
    with pytest.raises(ValueError, match="image_value_range"):
        check_value_range("0-1")


def test_integer_images_and_bad_shapes():
    ints = np.array([[[0, 128, 255]]], np.int64)
    np.testing.assert_array_equal(
        adapt_image_array(ints), ints.astype(np.uint8)
    )
    with pytest.raises(ValueError, match=r"\[0, 255\]; got \[0, 4095\]"):
        adapt_image_array(np.array([[[0, 4095, 1]]], np.uint16))
    with pytest.raises(ValueError, match=r"\(H, W, 4\); got shape \(2, 2, 5\)"):
        adapt_image_array(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 2, 3\)"):
        adapt_image_array(np.zeros((1, 2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype bool"):
        adapt_image_array(np.zeros((2, 2, 3), bool))


def _source(images):
    n = len(images)
    return tf.data.Dataset.from_tensor_slices({
        "image": images,
        "captions": [["a red square"]] * n,
        "image_id": [str(i) for i in range(n)],
    })


def test_pipeline_applies_the_rules():
    gray = _rng_image((2, 16, 16, 1))
    batch = next(iter(make_dataset(_source(gray), batch_size=2, image_size=16,
                                   training=False, transform="none")))
    expected = np.repeat(gray, 3, -1).astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(batch["images"].numpy(), expected, atol=1e-6)

    floats = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3))
    floats = floats.astype(np.float32)
    with pytest.raises(ValueError, match="pass `image_value_range`"):
        make_dataset(_source(floats), batch_size=2, image_size=16)
    batch = next(iter(make_dataset(_source(floats), batch_size=2,
                                   image_size=16, training=False,
                                   transform="none",
                                   image_value_range=(0, 1))))
    expected = np.round(floats * 255.0) / 127.5 - 1.0
    np.testing.assert_allclose(batch["images"].numpy(), expected, atol=1e-5)
    # Values outside the stated range fail the iteration with the rule.
    ds = make_dataset(_source(floats * 255.0), batch_size=2, image_size=16,
                      image_value_range=(0, 1))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image_value_range=\(0, 1\)"):
        next(iter(ds))


def test_pipeline_resizes_to_image_size():
    images = _rng_image((2, 40, 24, 3))
    batch = next(iter(make_dataset(_source(images), batch_size=2,
                                   image_size=32, training=False)))
    assert batch["images"].shape == (2, 32, 32, 3)

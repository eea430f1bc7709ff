"""Training data that yields no batch is an error, not an empty history."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.datasets import make_dataset
from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_vqgan


def _model():
    model = tiny_vqgan(discriminator=None)
    model.compile(learning_rate=1e-3)
    return model


def test_known_empty_dataset_is_refused_before_training():
    images = tiny_images(3)
    data = tf.data.Dataset.from_tensor_slices({"images": images}).batch(
        4, drop_remainder=True
    )
    assert int(data.cardinality()) == 0
    model = _model()
    with pytest.raises(ValueError, match="no batch"):
        model.fit(data, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="no batch"):
        model.evaluate(data, verbose=0)


def test_empty_dataset_of_unknown_size_is_refused_after_fit():
    # make_dataset on a plain tf.data source filters captions, so its size
    # is unknown until it runs: 3 examples, batch 4, drop_remainder.
    source = tf.data.Dataset.from_tensor_slices(
        {
            "image": np.zeros((3, 32, 32, 3), np.uint8),
            "captions": [["a red ball"], ["a blue box"], ["two cats"]],
            "image_id": ["a", "b", "c"],
        }
    )
    data = make_dataset(
        source, "train", batch_size=4, image_size=32, shuffle_buffer=0
    )
    assert int(data.cardinality()) < 0  # unknown
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match="no batch"):
        model.fit(data, epochs=1, verbose=0)
    # Nothing trained, and the model is still usable (Keras's JAX loop
    # detaches the variables while it runs).
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    keras.ops.convert_to_numpy(model.optimizer.iterations)


def test_zero_epochs_is_not_an_error():
    data = tf.data.Dataset.from_tensor_slices(
        {"images": tiny_images(4)}
    ).batch(4)
    model = _model()
    history = model.fit(data, epochs=0, verbose=0)
    assert history.history == {}

"""Progress bars and iteration helpers of the evaluation modules."""

import keras
import numpy as np


def progbar(total, verbose, unit="images"):
    """A Keras progress bar, or None when `verbose` is 0 or nothing to do."""
    if not verbose or not total:
        return None
    return keras.utils.Progbar(total, verbose=1, unit_name=unit)


def iterate(dataset):
    """Numpy batches of a `tf.data.Dataset`, or the items of an iterable."""
    if hasattr(dataset, "as_numpy_iterator"):
        return dataset.as_numpy_iterator()
    return iter(dataset)


def decode_strings(values):
    """bytes / str values (any shape) as a flat list of `str`."""
    out = []
    for value in np.asarray(values).reshape(-1):
        out.append(
            value.decode("utf-8") if isinstance(value, bytes) else str(value)
        )
    return out

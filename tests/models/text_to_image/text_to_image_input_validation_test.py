"""Training codes that do not fit the generator are refused, and refusing
them changes nothing.

Out-of-range ids used to train silently on JAX (a NaN loss, the weights
spoiled) and to fail with an opaque graph error on TensorFlow. In-memory
arrays are checked on the host before `fit`; a `tf.data` pipeline is
checked in the pipeline (`validate_code_batch`), so the check also holds
under a jitted step.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models.text_to_image.text_to_image_test import GRID
from tests.models.text_to_image.text_to_image_test import K
from tests.models.text_to_image.text_to_image_test import _model
from tests.models.text_to_image.text_to_image_test import _text


def _batch(kind):
    codes = np.full((4, GRID, GRID), 2, "int32")
    if kind == "too_large":
        codes[1, 0, 0] = K  # K is the mask id, never a code
        match = f"< num_codes={K}|in \\[0, {K}\\)"
    elif kind == "negative":
        codes[2, 1, 1] = -1
        match = ">= 0|in \\[0, "
    elif kind == "wrong_grid":
        codes = np.full((4, GRID + 1, GRID + 1), 2, "int32")
        match = f"sequence_length={GRID * GRID}"
    elif kind == "float":
        codes = codes.astype("float32")
        match = "integer"
    else:
        raise AssertionError(kind)
    return {"codes": codes, **_text(4)}, match


KINDS = ["too_large", "negative", "wrong_grid", "float"]


def _state(model):
    variables = list(model.variables) + list(model.optimizer.variables)
    return {v.path: keras.ops.convert_to_numpy(v) for v in variables}


def test_bad_codes_in_tf_data_and_arrays_are_refused_and_change_nothing():
    model = _model()
    model.compile(optimizer="adam")  # the default, jitted step
    good, _ = _batch("negative")
    good["codes"][2, 1, 1] = 3
    model.fit(good, batch_size=4, epochs=1, verbose=0)  # builds everything
    before = _state(model)
    assert any(path.endswith("iteration") for path in before)
    for kind in KINDS:
        batch, match = _batch(kind)
        data = tf.data.Dataset.from_tensor_slices(batch).batch(4)
        with pytest.raises(ValueError, match=match):
            model.fit(data, epochs=1, verbose=0)
        with pytest.raises(ValueError, match=match):
            model.evaluate(data, verbose=0)
        with pytest.raises(ValueError, match=match):
            model.fit(batch, batch_size=4, epochs=1, verbose=0)
        after = _state(model)
        changed = [p for p in before if not np.array_equal(before[p], after[p])]
        assert not changed, (kind, changed)
    # The model is still whole (JAX detaches its variables while `fit`
    # runs) and trains on good codes.
    history = model.fit(
        tf.data.Dataset.from_tensor_slices(good).batch(4), epochs=1, verbose=0
    ).history
    assert np.isfinite(history["loss"][-1])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2

"""`NonFiniteStepSkipping`: a step with a NaN loss changes nothing, for
models trained by Keras's own `train_step` (the stage-2 models)."""

import keras
import numpy as np
import pytest

from keras_lgvq.backend.nonfinite_skipping import NonFiniteStepSkipping
from keras_lgvq.callbacks import NonFiniteGuard
from keras_lgvq.models.captioning import Captioner
from keras_lgvq.models.text_to_image.text_to_image import TextToImage
from keras_lgvq.models.vqa import VQAModel


class Regressor(NonFiniteStepSkipping, keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(
            1, kernel_initializer="ones", bias_initializer="zeros"
        )

    def call(self, x):
        return self.dense(x)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)).astype("float32")
    y = x.sum(-1, keepdims=True) * 0.5
    return x, y


def _fit(x, y, skip, callbacks=()):
    keras.utils.set_random_seed(0)
    model = Regressor()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.skip_nonfinite_steps = skip
    history = model.fit(
        x, y, batch_size=4, epochs=2, shuffle=False, verbose=0,
        callbacks=list(callbacks),
    )
    return model, history.history


def test_a_nan_batch_is_left_out_exactly():
    x, y = _data()
    bad = x.copy()
    bad[5, 1] = np.nan  # batch 2 of 3 in each epoch
    guard = NonFiniteGuard(policy="skip", verbose=False)
    skipped_model, history = _fit(bad, y, skip=False, callbacks=[guard])
    assert skipped_model.skip_nonfinite_steps  # the guard turned it on
    assert [s[:2] for s in guard.skipped] == [(0, 1), (1, 1)]
    # The same run without the bad batch: identical weights, Adam slots
    # and iteration count, and the epoch mean leaves the batch out.
    keep = np.r_[0:4, 8:12]
    clean_model, clean_history = _fit(x[keep], y[keep], skip=False)
    for a, b in zip(
        skipped_model.get_weights() + [
            keras.ops.convert_to_numpy(v)
            for v in skipped_model.optimizer.variables
        ],
        clean_model.get_weights() + [
            keras.ops.convert_to_numpy(v)
            for v in clean_model.optimizer.variables
        ],
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(history["loss"], clean_history["loss"], 1e-5)


def test_without_the_flag_the_nan_spreads():
    x, y = _data()
    x[5, 1] = np.nan
    model, history = _fit(x, y, skip=False)
    assert not np.isfinite(history["loss"][-1])
    assert not np.all(np.isfinite(model.get_weights()[0]))


def test_stage_two_models_offer_the_flag_and_it_is_checked():
    for cls in (Captioner, VQAModel, TextToImage):
        assert issubclass(cls, NonFiniteStepSkipping)
        assert hasattr(cls, "skip_nonfinite_steps")
    model = Regressor()
    with pytest.raises(ValueError, match="skip_nonfinite_steps"):
        model.skip_nonfinite_steps = "yes"

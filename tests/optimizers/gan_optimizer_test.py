import keras
import numpy as np
import pytest

from keras_lgvq.optimizers.gan_optimizer import GANOptimizer


class _Pair(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generator = keras.layers.Dense(3, name="generator")
        self.discriminator = keras.layers.Dense(1, name="discriminator")

    def call(self, x):
        return self.discriminator(self.generator(x))


def _optimizer():
    return GANOptimizer(
        generator=keras.optimizers.Adam(1e-3, beta_1=0.5, beta_2=0.9),
        discriminator=keras.optimizers.SGD(1e-2),
    )


def test_build_splits_variables_by_discriminator_name():
    model = _Pair()
    model(np.ones((2, 4), "float32"))
    optimizer = _optimizer()
    optimizer.build(model.trainable_variables)
    g_vars, d_vars = optimizer.split(model.trainable_variables)
    assert [v.path.split("/")[-2] for v in g_vars] == ["generator"] * 2
    assert [v.path.split("/")[-2] for v in d_vars] == ["discriminator"] * 2
    # Adam: iterations, lr, 2 moments per variable; SGD: iterations, lr.
    assert len(optimizer.generator.variables) == 2 + 2 * 2
    assert len(optimizer.discriminator.variables) == 2
    assert len(optimizer.variables) == 8
    assert optimizer.iterations is optimizer.generator.iterations


def test_config_round_trip_keeps_both_optimizers():
    optimizer = _optimizer()
    restored = GANOptimizer.from_config(optimizer.get_config())
    assert isinstance(restored.generator, keras.optimizers.Adam)
    assert isinstance(restored.discriminator, keras.optimizers.SGD)
    assert restored.generator.beta_1 == 0.5
    np.testing.assert_allclose(
        float(restored.discriminator.learning_rate), 1e-2, rtol=1e-6
    )


def test_applying_through_the_wrapper_is_refused():
    with pytest.raises(NotImplementedError, match="generator"):
        _optimizer().apply([], [])


def test_unknown_hyper_parameters_are_refused():
    with pytest.raises(ValueError, match="generator"):
        GANOptimizer("adam", "adam", clipnorm=1.0)

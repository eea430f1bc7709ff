import numpy as np
from keras import ops

from keras_lgvq.losses.gan_losses import adaptive_generator_weight
from keras_lgvq.losses.gan_losses import discriminator_factor
from keras_lgvq.losses.gan_losses import generator_adversarial_loss
from keras_lgvq.losses.gan_losses import hinge_discriminator_loss


def test_hinge_losses_match_numpy():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2, 6, 6, 1)).astype("float32") * 2
    fake = rng.normal(size=(2, 6, 6, 1)).astype("float32") * 2
    expected = 0.5 * (
        np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
    )
    got = ops.convert_to_numpy(hinge_discriminator_loss(real, fake))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    got = ops.convert_to_numpy(generator_adversarial_loss(fake))
    np.testing.assert_allclose(got, -fake.mean(), rtol=1e-6)


def test_adaptive_weight_formula_and_clipping():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 3, 4, 2)).astype("float32")
    b = rng.normal(size=(3, 3, 4, 2)).astype("float32") * 0.1
    expected = np.linalg.norm(a) / (np.linalg.norm(b) + 1e-4) * 0.8
    got = ops.convert_to_numpy(adaptive_generator_weight(a, b, 0.8))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # A vanishing GAN gradient is clipped at 1e4 before the multiplier.
    got = ops.convert_to_numpy(adaptive_generator_weight(a, b * 0.0, 0.5))
    np.testing.assert_allclose(got, 1e4 * 0.5, rtol=1e-6)


def test_discriminator_factor_switches_on_at_start():
    values = [
        float(ops.convert_to_numpy(discriminator_factor(s, 10, 1.0)))
        for s in (0, 9, 10, 11)
    ]
    assert values == [0.0, 0.0, 1.0, 1.0]

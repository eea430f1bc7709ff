"""Arguments that used to train silently into a wrong state now raise."""

import numpy as np
import pytest

from keras_lgvq.models import VQGAN
from keras_lgvq.models import VQGANBackbone
from tests.models.tiny_configs import tiny_backbone


@pytest.mark.parametrize("disc_start", [1.5, 1e4, "100", True, -1])
def test_disc_start_must_be_a_non_negative_int(disc_start):
    with pytest.raises(ValueError, match="disc_start"):
        VQGAN(tiny_backbone(), discriminator=None, disc_start=disc_start)


@pytest.mark.parametrize(
    "name", ["perceptual_weight", "codebook_weight", "disc_weight", "disc_factor"]
)
@pytest.mark.parametrize("value", [float("nan"), -0.1, float("inf")])
def test_loss_weights_must_be_finite_and_non_negative(name, value):
    with pytest.raises(ValueError, match=name):
        VQGAN(tiny_backbone(), discriminator=None, **{name: value})


def test_decode_rejects_out_of_range_and_float_codes():
    backbone = VQGANBackbone.from_preset("scenes", resolution=32)
    grid = backbone.grid_size
    ok = backbone.decode(np.zeros((1, grid, grid), "int32"))
    assert tuple(ok.shape) == (1, 32, 32, 3)
    for bad, low, high in ((-1, -1, -1), (256, 256, 256)):
        codes = np.zeros((1, grid, grid), "int32")
        codes[0, 0, 0] = bad
        with pytest.raises(ValueError, match=r"\[0, 256\)") as error:
            backbone.decode(codes)
        assert f"from {min(low, 0)} to {max(high, 0)}" in str(error.value)
    with pytest.raises(ValueError, match="integer code ids"):
        backbone.decode(np.zeros((1, grid, grid), "float32"))

"""Tests for LQAE's `ResNetEncoder` / `ResNetDecoder` (VQGAN blocks)."""

import keras
import numpy as np
import pytest

from keras_lgvq.layers.vqgan.resnet_autoencoder import ResNetDecoder
from keras_lgvq.layers.vqgan.resnet_autoencoder import ResNetEncoder
from keras_lgvq.layers.vqgan.vqgan_blocks import AttentionBlock
from tests.layers.vqgan_numpy_reference import np_conv
from tests.layers.vqgan_numpy_reference import np_norm
from tests.layers.vqgan_numpy_reference import np_resnet_block
from tests.layers.vqgan_numpy_reference import np_swish
from tests.layers.vqgan_numpy_reference import randomize_norms
from tests.layers.vqgan_numpy_reference import to_np
from tests.layers.vqgan_numpy_reference import weights_of

TINY = dict(
    image_size=16,
    hidden_dim=8,
    filters=32,
    channel_multipliers=(1, 2),
    num_res_blocks=1,
)


# ---------------------------------------------------- independent numpy model


def np_average_pool(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def np_resnet_encoder(x, w, cfg):
    """The official `ResNetEncoder` structure (lqae-spec §1.1)."""
    h = np_conv(x, w["conv_in/kernel"], 0.0)
    levels = len(cfg["channel_multipliers"])
    for i in range(levels):
        for j in range(cfg["num_res_blocks"]):
            h = np_resnet_block(h, w, f"level_{i}_block_{j}/")
        if i != levels - 1:
            h = np_average_pool(h)
    for j in range(cfg["num_res_blocks"]):
        h = np_resnet_block(h, w, f"final_block_{j}/")
    h = np_swish(np_norm(h, w, "norm_out"))
    return np_conv(h, w["conv_out/kernel"], w["conv_out/bias"], pad=(0,) * 4)


def np_resnet_decoder(x, w, cfg):
    """The official `ResNetDecoder` structure (lqae-spec §1.1)."""
    h = np_conv(x, w["conv_in/kernel"], w["conv_in/bias"])
    for j in range(cfg["num_res_blocks"]):
        h = np_resnet_block(h, w, f"mid_block_{j}/")
    for i in reversed(range(len(cfg["channel_multipliers"]))):
        for j in range(cfg["num_res_blocks"]):
            h = np_resnet_block(h, w, f"level_{i}_block_{j}/")
        if i > 0:
            h = h.repeat(2, axis=1).repeat(2, axis=2)
            p = f"level_{i}_upsample/conv"
            h = np_conv(h, w[p + "/kernel"], w[p + "/bias"])
    h = np_swish(np_norm(h, w, "norm_out"))
    return np_conv(h, w["conv_out/kernel"], w["conv_out/bias"])


# --------------------------------------------------------------------- tests


def test_encoder_matches_numpy_reference():
    encoder = ResNetEncoder(**TINY, name="enc")
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3))
    encoder(x.astype("float32"))
    randomize_norms(encoder, np.random.default_rng(1))
    out = to_np(encoder(x.astype("float32")))
    assert out.shape == (2, 8, 8, 8)
    expected = np_resnet_encoder(x, weights_of(encoder), TINY)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # No attention anywhere and a bias-free conv_in (official structure).
    assert not any(isinstance(layer, AttentionBlock) for layer in encoder.body)
    assert encoder.body[0].bias is None


def test_decoder_matches_numpy_reference():
    decoder = ResNetDecoder(**TINY, name="dec")
    x = np.random.default_rng(2).standard_normal((2, 8, 8, 8))
    decoder(x.astype("float32"))
    randomize_norms(decoder, np.random.default_rng(3))
    out = to_np(decoder(x.astype("float32")))
    assert out.shape == (2, 16, 16, 3)
    expected = np_resnet_decoder(x, weights_of(decoder), TINY)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_official_sizes_give_a_16_by_16_grid_of_width_768():
    encoder = ResNetEncoder(image_size=256, hidden_dim=768)
    decoder = ResNetDecoder(image_size=256, hidden_dim=768)
    assert encoder.grid_size == decoder.grid_size == 16
    assert encoder.compute_output_shape((1, 256, 256, 3)) == (1, 16, 16, 768)
    assert decoder.compute_output_shape((1, 16, 16, 768)) == (1, 256, 256, 3)


def test_layer_outputs_and_config_round_trip():
    encoder = ResNetEncoder(**TINY)
    x = np.zeros((1, 16, 16, 3), "float32")
    features, layers = encoder(x, return_layer_outputs=True)
    assert len(layers) == 1 and tuple(layers[0].shape) == (1, 8, 8, 8)
    for layer in (encoder, ResNetDecoder(**TINY, out_channels=1)):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        assert keras.layers.deserialize(keras.layers.serialize(layer))
    assert ResNetDecoder(**TINY, out_channels=1).compute_output_shape(
        (1, 8, 8, 8)
    ) == (1, 16, 16, 1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(filters=24), "multiple of 32"),
        (dict(channel_multipliers=()), "channel_multipliers"),
        (dict(channel_multipliers=(1, 0)), "channel_multipliers"),
        (dict(image_size=18, channel_multipliers=(1, 1, 2)), "multiple of"),
        (dict(dropout=1.0), "dropout"),
        (dict(num_res_blocks=0), "num_res_blocks"),
    ],
)
def test_bad_arguments(kwargs, match):
    for cls in (ResNetEncoder, ResNetDecoder):
        with pytest.raises(ValueError, match=match):
            cls(**{**TINY, **kwargs})


def test_bad_input_shapes():
    with pytest.raises(ValueError, match=r"\(batch, 16, 16, channels\)"):
        ResNetEncoder(**TINY)(np.zeros((1, 32, 32, 3), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, 8, 8, 8\)"):
        ResNetDecoder(**TINY)(np.zeros((1, 8, 8, 4), "float32"))

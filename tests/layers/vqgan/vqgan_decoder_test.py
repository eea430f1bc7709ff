"""Tests for `VQGANDecoder`."""


import keras
import numpy as np
import pytest

from keras_lgvq.layers.vqgan.vqgan_blocks import AttentionBlock
from keras_lgvq.layers.vqgan.vqgan_decoder import VQGANDecoder

from tests.layers.vqgan_numpy_reference import TAMING_F16  # noqa: E402
from tests.layers.vqgan_numpy_reference import TINY_CODER  # noqa: E402
from tests.layers.vqgan_numpy_reference import attn_params  # noqa: E402
from tests.layers.vqgan_numpy_reference import conv_params  # noqa: E402
from tests.layers.vqgan_numpy_reference import np_attention  # noqa: E402
from tests.layers.vqgan_numpy_reference import np_conv  # noqa: E402
from tests.layers.vqgan_numpy_reference import np_norm  # noqa: E402
from tests.layers.vqgan_numpy_reference import np_resnet_block  # noqa: E402
from tests.layers.vqgan_numpy_reference import np_swish  # noqa: E402
from tests.layers.vqgan_numpy_reference import randomize_norms  # noqa: E402
from tests.layers.vqgan_numpy_reference import res_params  # noqa: E402
from tests.layers.vqgan_numpy_reference import to_np  # noqa: E402

TINY = dict(TINY_CODER, out_channels=3)

# ---------------------------------------------------- independent numpy model


def np_decoder_features(z, w, cfg):
    """Taming `Decoder.forward` up to the last swish, from the spec (§1.1)."""
    levels = len(cfg["ch_mult"])
    res = cfg["resolution"] // 2 ** (levels - 1)
    h = np_conv(z, w["conv_in/kernel"], w["conv_in/bias"])
    h = np_resnet_block(h, w, "mid_block_1/")
    h = np_attention(h, w, "mid_attn_1/")
    h = np_resnet_block(h, w, "mid_block_2/")
    for i in reversed(range(levels)):
        for j in range(cfg["num_res_blocks"] + 1):
            h = np_resnet_block(h, w, f"up_{i}_block_{j}/")
            if res in cfg["attn_resolutions"]:
                h = np_attention(h, w, f"up_{i}_attn_{j}/")
        if i != 0:
            p = f"up_{i}_upsample/conv"
            h = h.repeat(2, axis=1).repeat(2, axis=2)
            h = np_conv(h, w[p + "/kernel"], w[p + "/bias"])
            res *= 2
    return np_swish(np_norm(h, w, "norm_out"))


def expected_decoder_params(
    resolution,
    out_channels,
    ch,
    ch_mult,
    num_res_blocks,
    attn_resolutions,
    z_channels,
):
    block_in = ch * ch_mult[-1]
    total = conv_params(3, z_channels, block_in)
    total += 2 * res_params(block_in, block_in) + attn_params(block_in)
    res = resolution // 2 ** (len(ch_mult) - 1)
    for i in reversed(range(len(ch_mult))):
        for _ in range(num_res_blocks + 1):
            total += res_params(block_in, ch * ch_mult[i])
            block_in = ch * ch_mult[i]
            if res in attn_resolutions:
                total += attn_params(block_in)
        if i != 0:
            total += conv_params(3, block_in, block_in)
            res *= 2
    return total + 2 * block_in + conv_params(3, block_in, out_channels)


# --------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "ch_mult,latent,attn,num_res_blocks",
    [
        ((1, 2), 16, (16,), 1),
        ((1, 2), 16, (), 2),
        ((1, 1, 2), 16, (32, 16), 1),
        ((1, 2, 2, 4), 8, (), 1),
    ],
)
def test_output_shape_and_structure(ch_mult, latent, attn, num_res_blocks):
    f = 2 ** (len(ch_mult) - 1)
    size = latent * f
    cfg = dict(
        TINY,
        resolution=size,
        ch_mult=ch_mult,
        attn_resolutions=attn,
        num_res_blocks=num_res_blocks,
    )
    dec = VQGANDecoder(**cfg)
    z = np.random.default_rng(0).standard_normal((2, latent, latent, 8))
    x = dec(z.astype("float32"))
    assert tuple(x.shape) == (2, size, size, 3)
    assert dec.compute_output_shape(z.shape) == (2, size, size, 3)
    assert np.all(np.isfinite(to_np(x)))
    n_attn = sum(isinstance(layer, AttentionBlock) for layer in dec.body)
    reached = [size // 2**i for i in range(len(ch_mult))]
    assert n_attn == 1 + (num_res_blocks + 1) * sum(r in attn for r in reached)
    assert dec.count_params() == expected_decoder_params(
        size, 3, 32, ch_mult, num_res_blocks, attn, 8
    )


def test_matches_numpy_reference_and_features():
    cfg = dict(
        TINY, ch_mult=(2, 1, 1), attn_resolutions=(16,), num_res_blocks=1
    )
    dec = VQGANDecoder(**cfg, name="dec")
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2, 8, 8, 8)).astype("float32")
    dec.build(z.shape)
    randomize_norms(dec, rng)
    w = {v.path[len("dec/") :]: to_np(v) for v in dec.weights}
    expected_h = np_decoder_features(z.astype("float64"), w, cfg)
    expected = np_conv(expected_h, w["conv_out/kernel"], w["conv_out/bias"])
    h = to_np(dec.features(z))
    assert h.shape == (2, 32, 32, 64)  # ch * ch_mult[0]
    np.testing.assert_allclose(
        h, expected_h, atol=1e-3 * np.abs(expected_h).max()
    )
    np.testing.assert_allclose(
        to_np(dec(z)), expected, atol=1e-3 * np.abs(expected).max()
    )


def test_features_feed_conv_out():
    dec = VQGANDecoder(**dict(TINY, dropout=0.3))
    z = (
        np.random.default_rng(2)
        .standard_normal((2, 16, 16, 8))
        .astype("float32")
    )
    # `features` works on an unbuilt decoder and builds it.
    h = dec.features(z)
    assert dec.built
    assert tuple(h.shape) == (2, 32, 32, 32)
    np.testing.assert_allclose(
        to_np(dec(z)), to_np(dec.conv_out(h)), rtol=1e-5, atol=1e-5
    )
    # `features` defaults to inference mode (dropout off).
    np.testing.assert_allclose(to_np(dec.features(z)), to_np(h))
    assert isinstance(dec.conv_out, keras.layers.Conv2D)
    assert dec.conv_out.kernel.shape == (3, 3, 32, 3)
    assert dec.weights[-2] is dec.conv_out.kernel  # the GAN "last layer"
    assert any(v is dec.conv_out.kernel for v in dec.trainable_weights)


def test_variable_paths_are_stable():
    dec = VQGANDecoder(**dict(TINY, ch_mult=(1, 2, 2)), name="dec")
    dec.build((None, 8, 8, 8))
    paths = [v.path for v in dec.weights]
    assert len(paths) == len(set(paths))
    for p in [
        "dec/conv_in/kernel",
        "dec/mid_block_1/conv1/kernel",
        "dec/mid_attn_1/k/bias",
        "dec/mid_block_2/norm1/gamma",
        "dec/up_2_block_1/conv2/kernel",
        "dec/up_2_upsample/conv/kernel",
        "dec/up_1_attn_0/proj_out/kernel",
        "dec/up_0_block_0/nin_shortcut/kernel",
        "dec/norm_out/gamma",
        "dec/conv_out/bias",
    ]:
        assert p in paths, p
    assert "dec/up_0_upsample/conv/kernel" not in paths
    assert paths[:2] == ["dec/conv_in/kernel", "dec/conv_in/bias"]


def test_config_round_trip():
    dec = VQGANDecoder(**dict(TINY, dropout=0.1), name="dec")
    z = (
        np.random.default_rng(3)
        .standard_normal((2, 16, 16, 8))
        .astype("float32")
    )
    y = to_np(dec(z))
    config = dec.get_config()
    for key, value in TINY.items():
        if key != "dropout":
            assert config[key] == value, key
    assert config["dropout"] == 0.1
    restored = VQGANDecoder.from_config(config)
    restored.build(z.shape)
    restored.set_weights(dec.get_weights())
    np.testing.assert_allclose(to_np(restored(z)), y, atol=1e-5)
    np.testing.assert_allclose(
        to_np(restored.features(z)), to_np(dec.features(z)), atol=1e-5
    )
    again = keras.layers.deserialize(keras.layers.serialize(dec))
    assert type(again) is VQGANDecoder and again.get_config() == config


def test_dropout_follows_training_flag():
    dec = VQGANDecoder(**dict(TINY, dropout=0.5))
    z = (
        np.random.default_rng(4)
        .standard_normal((2, 16, 16, 8))
        .astype("float32")
    )
    eval_out = to_np(dec(z))
    np.testing.assert_allclose(to_np(dec(z, training=False)), eval_out)
    assert np.abs(to_np(dec(z, training=True)) - eval_out).max() > 1e-4
    assert (
        np.abs(
            to_np(dec.features(z, training=True)) - to_np(dec.features(z))
        ).max()
        > 1e-4
    )


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        # In the decoder only ch * ch_mult[i] is normalised, not `ch`.
        ({"ch": 16, "ch_mult": (2, 3)}, "ch_mult"),
        ({"ch_mult": ()}, "ch_mult"),
        ({"resolution": 33}, "resolution"),
        ({"attn_resolutions": (8,)}, "attn_resolutions"),
        ({"out_channels": 0}, "out_channels"),
        ({"z_channels": -1}, "z_channels"),
        ({"num_res_blocks": 0}, "num_res_blocks"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_config_validation(kwargs, arg):
    with pytest.raises(ValueError, match=f"`{arg}`"):
        VQGANDecoder(**dict(TINY, **kwargs))


def test_ch_not_multiple_of_32_is_fine_in_decoder():
    dec = VQGANDecoder(**dict(TINY, ch=16, ch_mult=(2, 4)))
    assert tuple(dec(np.zeros((2, 16, 16, 8), "float32")).shape) == (
        2,
        32,
        32,
        3,
    )


def test_input_validation():
    dec = VQGANDecoder(**TINY)
    with pytest.raises(ValueError, match="`z` must be 4-D"):
        dec(np.zeros((16, 16, 8), "float32"))
    with pytest.raises(ValueError, match="`z_channels`=8"):
        dec(np.zeros((1, 16, 16, 4), "float32"))
    with pytest.raises(ValueError, match="`z_channels`=8"):
        dec.features(np.zeros((1, 16, 16, 4), "float32"))
    dec(np.zeros((2, 16, 16, 8), "float32"))
    with pytest.raises(ValueError, match="`z_channels`=8"):
        dec(np.zeros((1, 16, 16, 4), "float32"))
    with pytest.raises(ValueError, match="float"):
        dec(np.zeros((1, 16, 16, 8), "int32"))


def test_paper_f16_parameter_count():
    cfg = dict(TAMING_F16, out_channels=3)
    dec = VQGANDecoder(**cfg)
    dec.build((None, 16, 16, 256))  # shape-only build, no forward pass
    assert dec.compute_output_shape((None, 16, 16, 256)) == (None, 256, 256, 3)
    n = dec.count_params()
    assert n == expected_decoder_params(**cfg)
    assert n == 42_449_795
    # Encoder 29,298,176 + decoder + codebook 1024x256 + quant_conv and
    # post_quant_conv (1x1, 256->256) = 72.14M, taming's "72.1M".
    total = 29_298_176 + n + 1024 * 256 + 2 * (256 * 256 + 256)
    assert round(total / 1e6, 1) == 72.1


def test_mixed_bfloat16_builds_and_runs():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        dec = VQGANDecoder(**TINY)
        z = (
            np.random.default_rng(5)
            .standard_normal((2, 16, 16, 8))
            .astype("float32")
        )
        x = dec(z)
        h = dec.features(z)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(x.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(h.dtype) == "bfloat16"
    assert all(
        keras.backend.standardize_dtype(v.dtype) == "float32"
        for v in dec.weights
    )
    assert np.all(np.isfinite(to_np(x)))
    assert tuple(x.shape) == (2, 32, 32, 3)

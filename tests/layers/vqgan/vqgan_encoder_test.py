"""Tests for `VQGANEncoder`."""


import keras
import numpy as np
import pytest

from keras_lgvq.layers.vqgan.vqgan_blocks import AttentionBlock
from keras_lgvq.layers.vqgan.vqgan_encoder import VQGANEncoder

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

TINY = dict(TINY_CODER, in_channels=3)

# ---------------------------------------------------- independent numpy model


def np_encoder(x, w, cfg):
    """Taming `Encoder.forward`, written from the spec (§1.1)."""
    h = np_conv(x, w["conv_in/kernel"], w["conv_in/bias"])
    res = cfg["resolution"]
    levels = len(cfg["ch_mult"])
    for i in range(levels):
        for j in range(cfg["num_res_blocks"]):
            h = np_resnet_block(h, w, f"down_{i}_block_{j}/")
            if res in cfg["attn_resolutions"]:
                h = np_attention(h, w, f"down_{i}_attn_{j}/")
        if i != levels - 1:
            p = f"down_{i}_downsample/conv"
            h = np_conv(
                h, w[p + "/kernel"], w[p + "/bias"], stride=2, pad=(0, 1, 0, 1)
            )
            res //= 2
    h = np_resnet_block(h, w, "mid_block_1/")
    h = np_attention(h, w, "mid_attn_1/")
    h = np_resnet_block(h, w, "mid_block_2/")
    h = np_swish(np_norm(h, w, "norm_out"))
    return np_conv(h, w["conv_out/kernel"], w["conv_out/bias"])


def expected_encoder_params(
    resolution,
    in_channels,
    ch,
    ch_mult,
    num_res_blocks,
    attn_resolutions,
    z_channels,
):
    total = conv_params(3, in_channels, ch)
    block_in, res = ch, resolution
    for i, m in enumerate(ch_mult):
        for _ in range(num_res_blocks):
            total += res_params(block_in, ch * m)
            block_in = ch * m
            if res in attn_resolutions:
                total += attn_params(block_in)
        if i != len(ch_mult) - 1:
            total += conv_params(3, block_in, block_in)
            res //= 2
    total += 2 * res_params(block_in, block_in) + attn_params(block_in)
    return total + 2 * block_in + conv_params(3, block_in, z_channels)


# --------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "ch_mult,size,attn,num_res_blocks",
    [
        ((1, 2), 32, (16,), 1),
        ((1, 2), 32, (), 2),
        ((1, 1, 2), 64, (32, 16), 1),
        ((1, 2, 2, 4), 64, (), 1),
    ],
)
def test_output_shape_and_structure(ch_mult, size, attn, num_res_blocks):
    cfg = dict(
        TINY,
        resolution=size,
        ch_mult=ch_mult,
        attn_resolutions=attn,
        num_res_blocks=num_res_blocks,
    )
    enc = VQGANEncoder(**cfg)
    x = (
        np.random.default_rng(0)
        .uniform(-1, 1, (2, size, size, 3))
        .astype("float32")
    )
    z = enc(x)
    f = 2 ** (len(ch_mult) - 1)
    assert tuple(z.shape) == (2, size // f, size // f, 8)
    assert enc.compute_output_shape(x.shape) == (2, size // f, size // f, 8)
    assert np.all(np.isfinite(to_np(z)))
    # Attention after each res block at the listed levels, plus mid_attn_1.
    n_attn = sum(isinstance(layer, AttentionBlock) for layer in enc.body)
    reached = [size // 2**i for i in range(len(ch_mult))]
    assert n_attn == 1 + num_res_blocks * sum(r in attn for r in reached)
    assert enc.count_params() == expected_encoder_params(
        size, 3, 32, ch_mult, num_res_blocks, attn, 8
    )


def test_matches_numpy_reference():
    cfg = dict(
        TINY, ch_mult=(1, 2, 2), attn_resolutions=(16,), num_res_blocks=2
    )
    enc = VQGANEncoder(**cfg, name="enc")
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    enc.build(x.shape)
    randomize_norms(enc, rng)
    w = {v.path[len("enc/") :]: to_np(v) for v in enc.weights}
    expected = np_encoder(x.astype("float64"), w, cfg)
    got = to_np(enc(x))
    np.testing.assert_allclose(
        got, expected, atol=1e-3 * np.abs(expected).max()
    )


def test_variable_paths_are_stable():
    enc = VQGANEncoder(**TINY, name="enc")
    enc.build((None, 32, 32, 3))
    paths = [v.path for v in enc.weights]
    assert len(paths) == len(set(paths))
    for p in [
        "enc/conv_in/kernel",
        "enc/down_0_block_0/conv1/kernel",
        "enc/down_0_downsample/conv/kernel",
        "enc/down_1_block_0/nin_shortcut/kernel",
        "enc/down_1_attn_0/proj_out/bias",
        "enc/mid_block_1/norm2/gamma",
        "enc/mid_attn_1/q/kernel",
        "enc/mid_block_2/conv2/bias",
        "enc/norm_out/beta",
        "enc/conv_out/kernel",
    ]:
        assert p in paths, p
    assert paths[:2] == ["enc/conv_in/kernel", "enc/conv_in/bias"]
    assert paths[-2:] == ["enc/conv_out/kernel", "enc/conv_out/bias"]


def test_config_round_trip():
    enc = VQGANEncoder(**dict(TINY, dropout=0.1), name="enc")
    x = (
        np.random.default_rng(2)
        .uniform(-1, 1, (2, 32, 32, 3))
        .astype("float32")
    )
    y = to_np(enc(x))
    config = enc.get_config()
    for key, value in TINY.items():
        if key != "dropout":
            assert config[key] == value, key
    assert config["dropout"] == 0.1
    restored = VQGANEncoder.from_config(config)
    restored.build(x.shape)
    restored.set_weights(enc.get_weights())
    np.testing.assert_allclose(to_np(restored(x)), y, atol=1e-5)
    # Registered: generic (de)serialisation finds the class.
    again = keras.layers.deserialize(keras.layers.serialize(enc))
    assert type(again) is VQGANEncoder and again.get_config() == config


def test_dropout_follows_training_flag():
    enc = VQGANEncoder(**dict(TINY, dropout=0.5))
    x = (
        np.random.default_rng(3)
        .uniform(-1, 1, (2, 32, 32, 3))
        .astype("float32")
    )
    eval_out = to_np(enc(x))
    np.testing.assert_allclose(to_np(enc(x, training=False)), eval_out)
    assert np.abs(to_np(enc(x, training=True)) - eval_out).max() > 1e-4


def test_functional_with_unknown_spatial_size():
    enc = VQGANEncoder(**TINY)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, enc(inputs))
    x = (
        np.random.default_rng(4)
        .uniform(-1, 1, (1, 32, 48, 3))
        .astype("float32")
    )
    out = model.predict(x, verbose=0)
    assert out.shape == (1, 16, 24, 8)
    np.testing.assert_allclose(out, to_np(enc(x)), atol=1e-4)


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        # conv_in gives `ch` channels, which the first GroupNorm sees.
        ({"ch": 40}, "ch"),
        ({"ch": 16, "ch_mult": (2, 4)}, "ch"),
        ({"ch_mult": ()}, "ch_mult"),
        ({"ch_mult": (1, 1.5)}, "ch_mult"),
        ({"resolution": 31}, "resolution"),
        ({"attn_resolutions": (8,)}, "attn_resolutions"),
        ({"attn_resolutions": (64,)}, "attn_resolutions"),
        ({"in_channels": 0}, "in_channels"),
        ({"z_channels": 0}, "z_channels"),
        ({"num_res_blocks": 0}, "num_res_blocks"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_config_validation(kwargs, arg):
    with pytest.raises(ValueError, match=f"`{arg}`"):
        VQGANEncoder(**dict(TINY, **kwargs))


def test_input_validation():
    enc = VQGANEncoder(**TINY)
    with pytest.raises(ValueError, match="`inputs` must be 4-D"):
        enc(np.zeros((32, 32, 3), "float32"))
    with pytest.raises(ValueError, match="`in_channels`=3"):
        enc(np.zeros((1, 32, 32, 4), "float32"))
    with pytest.raises(
        ValueError, match="divisible by the downsampling factor 2"
    ):
        enc(np.zeros((1, 32, 31, 3), "float32"))
    enc(np.zeros((2, 32, 32, 3), "float32"))
    # Still checked once the layer is built.
    with pytest.raises(
        ValueError, match="divisible by the downsampling factor 2"
    ):
        enc(np.zeros((1, 31, 32, 3), "float32"))
    with pytest.raises(ValueError, match="`in_channels`=3"):
        enc(np.zeros((1, 32, 32, 1), "float32"))
    with pytest.raises(ValueError, match="float"):
        VQGANEncoder(**TINY)(np.zeros((1, 32, 32, 3), "int32"))


def test_paper_f16_parameter_count():
    cfg = dict(TAMING_F16, in_channels=3)
    enc = VQGANEncoder(**cfg)
    enc.build((None, 256, 256, 3))  # shape-only build, no forward pass
    assert enc.compute_output_shape((None, 256, 256, 3)) == (None, 16, 16, 256)
    n = enc.count_params()
    assert n == expected_encoder_params(**cfg)
    assert n == 29_298_176


def test_mixed_bfloat16_builds_and_runs():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        enc = VQGANEncoder(**TINY)
        x = (
            np.random.default_rng(5)
            .uniform(-1, 1, (2, 32, 32, 3))
            .astype("float32")
        )
        z = enc(x)
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(z.dtype) == "bfloat16"
    assert all(
        keras.backend.standardize_dtype(v.dtype) == "float32"
        for v in enc.weights
    )
    assert np.all(np.isfinite(to_np(z)))
    assert tuple(z.shape) == (2, 16, 16, 8)

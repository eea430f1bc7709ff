"""Tests for the VQGAN building blocks against numpy references."""

import math

import keras
import numpy as np
import pytest

from keras_lgvq.layers.vqgan.vqgan_blocks import AttentionBlock
from keras_lgvq.layers.vqgan.vqgan_blocks import Downsample
from keras_lgvq.layers.vqgan.vqgan_blocks import ResnetBlock
from keras_lgvq.layers.vqgan.vqgan_blocks import TorchBiasUniform
from keras_lgvq.layers.vqgan.vqgan_blocks import Upsample
from keras_lgvq.layers.vqgan.vqgan_blocks import check_vqgan_config
from keras_lgvq.layers.vqgan.vqgan_blocks import group_norm
from keras_lgvq.layers.vqgan.vqgan_blocks import torch_conv2d

from tests.layers.vqgan_numpy_reference import np_attention  # noqa: E402
from tests.layers.vqgan_numpy_reference import np_conv  # noqa: E402
from tests.layers.vqgan_numpy_reference import np_group_norm  # noqa: E402
from tests.layers.vqgan_numpy_reference import np_resnet_block  # noqa: E402
from tests.layers.vqgan_numpy_reference import randomize_norms  # noqa: E402
from tests.layers.vqgan_numpy_reference import to_np  # noqa: E402
from tests.layers.vqgan_numpy_reference import weights_of  # noqa: E402


# --------------------------------------------------------------------- tests


def test_torch_bias_uniform_bounds_and_config():
    init = TorchBiasUniform(fan_in=25, seed=3)
    values = to_np(init((4000,)))
    assert np.all(np.abs(values) <= 0.2 + 1e-7)
    # Uniform on [-0.2, 0.2] fills its range and has std 0.2 / sqrt(3).
    assert values.max() > 0.19 and values.min() < -0.19
    np.testing.assert_allclose(values.std(), 0.2 / math.sqrt(3), rtol=0.05)
    config = keras.initializers.serialize(init)
    restored = keras.initializers.deserialize(config)
    assert isinstance(restored, TorchBiasUniform)
    assert restored.fan_in == 25
    np.testing.assert_allclose(to_np(restored((4000,))), values)
    with pytest.raises(ValueError, match="fan_in"):
        TorchBiasUniform(fan_in=0)


def test_torch_conv2d_matches_pytorch_default_bounds():
    conv = torch_conv2d(64, 3, in_channels=48)
    conv.build((None, 8, 8, 48))
    bound = 1.0 / math.sqrt(3 * 3 * 48)
    kernel = to_np(conv.kernel)
    bias = to_np(conv.bias)
    assert np.all(np.abs(kernel) <= bound + 1e-7)
    np.testing.assert_allclose(kernel.std(), bound / math.sqrt(3), rtol=0.03)
    assert np.all(np.abs(bias) <= bound + 1e-7)
    assert np.abs(bias).max() > 0.5 * bound  # not zero-initialised


def test_group_norm_helper():
    norm = group_norm(name="n")
    assert norm.groups == 32 and norm.epsilon == 1e-6
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 3, 64)).astype("float32")
    norm.build(x.shape)
    randomize_norms(norm, rng)
    w = {k.split("/")[-1]: v for k, v in weights_of(norm).items()}
    np.testing.assert_allclose(
        to_np(norm(x)), np_group_norm(x, w["gamma"], w["beta"]), atol=1e-4
    )


@pytest.mark.parametrize("filters", [None, 32, 64])
def test_resnet_block_matches_numpy(filters):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6, 32)).astype("float32")
    block = ResnetBlock(filters, name="res")
    block.build(x.shape)
    randomize_norms(block, rng)
    w = weights_of(block)
    assert ("nin_shortcut/kernel" in w) == (filters == 64)
    out = to_np(block(x))
    assert out.shape == (2, 5, 6, filters or 32)
    np.testing.assert_allclose(out, np_resnet_block(x, w), atol=2e-4)


def test_resnet_block_dropout_follows_training_flag():
    x = (
        np.random.default_rng(2)
        .standard_normal((2, 4, 4, 32))
        .astype("float32")
    )
    block = ResnetBlock(32, dropout=0.5)
    eval_1 = to_np(block(x, training=False))
    eval_2 = to_np(block(x))
    train = to_np(block(x, training=True))
    np.testing.assert_allclose(eval_1, eval_2)
    assert np.abs(train - eval_1).max() > 1e-3


def test_attention_block_matches_numpy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 32)).astype("float32")
    block = AttentionBlock(name="attn")
    block.build(x.shape)
    randomize_norms(block, rng)
    # Larger q/k weights make the softmax far from uniform, so a wrong
    # softmax axis or scale would show.
    for v in (block.q.kernel, block.k.kernel):
        v.assign(rng.standard_normal(v.shape).astype("float32") * 0.5)
    w = weights_of(block)
    assert sorted(w) == sorted(
        f"{n}/{p}"
        for n, p in [("norm", "gamma"), ("norm", "beta")]
        + [
            (c, t)
            for c in ("q", "k", "v", "proj_out")
            for t in ("kernel", "bias")
        ]
    )
    np.testing.assert_allclose(to_np(block(x)), np_attention(x, w), atol=2e-4)


@pytest.mark.parametrize("hw", [(6, 8), (7, 5)])
def test_downsample_pads_bottom_right_only(hw):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2,) + hw + (8,)).astype("float32")
    down = Downsample(name="down")
    out = to_np(down(x))
    assert out.shape == (2, hw[0] // 2, hw[1] // 2, 8)
    kernel, bias = to_np(down.conv.kernel), to_np(down.conv.bias)
    expected = np_conv(x, kernel, bias, stride=2, pad=(0, 1, 0, 1))
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # The mirror-image padding (top/left) gives a different result, so the
    # check above really pins the asymmetry.
    mirrored = np_conv(x, kernel, bias, stride=2, pad=(1, 0, 1, 0))
    assert np.abs(out - mirrored).max() > 1e-2


def test_upsample_matches_numpy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4, 8)).astype("float32")
    up = Upsample(name="up")
    out = to_np(up(x))
    assert out.shape == (2, 6, 8, 8)
    nearest = x.repeat(2, axis=1).repeat(2, axis=2)
    expected = np_conv(nearest, to_np(up.conv.kernel), to_np(up.conv.bias))
    np.testing.assert_allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize(
    "layer_cls,kwargs",
    [
        (ResnetBlock, {"filters": 64, "dropout": 0.1}),
        (AttentionBlock, {}),
        (Downsample, {}),
        (Upsample, {}),
    ],
)
def test_blocks_config_round_trip(layer_cls, kwargs):
    x = (
        np.random.default_rng(6)
        .standard_normal((1, 4, 4, 32))
        .astype("float32")
    )
    layer = layer_cls(name="blk", **kwargs)
    y = to_np(layer(x))
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is layer_cls
    assert restored.get_config() == layer.get_config()
    assert restored.built  # rebuilt from the serialized build config
    restored.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_np(restored(x)), y, atol=1e-6)
    assert layer.compute_output_shape(x.shape) == y.shape


def test_block_validation():
    with pytest.raises(ValueError, match="inputs"):
        ResnetBlock(32)(np.zeros((2, 4, 32), "float32"))
    with pytest.raises(ValueError, match="groups"):
        ResnetBlock(64)(np.zeros((1, 4, 4, 48), "float32"))
    with pytest.raises(ValueError, match="filters"):
        ResnetBlock(48)(np.zeros((1, 4, 4, 32), "float32"))
    with pytest.raises(ValueError, match="filters"):
        ResnetBlock(0)
    with pytest.raises(ValueError, match="dropout"):
        ResnetBlock(32, dropout=1.0)
    with pytest.raises(ValueError, match="groups"):
        AttentionBlock()(np.zeros((1, 2, 2, 16), "float32"))
    with pytest.raises(ValueError, match="inputs"):
        Downsample()(np.zeros((4, 4, 8), "float32"))
    with pytest.raises(ValueError, match="inputs"):
        Upsample().build((1, 4, 4, None))


def test_sublayer_paths_follow_taming_names():
    block = ResnetBlock(64, name="blk")
    block.build((None, 4, 4, 32))
    assert sorted(v.path for v in block.weights) == sorted(
        f"blk/{n}/{p}"
        for n, p in [
            ("norm1", "gamma"),
            ("norm1", "beta"),
            ("conv1", "kernel"),
            ("conv1", "bias"),
            ("norm2", "gamma"),
            ("norm2", "beta"),
            ("conv2", "kernel"),
            ("conv2", "bias"),
            ("nin_shortcut", "kernel"),
            ("nin_shortcut", "bias"),
        ]
    )


@pytest.mark.parametrize(
    "kwargs,arg",
    [
        ({"ch_mult": ()}, "ch_mult"),
        ({"ch_mult": (1, 0)}, "ch_mult"),
        ({"ch": 48}, "ch"),
        ({"ch": 32, "ch_mult": (1, 1.5)}, "ch_mult"),
        ({"ch": 16, "ch_mult": (2, 4)}, "ch"),
        ({"resolution": 34}, "resolution"),
        ({"attn_resolutions": (12,)}, "attn_resolutions"),
        ({"num_res_blocks": 0}, "num_res_blocks"),
        ({"z_channels": 0}, "z_channels"),
        ({"dropout": -0.1}, "dropout"),
        ({"image_channels": 0}, "in_channels"),
    ],
)
def test_check_vqgan_config_errors(kwargs, arg):
    config = dict(
        resolution=32,
        ch=32,
        ch_mult=(1, 2, 2),
        num_res_blocks=1,
        attn_resolutions=(16,),
        z_channels=8,
        dropout=0.0,
        image_channels=3,
        image_channels_name="in_channels",
    )
    config.update(kwargs)
    with pytest.raises(ValueError, match=f"`{arg}`"):
        check_vqgan_config(**config)


def test_check_vqgan_config_ok():
    assert check_vqgan_config(
        256, 128, [1, 1, 2, 2, 4], 2, [16], 256, 0.0, 3, "in_channels"
    ) == ((1, 1, 2, 2, 4), (16,), 16)
    # `ch` itself is only normalised in the encoder.
    assert check_vqgan_config(
        32, 16, (2, 4), 1, (), 8, 0.0, 3, "out_channels", check_ch=False
    ) == ((2, 4), (), 2)

"""ViT building blocks of LQAE against independent numpy references."""

import keras
import numpy as np
import pytest

from keras_lgvq.layers.vit import GLUFeedForward
from keras_lgvq.layers.vit import LQAETransformerBlock
from keras_lgvq.layers.vit import PatchEmbedding
from keras_lgvq.layers.vit import PositionEmbedding2D
from keras_lgvq.layers.vit import StandardTransformerBlock
from keras_lgvq.layers.vit import TransformerStack
from keras_lgvq.layers.vit import Unpatchify
from keras_lgvq.layers.vit import ViTDecoder
from keras_lgvq.layers.vit import ViTEncoder

ATOL = 2e-5


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")


def _randomize(layer, seed=0):
    """Non-trivial values everywhere (LayerNorm gains / offsets included)."""
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        shape = tuple(v.shape)
        if v.name == "gamma":
            value = 1.0 + 0.2 * rng.standard_normal(shape)
        else:
            value = 0.3 * rng.standard_normal(shape)
        v.assign(value.astype("float32"))


def _layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _depthwise3x3(x, kernel):
    # kernel: (3, 3, C, 1), "same" padding.
    b, h, w, c = x.shape
    padded = np.zeros((b, h + 2, w + 2, c))
    padded[:, 1:-1, 1:-1] = x
    out = np.zeros_like(x)
    for di in range(3):
        for dj in range(3):
            out += padded[:, di : di + h, dj : dj + w] * kernel[di, dj, :, 0]
    return out


def _glu_reference(layer, x):
    w = {v.path.split("/")[-2] + "/" + v.name: _np(v) for v in layer.weights}
    y = _layer_norm(x, w["norm_in/gamma"], w["norm_in/beta"], 1e-5)
    hidden = _gelu_tanh(y @ w["fc1/kernel"]) * (y @ w["fc2/kernel"])
    hidden = _depthwise3x3(hidden, w["depthwise_conv/kernel"])
    hidden = _layer_norm(hidden, w["norm_mid/gamma"], w["norm_mid/beta"], 1e-5)
    return hidden @ w["fc_out/kernel"]


def _attention_reference(attention, x, num_heads):
    # x: (B, L, D); keras MultiHeadAttention kernels, no biases.
    wq = _np(attention.query_dense.kernel)  # (D, H, hd)
    wk = _np(attention.key_dense.kernel)
    wv = _np(attention.value_dense.kernel)
    wo = _np(attention.output_dense.kernel)  # (H, hd, D)
    q = np.einsum("bld,dhk->bhlk", x, wq)
    k = np.einsum("bld,dhk->bhlk", x, wk)
    v = np.einsum("bld,dhk->bhlk", x, wv)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    probs = scores / scores.sum(-1, keepdims=True)
    out = probs @ v  # (B, H, L, hd)
    return np.einsum("bhlk,hkd->bld", out, wo)


def test_patch_embedding_matches_numpy():
    layer = PatchEmbedding(hidden_dim=6, patch_size=4)
    x = np.random.default_rng(0).normal(size=(2, 8, 12, 3)).astype("float32")
    out = _np(layer(x))
    kernel = _np(layer.projection.kernel)  # (4, 4, 3, 6)
    assert layer.projection.bias is None  # official: bias-free
    ref = np.zeros((2, 2, 3, 6))
    for i in range(2):
        for j in range(3):
            patch = x[:, i * 4 : i * 4 + 4, j * 4 : j * 4 + 4, :]
            ref[:, i, j] = np.einsum("buvc,uvcd->bd", patch, kernel)
    np.testing.assert_allclose(out, ref, atol=ATOL)
    with pytest.raises(ValueError, match="multiple of `patch_size`=4"):
        layer(np.zeros((1, 10, 12, 3), "float32"))


def test_unpatchify_matches_numpy():
    layer = Unpatchify(out_channels=3, patch_size=4)
    x = np.random.default_rng(1).normal(size=(2, 2, 3, 5)).astype("float32")
    out = _np(layer(x))
    _randomize(layer)
    out = _np(layer(x))
    kernel = _np(layer.projection.kernel)  # (p, p, out, in)
    bias = _np(layer.projection.bias)
    ref = np.einsum("bijc,uvoc->biujvo", x, kernel).reshape(2, 8, 12, 3)
    np.testing.assert_allclose(out, ref + bias, atol=ATOL)


def test_position_embedding_adds_a_learned_grid():
    layer = PositionEmbedding2D(3, 4)
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5)).astype("float32")
    out = _np(layer(x))
    table = _np(layer.position_embedding)
    assert table.shape == (3, 4, 5)
    assert layer.position_embedding.name == "position_embedding"
    # N(0, 0.02) initialisation as the official `pos_embedding`.
    assert 0.005 < table.std() < 0.05
    np.testing.assert_allclose(out, x + table[None], atol=ATOL)
    with pytest.raises(ValueError, match=r"\(batch, 3, 4, hidden_dim\)"):
        layer(np.zeros((1, 4, 4, 5), "float32"))


def test_glu_feed_forward_matches_numpy():
    layer = GLUFeedForward(hidden_dim=8, intermediate_dim=12)
    x = np.random.default_rng(3).normal(size=(2, 3, 4, 8)).astype("float32")
    layer(x)
    _randomize(layer)
    # Every Dense and the depthwise conv are bias-free.
    assert not [v for v in layer.weights if v.name == "bias"]
    np.testing.assert_allclose(
        _np(layer(x)), _glu_reference(layer, x.astype("float64")), atol=1e-4
    )


def test_lqae_block_matches_numpy():
    block = LQAETransformerBlock(hidden_dim=8, num_heads=2, intermediate_dim=12)
    x = np.random.default_rng(4).normal(size=(2, 3, 3, 8)).astype("float32")
    block(x)
    _randomize(block)
    assert not [v for v in block.weights if v.name == "bias"]
    xd = x.astype("float64")
    y = _layer_norm(
        xd, _np(block.norm_pre.gamma), _np(block.norm_pre.beta), 1e-5
    ).reshape(2, 9, 8)
    attended = _attention_reference(block.attention, y, 2)
    attended = _layer_norm(
        attended, _np(block.norm_post.gamma), _np(block.norm_post.beta), 1e-5
    ).reshape(2, 3, 3, 8)
    h = xd + attended
    ref = h + _glu_reference(block.feed_forward, h)
    np.testing.assert_allclose(_np(block(x)), ref, atol=1e-4)


def test_standard_block_is_keras_hub_encoder_on_the_flat_grid():
    block = StandardTransformerBlock(
        hidden_dim=8, num_heads=2, intermediate_dim=16
    )
    x = np.random.default_rng(5).normal(size=(2, 3, 3, 8)).astype("float32")
    out = _np(block(x))
    flat = _np(block.encoder(x.reshape(2, 9, 8)))
    np.testing.assert_allclose(out, flat.reshape(2, 3, 3, 8), atol=ATOL)
    assert block.encoder.normalize_first


def test_vit_base_block_parameter_count_matches_the_official_block():
    # lqae-spec §6: 4 D^2 attention + 3 D F GLU + 9 F depthwise, plus norms.
    d, f = 768, 3072
    block = LQAETransformerBlock(hidden_dim=d, num_heads=12, intermediate_dim=f)
    block.build((None, 2, 2, d))
    expected = 4 * d * d + 3 * d * f + 9 * f + 3 * 2 * d + 2 * f
    assert block.count_params() == expected


@pytest.mark.parametrize("block_type", ["lqae", "standard"])
def test_encoder_decoder_shapes_layer_outputs_and_config(block_type):
    encoder = ViTEncoder(32, 8, 16, 2, 2, 32, block_type=block_type)
    decoder = ViTDecoder(32, 8, 16, 1, 2, 32, block_type=block_type)
    x = np.random.default_rng(6).uniform(size=(2, 32, 32, 3)).astype("float32")
    features, layers = encoder(x, return_layer_outputs=True)
    assert tuple(features.shape) == (2, 4, 4, 16)
    assert len(layers) == 2
    np.testing.assert_allclose(_np(layers[-1]), _np(features))
    assert tuple(decoder(features).shape) == (2, 32, 32, 3)
    for layer in (encoder, decoder):
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    stack = encoder.transformer
    assert isinstance(stack, TransformerStack)
    assert stack.block_type == block_type


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="multiple of `patch_size`"):
        ViTEncoder(30, 8, 16, 1, 2, 32)
    with pytest.raises(ValueError, match="divisible by `num_heads`"):
        LQAETransformerBlock(hidden_dim=10, num_heads=3, intermediate_dim=8)
    with pytest.raises(ValueError, match="`block_type` must be one of"):
        ViTDecoder(32, 8, 16, 1, 2, 32, block_type="vanilla")
    encoder = ViTEncoder(32, 8, 16, 1, 2, 32)
    with pytest.raises(ValueError, match=r"\(batch, 32, 32, channels\)"):
        encoder(np.zeros((1, 64, 64, 3), "float32"))
    decoder = ViTDecoder(32, 8, 16, 1, 2, 32)
    with pytest.raises(ValueError, match=r"\(batch, 4, 4, 16\)"):
        decoder(np.zeros((1, 8, 8, 16), "float32"))


import keras
import numpy as np
import pytest

from keras_lgvq.layers.guidance.code_transformer import CodeTransformer

from tests.layers.grad_utils import to_numpy  # noqa: E402


def np_layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def np_mha(x, w, num_heads):
    """PyTorch `nn.MultiheadAttention` semantics with Keras weight layout."""
    q = np.einsum("btd,dhk->bthk", x, w["q_k"]) + w["q_b"]
    k = np.einsum("btd,dhk->bthk", x, w["k_k"]) + w["k_b"]
    v = np.einsum("btd,dhk->bthk", x, w["v_k"]) + w["v_b"]
    head_dim = q.shape[-1]
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(head_dim)
    att = np_softmax(scores)
    out = np.einsum("bhts,bshk->bthk", att, v)
    return np.einsum("bthk,hkd->btd", out, w["o_k"]) + w["o_b"]


def np_code_transformer(layer, quantized):
    """Independent numpy forward of the CLIP-style code ViT."""
    x = quantized.reshape(quantized.shape[0], -1, quantized.shape[-1])
    b = x.shape[0]
    cls = to_numpy(layer.class_embedding)
    x = np.concatenate([np.tile(cls[None, None], (b, 1, 1)), x], axis=1)
    x = x + to_numpy(layer.positional_embedding)[None]
    eps = 1e-5
    ln = lambda norm, h: np_layer_norm(  # noqa: E731
        h, to_numpy(norm.gamma), to_numpy(norm.beta), eps
    )
    x = ln(layer.ln_pre, x)
    for block in layer.blocks:
        attn = block.attn
        w = {
            "q_k": to_numpy(attn.query_dense.kernel),
            "q_b": to_numpy(attn.query_dense.bias),
            "k_k": to_numpy(attn.key_dense.kernel),
            "k_b": to_numpy(attn.key_dense.bias),
            "v_k": to_numpy(attn.value_dense.kernel),
            "v_b": to_numpy(attn.value_dense.bias),
            "o_k": to_numpy(attn.output_dense.kernel),
            "o_b": to_numpy(attn.output_dense.bias),
        }
        x = x + np_mha(ln(block.ln_1, x), w, layer.num_heads)
        h = ln(block.ln_2, x) @ to_numpy(block.c_fc.kernel) + to_numpy(
            block.c_fc.bias
        )
        h = h * (1.0 / (1.0 + np.exp(-1.702 * h)))  # QuickGELU
        x = x + h @ to_numpy(block.c_proj.kernel) + to_numpy(block.c_proj.bias)
    x = ln(layer.ln_post, x)
    return x @ to_numpy(layer.proj)


def randomize_weights(layer, rng, scale=0.5):
    layer.set_weights(
        [
            rng.normal(scale=scale, size=w.shape).astype("float32")
            for w in layer.get_weights()
        ]
    )


def test_output_shapes_and_row_major_flatten():
    layer = CodeTransformer(width=8, output_dim=6, num_tokens=6)
    grid = np.random.normal(size=(2, 2, 3, 8)).astype("float32")
    out_grid = to_numpy(layer(grid))
    out_tokens = to_numpy(layer(grid.reshape(2, 6, 8)))
    assert out_grid.shape == (2, 7, 6)
    np.testing.assert_allclose(out_grid, out_tokens, atol=1e-6)
    assert layer.compute_output_shape((2, 2, 3, 8)) == (2, 7, 6)


@pytest.mark.parametrize("num_heads", [1, 2])
def test_forward_matches_numpy(num_heads):
    rng = np.random.default_rng(1)
    layer = CodeTransformer(
        width=8, output_dim=6, num_tokens=6, num_layers=2, num_heads=num_heads
    )
    grid = rng.normal(size=(3, 2, 3, 8)).astype("float32")
    layer(grid)
    # Random LayerNorm/bias values too, so every parameter is exercised.
    randomize_weights(layer, rng)
    expected = np_code_transformer(layer, grid)
    np.testing.assert_allclose(to_numpy(layer(grid)), expected, atol=1e-5)


def test_initialisation_follows_clip():
    width, layers = 64, 2
    layer = CodeTransformer(
        width=width, output_dim=32, num_tokens=64, num_layers=layers
    )
    layer.build((None, 64, width))
    proj_std = width**-0.5 * (2 * layers) ** -0.5

    def std(v):
        return float(np.std(to_numpy(v)))

    assert std(layer.class_embedding) == pytest.approx(0.01, rel=0.3)
    assert std(layer.positional_embedding) == pytest.approx(0.01, rel=0.05)
    assert std(layer.proj) == pytest.approx(0.01, rel=0.05)
    block = layer.blocks[0]
    assert std(block.attn.query_dense.kernel) == pytest.approx(
        width**-0.5, rel=0.05
    )
    assert std(block.attn.output_dense.kernel) == pytest.approx(
        proj_std, rel=0.05
    )
    assert std(block.c_fc.kernel) == pytest.approx(
        (2 * width) ** -0.5, rel=0.05
    )
    assert std(block.c_proj.kernel) == pytest.approx(proj_std, rel=0.05)
    # Attention biases are zero; MLP biases U(+-1/sqrt(fan_in)).
    for dense in (block.attn.query_dense, block.attn.output_dense):
        assert not np.any(to_numpy(dense.bias))
    bias = to_numpy(block.c_fc.bias)
    assert np.abs(bias).max() <= width**-0.5 and np.any(bias)
    # q, k and v are drawn independently.
    assert not np.allclose(
        to_numpy(block.attn.query_dense.kernel),
        to_numpy(block.attn.key_dense.kernel),
    )


def test_layer_norm_epsilon():
    layer = CodeTransformer(width=8, output_dim=4, num_tokens=4)
    assert layer.ln_pre.epsilon == 1e-5
    assert layer.ln_post.epsilon == 1e-5
    assert layer.blocks[0].ln_1.epsilon == 1e-5


def test_get_config_round_trip():
    layer = CodeTransformer(
        width=8,
        output_dim=6,
        num_tokens=4,
        num_layers=1,
        num_heads=2,
        mlp_ratio=2,
        name="ct",
    )
    x = np.random.normal(size=(2, 4, 8)).astype("float32")
    y = to_numpy(layer(x))
    config = layer.get_config()
    clone = CodeTransformer.from_config(config)
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x)), y, atol=1e-6)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert isinstance(restored, CodeTransformer)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="divisible"):
        CodeTransformer(width=6, output_dim=4, num_tokens=4, num_heads=4)
    with pytest.raises(ValueError, match="num_tokens"):
        CodeTransformer(width=6, output_dim=4, num_tokens=0)
    layer = CodeTransformer(width=8, output_dim=4, num_tokens=4)
    with pytest.raises(ValueError, match="width=8"):
        layer(np.zeros((1, 4, 6), "float32"))
    with pytest.raises(ValueError, match="num_tokens=4"):
        layer(np.zeros((1, 3, 3, 8), "float32"))


import keras
import numpy as np
import pytest
from scipy.special import erf

from keras_lgvq.layers.guidance.relationship_alignment import RelationshipAlignment

from tests.layers.grad_utils import input_grads  # noqa: E402
from tests.layers.grad_utils import is_zero_grad  # noqa: E402
from tests.layers.grad_utils import to_numpy  # noqa: E402

B, N, L, DC, DT = 3, 6, 7, 5, 8


def normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_ras(layer, codes, vision, text, padding, use_value=True):
    """The official `wrsrelation_sup` in numpy (spec §5), loop gather."""
    codes, vision, text = (a.astype("float64") for a in (codes, vision, text))
    h = codes @ to_numpy(layer.dense.kernel) + to_numpy(layer.dense.bias)
    h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
    mean = h.mean(-1, keepdims=True)
    var = ((h - mean) ** 2).mean(-1, keepdims=True)
    c = (h - mean) / np.sqrt(var + 1e-5) * to_numpy(
        layer.layer_norm.gamma
    ) + to_numpy(layer.layer_norm.beta)
    t, v = normalize(text), normalize(vision)
    s = np.einsum("bld,bnd->bln", t, v)
    idx, value = s.argmax(-1), s.max(-1)
    g = np.zeros((codes.shape[0], text.shape[1], c.shape[-1]))
    for b in range(codes.shape[0]):
        for k in range(text.shape[1]):
            g[b, k] = c[b, idx[b, k]]
    m = padding.astype("float64")[..., None]
    q = np.einsum("bld,bkd->blk", t * m, t * m)
    if use_value:
        g = g * value[..., None]
    g = normalize(g) * m
    p = np.einsum("bld,bkd->blk", g, g)
    return np.mean((p - q) ** 2)


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(B, N, DC)).astype("float32")
    # All visual tokens share a strong positive first coordinate ...
    vision = rng.normal(size=(B, N, DT)).astype("float32")
    vision[..., 0] = 5.0
    text = rng.normal(size=(B, L, DT)).astype("float32")
    # ... and some words a strong negative one: every cosine of those words
    # is negative, so their best match has value < 0 (a sign flip).
    text[:, 1::2, 0] = -8.0
    padding = np.arange(L)[None] < np.array([7, 4, 2])[:, None]
    return codes, vision, text, padding


def test_matches_numpy_with_padding_and_value_sign():
    codes, vision, text, padding = make_inputs()
    layer = RelationshipAlignment(DT)
    layer(codes, vision, text, padding)
    rng = np.random.default_rng(1)
    layer.set_weights(
        [
            rng.normal(size=w.shape).astype("float32")
            for w in layer.get_weights()
        ]
    )
    loss = to_numpy(layer(codes, vision, text, padding))
    expected = np_ras(layer, codes, vision, text, padding)
    np.testing.assert_allclose(loss, expected, atol=1e-5)
    # The inputs really exercise the sign of `value` and the padding.
    assert (
        abs(np_ras(layer, codes, vision, text, padding, False) - expected)
        > 1e-3
    )
    no_pad = np.ones_like(padding)
    assert abs(np_ras(layer, codes, vision, text, no_pad) - expected) > 1e-3


def test_padding_tokens_do_not_matter():
    codes, vision, text, padding = make_inputs(2)
    layer = RelationshipAlignment(DT)
    base = to_numpy(layer(codes, vision, text, padding))
    changed = text.copy()
    changed[~padding] = np.random.default_rng(3).normal(
        size=changed[~padding].shape
    )
    np.testing.assert_allclose(
        to_numpy(layer(codes, vision, changed, padding)), base, atol=1e-6
    )


def test_gradient_paths():
    codes, vision, text, padding = make_inputs(4)
    layer = RelationshipAlignment(DT)
    layer(codes, vision, text, padding)
    _, (g_codes, g_vision, g_text) = input_grads(
        lambda c, v, t: layer(c, v, t, padding), [codes, vision, text]
    )
    # Codes (the straight-through grid) get a gradient; the matching
    # (argmax and value) and the text side get none.
    assert not is_zero_grad(g_codes)
    assert is_zero_grad(g_vision)
    assert is_zero_grad(g_text)


def test_initialisation_and_config():
    layer = RelationshipAlignment(64)
    layer.build((None, 16, 128))
    assert float(np.std(to_numpy(layer.dense.kernel))) == pytest.approx(
        0.01, rel=0.05
    )
    assert layer.layer_norm.epsilon == 1e-5
    config = layer.get_config()
    assert RelationshipAlignment.from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert restored.hidden_dim == 64


def test_invalid_inputs():
    codes, vision, text, padding = make_inputs()
    layer = RelationshipAlignment(DT)
    with pytest.raises(ValueError, match="same number"):
        layer(codes[:, :4], vision, text, padding)
    with pytest.raises(ValueError, match="hidden_dim"):
        layer(codes, vision[..., :4], text, padding)
    with pytest.raises(ValueError, match="hidden_dim"):
        RelationshipAlignment(0)

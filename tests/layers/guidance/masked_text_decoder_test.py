
import keras
import numpy as np
import pytest
from scipy.special import erf
from scipy.stats import truncnorm

from keras_lgvq.layers.guidance.masked_text_decoder import MaskedTextDecoder

from tests.layers.grad_utils import to_numpy  # noqa: E402

B, L, D, V, M = 3, 8, 8, 13, 5


def np_layer_norm(x, norm, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * to_numpy(norm.gamma) + to_numpy(
        norm.beta
    )


def np_attention(query, memory, mha, key_mask=None):
    def proj(x, dense):
        return np.einsum("btd,dhk->bthk", x, to_numpy(dense.kernel)) + to_numpy(
            dense.bias
        )

    q, k, v = (
        proj(query, mha.query_dense),
        proj(memory, mha.key_dense),
        proj(memory, mha.value_dense),
    )
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(q.shape[-1])
    if key_mask is not None:
        scores = np.where(key_mask[:, None, None, :], scores, -1e9)
    scores = scores - scores.max(-1, keepdims=True)
    att = np.exp(scores)
    att /= att.sum(-1, keepdims=True)
    out = np.einsum("bhts,bshk->bthk", att, v)
    return np.einsum(
        "bthk,hkd->btd", out, to_numpy(mha.output_dense.kernel)
    ) + (to_numpy(mha.output_dense.bias))


def np_decoder(layer, features, padding, mask, memory, emb):
    """Independent numpy forward: mask vectors, post-LN layers, MLM head."""
    length = features.shape[1]
    mv = to_numpy(layer.mask_vectors)[:, :length]
    x = np.where(mask[..., None], mv, features) * padding[..., None]
    key_mask = padding if layer.self_attention_mask else None
    for dl in layer.decoder_layers:
        x = np_layer_norm(
            x + np_attention(x, x, dl.self_attention, key_mask), dl.norm1, 1e-12
        )
        x = np_layer_norm(
            x + np_attention(x, memory, dl.cross_attention), dl.norm2, 1e-12
        )
        h = np.maximum(
            x @ to_numpy(dl.linear1.kernel) + to_numpy(dl.linear1.bias), 0.0
        )
        h = h @ to_numpy(dl.linear2.kernel) + to_numpy(dl.linear2.bias)
        x = np_layer_norm(x + h, dl.norm3, 1e-12)
    head = layer.head
    h = x @ to_numpy(head.dense.kernel) + to_numpy(head.dense.bias)
    h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
    h = np_layer_norm(h, head.layer_norm, 1e-5)
    return h @ emb.T + to_numpy(head.bias)


def np_mtp_loss(logits, ids, mask, padding, eps=0.1):
    """Label-smoothed CE, sum(l * w) / (sum(w) + 5e-6)."""
    logits = logits.astype("float64")
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, ids[..., None], -1)[..., 0]
    per_token = (1 - eps) * nll + eps * (-logp.mean(-1))
    w = (mask & padding).astype("float64")
    return (per_token * w).sum() / (w.sum() + 5e-6)


def make_batch(seed=0, lengths=(8, 5, 3)):
    rng = np.random.default_rng(seed)
    padding = np.arange(L)[None] < np.array(lengths)[:, None]
    ids = rng.integers(1, V, size=(B, L)).astype("int32") * padding
    features = rng.normal(size=(B, L, D)).astype("float32")
    memory = rng.normal(size=(B, M, D)).astype("float32")
    emb = rng.normal(size=(V, D)).astype("float32")
    mask = (rng.random((B, L)) < 0.4) & padding
    mask[:, 0] = False
    return ids, padding, features, memory, emb, mask


def make_decoder(**kwargs):
    config = dict(
        hidden_dim=D,
        vocabulary_size=V,
        num_layers=2,
        num_heads=1,
        intermediate_dim=12,
        dropout=0.1,
        sequence_length=L,
        seed=0,
    )
    config.update(kwargs)
    return MaskedTextDecoder(**config)


def randomize(layer, rng):
    layer.set_weights(
        [
            rng.normal(scale=0.5, size=w.shape).astype("float32")
            for w in layer.get_weights()
        ]
    )


# --- mask sampling ---


def test_mask_ratio_distribution():
    decoder = make_decoder()
    ratios = to_numpy(decoder.sample_mask_ratio((20000,)))
    assert ratios.min() >= 0.1 and ratios.max() <= 0.3
    # N(0.5, 0.1) truncated to [0.1, 0.3]: mean 0.2629, rising density.
    reference = truncnorm(-4.0, -2.0, loc=0.5, scale=0.1)
    assert abs(ratios.mean() - 0.263) < 0.002
    assert abs(ratios.mean() - reference.mean()) < 0.002
    grid = np.linspace(0.1, 0.3, 41)
    empirical = (ratios[:, None] <= grid[None]).mean(0)
    assert np.abs(empirical - reference.cdf(grid)).max() < 0.02  # KS
    assert np.mean(ratios > 0.2) > 0.8


def test_sample_mask_statistics():
    decoder = make_decoder(sequence_length=12, seed=5)
    lengths = np.array([12, 2, 7, 3, 12, 9, 5, 10] * 4)
    padding = np.arange(12)[None] < lengths[:, None]
    ids = np.ones(padding.shape, "int32") * padding
    end = np.zeros_like(padding)
    end[np.arange(len(lengths)), lengths - 1] = True
    maskable = padding & ~end
    maskable[:, 0] = False
    fractions = []
    for _ in range(150):
        mask = to_numpy(decoder.sample_mask(ids, padding))
        assert mask.dtype == bool and mask.shape == padding.shape
        # Start, end and padding tokens are never masked.
        assert not np.any(mask & ~maskable)
        fractions.append(mask.sum() / maskable.sum())
    fractions = np.array(fractions)
    assert abs(fractions.mean() - 0.263) < 0.01
    assert fractions.max() < 0.45


def test_sample_mask_is_seeded():
    ids, padding = make_batch()[:2]
    a, b = make_decoder(seed=7), make_decoder(seed=7)
    m1, m2 = (
        to_numpy(a.sample_mask(ids, padding)),
        to_numpy(b.sample_mask(ids, padding)),
    )
    np.testing.assert_array_equal(m1, m2)
    draws = [to_numpy(a.sample_mask(ids, padding)) for _ in range(5)]
    assert any(not np.array_equal(m1, d) for d in draws)


# --- loss ---


def test_loss_matches_numpy():
    rng = np.random.default_rng(3)
    ids, padding, _, _, _, mask = make_batch(3)
    logits = rng.normal(scale=3.0, size=(B, L, V)).astype("float32")
    decoder = make_decoder()
    loss = to_numpy(decoder.loss(logits, ids, mask, padding))
    np.testing.assert_allclose(
        loss, np_mtp_loss(logits, ids, mask, padding), rtol=1e-5, atol=1e-5
    )
    # Masks at padding positions do not count.
    np.testing.assert_allclose(
        to_numpy(decoder.loss(logits, ids, mask | ~padding, padding)),
        loss,
        rtol=1e-6,
    )
    # eps = 0 is the plain cross-entropy; no masked token gives 0.
    plain = make_decoder(label_smoothing=0.0)
    np.testing.assert_allclose(
        to_numpy(plain.loss(logits, ids, mask, padding)),
        np_mtp_loss(logits, ids, mask, padding, eps=0.0),
        rtol=1e-5,
    )
    none = np.zeros_like(mask)
    assert float(to_numpy(decoder.loss(logits, ids, none, padding))) == 0.0


# --- forward ---


@pytest.mark.parametrize("self_attention_mask", [False, True])
def test_forward_matches_numpy(self_attention_mask):
    rng = np.random.default_rng(4)
    ids, padding, features, memory, emb, mask = make_batch(4)
    decoder = make_decoder(self_attention_mask=self_attention_mask)
    logits = decoder(features, padding, mask, memory, emb)
    assert tuple(logits.shape) == (B, L, V)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    randomize(decoder, rng)
    expected = np_decoder(decoder, features, padding, mask, memory, emb)
    actual = to_numpy(decoder(features, padding, mask, memory, emb))
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-5)


def test_masked_and_padded_features_are_replaced():
    rng = np.random.default_rng(5)
    ids, padding, features, memory, emb, mask = make_batch(5)
    decoder = make_decoder()
    base = to_numpy(decoder(features, padding, mask, memory, emb))
    changed = features.copy()
    hidden = mask | ~padding
    changed[hidden] = rng.normal(size=changed[hidden].shape)
    np.testing.assert_allclose(
        to_numpy(decoder(changed, padding, mask, memory, emb)), base, atol=1e-5
    )
    # Changing a visible token does change the output.
    visible = ~hidden
    changed[visible] += 1.0
    assert not np.allclose(
        to_numpy(decoder(changed, padding, mask, memory, emb)), base, atol=1e-3
    )


def test_hidden_states_feed_the_head():
    rng = np.random.default_rng(7)
    ids, padding, features, memory, emb, mask = make_batch(7)
    decoder = make_decoder(self_attention_mask=True)
    decoder(features, padding, mask, memory, emb)
    randomize(decoder, rng)
    hidden = decoder.hidden_states(features, padding, mask, memory)
    assert tuple(hidden.shape) == (B, L, D)
    np.testing.assert_allclose(
        to_numpy(decoder.head(hidden, emb)),
        to_numpy(decoder(features, padding, mask, memory, emb)),
        atol=1e-5,
    )
    # Without mask vectors the masked positions keep their own features:
    # the same as an independent forward in which nothing is masked.
    kept = decoder.hidden_states(
        features, padding, mask, memory, use_mask_vectors=False
    )
    expected = np_decoder(
        decoder, features, padding, np.zeros_like(mask), memory, emb
    )
    np.testing.assert_allclose(
        to_numpy(decoder.head(kept, emb)), expected, atol=1e-4, rtol=1e-5
    )
    assert not np.allclose(to_numpy(kept), to_numpy(hidden), atol=1e-3)


def test_dropout_only_in_training():
    ids, padding, features, memory, emb, mask = make_batch(6)
    decoder = make_decoder(dropout=0.5)
    a = to_numpy(decoder(features, padding, mask, memory, emb))
    b = to_numpy(decoder(features, padding, mask, memory, emb, training=False))
    c = to_numpy(decoder(features, padding, mask, memory, emb, training=True))
    np.testing.assert_allclose(a, b)
    assert not np.allclose(a, c)


def test_self_attention_mask_matters_only_with_padding():
    ids, padding, features, memory, emb, mask = make_batch(7)
    faithful = make_decoder(self_attention_mask=False)
    fixed = make_decoder(self_attention_mask=True)
    faithful(features, padding, mask, memory, emb)
    fixed(features, padding, mask, memory, emb)
    fixed.set_weights(faithful.get_weights())
    full = np.ones_like(padding)
    np.testing.assert_allclose(
        to_numpy(faithful(features, full, mask, memory, emb)),
        to_numpy(fixed(features, full, mask, memory, emb)),
        atol=1e-5,
    )
    out_a = to_numpy(faithful(features, padding, mask, memory, emb))
    out_b = to_numpy(fixed(features, padding, mask, memory, emb))
    # Rows 1 and 2 have padding: their real tokens see different keys.
    assert not np.allclose(
        out_a[1][padding[1]], out_b[1][padding[1]], atol=1e-4
    )
    np.testing.assert_allclose(out_a[0], out_b[0], atol=1e-5)


def test_shorter_sequences_use_leading_mask_vectors():
    ids, padding, features, memory, emb, mask = make_batch(8)
    decoder = make_decoder()
    out = to_numpy(
        decoder(features[:, :5], padding[:, :5], mask[:, :5], memory, emb)
    )
    assert out.shape == (B, 5, V)
    with pytest.raises(ValueError, match="sequence_length"):
        decoder(
            np.zeros((B, L + 1, D), "float32"),
            np.ones((B, L + 1), bool),
            np.zeros((B, L + 1), bool),
            memory,
            emb,
        )


def test_initialisation():
    decoder = MaskedTextDecoder(
        hidden_dim=64,
        vocabulary_size=V,
        sequence_length=30,
        intermediate_dim=64,
    )
    decoder.build((None, 30, 64), (None, 17, 64))
    assert tuple(decoder.mask_vectors.shape) == (1, 30, 64)
    assert float(np.std(to_numpy(decoder.mask_vectors))) == pytest.approx(
        0.01, rel=0.05
    )
    layer = decoder.decoder_layers[0]
    assert float(
        np.std(to_numpy(layer.self_attention.query_dense.kernel))
    ) == pytest.approx(64**-0.5, rel=0.05)
    assert float(np.std(to_numpy(layer.linear1.kernel))) == pytest.approx(
        64**-0.5, rel=0.05
    )
    assert layer.norm1.epsilon == 1e-12
    assert not np.any(to_numpy(decoder.head.bias))


def test_get_config_round_trip():
    decoder = make_decoder(
        self_attention_mask=True, label_smoothing=0.2, mask_ratio_min=0.15
    )
    config = decoder.get_config()
    clone = MaskedTextDecoder.from_config(config)
    assert clone.get_config() == config
    ids, padding, features, memory, emb, mask = make_batch(9)
    a = to_numpy(decoder(features, padding, mask, memory, emb))
    clone(features, padding, mask, memory, emb)
    clone.set_weights(decoder.get_weights())
    np.testing.assert_allclose(
        to_numpy(clone(features, padding, mask, memory, emb)), a, atol=1e-6
    )


def test_invalid_arguments():
    with pytest.raises(ValueError, match="mask_ratio_min"):
        make_decoder(mask_ratio_min=0.4, mask_ratio_max=0.3)
    with pytest.raises(ValueError, match="divisible"):
        make_decoder(num_heads=3)
    with pytest.raises(ValueError, match="dropout"):
        make_decoder(dropout=1.0)

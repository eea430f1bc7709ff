"""The MTP loss scores only masked positions (a static buffer) and may use a
vocabulary subset; both against the full `(B, L, V)` computation."""

import keras
import numpy as np
import pytest

from keras_lgvq.layers.guidance.language_guidance import LanguageGuidance
from keras_lgvq.layers.guidance.masked_text_decoder import MaskedTextDecoder

from tests.layers.grad_utils import to_numpy  # noqa: E402
from tests.layers.grad_utils import variable_grads  # noqa: E402

BACKEND = keras.backend.backend()
B, L, D, V, M = 4, 10, 8, 50, 5
LENGTHS = (10, 8, 6, 9)


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    padding = np.arange(L)[None] < np.array(LENGTHS)[:, None]
    ids = rng.integers(1, V, size=(B, L)).astype("int32") * padding
    features = rng.normal(size=(B, L, D)).astype("float32")
    memory = rng.normal(size=(B, M, D)).astype("float32")
    emb = rng.normal(size=(V, D)).astype("float32")
    return ids, padding, features, memory, emb


def mask_with(count, padding, seed=0):
    """A mask with exactly `count` masked real tokens."""
    rng = np.random.default_rng(seed)
    real = np.argwhere(padding)
    chosen = real[rng.choice(len(real), count, replace=False)]
    mask = np.zeros_like(padding)
    mask[chosen[:, 0], chosen[:, 1]] = True
    return mask


def make_decoder(**kwargs):
    config = dict(
        hidden_dim=D,
        vocabulary_size=V,
        num_layers=1,
        intermediate_dim=12,
        dropout=0.0,
        sequence_length=L,
        self_attention_mask=True,
        seed=0,
    )
    config.update(kwargs)
    decoder = MaskedTextDecoder(**config)
    ids, padding, features, memory, emb = make_inputs()
    decoder(features, padding, padding, memory, emb)
    rng = np.random.default_rng(1)
    decoder.set_weights(
        [
            rng.normal(scale=0.5, size=w.shape).astype("float32")
            for w in decoder.get_weights()
        ]
    )
    return decoder


def np_subset_loss(logits, ids, weights, subset, eps=0.1):
    """Label-smoothed CE with the softmax over `subset` columns only."""
    logits = logits.astype("float64")[..., subset]
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    column = {int(t): i for i, t in enumerate(subset)}
    target = np.vectorize(lambda t: column.get(int(t), 0))(ids)
    nll = -np.take_along_axis(logp, target[..., None], -1)[..., 0]
    per_token = (1 - eps) * nll + eps * (-logp.mean(-1))
    return (per_token * weights).sum() / (weights.sum() + 5e-6)


def both_paths(decoder, mask, seed=0):
    """Loss and gradients of the full and the scored path, one forward."""
    ids, padding, features, memory, emb = make_inputs(seed)

    def losses():
        hidden = decoder.hidden_states(features, padding, mask, memory)
        full = decoder.loss(decoder.head(hidden, emb), ids, mask, padding)
        scored = decoder.scored_loss(hidden, ids, mask, padding, emb)
        return {"full": full, "scored": scored}

    return variable_grads(losses, decoder.trainable_variables)


@pytest.mark.parametrize("masked", [7, 25])
def test_scored_loss_and_gradients_equal_the_full_computation(masked):
    # Budget: ceil(0.3 * 40) = 12 rows. 7 masked tokens are gathered; 25
    # overflow the buffer and take the full path.
    decoder = make_decoder()
    ids, padding = make_inputs()[:2]
    mask = mask_with(masked, padding)
    loss, grads = both_paths(decoder, mask)
    assert np.isfinite(loss["full"]) and loss["full"] > 0
    np.testing.assert_allclose(loss["scored"], loss["full"], rtol=1e-6)
    for full, scored in zip(grads["full"], grads["scored"]):
        assert full is not None and scored is not None
        np.testing.assert_allclose(scored, full, rtol=1e-5, atol=1e-6)
    # Every trainable weight of the decoder and head gets a gradient.
    assert all(np.any(g) for g in grads["scored"])


def test_scored_loss_runs_the_head_on_the_buffer_only():
    decoder = make_decoder()
    ids, padding, features, memory, emb = make_inputs()
    mask = mask_with(7, padding)
    transformed, projected = [], []
    head = decoder.head
    transform, project = head.transform, head.project

    def spy_transform(hidden_states):
        transformed.append(tuple(hidden_states.shape))
        return transform(hidden_states)

    def spy_project(features, *args, **kwargs):
        projected.append(tuple(features.shape))
        return project(features, *args, **kwargs)

    head.transform, head.project = spy_transform, spy_project
    hidden = decoder.hidden_states(features, padding, mask, memory)
    scored = decoder.scored_loss(hidden, ids, mask, padding, emb)
    head.transform, head.project = transform, project
    # The row-wise Dense / GELU / LayerNorm runs once on every row, before
    # the `ops.cond`: inside a `tf.cond` branch the LayerNorm's gradient
    # varied in its last bits from call to call on TensorFlow's CPU build
    # (LG-VQ training was not reproducible across processes).
    assert transformed == [(B * L, D)]
    # The vocabulary projection (D x V per row) runs on the buffer only.
    assert (12, D) in projected
    if BACKEND != "jax":
        # JAX's `cond` traces both branches; TF and torch run one eagerly.
        assert projected == [(12, D)]
    full = decoder.loss(decoder.head(hidden, emb), ids, mask, padding)
    np.testing.assert_allclose(to_numpy(scored), to_numpy(full), rtol=1e-6)


def test_full_logits_flag_and_budget_change_nothing_but_speed():
    ids, padding, features, memory, emb = make_inputs()
    mask = mask_with(9, padding)
    reference = make_decoder(full_logits=True)
    hidden = reference.hidden_states(features, padding, mask, memory)
    expected = to_numpy(reference.scored_loss(hidden, ids, mask, padding, emb))
    full = reference.loss(reference.head(hidden, emb), ids, mask, padding)
    np.testing.assert_allclose(expected, to_numpy(full), rtol=0)
    for fraction in (0.05, 0.5, 1.0):
        decoder = make_decoder(max_masked_fraction=fraction)
        value = decoder.scored_loss(hidden, ids, mask, padding, emb)
        np.testing.assert_allclose(to_numpy(value), expected, rtol=1e-6)
    # No masked token: 0, as the full reduction gives.
    none = np.zeros_like(mask)
    assert float(to_numpy(decoder.scored_loss(hidden, ids, none, padding, emb))) == 0.0


def test_full_vocabulary_subset_equals_the_unrestricted_loss():
    ids, padding, features, memory, emb = make_inputs()
    mask = mask_with(8, padding)
    plain = make_decoder()
    # A permutation of every id: columns in another order, same softmax.
    order = np.random.default_rng(3).permutation(V)
    everything = make_decoder(vocabulary_subset=order)
    hidden = plain.hidden_states(features, padding, mask, memory)
    expected = to_numpy(plain.scored_loss(hidden, ids, mask, padding, emb))
    for decoder in (everything, make_decoder(vocabulary_subset=order,
                                             full_logits=True)):
        np.testing.assert_allclose(
            to_numpy(decoder.scored_loss(hidden, ids, mask, padding, emb)),
            expected,
            rtol=1e-5,
        )
    loss, grads = both_paths(everything, mask)
    np.testing.assert_allclose(loss["scored"], expected, rtol=1e-5)
    np.testing.assert_allclose(loss["full"], expected, rtol=1e-5)
    for full, scored in zip(grads["full"], grads["scored"]):
        np.testing.assert_allclose(scored, full, rtol=1e-5, atol=1e-6)


def test_subset_restricts_the_softmax_like_numpy():
    ids, padding, features, memory, emb = make_inputs()
    mask = mask_with(8, padding)
    targets = np.unique(ids[mask])
    others = np.setdiff1d(np.arange(V), targets)[:5]
    subset = np.concatenate([targets, others])
    decoder = make_decoder(vocabulary_subset=subset)
    hidden = decoder.hidden_states(features, padding, mask, memory)
    logits = to_numpy(decoder.head(hidden, emb))
    assert logits.shape == (B, L, V)  # `head` / `call` score everything
    expected = np_subset_loss(logits, ids, mask & padding, subset)
    unrestricted = to_numpy(make_decoder().loss(logits, ids, mask, padding))
    assert abs(expected - unrestricted) > 1e-3  # the subset matters
    for value in (
        decoder.scored_loss(hidden, ids, mask, padding, emb),
        decoder.loss(logits, ids, mask, padding),
    ):
        np.testing.assert_allclose(to_numpy(value), expected, rtol=1e-5)


def test_target_outside_the_subset_is_an_error_or_nan():
    ids, padding, features, memory, emb = make_inputs()
    mask = mask_with(8, padding)
    subset = np.setdiff1d(np.arange(V), ids[mask][:1])
    for full_logits in (True, False):
        decoder = make_decoder(vocabulary_subset=subset, full_logits=full_logits)
        hidden = decoder.hidden_states(features, padding, mask, memory)
        if BACKEND == "jax" and not full_logits:
            # Inside JAX's traced `cond` nothing can raise: NaN instead.
            value = decoder.scored_loss(hidden, ids, mask, padding, emb)
            assert np.isnan(to_numpy(value))
            continue
        with pytest.raises(ValueError, match="vocabulary_subset"):
            decoder.scored_loss(hidden, ids, mask, padding, emb)


def test_language_guidance_flag_gives_the_same_losses_and_gradients():
    rng = np.random.default_rng(4)
    quantized = rng.normal(size=(B, 2, 2, 6)).astype("float32")
    ids, padding, features, _, emb = make_inputs(4)
    text = {
        "token_ids": ids,
        "padding_mask": padding,
        "token_features": features,
        "sentence_feature": rng.normal(size=(B, D)).astype("float32"),
    }

    def make(**kwargs):
        return LanguageGuidance(
            code_dim=6,
            text_dim=D,
            vocabulary_size=V,
            num_tokens=4,
            decoder_intermediate_dim=12,
            sequence_length=L,
            vit_layers=1,
            decoder_layers=1,
            mtp_self_attention_mask=True,
            seed=3,
            **kwargs,
        )

    scored, full = make(), make(mtp_full_logits=True)
    out = scored(quantized, text, emb)
    full(quantized, text, emb)
    full.set_weights(scored.get_weights())
    assert "mtp_logits" not in out
    results = {}
    for name, layer in (("scored", scored), ("full", full)):
        keys = ("loss", "mtp_loss")
        results[name] = variable_grads(
            lambda layer=layer: {
                k: v
                for k, v in layer(quantized, text, emb, training=True).items()
                if k in keys
            },
            layer.trainable_variables,
        )
    (loss_s, grads_s), (loss_f, grads_f) = results["scored"], results["full"]
    assert loss_f["mtp_loss"] > 0
    for key in ("loss", "mtp_loss"):
        np.testing.assert_allclose(loss_s[key], loss_f[key], rtol=1e-5)
        for a, b in zip(grads_s[key], grads_f[key]):
            if b is None:
                assert a is None or not np.any(a)
                continue
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # The logits stay reachable for evaluation.
    out = scored(quantized, text, emb, return_mtp_logits=True)
    assert tuple(out["mtp_logits"].shape) == (B, L, V)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TF relaxed shapes")
@pytest.mark.parametrize("jit_compile", [False, True])
def test_unknown_batch_in_a_tf_graph(jit_compile):
    import tensorflow as tf

    decoder = make_decoder()
    ids, padding, features, memory, emb = make_inputs()
    mask = mask_with(7, padding)
    hidden = decoder.hidden_states(features, padding, mask, memory)
    expected = decoder.loss(decoder.head(hidden, emb), ids, mask, padding)
    fn = tf.function(
        lambda h, i, m, p: decoder.scored_loss(h, i, m, p, emb),
        input_signature=[
            tf.TensorSpec((None, L, D), "float32"),
            tf.TensorSpec((None, L), "int32"),
            tf.TensorSpec((None, L), "bool"),
            tf.TensorSpec((None, L), "bool"),
        ],
        jit_compile=jit_compile,
    )
    for masked in (7, 25):
        mask = mask_with(masked, padding)
        expected = decoder.loss(decoder.head(hidden, emb), ids, mask, padding)
        np.testing.assert_allclose(
            to_numpy(fn(hidden, ids, mask, padding)),
            to_numpy(expected),
            rtol=1e-6,
        )


def test_config_round_trip_and_validation():
    decoder = MaskedTextDecoder(
        D, V, max_masked_fraction=0.4, vocabulary_subset=[4, 2, 9],
        full_logits=True,
    )
    config = decoder.get_config()
    assert config["vocabulary_subset"] == [4, 2, 9]
    assert MaskedTextDecoder.from_config(config).get_config() == config
    guidance = LanguageGuidance(
        code_dim=6, text_dim=D, vocabulary_size=V, num_tokens=4,
        mtp_max_masked_fraction=0.5, mtp_vocabulary_subset=[1, 3],
    )
    config = guidance.get_config()
    assert config["mtp_vocabulary_subset"] == [1, 3]
    assert config["mtp_max_masked_fraction"] == 0.5
    assert config["mtp_full_logits"] is False
    assert LanguageGuidance.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="max_masked_fraction"):
        MaskedTextDecoder(D, V, max_masked_fraction=0.0)
    with pytest.raises(ValueError, match="max_masked_fraction"):
        MaskedTextDecoder(D, V, max_masked_fraction=1.5)
    with pytest.raises(ValueError, match="full_logits"):
        MaskedTextDecoder(D, V, full_logits="yes")
    with pytest.raises(ValueError, match="vocabulary_size"):
        MaskedTextDecoder(D, V, vocabulary_subset=[1, V])
    with pytest.raises(ValueError, match="repeat"):
        MaskedTextDecoder(D, V, vocabulary_subset=[1, 1])
    with pytest.raises(ValueError, match="non-empty"):
        MaskedTextDecoder(D, V, vocabulary_subset=[])
    with pytest.raises(ValueError, match="non-empty"):
        MaskedTextDecoder(D, V, vocabulary_subset=[0.5, 2.0])

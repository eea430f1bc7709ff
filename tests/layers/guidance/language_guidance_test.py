import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.layers.guidance.language_guidance import LanguageGuidance
from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer

from tests.layers.grad_utils import is_zero_grad  # noqa: E402
from tests.layers.grad_utils import to_numpy  # noqa: E402
from tests.layers.grad_utils import variable_grads  # noqa: E402

B, H, W, DC, DT, V, L, K = 3, 4, 4, 8, 16, 23, 10, 16


def make_quantizer(kind):
    if kind == "cvq":
        return VectorQuantizer(
            K, DC, reinit="cvq", contrastive_weight=1.0, seed=0
        )
    return VectorQuantizer(K, DC, legacy_beta=True, seed=0)


def make_text(seed=0, lengths=(10, 6, 3)):
    rng = np.random.default_rng(seed)
    padding = np.arange(L)[None] < np.array(lengths)[:, None]
    ids = rng.integers(1, V - 1, size=(B, L)).astype("int32") * padding
    return {
        "token_ids": ids,
        "padding_mask": padding,
        "token_features": rng.normal(size=(B, L, DT)).astype("float32"),
        "sentence_feature": rng.normal(size=(B, DT)).astype("float32"),
    }


def make_guidance(**kwargs):
    config = dict(
        code_dim=DC,
        text_dim=DT,
        vocabulary_size=V,
        num_tokens=H * W,
        decoder_intermediate_dim=24,
        sequence_length=L,
        seed=0,
    )
    config.update(kwargs)
    return LanguageGuidance(**config)


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    quantized = rng.normal(size=(B, H, W, DC)).astype("float32")
    embeddings = rng.normal(size=(V, DT)).astype("float32")
    return quantized, make_text(seed), embeddings


class RecordingEncoder:
    """Stand-in text encoder: records the ids it sees."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.table = rng.normal(size=(V, DT)).astype("float32")
        self.calls = []

    def __call__(self, token_ids, padding_mask):
        self.calls.append(to_numpy(token_ids))
        features = ops.take(self.table, ops.cast(token_ids, "int32"), axis=0)
        return {"token_features": features}


def test_outputs_and_loss_composition():
    quantized, text, emb = inputs()
    guidance = make_guidance(alpha=0.3, beta=0.5, gamma=0.7, dropout=0.0)
    out = guidance(quantized, text, emb, training=True, return_mtp_logits=True)
    assert tuple(out["image_embedding"].shape) == (B, DT)
    assert tuple(out["mtp_logits"].shape) == (B, L, V)
    assert to_numpy(out["mtp_mask"]).dtype == bool
    gsa, mtp, ras = (
        to_numpy(out[k]) for k in ("gsa_loss", "mtp_loss", "ras_loss")
    )
    np.testing.assert_allclose(
        to_numpy(out["loss"]), 0.3 * gsa + 0.5 * mtp + 0.7 * ras, rtol=1e-6
    )
    # Each term is its component applied to the shared code-transformer
    # output, the masks and the unmasked features.
    tokens = guidance.code_transformer(quantized)
    np.testing.assert_allclose(
        to_numpy(out["image_embedding"]), to_numpy(tokens[:, 0]), atol=1e-6
    )
    np.testing.assert_allclose(
        gsa,
        to_numpy(guidance.gsa(tokens[:, 0], text["sentence_feature"])),
        rtol=1e-6,
    )
    mask = out["mtp_mask"]
    np.testing.assert_allclose(
        mtp,
        to_numpy(
            guidance.mtp.loss(
                out["mtp_logits"], text["token_ids"], mask, text["padding_mask"]
            )
        ),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        to_numpy(out["mtp_logits"]),
        to_numpy(guidance.predict_masked(quantized, text, mask, emb)),
        atol=1e-5,
    )
    ras_direct = guidance.ras(
        quantized.reshape(B, H * W, DC),
        tokens[:, 1:],
        text["token_features"],
        text["padding_mask"],
    )
    np.testing.assert_allclose(ras, to_numpy(ras_direct), rtol=1e-6)
    # Start, end and padding are never masked.
    mask = to_numpy(mask)
    lengths = text["padding_mask"].sum(-1)
    assert not mask[:, 0].any()
    assert not mask[np.arange(B), lengths - 1].any()
    assert not (mask & ~text["padding_mask"]).any()


@pytest.mark.parametrize("kind", ["vqgan", "cvq"])
def test_gradient_paths_through_straight_through_grid(kind):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(B, 4 * H, 4 * W, 3)).astype("float32")
    text, emb = make_text(1), rng.normal(size=(V, DT)).astype("float32")
    encoder = keras.layers.Conv2D(DC, 4, strides=4)
    quantizer = make_quantizer(kind)
    # One layer each keeps the compiled JAX gradient program small.
    guidance = make_guidance(
        alpha=1.0, beta=1.0, gamma=1.0, vit_layers=1, decoder_layers=1
    )

    def text_losses(training=True):
        quantized = quantizer(encoder(images), training=training)["quantized"]
        return guidance(quantized, text, emb, training=training)

    text_losses()  # build everything
    ct_vars = guidance.code_transformer.trainable_weights
    ras_vars = guidance.ras.trainable_weights
    mtp_vars = [guidance.mtp.mask_vectors, guidance.mtp.head.bias]
    variables = [encoder.kernel, quantizer.codebook] + ct_vars
    variables += ras_vars + mtp_vars
    # `loss` is their weighted sum (checked in the composition test).
    keys = ("gsa_loss", "mtp_loss", "ras_loss")
    _, grads = variable_grads(
        lambda: {k: v for k, v in text_losses().items() if k in keys},
        variables,
    )
    n_ct, n_ras = len(ct_vars), len(ras_vars)
    for key in keys:
        g_encoder, g_codebook = grads[key][:2]
        g_ct = grads[key][2 : 2 + n_ct]
        # Every text loss reaches the encoder through the grid ...
        assert not is_zero_grad(g_encoder), key
        # ... but, faithful to the official code, not the codebook.
        assert is_zero_grad(g_codebook), key
        if key == "ras_loss":
            # The RAS matching is hard (argmax, sign of `value`): the code
            # transformer gets nothing from it.
            assert all(is_zero_grad(g) for g in g_ct)
        else:
            assert not all(is_zero_grad(g) for g in g_ct), key
    # The RAS code MLP and the MTP mask vectors and bias are trained by
    # their own losses.
    g_ras = grads["ras_loss"][2 + n_ct : 2 + n_ct + n_ras]
    assert not is_zero_grad(g_ras[0])
    g_mtp = grads["mtp_loss"][2 + n_ct + n_ras :]
    assert not any(is_zero_grad(g) for g in g_mtp)


def test_leak_free_re_encodes_masked_ids():
    quantized, text, emb = inputs(2)
    mask_id = V - 1
    encoder = RecordingEncoder()
    leak_free = make_guidance(
        mtp_leak_free=True, mask_token_id=mask_id, dropout=0.0
    )
    out = leak_free(
        quantized,
        text,
        emb,
        text_encoder=encoder,
        training=True,
        return_mtp_logits=True,
    )
    mask = to_numpy(out["mtp_mask"])
    assert mask.any()
    expected_ids = np.where(mask, mask_id, text["token_ids"])
    np.testing.assert_array_equal(encoder.calls[-1], expected_ids)

    # Same weights, faithful mode, fed the features of the masked caption:
    # identical logits, so the decoder sees only the masked caption.
    faithful = make_guidance(dropout=0.0)
    faithful(quantized, text, emb)
    faithful.set_weights(leak_free.get_weights())
    masked_text = dict(
        text,
        token_features=encoder(expected_ids, text["padding_mask"])[
            "token_features"
        ],
    )
    np.testing.assert_allclose(
        to_numpy(out["mtp_logits"]),
        to_numpy(faithful.predict_masked(quantized, masked_text, mask, emb)),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        to_numpy(out["mtp_logits"]),
        to_numpy(
            leak_free.predict_masked(
                quantized, text, mask, emb, text_encoder=encoder
            )
        ),
        atol=1e-5,
    )
    # Unmasked (leaking) features give different logits.
    assert not np.allclose(
        to_numpy(out["mtp_logits"]),
        to_numpy(faithful.predict_masked(quantized, text, mask, emb)),
        atol=1e-4,
    )


def test_leak_free_errors():
    quantized, text, emb = inputs(3)
    with pytest.raises(ValueError, match="mask_token_id"):
        make_guidance(mtp_leak_free=True)
    guidance = make_guidance(mtp_leak_free=True, mask_token_id=0)
    with pytest.raises(ValueError, match="text_encoder"):
        guidance(quantized, text, emb)


def test_flags_reach_components():
    guidance = make_guidance(
        mtp_self_attention_mask=True,
        gsa_symmetric=True,
        gsa_learnable_temperature=True,
        vit_layers=1,
        vit_heads=2,
        decoder_layers=1,
        decoder_heads=2,
    )
    assert guidance.mtp.self_attention_mask
    assert guidance.gsa.symmetric and guidance.gsa.learnable_temperature
    assert guidance.code_transformer.num_heads == 2
    assert len(guidance.mtp.decoder_layers) == 1


def test_sentence_dim_projection_and_embed_image():
    quantized, text, emb = inputs(4)
    same = make_guidance()
    assert same.gsa_projection is None
    guidance = make_guidance(sentence_dim=12)
    text = dict(
        text, sentence_feature=np.ones((B, 12), "float32") * np.arange(12)
    )
    out = guidance(quantized, text, emb)
    assert tuple(out["image_embedding"].shape) == (B, 12)
    assert not guidance.gsa_projection.use_bias
    embedded = to_numpy(guidance.embed_image(quantized))
    expected = to_numpy(out["image_embedding"])
    expected /= np.linalg.norm(expected, axis=-1, keepdims=True)
    np.testing.assert_allclose(embedded, expected, atol=1e-5)
    with pytest.raises(ValueError, match="sentence_dim=12"):
        guidance(quantized, make_text(4), emb)
    with pytest.raises(ValueError, match="missing keys"):
        guidance(quantized, {"token_ids": text["token_ids"]}, emb)


def test_get_config_round_trip():
    quantized, text, emb = inputs(5)
    guidance = make_guidance(
        sentence_dim=12,
        alpha=0.1,
        mtp_leak_free=True,
        mask_token_id=3,
        gsa_symmetric=True,
        name="lg",
    )
    guidance.build((None, H, W, DC))
    config = guidance.get_config()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(guidance)
    )
    assert isinstance(restored, LanguageGuidance)
    assert restored.get_config() == config
    # The serialized build config rebuilds every sublayer's weights.
    assert restored.built
    assert len(restored.weights) == len(guidance.weights)
    restored.set_weights(guidance.get_weights())
    text = dict(text, sentence_feature=np.ones((B, 12), "float32"))
    mask = np.zeros((B, L), bool)
    mask[:, 2] = True
    encoder = RecordingEncoder()
    np.testing.assert_allclose(
        to_numpy(restored.predict_masked(quantized, text, mask, emb, encoder)),
        to_numpy(guidance.predict_masked(quantized, text, mask, emb, encoder)),
        atol=1e-6,
    )


def _check_tf_graph(jit_compile):
    # JAX tracing is covered by `variable_grads`, which runs the layer under
    # `jax.jit` in a stateless scope; torch has no graph mode to test.
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow graph-mode check")
    import tensorflow as tf

    quantized, text, emb = inputs(6)
    guidance = make_guidance()
    eager = to_numpy(guidance(quantized, text, emb, training=True)["loss"])
    fn = tf.function(
        lambda q: guidance(q, text, emb, training=True)["loss"],
        jit_compile=jit_compile,
    )
    loss = to_numpy(fn(quantized))
    # A fresh mask and dropout draw: close to, not equal to, the eager loss.
    assert np.isfinite(loss) and loss > 0
    assert abs(loss - eager) < 0.5 * eager


def test_tf_graph_mode():
    _check_tf_graph(jit_compile=False)


def test_tf_xla_compiles():
    _check_tf_graph(jit_compile=True)


def test_mixed_precision():
    quantized, text, emb = inputs(7)
    guidance = make_guidance(dtype="mixed_bfloat16")
    out = guidance(quantized, text, emb, training=True, return_mtp_logits=True)
    for key in ("loss", "gsa_loss", "mtp_loss", "ras_loss", "mtp_logits"):
        assert keras.backend.standardize_dtype(out[key].dtype) == "float32"
        assert np.all(np.isfinite(to_numpy(out[key])))

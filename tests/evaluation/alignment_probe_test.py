import numpy as np
import pytest
from keras import ops

from keras_lgvq.evaluation import AlignmentProbe
from keras_lgvq.evaluation import masking
from tests.evaluation.fakes import FakePrior
from tests.evaluation.fakes import captions


def _probe_inputs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    ids, pad = captions(n, seed)
    mask = masking.sample_training_masks(pad, seed)
    slots, valid = masking.mask_slots(mask)
    return {
        "quantized": rng.normal(size=(n, 4, 4, 16)).astype("float32"),
        "sentence_feature": rng.normal(size=(n, 32)).astype("float32"),
        "masked_features": rng.normal(size=(n, 8, 32)).astype("float32"),
        "padding_mask": pad,
        "mask": mask,
        "token_ids": ids,
        "slots": slots,
        "slot_valid": valid,
    }


def _tiny_probe(**kwargs):
    probe = AlignmentProbe(
        code_dim=16,
        num_tokens=16,
        text_dim=32,
        vocabulary_size=40,
        sequence_length=8,
        decoder_intermediate_dim=32,
        dropout=0.0,
        seed=0,
        **kwargs,
    )
    probe.build()
    probe.set_token_embeddings(FakePrior().token_embeddings)
    return probe


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_probe_masked_loss_matches_numpy_on_full_logits(smoothing):
    probe = _tiny_probe(label_smoothing=smoothing)
    x = _probe_inputs()
    loss = float(ops.convert_to_numpy(probe(x)["mtp_loss"]))
    logits = np.asarray(
        ops.convert_to_numpy(
            probe.predict_masked(
                x["quantized"], x["masked_features"], x["padding_mask"],
                x["mask"],
            )
        ),
        np.float64,
    )
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, x["token_ids"][..., None], -1)[..., 0]
    per_token = (1 - smoothing) * nll + smoothing * (-log_p.mean(-1))
    w = x["mask"].astype(np.float64)
    expected = (per_token * w).sum() / (w.sum() + 5e-6)
    np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-5)


def test_probe_gsa_is_symmetric_infonce_with_its_temperature():
    probe = _tiny_probe()
    x = _probe_inputs()
    loss = float(ops.convert_to_numpy(probe(x)["gsa_loss"]))
    v = np.asarray(ops.convert_to_numpy(probe.embed_image(x["quantized"])))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    t = x["sentence_feature"] / np.linalg.norm(
        x["sentence_feature"], axis=1, keepdims=True
    )
    logits = (1 / 0.07) * (v @ t.T)

    def ce(m):
        top = m.max(1)
        shifted = m - top[:, None]
        # log(sum_j exp(m_ij) + 1e-6), as the layer's epsilon.
        lse = top + np.log(np.exp(shifted).sum(1) + 1e-6 * np.exp(-top))
        return np.mean(lse - np.diag(m))

    expected = 0.5 * (ce(logits) + ce(logits.T))
    np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-4)


def test_probe_config_round_trip_and_token_embeddings():
    probe = _tiny_probe(keep_mask_features=False)
    config = probe.get_config()
    clone = AlignmentProbe.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(
        ops.convert_to_numpy(probe.token_embeddings),
        FakePrior().token_embeddings,
    )
    assert not probe.token_embeddings.trainable
    with pytest.raises(ValueError, match=r"\(40, 32\)"):
        probe.set_token_embeddings(np.zeros((39, 32), "float32"))


@pytest.mark.parametrize(
    "name, value", [("code_dim", 0), ("text_dim", True), ("num_tokens", 2.0)]
)
def test_probe_rejects_bad_sizes(name, value):
    kwargs = dict(code_dim=16, num_tokens=16, text_dim=32, vocabulary_size=40)
    kwargs[name] = value
    with pytest.raises(ValueError, match=name):
        AlignmentProbe(**kwargs)

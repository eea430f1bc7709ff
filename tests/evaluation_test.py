import numpy as np
import pytest
from keras import ops

from keras_lgvq import evaluation
from keras_lgvq.metrics.masked_word_recall import masked_word_recall_at_1
from tests.models.tiny_configs import TINY_TEXT
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_text_batch
from tests.models.tiny_configs import tiny_vqgan

MASK_ID = 39  # unused by the tiny captions (ids 1..14)


class FakePrior:
    """Context-free stand-in for a text prior: features are `table[ids]`."""

    mask_token_id = MASK_ID

    def __init__(self, seed=3):
        rng = np.random.default_rng(seed)
        self.token_embeddings = rng.normal(
            size=(TINY_TEXT["vocabulary_size"], TINY_TEXT["text_dim"])
        ).astype("float32")

    def features(self, token_ids, padding_mask):
        return self.token_embeddings[token_ids] * padding_mask[..., None]

    def encode_tokens(self, token_ids, padding_mask, batch_size=64):
        token_ids = np.asarray(token_ids)
        padding_mask = np.asarray(padding_mask, bool)
        feats = self.features(token_ids, padding_mask)
        sentence = feats.sum(1)
        sentence /= np.linalg.norm(sentence, axis=1, keepdims=True)
        return {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "token_features": feats,
            "sentence_feature": sentence.astype("float32"),
        }


def _captions(n, seed=0):
    """Padded token rows (SOT, 3-6 words, EOT) for tiny vocabularies."""
    rng = np.random.default_rng(seed)
    length = TINY_TEXT["sequence_length"]
    ids = np.zeros((n, length), "int32")
    for i in range(n):
        words = rng.integers(3, 15, rng.integers(1, length - 1))
        row = [1] + list(words) + [2]
        ids[i, : len(row)] = row
    return ids, ids > 0


def _batches(n=24, batch=8, seed=0):
    data = tiny_text_batch(n, seed=seed)
    rng = np.random.default_rng(seed)
    attrs = {
        k: rng.integers(0, c, (n, 3)).astype("int32")
        for k, c in (("shape", 8), ("color", 10), ("size", 3), ("fill", 3))
    }
    attrs["num_objects"] = rng.integers(1, 4, n).astype("int32")
    out = []
    for s in range(0, n, batch):
        b = {
            "images": data["images"][s : s + batch],
            "token_ids": data["token_ids"][s : s + batch],
            "padding_mask": data["padding_mask"][s : s + batch],
        }
        b.update({k: v[s : s + batch] for k, v in attrs.items()})
        out.append(b)
    return out


def test_training_masks_skip_special_tokens_and_never_empty():
    ids, pad = _captions(400)
    mask = evaluation.sample_training_masks(pad, seed=1)
    ends = pad.sum(1) - 1
    assert not mask[:, 0].any()
    assert not mask[np.arange(len(ids)), ends].any()
    assert not (mask & ~pad).any()
    maskable = pad.sum(1) - 2
    assert (mask.sum(1)[maskable > 0] >= 1).all()
    # Ratio drawn in [0.1, 0.3]; rows forced to 1 mask push the mean up a bit.
    rows = maskable >= 5
    ratio = mask.sum(1)[rows] / maskable[rows]
    assert 0.1 <= ratio.mean() <= 0.4
    assert np.array_equal(mask, evaluation.sample_training_masks(pad, seed=1))


@pytest.mark.parametrize("num_masked", [1, 3])
def test_protocol_masks_equal_the_metric_draws(num_masked):
    ids, pad = _captions(2 * evaluation.MASK_CHUNK + 5, seed=2)
    expected = evaluation.protocol_masks(ids, pad, num_masked, seed=7)
    seen = []

    def predict_fn(batch, mask):
        seen.append(mask)
        return np.zeros(batch["token_ids"].shape + (40,), "float32")

    chunks = [
        {"token_ids": ids[s : s + evaluation.MASK_CHUNK]}
        for s in range(0, len(ids), evaluation.MASK_CHUNK)
    ]
    masked_word_recall_at_1(
        predict_fn,
        chunks,
        num_masked=num_masked,
        seed=7,
        max_position=evaluation.MASK_MAX_POSITION,
    )
    np.testing.assert_array_equal(np.concatenate(seen), expected)
    enough = pad.sum(1) - 2 >= num_masked
    np.testing.assert_array_equal(expected.sum(1), num_masked * enough)


def test_mask_slots_reference():
    rng = np.random.default_rng(0)
    mask = rng.random((20, 9)) < 0.3
    mask[3] = False
    slots, valid = evaluation.mask_slots(mask)
    assert slots.shape[1] == max(mask.sum(1).max(), 1)
    for row in range(len(mask)):
        positions = list(np.nonzero(mask[row])[0])
        assert list(slots[row][valid[row]]) == positions
        assert valid[row].sum() == len(positions)


def _probe_inputs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    ids, pad = _captions(n, seed)
    mask = evaluation.sample_training_masks(pad, seed)
    slots, valid = evaluation.mask_slots(mask)
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
    probe = evaluation.AlignmentProbe(
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


def test_probe_config_round_trip():
    probe = _tiny_probe(keep_mask_features=False)
    config = probe.get_config()
    clone = evaluation.AlignmentProbe.from_config(config)
    assert clone.get_config() == config


@pytest.mark.slow
def test_probe_trains_retrieval_on_separable_codes():
    # Each image's code grid is a constant code chosen by its caption: a
    # probe that learns anything retrieves far above chance (1 / n).
    prior = FakePrior()
    n = 32
    ids, pad = _captions(n, seed=5)
    feats = prior.encode_tokens(ids, pad)
    codebook = np.random.default_rng(1).normal(size=(n, 16)).astype("float32")
    quantized = np.repeat(codebook[:, None, None, :], 4, 1).repeat(4, 2)
    mask = evaluation.sample_training_masks(pad, 0)
    split = {
        "num_images": n,
        "token_ids": ids,
        "padding_mask": pad,
        "sentence_feature": feats["sentence_feature"],
        "train_mask": mask,
        "masked_features_train": prior.features(
            np.where(mask, MASK_ID, ids), pad
        ).astype("float16"),
    }
    probe, info = evaluation.train_alignment_probe(
        quantized,
        split,
        prior.token_embeddings,
        config=dict(epochs=40, batch_size=16, learning_rate=3e-3,
                    decoder_intermediate_dim=32, dropout=0.0),
        verbose=0,
    )
    assert info["steps"] == 80
    emb = np.asarray(ops.convert_to_numpy(probe.embed_image(quantized)))
    recall = evaluation._retrieval(emb, feats["sentence_feature"])
    assert recall["image_to_text"]["R@5"] >= 50.0


def test_prepare_split_shapes_and_leak_free_features():
    prior = FakePrior()
    split = evaluation.prepare_split(
        _batches(24), prior, max_images=20, seed=4, training_masks=True,
        verbose=0,
    )
    assert split["num_images"] == 20
    assert split["images"].shape == (20, 32, 32, 3)
    assert split["captions"] is None
    assert split["num_objects"].shape == (20,)
    ids, pad = split["token_ids"], split["padding_mask"]
    for key, feats in (
        ("mask_1", "masked_features_1"),
        ("mask_3", "masked_features_3"),
        ("train_mask", "masked_features_train"),
    ):
        mask = split[key]
        expected = prior.features(np.where(mask, MASK_ID, ids), pad)
        np.testing.assert_allclose(
            split[feats].astype("float32"), expected, atol=2e-3
        )
    np.testing.assert_array_equal(
        split["mask_3"], evaluation.protocol_masks(ids, pad, 3, seed=4)
    )
    np.testing.assert_allclose(
        np.linalg.norm(split["sentence_feature"], axis=1), 1.0, atol=1e-5
    )


def test_prepare_split_rejects_bad_input():
    with pytest.raises(ValueError, match="max_images"):
        evaluation.prepare_split(_batches(8), max_images=0, verbose=0)
    with pytest.raises(ValueError, match="images"):
        evaluation.prepare_split([{"x": np.zeros(3)}], verbose=0)


@pytest.fixture(scope="module")
def built_vqgan():
    # Built once: an eager build is the slow part on JAX.
    model = tiny_vqgan()
    model.build()
    return model


def test_run_tokenizer_matches_numpy_metrics(built_vqgan):
    model = built_vqgan
    images = tiny_text_batch(12)["images"]
    out = evaluation.run_tokenizer(model, images, batch_size=6, verbose=0)
    assert out["quantized"].shape == (12, 16, 16, 16)
    # The quantized grid is the codebook row of each index.
    codebook = ops.convert_to_numpy(model.backbone.quantizer.codebook)
    np.testing.assert_allclose(
        out["quantized"], codebook[out["indices"]], atol=1e-5
    )
    recon = out["reconstructions"]
    assert recon.shape == images.shape and np.abs(recon).max() <= 1.0
    mse = ((images - recon) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(
        out["psnr"], np.mean(10 * np.log10(4.0 / mse)), rtol=1e-4
    )
    counts = np.bincount(out["indices"].ravel(), minlength=32)
    p = counts / counts.sum()
    entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
    np.testing.assert_allclose(out["perplexity"], np.exp(entropy), rtol=1e-4)
    assert out["usage"] == pytest.approx((counts > 0).mean())
    np.testing.assert_array_equal(out["histogram"], counts)
    assert -1.0 < out["ssim"] <= 1.0
    codes_only = evaluation.run_tokenizer(
        model, images, batch_size=6, metrics=False, verbose=0
    )
    np.testing.assert_array_equal(codes_only["indices"], out["indices"])
    assert "psnr" not in codes_only


def test_attribute_probes_read_separable_codes():
    rng = np.random.default_rng(0)

    def make(n):
        shape = rng.integers(0, 8, n)
        count = rng.integers(1, 4, n)
        indices = np.zeros((n, 4, 4), "int32")
        indices[:, 0, :] = shape[:, None]
        indices[:, 3, :] = 8 + count[:, None]
        split = {
            k: rng.integers(0, c, (n, 3)).astype("int32")
            for k, c in (("color", 10), ("size", 3), ("fill", 3))
        }
        split["shape"] = np.stack([shape, shape, shape], 1).astype("int32")
        split["num_objects"] = count.astype("int32")
        codes = {
            "indices": indices,
            "quantized": rng.normal(size=(n, 4, 4, 4)).astype("float32"),
        }
        return codes, split

    train_codes, train_split = make(300)
    test_codes, test_split = make(120)
    result = evaluation.attribute_probes(
        train_codes, train_split, test_codes, test_split, 16,
        config=dict(linear_epochs=60, linear_grid=1),
    )
    assert result["shape"] >= 90.0
    assert result["num_objects"] >= 90.0
    # Colour is noise here: well below the perfect score.
    assert result["color"] < 60.0
    assert result["train_images_single_object"] == int(
        (train_split["num_objects"] == 1).sum()
    )


def test_perceptual_metrics_report_missing_weights():
    images = tiny_text_batch(2)["images"]
    out = evaluation.perceptual_metrics(
        images,
        lambda x: x,
        lpips_weights="/nonexistent/vgg16.h5",
        inception_weights="/nonexistent/inception.h5",
    )
    for name in ("lpips", "rfid"):
        assert out[name]["available"] is False
        assert "nonexistent" in out[name]["reason"] or out[name]["reason"]


@pytest.mark.slow
def test_evaluate_model_lgvq_and_vqgan(built_vqgan):
    prior = FakePrior()
    eval_split = evaluation.prepare_split(
        _batches(16, seed=1), prior, verbose=0
    )
    probe_split = evaluation.prepare_split(
        _batches(24, seed=2), prior, seed=1, protocol_mask_counts=(),
        training_masks=True, verbose=0,
    )
    config = dict(
        epochs=1, batch_size=8, linear_epochs=5, decoder_intermediate_dim=32
    )
    lgvq = tiny_lgvq()
    lgvq.build()
    results, artifacts = evaluation.evaluate_model(
        lgvq, eval_split, probe_split, text_prior=prior,
        probe_config=config, verbose=0, return_artifacts=True,
    )
    assert results["language_guidance"] is True
    own = results["own_heads"]
    for block in (own["retrieval"], results["retrieval_probe"]):
        for direction in ("image_to_text", "text_to_image"):
            assert set(block[direction]) == {"R@1", "R@5", "R@10"}
            assert all(0 <= v <= 100 for v in block[direction].values())
    for block in (own["masked_word"], results["masked_word_probe"]):
        assert block["mask1"]["masked_tokens"] == 16
        assert 0 <= block["mask3"]["recall_at_1"] <= 100
    assert "majority_token_baseline" in results["masked_word_probe"]["mask1"]
    assert results["relation_mse_probe"]["all"] >= 0
    assert own["relation_mse"]["valid"] >= own["relation_mse"]["all"] - 1e-6
    assert set(results["attribute_probe"]) >= {"shape", "color", "num_objects"}
    for name in ("lpips", "rfid"):
        assert "available" in results[name]
        if not results[name]["available"]:
            assert results[name]["reason"]
    assert artifacts["reconstructions"].shape == (16, 32, 32, 3)
    ranking = artifacts["retrieval_rankings"]["probe_image_embeddings"]
    assert ranking["text_to_image_top5"].shape == (8, 5)
    flat = evaluation.flatten_metrics(results)
    assert flat["retrieval_i2t_R@1_own"] is not None
    assert flat["codebook_usage_pct"] == pytest.approx(
        100 * results["codebook_usage"]
    )

    vqgan = built_vqgan
    base = evaluation.evaluate_model(
        vqgan, eval_split, probe_split=None, text_prior=prior, verbose=0
    )
    assert base["own_heads"]["available"] is False
    assert "retrieval_probe" not in base
    flat = evaluation.flatten_metrics(base)
    assert flat["retrieval_i2t_R@1_own"] is None
    assert flat["psnr"] == pytest.approx(base["psnr"])

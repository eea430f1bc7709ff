import numpy as np
import pytest
from keras import ops

from keras_lgvq.evaluation import alignment_metrics
from keras_lgvq.evaluation import masking
from keras_lgvq.evaluation import probe_training
from tests.evaluation.fakes import MASK_ID
from tests.evaluation.fakes import FakePrior
from tests.evaluation.fakes import captions


def _separable_split(n, seed=5):
    # Each image's code grid is a constant code chosen by its caption: a
    # probe that learns anything retrieves far above chance (k / n).
    prior = FakePrior()
    ids, pad = captions(n, seed=seed)
    feats = prior.encode_tokens(ids, pad)
    codebook = np.random.default_rng(1).normal(size=(n, 16)).astype("float32")
    quantized = np.repeat(codebook[:, None, None, :], 4, 1).repeat(4, 2)
    mask = masking.sample_training_masks(pad, 0)
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
    return prior, quantized, split


def test_probe_trains_retrieval_on_separable_codes():
    prior, quantized, split = _separable_split(16)
    probe, info = probe_training.train_alignment_probe(
        quantized,
        split,
        prior.token_embeddings,
        config=dict(epochs=15, batch_size=16, learning_rate=1e-2,
                    decoder_intermediate_dim=32, dropout=0.0),
        verbose=0,
    )
    assert info["steps"] == 15 and info["batch_size"] == 16
    assert np.isfinite(info["final_loss"])
    emb = np.asarray(ops.convert_to_numpy(probe.embed_image(quantized)))
    recall = alignment_metrics.retrieval_recalls(
        emb, split["sentence_feature"]
    )
    # Chance is 1 / 16 = 6.25% at R@1 and 31.25% at R@5.
    assert recall["image_to_text"]["R@1"] >= 50.0
    assert recall["text_to_image"]["R@5"] >= 80.0


def test_train_alignment_probe_rejects_incomplete_splits():
    prior, quantized, split = _separable_split(4)
    incomplete = {k: v for k, v in split.items() if k != "train_mask"}
    with pytest.raises(ValueError, match="train_mask"):
        probe_training.train_alignment_probe(
            quantized, incomplete, prior.token_embeddings, verbose=0
        )
    with pytest.raises(ValueError, match="quantized"):
        probe_training.train_alignment_probe(
            quantized[:3], split, prior.token_embeddings, verbose=0
        )


def test_probe_batches_are_seeded_whole_batches():
    arrays = {
        "quantized": np.arange(10, dtype="float32")[:, None],
        "token_ids": np.arange(10)[:, None],
    }
    a = probe_training._ProbeBatches(arrays, 4, seed=3)
    b = probe_training._ProbeBatches(arrays, 4, seed=3)
    assert len(a) == 2
    rows = [a[i][0]["token_ids"][:, 0] for i in range(len(a))]
    assert all(len(r) == 4 for r in rows)
    assert len(set(np.concatenate(rows))) == 8
    np.testing.assert_array_equal(rows[0], b[0][0]["token_ids"][:, 0])

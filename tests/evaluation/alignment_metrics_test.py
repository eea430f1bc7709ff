import numpy as np
import pytest

from keras_lgvq.evaluation import alignment_metrics
from keras_lgvq.evaluation import splits
from tests.evaluation.fakes import FakePrior
from tests.evaluation.fakes import batches


def _recall_reference(scores, k):
    # Row i's own column counts as the hit.
    ranks = (scores > np.diag(scores)[:, None]).sum(1)
    return 100.0 * np.mean(ranks < k)


def test_retrieval_recalls_match_numpy():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(12, 5))
    text = image + 0.8 * rng.normal(size=(12, 5))
    out = alignment_metrics.retrieval_recalls(image, text)
    iu = image / np.linalg.norm(image, axis=1, keepdims=True)
    tu = text / np.linalg.norm(text, axis=1, keepdims=True)
    for k in (1, 5, 10):
        assert out["image_to_text"][f"R@{k}"] == pytest.approx(
            _recall_reference(iu @ tu.T, k)
        )
        assert out["text_to_image"][f"R@{k}"] == pytest.approx(
            _recall_reference(tu @ iu.T, k)
        )


def test_batched_concatenates_slices():
    seen = []

    def fn(rows):
        seen.append(rows)
        return np.arange(10)[rows] * 2

    out = alignment_metrics.batched(fn, 10, batch_size=4)
    np.testing.assert_array_equal(out, np.arange(10) * 2)
    assert len(seen) == 3


def test_split_masked_word_recall_scores_the_prepared_masks():
    prior = FakePrior()
    split = splits.prepare_split(batches(20), prior, seed=2, verbose=0)
    ids = split["token_ids"]

    def oracle(rows, mask, k):
        # Predicts the true token at every position: recall 100 %.
        return np.eye(40, dtype="float32")[ids[rows]]

    out = alignment_metrics.split_masked_word_recall(split, oracle, 3)
    enough = split["padding_mask"].sum(1) - 2 >= 3
    assert out["masked_tokens"] == 3 * enough.sum()
    assert out["recall_at_1"] == 100.0 and out["correct"] == out[
        "masked_tokens"
    ]
    tampered = dict(split, mask_seed=split["mask_seed"] + 1)
    with pytest.raises(RuntimeError, match="same seed"):
        alignment_metrics.split_masked_word_recall(tampered, oracle, 3)


def test_split_relation_mse_is_zero_for_words_as_codes():
    # Visual tokens and codes equal to the word features themselves: each
    # word matches its own copy, so the relations agree exactly.
    prior = FakePrior()
    split = splits.prepare_split(batches(8), prior, verbose=0)
    words = split["token_features"].astype("float32")
    out = alignment_metrics.split_relation_mse(
        split, lambda r: words[r], lambda r: words[r]
    )
    assert out["all"] == pytest.approx(0.0, abs=1e-6)
    assert out["valid"] == pytest.approx(0.0, abs=1e-6)

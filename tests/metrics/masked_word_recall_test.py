import numpy as np
import pytest

from keras_lgvq.metrics.masked_word_recall import masked_word_recall_at_1
from keras_lgvq.metrics.masked_word_recall import select_masked_positions

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

SOT, EOT, V = 49, 48, 50


def _captions(lengths, context=30, seed=0):
    """Token rows `[SOT] + caption + [EOT] + padding(0)`; truncation as in
    CLIP: at most `context - 2` caption tokens, EOT last."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((len(lengths), context), np.int32)
    for i, n in enumerate(lengths):
        n = min(n, context - 2)
        rows[i, 0] = SOT
        rows[i, 1 : n + 1] = rng.integers(1, 40, n)
        rows[i, n + 1] = EOT
    return rows


@pytest.mark.parametrize("num_masked", [1, 3])
def test_selection_rules(num_masked):
    tokens = _captions([5, 1, 2, 3, 28, 40, 12], seed=1)
    valid = tokens != 0
    mask = select_masked_positions(tokens, num_masked=num_masked, seed=7)
    assert mask.dtype == bool and mask.shape == tokens.shape
    eot = valid.sum(1) - 1
    for row, m in enumerate(mask):
        caption_len = eot[row] - 1
        picked = np.flatnonzero(m)
        if caption_len < num_masked:
            assert picked.size == 0  # too short: left out, not masked less
            continue
        assert picked.size == num_masked
        assert picked.min() >= 1 and picked.max() < eot[row]  # no SOT / EOT
        assert picked.max() <= 28
        assert np.all(valid[row, picked])
    # Deterministic under the seed, different for another seed.
    again = select_masked_positions(tokens, num_masked=num_masked, seed=7)
    np.testing.assert_array_equal(mask, again)
    many = np.repeat(tokens[4:5], 64, axis=0)
    a = select_masked_positions(many, num_masked=num_masked, seed=1)
    b = select_masked_positions(many, num_masked=num_masked, seed=2)
    assert not np.array_equal(a, b)


def test_positions_cover_candidates_uniformly_and_max_position():
    tokens = np.repeat(_captions([40]), 4000, axis=0)  # truncated: 1..28
    mask = select_masked_positions(tokens, num_masked=3, seed=0)
    counts = mask.sum(0)
    assert counts[0] == 0 and counts[29] == 0
    assert np.all(counts[1:29] > 0)
    expected = 4000 * 3 / 28
    assert np.all(np.abs(counts[1:29] - expected) < 6 * np.sqrt(expected))
    limited = select_masked_positions(
        tokens, num_masked=1, seed=0, max_position=5
    )
    assert np.flatnonzero(limited.sum(0)).tolist() == [1, 2, 3, 4, 5]
    # Without the limit a long (77-token) row can use later positions too.
    long_rows = np.repeat(_captions([60], context=77), 500, axis=0)
    free = select_masked_positions(
        long_rows, num_masked=1, seed=0, max_position=None
    )
    assert free.sum(0)[29:61].sum() > 0 and free.sum(0)[61:].sum() == 0


def test_explicit_padding_mask_is_used():
    tokens = _captions([6, 6])
    padding = tokens != 0
    padding[1, 5:] = False  # row 1 really ends at 4 (EOT position)
    mask = select_masked_positions(tokens, padding, num_masked=3, seed=0)
    assert np.all(np.flatnonzero(mask[1]) < 4)


def _fake_predict(right_rows):
    """Predicts the true token at masked positions of `right_rows`, a wrong
    one elsewhere; unmasked positions always get the wrong answer."""

    def predict_fn(batch, mask):
        tokens = batch["token_ids"]
        wrong = (tokens + 1) % V
        row_ok = np.isin(batch["row_id"], right_rows)[:, None]
        target = np.where(mask & row_ok, tokens, wrong)
        return np.eye(V, dtype="float32")[target]

    return predict_fn


@pytest.mark.parametrize("num_masked", [1, 3])
def test_recall_on_known_subset(num_masked):
    lengths = [8, 12, 2, 20, 30, 5, 7, 9, 1, 15]
    tokens = _captions(lengths, seed=3)
    batches = [
        {"token_ids": tokens[:4], "row_id": np.arange(4)},
        {"token_ids": tokens[4:], "row_id": np.arange(4, 10)},
    ]
    right = [0, 3, 4, 9]
    recall, correct, total = masked_word_recall_at_1(
        _fake_predict(right),
        batches,
        num_masked=num_masked,
        seed=5,
        return_counts=True,
    )
    caption_len = np.minimum(lengths, 28)
    counted = caption_len >= num_masked
    assert total == num_masked * counted.sum()
    assert correct == num_masked * counted[right].sum()
    assert recall == pytest.approx(100.0 * correct / total)
    # The same seed gives the same masks (and the same recall).
    again = masked_word_recall_at_1(
        _fake_predict(right), batches, num_masked=num_masked, seed=5
    )
    assert again == recall


def test_recall_validation():
    tokens = _captions([4])
    with pytest.raises(ValueError, match="logits of shape"):
        masked_word_recall_at_1(
            lambda b, m: np.zeros((1, 30)), [{"token_ids": tokens}], 1
        )
    with pytest.raises(ValueError, match="dict with key"):
        masked_word_recall_at_1(lambda b, m: None, [tokens], 1)
    with pytest.raises(ValueError, match="nothing was evaluated"):
        masked_word_recall_at_1(
            lambda b, m: np.zeros((1, 30, V)),
            [{"token_ids": _captions([2])}],
            3,
        )
    with pytest.raises(ValueError, match="num_masked"):
        select_masked_positions(tokens, num_masked=0)

import numpy as np
import pytest
from scipy import stats

from keras_lgvq.evaluation import masking
from keras_lgvq.layers.guidance import masked_text_decoder
from keras_lgvq.metrics.masked_word_recall import masked_word_recall_at_1
from tests.evaluation.fakes import captions


def test_training_masks_skip_special_tokens_and_never_empty():
    ids, pad = captions(400)
    mask = masking.sample_training_masks(pad, seed=1)
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
    assert np.array_equal(mask, masking.sample_training_masks(pad, seed=1))
    assert not np.array_equal(mask, masking.sample_training_masks(pad, 2))


def test_training_mask_ratios_follow_the_mtp_distribution():
    # The ratios are the MTP layer's truncated normal (its defaults), checked
    # against scipy's truncnorm as the independent reference.
    mean = masked_text_decoder.MASK_RATIO_MEAN
    std = masked_text_decoder.MASK_RATIO_STD
    low = masked_text_decoder.MASK_RATIO_MIN
    high = masked_text_decoder.MASK_RATIO_MAX
    assert (mean, std, low, high) == (0.5, 0.1, 0.1, 0.3)
    ratios = masking._mask_ratios(np.random.default_rng(0), 4000)
    assert ratios.min() >= low and ratios.max() <= high
    reference = stats.truncnorm(
        (low - mean) / std, (high - mean) / std, loc=mean, scale=std
    )
    assert stats.kstest(ratios, reference.cdf).pvalue > 1e-3


def test_training_masks_reject_bad_input():
    with pytest.raises(ValueError, match="padding_mask"):
        masking.sample_training_masks(np.ones(5, bool))


@pytest.mark.parametrize("num_masked", [1, 3])
def test_protocol_masks_equal_the_metric_draws(num_masked):
    ids, pad = captions(2 * masking.MASK_CHUNK + 5, seed=2)
    expected = masking.protocol_masks(ids, pad, num_masked, seed=7)
    seen = []

    def predict_fn(batch, mask):
        seen.append(mask)
        return np.zeros(batch["token_ids"].shape + (40,), "float32")

    chunks = [
        {"token_ids": ids[s : s + masking.MASK_CHUNK]}
        for s in range(0, len(ids), masking.MASK_CHUNK)
    ]
    masked_word_recall_at_1(
        predict_fn,
        chunks,
        num_masked=num_masked,
        seed=7,
        max_position=masking.MASK_MAX_POSITION,
    )
    np.testing.assert_array_equal(np.concatenate(seen), expected)
    enough = pad.sum(1) - 2 >= num_masked
    np.testing.assert_array_equal(expected.sum(1), num_masked * enough)


def test_mask_slots_reference():
    rng = np.random.default_rng(0)
    mask = rng.random((20, 9)) < 0.3
    mask[3] = False
    slots, valid = masking.mask_slots(mask)
    assert slots.shape[1] == max(mask.sum(1).max(), 1)
    for row in range(len(mask)):
        positions = list(np.nonzero(mask[row])[0])
        assert list(slots[row][valid[row]]) == positions
        assert valid[row].sum() == len(positions)
    assert not slots[~valid].any()

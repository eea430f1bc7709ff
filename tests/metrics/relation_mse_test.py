import keras
import numpy as np
import pytest

from keras_lgvq.metrics.relation_mse import code_word_relation_mse
from keras_lgvq.metrics.relation_mse import match_codes_to_words


def np_relation_mse(words, codes, valid, scores=None, reduction="all"):
    """Loop-by-loop reference of LG-VQ's relation loss (lgvq-spec §5)."""
    b, length, _ = words.shape
    sq = np.zeros((b, length, length))
    for n in range(b):
        for i in range(length):
            for j in range(length):
                if not (valid[n, i] and valid[n, j]):
                    continue  # both matrices are 0 there
                ti, tj = words[n, i], words[n, j]
                gi, gj = codes[n, i].copy(), codes[n, j].copy()
                if scores is not None:
                    gi *= scores[n, i]
                    gj *= scores[n, j]
                q = ti @ tj / np.linalg.norm(ti) / np.linalg.norm(tj)
                p = gi @ gj / np.linalg.norm(gi) / np.linalg.norm(gj)
                sq[n, i, j] = (p - q) ** 2
    if reduction == "all":
        return sq.mean()
    pairs = sum(int(v.sum()) ** 2 for v in valid)
    return sq.sum() / pairs


def _data(seed=0, b=3, length=7, e=6, d=5):
    rng = np.random.default_rng(seed)
    words = rng.standard_normal((b, length, e)).astype("float32")
    codes = rng.standard_normal((b, length, d)).astype("float32")
    lengths = [7, 4, 2]
    valid = np.arange(length)[None, :] < np.array(lengths)[:, None]
    words = words * valid[..., None]  # padding rows are zero, as in CLIP
    scores = rng.uniform(-1, 1, (b, length)).astype("float32")
    return words, codes, valid, scores


@pytest.mark.parametrize("reduction", ["all", "valid"])
def test_matches_numpy_reference(reduction):
    words, codes, valid, scores = _data()
    for s in (None, scores):
        got = code_word_relation_mse(
            words, codes, valid, match_scores=s, reduction=reduction
        )
        want = np_relation_mse(words, codes, valid, s, reduction)
        assert float(got) == pytest.approx(want, rel=1e-5)
    none = keras.ops.convert_to_numpy(
        code_word_relation_mse(words, codes, valid, reduction="none")
    )
    assert none.shape == (3, 7, 7)
    assert float(none.mean()) == pytest.approx(
        np_relation_mse(words, codes, valid), rel=1e-5
    )


def test_codes_equal_to_words_give_zero():
    words, _, valid, _ = _data(e=5)
    assert float(code_word_relation_mse(words, 3.0 * words, valid)) == (
        pytest.approx(0.0, abs=1e-6)
    )


def test_matching_picks_argmax_position():
    rng = np.random.default_rng(1)
    b, length, n, e, d = 2, 4, 9, 6, 3
    visual = rng.standard_normal((b, n, e)).astype("float32")
    target = rng.integers(0, n, (b, length))
    # Words point almost exactly at their target visual tokens.
    words = np.take_along_axis(visual, target[..., None], axis=1)
    words = words * 5.0 + 0.01 * rng.standard_normal((b, length, e))
    codes = rng.standard_normal((b, n, d)).astype("float32")
    matched, scores = match_codes_to_words(
        words.astype("float32"), visual, codes
    )
    matched = keras.ops.convert_to_numpy(matched)
    scores = keras.ops.convert_to_numpy(scores)
    np.testing.assert_allclose(
        matched, np.take_along_axis(codes, target[..., None], axis=1), rtol=1e-6
    )
    assert np.all(scores > 0.99)


def test_validation():
    words, codes, valid, _ = _data()
    with pytest.raises(ValueError, match="reduction"):
        code_word_relation_mse(words, codes, valid, reduction="sum")
    with pytest.raises(ValueError, match="padding_mask"):
        code_word_relation_mse(words, codes, valid[:, :3])
    with pytest.raises(ValueError, match="word_features"):
        match_codes_to_words(words[0], words, codes)

"""`text_batch_problems` / `check_text_batch`: the caption-batch contract."""

import re

import numpy as np
import pytest
from keras import ops

from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX
from keras_lgvq.utils.validation import check_text_batch
from keras_lgvq.utils.validation import text_batch_problems

IDS = np.array([[1, 5, 2, 0], [1, 6, 7, 2]], "int32")
MASK = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)


def test_a_valid_batch_has_no_problems():
    assert text_batch_problems(IDS, MASK, 8) == []
    assert text_batch_problems(IDS, MASK.astype("int32"), 8) == []
    check_text_batch(ops.convert_to_tensor(IDS), ops.convert_to_tensor(MASK),
                     8, sequence_length=4)


@pytest.mark.parametrize(
    "ids, mask, match",
    [
        ([[1, 8, 2, 0]], [[1, 1, 1, 0]], r"from 0 to 8 \(rows \[0\]\)"),
        ([[1, -1, 2, 0]], [[1, 1, 1, 0]], "written as -1"),
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]], r"rows \[0\] are all padding"),
        ([[0, 1, 5, 2]], [[0, 1, 1, 1]], "prefix of ones"),
        ([[1, 5, 2, 0]], [[1, 0, 1, 0]], "prefix of ones"),
        ([[1, 5, 2, 0]], [[2, 1, 1, 0]], "boolean"),
    ],
)
def test_each_problem_is_named(ids, mask, match):
    problems = text_batch_problems(np.array(ids), np.array(mask), 8)
    assert any(re.search(match, p) for p in problems), problems
    with pytest.raises(ValueError, match=TEXT_CHECK_PREFIX):
        check_text_batch(
            ops.convert_to_tensor(np.array(ids, "int32")),
            ops.convert_to_tensor(np.array(mask, "int32")),
            8,
        )


def test_static_problems_raise_at_once():
    with pytest.raises(ValueError, match="sequence_length=3"):
        check_text_batch(IDS, MASK, 8, sequence_length=3)
    with pytest.raises(ValueError, match=r"shape \(B, L\)"):
        check_text_batch(IDS[0], MASK[0], 8)
    with pytest.raises(ValueError, match=r"shape \(B, L\)"):
        check_text_batch(IDS, MASK[:, :3], 8)
    with pytest.raises(ValueError, match="integer token ids"):
        check_text_batch(IDS.astype("float32"), MASK, 8)

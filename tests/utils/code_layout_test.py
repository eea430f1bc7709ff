"""The code-index layout helpers (flattened ids of sub-codebooks)."""

import numpy as np
import pytest

from keras_lgvq.utils import code_layout

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

LAYOUT = [("adjective", 6, 2), ("noun", 5, 1)]


def test_flatten_offsets_each_slot_and_unflatten_inverts_it():
    rng = np.random.default_rng(0)
    local = np.concatenate(
        [rng.integers(0, 6, (3, 4, 4, 2)), rng.integers(0, 5, (3, 4, 4, 1))],
        axis=-1,
    ).astype("int32")
    flat = code_layout.flatten_code_ids(local, LAYOUT)
    # Independent reference: nouns move past the 6 adjective codes.
    expected = local.astype("int64").copy()
    expected[..., 2] += 6
    np.testing.assert_array_equal(flat, expected)
    assert flat.min() >= 0 and flat.max() < 11
    np.testing.assert_array_equal(
        code_layout.unflatten_code_ids(flat, LAYOUT), local
    )
    assert code_layout.index_depth(LAYOUT) == 3
    assert code_layout.total_codes(LAYOUT) == 11
    assert code_layout.part_ranges(LAYOUT) == {
        "adjective": (0, 6),
        "noun": (6, 11),
    }
    np.testing.assert_array_equal(code_layout.slot_offsets(LAYOUT), [0, 0, 6])
    np.testing.assert_array_equal(code_layout.slot_sizes(LAYOUT), [6, 6, 5])


def test_layout_errors_name_the_slot_and_range():
    good = np.array([[5, 0, 4]], "int32")
    code_layout.check_code_layout(good, LAYOUT)
    with pytest.raises(ValueError, match="trailing index axis of 3"):
        code_layout.flatten_code_ids(np.zeros((2, 2), "int32"), LAYOUT)
    with pytest.raises(
        ValueError, match=r"adjective ids\) must lie in \[0, 6\)"
    ):
        code_layout.flatten_code_ids(np.array([[6, 0, 0]]), LAYOUT)
    with pytest.raises(ValueError, match=r"noun ids\) must lie in \[0, 5\)"):
        code_layout.flatten_code_ids(np.array([[0, 0, 5]]), LAYOUT)
    with pytest.raises(ValueError, match="integer"):
        code_layout.flatten_code_ids(good.astype("float32"), LAYOUT)
    # A flattened noun id in the adjective range is not a noun.
    with pytest.raises(ValueError, match=r"flattened noun ids in \[6, 11\)"):
        code_layout.unflatten_code_ids(np.array([[0, 1, 2]]), LAYOUT)


def test_normalize_validates_the_description():
    parts = code_layout.normalize_sub_codebooks(
        [{"name": "adjective", "size": 6, "slots": 2}, ("noun", 5, 1)]
    )
    assert parts == (
        code_layout.SubCodebook("adjective", 6, 2),
        code_layout.SubCodebook("noun", 5, 1),
    )
    assert code_layout.normalize_sub_codebooks(None) is None
    for bad, message in (
        ([], "at least one"),
        ([("a", 0, 1)], "size of sub-codebook 'a'"),
        ([("a", 3, 1), ("a", 2, 1)], "unique"),
        ("adjective", "sequence"),
        ([("a", 3)], r"\(name, size, slots\)"),
    ):
        with pytest.raises(ValueError, match=message):
            code_layout.normalize_sub_codebooks(bad)


def test_sub_codebooks_of_reads_a_tokenizer_or_its_model():
    class Tokenizer:
        sub_codebooks = LAYOUT

    class Model:
        backbone = Tokenizer()

    assert code_layout.sub_codebooks_of(Model())[1].name == "noun"
    assert code_layout.sub_codebooks_of(object()) is None

"""The restricted reader of pickled filename lists never unpickles."""

import os
import pickle

import pytest

from keras_lgvq.datasets.safe_pickle import read_filename_list
from keras_lgvq.datasets.safe_pickle import safe_load_string_list

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

NAMES = ["0", "27869", "Black_Footed_Albatross_0046_18", "naïve é", "a" * 300]

CALLED = []


def _side_effect(*args):
    CALLED.append(args)
    return "x"


class Evil:
    def __reduce__(self):
        return (_side_effect, ("pwned",))


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("container", [list, tuple])
def test_every_protocol(protocol, container):
    data = pickle.dumps(container(NAMES), protocol=protocol)
    assert safe_load_string_list(data) == NAMES


def test_memo_references_and_empty():
    # The same string twice is pickled once and fetched from the memo.
    s = "shared_name"
    assert safe_load_string_list(pickle.dumps([s, s, "x"], protocol=2)) == [
        s,
        s,
        "x",
    ]
    assert safe_load_string_list(pickle.dumps([], protocol=4)) == []


def test_python2_byte_strings():
    # Python 2 `pickle.dump(['abc', 'de'], f, 2)`: SHORT_BINSTRING opcodes.
    data = b"\x80\x02]q\x00(U\x03abcq\x01U\x02deq\x02e."
    assert safe_load_string_list(data) == ["abc", "de"]
    # Protocol 0 (text) from Python 2: STRING opcodes.
    data0 = b"(lp0\nS'abc'\np1\naS'de'\np2\na."
    assert safe_load_string_list(data0) == ["abc", "de"]
    # Latin-1 bytes that are not UTF-8 still decode.
    data_latin = b"\x80\x02]q\x00U\x04caf\xe9a."
    assert safe_load_string_list(data_latin) == ["caf\xe9"]


@pytest.mark.parametrize(
    "value",
    [
        [Evil()],
        Evil(),
        {"a": "b"},
        ["a", 1],
        [["nested"]],
        "just a string",
        [b"bytes" * 0 + b"x", None],
    ],
)
def test_rejects_everything_else_without_running_it(value):
    CALLED.clear()
    data = pickle.dumps(value, protocol=2)
    with pytest.raises(ValueError, match="list of strings"):
        safe_load_string_list(data, path="filenames.pickle")
    assert CALLED == []
    # A plain unpickle would have run the payload.
    if isinstance(value, list) and value and isinstance(value[0], Evil):
        pickle.loads(data)
        assert CALLED == [("pwned",)]


def test_rejects_numpy_arrays_and_garbage():
    import numpy as np
    with pytest.raises(ValueError, match="opcode"):
        safe_load_string_list(pickle.dumps(np.array(["a", "b"])))
    with pytest.raises(ValueError, match="list of strings"):
        safe_load_string_list(b"not a pickle at all")
    with pytest.raises(ValueError, match="list of strings"):
        safe_load_string_list(pickle.dumps(["a", "b"])[:-3])


def test_read_filename_list(tmp_path):
    pickled = tmp_path / "filenames.pickle"
    pickled.write_bytes(pickle.dumps(["  a  ", "b"], protocol=3))
    assert read_filename_list(str(pickled)) == ["a", "b"]
    text = tmp_path / "filenames.txt"
    text.write_text("a\n\n b \r\nc\n", encoding="utf-8")
    assert read_filename_list(text) == ["a", "b", "c"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty.txt.*non-empty list"):
        read_filename_list(empty)
    with pytest.raises(FileNotFoundError, match="missing.pickle"):
        read_filename_list(os.path.join(tmp_path, "missing.pickle"))
    bad = tmp_path / "bad.pickle"
    bad.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="bad.pickle"):
        read_filename_list(bad)
    binary = tmp_path / "list.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="UTF-8"):
        read_filename_list(binary)

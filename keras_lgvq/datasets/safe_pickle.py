"""Restricted reader of the `.pickle` filename lists some datasets ship.

Upstream releases (AttnGAN-style `filenames.pickle`, the LG-VQ TextCaps
lists) store a plain list of strings. Unpickling runs arbitrary code, so this
module never calls `pickle.load`: it walks the opcode stream with
`pickletools.genops` (a parser that executes nothing) and rebuilds only
lists and tuples of strings. Any other opcode (globals, calls, objects,
numbers, dicts...) is rejected.
"""

import os
import pickletools

# Opcodes that push a string (str or bytes; Python 2 pickles use bytes).
_STRING_OPCODES = {
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "BINUNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
    "BINBYTES",
    "SHORT_BINBYTES",
    "BINBYTES8",
}
_PUT_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPCODES = {"GET", "BINGET", "LONG_BINGET"}
_IGNORED_OPCODES = {"PROTO", "FRAME"}


class _Mark:
    pass


_MARK = _Mark()


def _to_str(value, path):
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        # Python 2 `str` pickles are raw bytes; latin-1 never fails.
        return value.decode("latin-1")


def safe_load_string_list(data, path="<bytes>"):
    """Decode a pickled list (or tuple) of strings without unpickling.

    Args:
        data: bytes. The pickle stream.
        path: str. Name used in error messages.

    Returns:
        A list of str.

    Raises:
        ValueError: naming `path` when the stream holds anything other than
            one list or tuple of strings (or is not a pickle at all).

    Examples:

    ```python
    import pickle
    names = safe_load_string_list(pickle.dumps(["a", "b"]))
    ```
    """
    stack = []
    memo = {}
    result = None

    def pop_to_mark():
        items = []
        while stack:
            item = stack.pop()
            if item is _MARK:
                items.reverse()
                return items
            items.append(item)
        raise ValueError("MARK missing")

    try:
        for opcode, arg, _ in pickletools.genops(data):
            name = opcode.name
            if name in _IGNORED_OPCODES:
                continue
            if name in _STRING_OPCODES:
                stack.append(_to_str(arg, path))
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "LIST":
                stack.append(pop_to_mark())
            elif name == "TUPLE":
                stack.append(tuple(pop_to_mark()))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                if len(stack) < n:
                    raise ValueError("stack underflow")
                items = stack[-n:]
                del stack[-n:]
                stack.append(tuple(items))
            elif name == "APPEND":
                item = stack.pop()
                if not isinstance(stack[-1], list):
                    raise ValueError("APPEND to a non-list")
                stack[-1].append(item)
            elif name == "APPENDS":
                items = pop_to_mark()
                if not isinstance(stack[-1], list):
                    raise ValueError("APPENDS to a non-list")
                stack[-1].extend(items)
            elif name in _PUT_OPCODES:
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in _GET_OPCODES:
                stack.append(memo[arg])
            elif name == "STOP":
                if len(stack) != 1:
                    raise ValueError("malformed stream")
                result = stack.pop()
                break
            else:
                raise ValueError(f"opcode {name} is not allowed")
    except (ValueError, IndexError, KeyError) as error:
        raise ValueError(
            f"{path}: expected a pickled list of strings (read without "
            f"unpickling); rejected: {error}."
        ) from None
    if result is None:
        raise ValueError(
            f"{path}: expected a pickled list of strings; no STOP opcode found."
        )
    if not isinstance(result, (list, tuple)) or not all(
        isinstance(x, str) for x in result
    ):
        raise ValueError(
            f"{path}: expected a pickled list of strings; found a "
            f"{type(result).__name__} holding other values."
        )
    return list(result)


def read_filename_list(path):
    """Read a list of file names from a `.pickle` or a plain text file.

    A file whose name ends in `.pickle` / `.pkl` is decoded with
    `safe_load_string_list`; any other file is read as UTF-8 text with one
    name per line (blank lines skipped).

    Args:
        path: str. The list file.

    Returns:
        A list of str with surrounding whitespace removed.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is malformed or lists no names.

    Examples:

    ```python
    stems = read_filename_list("celeba_hq/train/filenames.pickle")
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: file not found (expected a list of file names)."
        )
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith((".pickle", ".pkl")):
        names = safe_load_string_list(data, path)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"{path}: expected UTF-8 text with one file name per line."
            ) from None
        names = text.splitlines()
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ValueError(
            f"{path}: expected a non-empty list of file names; found none."
        )
    return names

"""Restricted reader of pickles holding plain data and torch/numpy arrays.

The official VQCT prior (`big_nlp_word_knowledge_clip.pkl`) is a pickled
dict of word lists, count dicts, edge tuples and torch tensors. Unpickling
runs arbitrary code, so this module never calls `pickle.load`: like
`keras_lgvq.datasets.safe_pickle` it walks the opcode stream with
`pickletools.genops` (a parser that executes nothing) and builds only

- `None`, bools, ints, floats, str, bytes, lists, tuples and dicts;
- `collections.OrderedDict()` (torch pickles an empty one per tensor);
- torch tensors: `torch._utils._rebuild_tensor_v2` over a storage written
  by `torch.storage._load_from_bytes` (a nested legacy `torch.save`
  stream, itself read by this module); Float/Half/Double/BFloat16 storages,
  CPU or CUDA, become float32 numpy arrays;
- numpy arrays of a float or int dtype (`numpy.core.multiarray._reconstruct`
  + `BUILD`, or protocol 5's `numpy.core.numeric._frombuffer`), for files
  whose vectors were converted to numpy;
- `_codecs.encode(text, "latin1")`, which protocol 2 uses for bytes.

Any other global, and any opcode outside that subset, is rejected with a
`ValueError` naming the file before anything is built from it.
"""

import collections
import io
import pickletools
import struct

import numpy as np

# Legacy (non-zip) torch.save: magic number and protocol of its header.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "DoubleStorage": "<f8",
    # numpy has no bfloat16: the 16 bits are widened to float32 below.
    "BFloat16Storage": "<u2",
}
_STORAGE_MODULES = ("torch", "torch.cuda")
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC_MODULES = ("numpy.core.numeric", "numpy._core.numeric")

_STRING_OPCODES = {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
# Python 2 `str` pickles: decoded as UTF-8, else latin-1 (never fails).
_PY2_STRING_OPCODES = {"STRING", "BINSTRING", "SHORT_BINSTRING"}
_BYTES_OPCODES = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}
_NUMBER_OPCODES = {
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "FLOAT",
    "BINFLOAT",
}
_PUT_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPCODES = {"GET", "BINGET", "LONG_BINGET"}


class _Mark:
    pass


_MARK = _Mark()


class _Global:
    """A resolved, allow-listed global: only its name is kept."""

    def __init__(self, module, name):
        self.module = module
        self.name = name

    def __repr__(self):
        return f"{self.module}.{self.name}"


class _Storage:
    """A torch storage read from a nested legacy stream."""

    def __init__(self, type_name, data):
        self.type_name = type_name
        self.data = data  # 1-D numpy array of the storage's dtype


class _PendingArray:
    """`numpy.core.multiarray._reconstruct(...)` before its `BUILD`."""


class _NumpyDtype:
    def __init__(self, spec):
        self.spec = spec
        self.byte_order = None


class _Rejected(ValueError):
    pass


def _float32(data, type_name):
    if type_name == "BFloat16Storage":
        widened = data.astype("<u4") << 16
        return widened.view("<f4")
    return data.astype("float32")


def _rebuild_tensor(args):
    if len(args) < 4:
        raise _Rejected("malformed _rebuild_tensor_v2 arguments")
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, _Storage):
        raise _Rejected("a tensor must be built from a storage")
    if not (
        isinstance(offset, int)
        and isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(v, int) and v >= 0 for v in size + stride)
        and offset >= 0
    ):
        raise _Rejected("malformed tensor size / stride")
    data = storage.data
    extent = offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1
    if all(size) and extent > data.size:
        raise _Rejected("tensor view exceeds its storage")
    view = np.lib.stride_tricks.as_strided(
        data[offset:],
        shape=size,
        strides=tuple(st * data.itemsize for st in stride),
        writeable=False,
    )
    return _float32(np.array(view), storage.type_name)


def _build_numpy(state):
    # ndarray.__setstate__: (version, shape, dtype, is_fortran, raw bytes).
    if not (isinstance(state, tuple) and len(state) == 5):
        raise _Rejected("malformed numpy array state")
    _, shape, dtype, fortran, raw = state
    return _numpy_array(raw, dtype, shape, fortran)


def _numpy_array(raw, dtype, shape, fortran):
    if not isinstance(dtype, _NumpyDtype) or not isinstance(raw, bytes):
        raise _Rejected("numpy arrays must hold raw numeric bytes")
    spec = dtype.spec
    if not (isinstance(spec, str) and len(spec) >= 2 and spec[0] in "fiu"):
        raise _Rejected(f"numpy dtype {spec!r} is not allowed")
    order = dtype.byte_order if dtype.byte_order in ("<", ">") else "<"
    np_dtype = np.dtype(order + spec)
    if not isinstance(shape, tuple) or not all(
        isinstance(v, int) and v >= 0 for v in shape
    ):
        raise _Rejected("malformed numpy shape")
    count = int(np.prod(shape)) if shape else 1
    if len(raw) != count * np_dtype.itemsize:
        raise _Rejected("numpy array bytes do not match its shape")
    array = np.frombuffer(raw, dtype=np_dtype)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def _reduce(func, args):
    if not isinstance(func, _Global) or not isinstance(args, tuple):
        raise _Rejected("REDUCE of a non-allow-listed callable")
    key = (func.module, func.name)
    if key == ("collections", "OrderedDict"):
        if args:
            raise _Rejected("OrderedDict with arguments")
        return collections.OrderedDict()
    if key == ("torch.storage", "_load_from_bytes"):
        if len(args) != 1 or not isinstance(args[0], bytes):
            raise _Rejected("malformed _load_from_bytes arguments")
        return _read_legacy_storage(args[0])
    if key == ("torch._utils", "_rebuild_tensor_v2"):
        return _rebuild_tensor(args)
    if func.module in _NUMPY_MODULES and func.name == "_reconstruct":
        return _PendingArray()
    if func.module in _NUMERIC_MODULES and func.name == "_frombuffer":
        if len(args) != 4 or args[3] not in ("C", "F"):
            raise _Rejected("malformed _frombuffer arguments")
        return _numpy_array(args[0], args[1], args[2], args[3] == "F")
    if key == ("_codecs", "encode"):
        if (
            len(args) != 2
            or args[1] != "latin1"
            or not isinstance(args[0], str)
        ):
            raise _Rejected("malformed _codecs.encode arguments")
        return args[0].encode("latin-1")
    if key == ("numpy", "dtype"):
        if not args or not isinstance(args[0], str):
            raise _Rejected("malformed numpy dtype")
        return _NumpyDtype(args[0])
    raise _Rejected(f"calling {func!r} is not allowed")


def _build(obj, state):
    if isinstance(obj, _PendingArray):
        return _build_numpy(state)
    if isinstance(obj, _NumpyDtype):
        # dtype.__setstate__: (version, byte order, ...).
        if isinstance(state, tuple) and len(state) >= 2:
            obj.byte_order = state[1]
        return obj
    raise _Rejected("BUILD is only allowed for numpy arrays and dtypes")


def _allowed_global(module, name, storage_types):
    if (module, name) in (
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch.storage", "_load_from_bytes"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    ):
        return True
    if module in _NUMPY_MODULES and name == "_reconstruct":
        return True
    if module in _NUMERIC_MODULES and name == "_frombuffer":
        return True
    return (
        storage_types
        and module in _STORAGE_MODULES
        and (name in _STORAGE_DTYPES)
    )


def _load_one(stream, storage_types=False, persistent_load=None):
    """Interprets one pickle from `stream` (stops after its STOP)."""
    stack = []
    memo = {}

    def pop_to_mark():
        items = []
        while True:
            if not stack:
                raise _Rejected("MARK missing")
            item = stack.pop()
            if item is _MARK:
                items.reverse()
                return items
            items.append(item)

    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name in ("PROTO", "FRAME"):
            continue
        if name == "STOP":
            if len(stack) != 1:
                raise _Rejected("malformed stream")
            return stack.pop()
        if name in _STRING_OPCODES:
            stack.append(arg)
        elif name in _BYTES_OPCODES:
            stack.append(bytes(arg))
        elif name in _PY2_STRING_OPCODES:
            raw = arg if isinstance(arg, bytes) else arg.encode("latin-1")
            try:
                stack.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                stack.append(raw.decode("latin-1"))
        elif name in _NUMBER_OPCODES:
            stack.append(arg)
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name == "MARK":
            stack.append(_MARK)
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            pop_to_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "LIST":
            stack.append(pop_to_mark())
        elif name == "APPEND":
            item = stack.pop()
            if not isinstance(stack[-1], list):
                raise _Rejected("APPEND to a non-list")
            stack[-1].append(item)
        elif name == "APPENDS":
            items = pop_to_mark()
            if not isinstance(stack[-1], list):
                raise _Rejected("APPENDS to a non-list")
            stack[-1].extend(items)
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "TUPLE":
            stack.append(tuple(pop_to_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(stack) < n or any(x is _MARK for x in stack[-n:]):
                raise _Rejected("stack underflow")
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "DICT":
            items = pop_to_mark()
            stack.append(dict(zip(items[::2], items[1::2])))
        elif name == "SETITEM":
            value = stack.pop()
            key = stack.pop()
            if not isinstance(stack[-1], dict):
                raise _Rejected("SETITEM on a non-dict")
            stack[-1][key] = value
        elif name == "SETITEMS":
            items = pop_to_mark()
            if not isinstance(stack[-1], dict) or len(items) % 2:
                raise _Rejected("malformed SETITEMS")
            stack[-1].update(zip(items[::2], items[1::2]))
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, _, attr = arg.partition(" ")
            else:
                attr = stack.pop()
                module = stack.pop()
            if not (isinstance(module, str) and isinstance(attr, str)):
                raise _Rejected("malformed global")
            if not _allowed_global(module, attr, storage_types):
                raise _Rejected(f"global '{module}.{attr}' is not allowed")
            stack.append(_Global(module, attr))
        elif name == "REDUCE":
            args = stack.pop()
            func = stack.pop()
            stack.append(_reduce(func, args))
        elif name == "BUILD":
            state = stack.pop()
            stack[-1] = _build(stack[-1], state)
        elif name == "BINPERSID":
            if persistent_load is None:
                raise _Rejected("persistent ids are not allowed here")
            stack.append(persistent_load(stack.pop()))
        elif name in _PUT_OPCODES:
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in _GET_OPCODES:
            stack.append(memo[arg])
        else:
            raise _Rejected(f"opcode {name} is not allowed")
    raise _Rejected("no STOP opcode")


def _read_legacy_storage(data):
    """Reads `torch.save(storage, _use_new_zipfile_serialization=False)`."""
    stream = io.BytesIO(data)
    if _load_one(stream) != _LEGACY_MAGIC:
        raise _Rejected("nested storage is not a legacy torch stream")
    if _load_one(stream) != _LEGACY_PROTOCOL:
        raise _Rejected("unsupported legacy torch protocol")
    sys_info = _load_one(stream)
    if (
        not isinstance(sys_info, dict)
        or sys_info.get("little_endian") is not True
    ):
        raise _Rejected("only little-endian torch storages are supported")
    found = {}

    def persistent_load(pid):
        # ('storage', storage_type, key, location, numel, view_metadata)
        if not (
            isinstance(pid, tuple)
            and len(pid) == 6
            and pid[0] == "storage"
            and isinstance(pid[1], _Global)
            and pid[1].name in _STORAGE_DTYPES
            and isinstance(pid[2], str)
            and isinstance(pid[4], int)
            and pid[5] is None
        ):
            raise _Rejected(f"unsupported storage id {pid!r}")
        found[pid[2]] = (pid[1].name, pid[4])
        return pid[2]

    key = _load_one(stream, storage_types=True, persistent_load=persistent_load)
    keys = _load_one(stream)
    if not isinstance(key, str) or keys != [key]:
        raise _Rejected("a nested stream must hold exactly one storage")
    type_name, numel = found[key]
    header = stream.read(8)
    if len(header) != 8 or struct.unpack("<q", header)[0] != numel:
        raise _Rejected("storage size header does not match")
    dtype = np.dtype(_STORAGE_DTYPES[type_name])
    raw = stream.read(numel * dtype.itemsize)
    if len(raw) != numel * dtype.itemsize or stream.read(1):
        raise _Rejected("storage bytes are truncated or followed by data")
    return _Storage(type_name, np.frombuffer(raw, dtype=dtype))


def safe_load_data_pickle(data, path="<bytes>"):
    """Decodes a pickle of plain data and arrays without unpickling.

    Args:
        data: bytes. The pickle stream.
        path: str. Name used in error messages.

    Returns:
        The pickled object, with torch tensors and numpy arrays as float32
        (torch) or original-dtype (numpy) numpy arrays.

    Raises:
        ValueError: naming `path`, when the stream uses a global or opcode
            outside the allowed subset, or is malformed.

    Examples:

    ```python
    prior = safe_load_data_pickle(open("prior.pkl", "rb").read(), "prior.pkl")
    ```
    """
    stream = io.BytesIO(data)
    try:
        result = _load_one(stream)
    except (ValueError, IndexError, KeyError, TypeError, struct.error) as error:
        # TypeError: e.g. an unhashable dict key; struct.error / ValueError
        # also come from `genops` on a truncated or non-pickle stream.
        raise ValueError(
            f"{path}: not a pickle of plain data and tensors that can be "
            f"read without unpickling; rejected: {error}."
        ) from None
    if stream.read(1):
        raise ValueError(f"{path}: trailing bytes after the pickle.")
    return result

"""Set-up time fetch and conversion of the LPIPS v0.1 VGG linear heads.

The learned per-channel weights of LPIPS ("linear heads") ship inside the
`lpips==0.1.4` wheel on PyPI as `lpips/weights/v0.1/vgg.pth`, a legacy
(pre-zip) PyTorch pickle. This module downloads that wheel once with pip,
checks its sha256, reads the heads with a restricted unpickler that knows
only the three globals such a file needs (no torch import, nothing else
can be constructed) and stores them as a plain `.npz` in the keras_lgvq
cache. At run time `keras_lgvq.losses.lpips.LPIPS` reads only that `.npz`.

Run it once on a machine that can reach PyPI:

```
python -m keras_lgvq.losses.lpips_assets            # fetch with pip
python -m keras_lgvq.losses.lpips_assets --wheel lpips-0.1.4-py3-none-any.whl
```
"""

import argparse
import glob
import hashlib
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from keras_lgvq.utils.cache import cache_dir

LPIPS_VERSION = "0.1.4"
WHEEL_NAME = f"lpips-{LPIPS_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = (
    "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e"
)
WEIGHTS_MEMBER = "lpips/weights/v0.1/vgg.pth"
HEADS_FILENAME = "lpips_vgg_v0.1.npz"
HEAD_CHANNELS = (64, 128, 256, 512, 512)
# Sums of the five vgg v0.1 heads (offline-assets.md section 4): a checksum
# of the conversion, independent of the wheel hash.
HEAD_SUMS = (6.93, 8.86, 17.52, 51.52, 47.03)
FETCH_COMMAND = "python -m keras_lgvq.losses.lpips_assets"

# Magic number and protocol of torch's legacy (pre-1.6, non-zip) format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Storage classes the reader accepts, with their numpy dtypes.
_STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4")}
_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch", "FloatStorage"),
    ("collections", "OrderedDict"),
}


def heads_path(cache=None):
    """Return the path of the converted LPIPS heads (may not exist yet).

    Args:
        cache: string or None. Folder holding the `.npz`. Defaults to
            `keras_lgvq.utils.cache.cache_dir("lpips")`.

    Examples:

    ```python
    path = keras_lgvq.losses.lpips_assets.heads_path()
    ```
    """
    folder = cache if cache is not None else cache_dir("lpips")
    return os.path.join(folder, HEADS_FILENAME)


class _StorageType:
    """Stand-in for `torch.FloatStorage` (only its name is needed)."""

    def __init__(self, name):
        self.name = name


class _LegacyStorage:
    """A storage whose bytes are read after the main pickle."""

    def __init__(self, key, dtype, numel):
        self.key = key
        self.dtype = dtype
        self.numel = numel
        self.data = None


class _TensorRef:
    """Arguments of `_rebuild_tensor_v2`, resolved once storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def resolve(self):
        data = self.storage.data
        if data is None:
            raise pickle.UnpicklingError(
                f"Storage {self.storage.key!r} was never read."
            )
        if not self.size:
            return np.array(data[self.offset], dtype=np.float32)
        last = self.offset + sum(
            (n - 1) * s for n, s in zip(self.size, self.stride)
        )
        if self.offset < 0 or last >= data.size or min(self.stride) < 0:
            raise pickle.UnpicklingError("Tensor view exceeds its storage.")
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=tuple(self.size),
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view, dtype=np.float32)


def _rebuild_tensor_stub(storage, offset, size, stride, *rest):
    # rest = (requires_grad, backward_hooks[, metadata]); ignored.
    if not isinstance(storage, _LegacyStorage):
        raise pickle.UnpicklingError("Tensor must be built from a storage.")
    ints = (offset, *size, *stride)
    if not all(isinstance(v, int) for v in ints) or len(size) != len(stride):
        raise pickle.UnpicklingError("Malformed tensor arguments.")
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals of a legacy state dict."""

    def __init__(self, file, storages):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"Refusing to load global '{module}.{name}': only "
                f"{sorted('.'.join(g) for g in _ALLOWED_GLOBALS)} are allowed."
            )
        if name == "_rebuild_tensor_v2":
            return _rebuild_tensor_stub
        if name == "OrderedDict":
            import collections

            return collections.OrderedDict
        return _StorageType(name)

    def persistent_load(self, pid):
        # ('storage', storage_type, root_key, location, numel, view_metadata)
        if (
            not isinstance(pid, tuple)
            or len(pid) != 6
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
            or not isinstance(pid[2], str)
            or not isinstance(pid[4], int)
        ):
            raise pickle.UnpicklingError(f"Unsupported persistent id {pid!r}")
        if pid[5] is not None:
            raise pickle.UnpicklingError("Storage views are not supported.")
        dtype = _STORAGE_DTYPES.get(pid[1].name)
        if dtype is None:
            raise pickle.UnpicklingError(f"Unsupported storage {pid[1].name}")
        key = pid[2]
        if key not in self._storages:
            self._storages[key] = _LegacyStorage(key, dtype, pid[4])
        return self._storages[key]


def _plain_load(stream):
    # Header pickles hold only ints and dicts: no global is allowed at all.
    class _NoGlobals(pickle.Unpickler):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(
                f"Refusing to load global '{module}.{name}' in a header."
            )

    return _NoGlobals(stream).load()


def read_legacy_torch_pickle(data):
    """Read a legacy (non-zip) PyTorch `state_dict` file without torch.

    Only `torch._utils._rebuild_tensor_v2`, `torch.FloatStorage` and
    `collections.OrderedDict` may appear in the pickle; any other global
    raises `pickle.UnpicklingError` before anything is constructed.

    Args:
        data: bytes. The whole `.pth` file.

    Returns:
        An `OrderedDict` from parameter name to float32 numpy array.

    Examples:

    ```python
    state = read_legacy_torch_pickle(open("vgg.pth", "rb").read())
    ```
    """
    stream = io.BytesIO(data)
    if _plain_load(stream) != _LEGACY_MAGIC:
        raise pickle.UnpicklingError(
            "Not a legacy torch file (bad magic number); zip-format and "
            "tar-format checkpoints are not supported."
        )
    if _plain_load(stream) != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("Unsupported legacy torch protocol.")
    sys_info = _plain_load(stream)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian"):
        raise pickle.UnpicklingError("Only little-endian files are supported.")
    storages = {}
    result = _RestrictedUnpickler(stream, storages).load()
    keys = _plain_load(stream)
    if not isinstance(keys, list) or sorted(keys) != sorted(storages):
        raise pickle.UnpicklingError("Storage key list does not match.")
    # Raw storages follow the pickles, in key-list order: an int64 element
    # count, then the little-endian element bytes.
    for key in keys:
        storage = storages[key]
        header = stream.read(8)
        if len(header) != 8:
            raise pickle.UnpicklingError("Truncated storage header.")
        (numel,) = struct.unpack("<q", header)
        if numel != storage.numel:
            raise pickle.UnpicklingError(
                f"Storage {key!r} holds {numel} elements, expected "
                f"{storage.numel}."
            )
        nbytes = numel * storage.dtype.itemsize
        raw = stream.read(nbytes)
        if len(raw) != nbytes:
            raise pickle.UnpicklingError(f"Storage {key!r} is truncated.")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    if stream.read(1):
        raise pickle.UnpicklingError("Trailing bytes after the storages.")
    if not isinstance(result, dict):
        raise pickle.UnpicklingError("The file does not hold a state dict.")
    import collections

    state = collections.OrderedDict()
    for name, value in result.items():
        if not isinstance(value, _TensorRef):
            raise pickle.UnpicklingError(f"Entry {name!r} is not a tensor.")
        state[name] = value.resolve()
    return state


def convert_heads(state):
    """Turn an lpips vgg state dict into five `(C,)` float32 head vectors.

    Args:
        state: dict. Maps `lin{i}.model.1.weight` to arrays of shape
            `(1, C, 1, 1)`.

    Returns:
        A list of five float32 arrays with 64, 128, 256, 512, 512 entries.

    Examples:

    ```python
    heads = convert_heads(read_legacy_torch_pickle(data))
    ```
    """
    heads = []
    for i, channels in enumerate(HEAD_CHANNELS):
        key = f"lin{i}.model.1.weight"
        if key not in state:
            raise ValueError(f"Missing `{key}` in the LPIPS state dict.")
        weight = np.asarray(state[key], dtype=np.float32)
        if weight.shape != (1, channels, 1, 1):
            raise ValueError(
                f"`{key}` has shape {weight.shape}, expected "
                f"(1, {channels}, 1, 1)."
            )
        heads.append(weight.reshape(channels))
    return heads


def check_heads(heads):
    """Assert the converted heads match the known vgg v0.1 checksums.

    Args:
        heads: list of five numpy arrays, as from `convert_heads`.

    Examples:

    ```python
    check_heads(convert_heads(state))
    ```
    """
    sums = [float(np.sum(h, dtype=np.float64)) for h in heads]
    for i, (got, want) in enumerate(zip(sums, HEAD_SUMS)):
        if abs(got - want) > 0.01:
            raise ValueError(
                f"LPIPS head {i} sums to {got:.4f}, expected {want}: the "
                "conversion is wrong or the file is not lpips vgg v0.1."
            )
    if any(np.any(h < 0) or not np.all(np.isfinite(h)) for h in heads):
        raise ValueError("LPIPS heads must be finite and non-negative.")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_heads_from_wheel(wheel):
    """Verify an `lpips==0.1.4` wheel and return its vgg v0.1 heads.

    Args:
        wheel: string. Path to `lpips-0.1.4-py3-none-any.whl`.

    Returns:
        A list of five float32 arrays (64, 128, 256, 512, 512 entries).

    Examples:

    ```python
    heads = read_heads_from_wheel("lpips-0.1.4-py3-none-any.whl")
    ```
    """
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise ValueError(
            f"`wheel` {wheel} has sha256 {digest}, expected {WHEEL_SHA256} "
            f"(lpips=={LPIPS_VERSION})."
        )
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(WEIGHTS_MEMBER)
    heads = convert_heads(read_legacy_torch_pickle(data))
    check_heads(heads)
    return heads


def _pip_download(folder):
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"lpips=={LPIPS_VERSION}",
        "-d",
        folder,
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` failed:\n{completed.stderr[-2000:]}\n"
            "On an offline machine, download the wheel elsewhere and pass "
            f"it with `{FETCH_COMMAND} --wheel <path>`."
        )
    found = glob.glob(os.path.join(folder, WHEEL_NAME))
    if not found:
        raise RuntimeError(f"pip did not produce {WHEEL_NAME} in {folder}.")
    return found[0]


def fetch_lpips_heads(cache=None, wheel=None):
    """Fetch `lpips==0.1.4`, convert its vgg v0.1 heads and cache a `.npz`.

    Downloads the wheel with `pip download --no-deps` unless `wheel` is
    given, checks its sha256, converts the heads, checks their sums and
    writes `lpips_vgg_v0.1.npz` (keys `lin0` ... `lin4`). The verified
    wheel is copied next to the `.npz` so tests can re-read it offline.

    Args:
        cache: string or None. Output folder; defaults to
            `keras_lgvq.utils.cache.cache_dir("lpips")`.
        wheel: string or None. A local `lpips-0.1.4-py3-none-any.whl` to
            use instead of downloading (for offline machines).

    Returns:
        The path of the written `.npz`.

    Examples:

    ```python
    path = keras_lgvq.losses.lpips_assets.fetch_lpips_heads()
    ```
    """
    folder = cache if cache is not None else cache_dir("lpips")
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            wheel = _pip_download(tmp)
        elif not os.path.isfile(wheel):
            raise FileNotFoundError(f"`wheel` {wheel} does not exist.")
        heads = read_heads_from_wheel(wheel)
        kept = os.path.join(folder, WHEEL_NAME)
        if os.path.abspath(wheel) != os.path.abspath(kept):
            shutil.copyfile(wheel, kept)
    out = heads_path(folder)
    # Write then rename so a reader never sees a half-written file.
    partial = out + ".partial.npz"
    np.savez(
        partial,
        **{f"lin{i}": h for i, h in enumerate(heads)},
        source=np.array(f"lpips=={LPIPS_VERSION}:{WEIGHTS_MEMBER}"),
    )
    os.replace(partial, out)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=None, help="output folder")
    parser.add_argument("--wheel", default=None, help="local lpips wheel")
    args = parser.parse_args(argv)
    path = fetch_lpips_heads(cache=args.cache, wheel=args.wheel)
    print(path)


if __name__ == "__main__":
    main()

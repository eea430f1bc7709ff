import collections
import io
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np
import pytest

from keras_lgvq.losses import lpips_assets
from keras_lgvq.utils.cache import cache_dir

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _find_wheel():
    """The lpips wheel as left by set-up: env var, cache or `.weights/`."""
    candidates = [
        os.environ.get("KERAS_LGVQ_LPIPS_WHEEL", ""),
        os.path.join(cache_dir("lpips"), lpips_assets.WHEEL_NAME),
        os.path.join(REPO_ROOT, ".weights", lpips_assets.WHEEL_NAME),
    ]
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    return None


@pytest.fixture
def wheel():
    path = _find_wheel()
    if path is None:
        pytest.skip(
            "lpips-0.1.4 wheel not available offline: run "
            f"`{lpips_assets.FETCH_COMMAND}` (or `pip download --no-deps -d "
            ".weights lpips==0.1.4`) during set-up"
        )
    return path


# --- Hand-assembled legacy torch files (pickle protocol 2 opcodes) -------


def _str(s):
    data = s.encode("utf8")
    return b"X" + struct.pack("<I", len(data)) + data


def _int(i):
    return b"J" + struct.pack("<i", i)


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tuple(*items):
    return b"(" + b"".join(items) + b"t"


def _tensor(key, numel, offset, size, stride):
    persistent_id = (
        _tuple(
            _str("storage"),
            _global("torch", "FloatStorage"),
            _str(key),
            _str("cpu"),
            _int(numel),
            b"N",
        )
        + b"Q"  # BINPERSID
    )
    args = _tuple(
        persistent_id,
        _int(offset),
        _tuple(*[_int(n) for n in size]),
        _tuple(*[_int(n) for n in stride]),
        b"\x89",  # requires_grad=False
        _global("collections", "OrderedDict") + b")R",  # backward hooks
    )
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _legacy_file(main_pickle, storages):
    header = b"".join(
        pickle.dumps(obj, protocol=2)
        for obj in (
            0x1950A86A20F9469CFC6C,
            1001,
            {
                "protocol_version": 1001,
                "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4},
            },
        )
    )
    keys = pickle.dumps(list(storages), protocol=2)
    raw = b"".join(
        struct.pack("<q", data.size) + data.astype("<f4").tobytes()
        for data in storages.values()
    )
    return header + main_pickle + keys + raw


def _handcrafted():
    storages = collections.OrderedDict(
        [("s0", np.arange(12, dtype="float32")), ("s1", np.ones(5, "f4"))]
    )
    storages["s1"][2:] = [7.0, 8.0, 9.0]
    main = (
        b"\x80\x02"
        + _global("collections", "OrderedDict")
        + b")R("
        + _str("a")
        + _tensor("s0", 12, 0, (3, 4), (4, 1))
        + _str("a_t")  # a transposed view of the same storage
        + _tensor("s0", 12, 0, (4, 3), (1, 4))
        + _str("c")  # a slice with a storage offset
        + _tensor("s1", 5, 2, (3,), (1,))
        + b"u."
    )
    expected = {
        "a": np.arange(12, dtype="float32").reshape(3, 4),
        "a_t": np.arange(12, dtype="float32").reshape(3, 4).T,
        "c": np.array([7.0, 8.0, 9.0], dtype="float32"),
    }
    return _legacy_file(main, storages), expected


def test_reader_on_handcrafted_legacy_file():
    data, expected = _handcrafted()
    state = lpips_assets.read_legacy_torch_pickle(data)
    assert list(state) == ["a", "a_t", "c"]
    for key, value in expected.items():
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], value)


def test_reader_rejects_truncated_and_foreign_files():
    data, _ = _handcrafted()
    with pytest.raises(pickle.UnpicklingError, match="truncated"):
        lpips_assets.read_legacy_torch_pickle(data[:-4])
    with pytest.raises(pickle.UnpicklingError, match="magic"):
        lpips_assets.read_legacy_torch_pickle(pickle.dumps(123, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="Trailing"):
        lpips_assets.read_legacy_torch_pickle(data + b"\x00")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_reader_refuses_other_globals(tmp_path):
    marker = tmp_path / "executed"
    evil = pickle.dumps(_Evil(marker), protocol=2)
    assert b"system" in evil  # it really references os.system / posix.system
    storages = collections.OrderedDict()
    # As the state-dict pickle of an otherwise valid legacy file.
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        lpips_assets.read_legacy_torch_pickle(_legacy_file(evil, storages))
    # As the very first (header) pickle.
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        lpips_assets.read_legacy_torch_pickle(evil)
    # Hidden inside an allowed container.
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        lpips_assets.read_legacy_torch_pickle(
            _legacy_file(
                b"\x80\x02"
                + _global("collections", "OrderedDict")
                + b")R("
                + _str("x")
                + _global("builtins", "eval")
                + _tuple(_str("1+1"))
                + b"Ru.",
                storages,
            )
        )
    assert not marker.exists()


def test_reader_matches_torch_legacy_save():
    torch = pytest.importorskip("torch")
    state = collections.OrderedDict(
        w=torch.randn(2, 3, 1, 1),
        t=torch.randn(5, 4).t(),
        s=torch.arange(10.0)[3:8],
    )
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=False)
    loaded = lpips_assets.read_legacy_torch_pickle(buffer.getvalue())
    assert list(loaded) == list(state)
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key].numpy())


def test_real_wheel_heads(wheel, tmp_path):
    heads = lpips_assets.read_heads_from_wheel(wheel)
    assert [h.shape for h in heads] == [
        (c,) for c in lpips_assets.HEAD_CHANNELS
    ]
    assert all(h.dtype == np.float32 and h.min() >= 0 for h in heads)
    np.testing.assert_allclose(
        [h.sum() for h in heads], lpips_assets.HEAD_SUMS, atol=0.01
    )

    path = lpips_assets.fetch_lpips_heads(cache=str(tmp_path), wheel=wheel)
    assert path == lpips_assets.heads_path(str(tmp_path))
    with np.load(path, allow_pickle=False) as data:
        for i, head in enumerate(heads):
            np.testing.assert_array_equal(data[f"lin{i}"], head)
    # The verified wheel is kept next to the heads for offline re-reads.
    assert os.path.isfile(tmp_path / lpips_assets.WHEEL_NAME)


def test_real_wheel_matches_torch(wheel):
    torch = pytest.importorskip("torch")
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(lpips_assets.WEIGHTS_MEMBER)
    reference = torch.load(
        io.BytesIO(data), map_location="cpu", weights_only=True
    )
    mine = lpips_assets.read_legacy_torch_pickle(data)
    assert list(mine) == list(reference)
    for key in reference:
        np.testing.assert_array_equal(mine[key], reference[key].numpy())


def test_fetch_runs_pip_download(wheel, tmp_path, monkeypatch):
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        folder = command[command.index("-d") + 1]
        with open(wheel, "rb") as src, open(
            os.path.join(folder, lpips_assets.WHEEL_NAME), "wb"
        ) as dst:
            dst.write(src.read())
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(lpips_assets.subprocess, "run", fake_run)
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    path = lpips_assets.fetch_lpips_heads()
    assert path == lpips_assets.heads_path()
    assert path.startswith(str(tmp_path))
    (command,) = calls
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and "lpips==0.1.4" in command

    def failing_run(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "no network")

    monkeypatch.setattr(lpips_assets.subprocess, "run", failing_run)
    with pytest.raises(RuntimeError, match="--wheel"):
        lpips_assets.fetch_lpips_heads(cache=str(tmp_path / "other"))


def test_main_with_local_wheel(wheel, tmp_path, capsys):
    lpips_assets.main(["--cache", str(tmp_path), "--wheel", wheel])
    out = capsys.readouterr().out.strip()
    assert out == lpips_assets.heads_path(str(tmp_path))
    assert os.path.isfile(out)


def test_wheel_checksum_and_conversion_checks(tmp_path):
    fake = tmp_path / lpips_assets.WHEEL_NAME
    fake.write_bytes(b"not a wheel")
    with pytest.raises(ValueError, match="sha256"):
        lpips_assets.read_heads_from_wheel(str(fake))
    with pytest.raises(FileNotFoundError):
        lpips_assets.fetch_lpips_heads(
            cache=str(tmp_path), wheel=str(tmp_path / "missing.whl")
        )

    state = {
        f"lin{i}.model.1.weight": np.full((1, c, 1, 1), s / c, "float32")
        for i, (c, s) in enumerate(
            zip(lpips_assets.HEAD_CHANNELS, lpips_assets.HEAD_SUMS)
        )
    }
    heads = lpips_assets.convert_heads(state)
    lpips_assets.check_heads(heads)  # sums match: no error
    heads[3] = heads[3] * 1.01
    with pytest.raises(ValueError, match="head 3"):
        lpips_assets.check_heads(heads)
    state["lin1.model.1.weight"] = np.zeros((1, 64, 1, 1), "float32")
    with pytest.raises(ValueError, match="lin1"):
        lpips_assets.convert_heads(state)
    del state["lin1.model.1.weight"]
    with pytest.raises(ValueError, match="Missing"):
        lpips_assets.convert_heads(state)

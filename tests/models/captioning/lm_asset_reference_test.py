"""Stage-2 models saved without their frozen language model (issue 12, issue
18 Deliver 6): a `.keras` file (and `save_weights` / training backups)
holds the mapper, heads and LoRA factors plus a reference to the LM asset
(source and sha256); loading re-attaches the LM from the asset and refuses
a different or missing file. A fully trained LM is still saved whole.

The tiny GGUF LM here is ~100x larger than the mapper, so each size bound
fails if the LM's weights are in the file.
"""

import os
import shutil
import zipfile

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models import CausalLM
from keras_lgvq.language_models import smollm2_assets
from keras_lgvq.models.captioning import Captioner
from keras_lgvq.models.captioning import MLPPrefixMapper
from keras_lgvq.models.vqa import VQAModel
from tests.models.captioning.tiny_lm import tiny_lm
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


CAPTIONS = ["red cube", "blue ball", "two dots", "green star"]
POSITIONS, CODE_DIM, K = 4, 8, 2
VOCAB = ["no", "yes", "red"]


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    # Wider than the other tests' tiny LM: ~300 KB of float32 weights
    # against a ~3 KB mapper.
    return write_tiny_lm_gguf(
        tmp_path_factory.mktemp("lm") / "tiny.gguf", hidden_dim=64,
        num_layers=2,
    )


def _vectors(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, POSITIONS, CODE_DIM)).astype("float32")


def _mapper(lm_dim):
    return MLPPrefixMapper(POSITIONS, CODE_DIM, K, lm_dim, hidden_dim=8,
                           name="mapper")


def _captioner(path, **kwargs):
    lm = tiny_lm(path)
    # No image tokenizer: `code_vectors` inputs, so the file holds the
    # mapper and whatever of the LM is saved, nothing else.
    return Captioner(_mapper(lm.hidden_dim), lm, max_caption_length=8,
                     **kwargs)


def _lm_bytes(model):
    return sum(
        int(np.prod(v.shape)) * 4 for v in model.language_model.backbone.weights
        if "lora_kernel" not in v.path
    )


def _trained(model, data):
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(data, epochs=2, batch_size=2, verbose=0)
    return model


def _weight_entries(path):
    with zipfile.ZipFile(path) as archive:
        return {i.filename: i.file_size for i in archive.infolist()}


@pytest.mark.parametrize("mode", ["frozen", "lora"])
def test_frozen_or_lora_captioner_file_leaves_the_lm_out(lm_path, tmp_path,
                                                         mode):
    kwargs = {"lora_rank": 2} if mode == "lora" else {}
    model = _captioner(lm_path, language_model_training=mode, **kwargs)
    data = model.prepare_inputs(CAPTIONS, code_vectors=_vectors())
    _trained(model, data)
    want = ops.convert_to_numpy(model(data))
    assert model.language_model.references_asset
    path = str(tmp_path / f"{mode}.keras")
    model.save(path)
    entries = _weight_entries(path)
    # Neither the LM's weights nor its tokenizer's vocabulary assets.
    assert os.path.getsize(path) < _lm_bytes(model) / 4, entries
    assert not any(name.startswith("assets/") for name in entries)
    config = model.get_config()["language_model"]["config"]
    assert config["source"] == lm_path
    assert config["asset_sha256"] == smollm2_assets.sha256_file(lm_path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(data)), want)
    assert loaded.language_model_training == mode
    if mode == "lora":
        # The trained factors themselves come back (not merged kernels).
        for a, b in zip(loaded.language_model.weights,
                        model.language_model.weights):
            np.testing.assert_array_equal(ops.convert_to_numpy(a),
                                          ops.convert_to_numpy(b))


def test_full_fine_tuning_still_saves_the_whole_lm(lm_path, tmp_path):
    model = _captioner(lm_path, language_model_training="full")
    data = model.prepare_inputs(CAPTIONS, code_vectors=_vectors())
    _trained(model, data)
    want = ops.convert_to_numpy(model(data))
    assert not model.language_model.references_asset
    path = str(tmp_path / "full.keras")
    model.save(path)
    # The bound the frozen test asserts would fail here.
    assert os.path.getsize(path) > _lm_bytes(model)
    assert model.get_config()["language_model"]["config"][
        "asset_sha256"] is None
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(data)), want)


def test_vqa_model_file_leaves_the_frozen_lm_out(lm_path, tmp_path):
    lm = tiny_lm(lm_path)
    model = VQAModel(_mapper(lm.hidden_dim), VOCAB, language_model=lm,
                     max_question_length=8)
    data = model.prepare_inputs(["is it red?", "what colour?"],
                                ["yes", "red"], code_vectors=_vectors(2))
    _trained(model, data)
    want = ops.convert_to_numpy(model(data))
    path = str(tmp_path / "vqa.keras")
    model.save(path)
    assert os.path.getsize(path) < _lm_bytes(model) / 4
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(data)), want)
    assert loaded.answer_vocabulary == VOCAB


def test_save_weights_and_backups_leave_the_frozen_lm_out(lm_path, tmp_path):
    model = _captioner(lm_path)
    data = model.prepare_inputs(CAPTIONS, code_vectors=_vectors())
    _trained(model, data)
    path = str(tmp_path / "state.weights.h5")
    model.save_weights(path)
    assert os.path.getsize(path) < _lm_bytes(model) / 4
    other = _captioner(lm_path)
    _trained(other, data)
    other.load_weights(path)
    np.testing.assert_array_equal(ops.convert_to_numpy(other(data)),
                                  ops.convert_to_numpy(model(data)))


def test_a_different_or_missing_asset_is_refused(lm_path, tmp_path):
    own = str(tmp_path / "own.gguf")
    shutil.copyfile(lm_path, own)
    model = _captioner(own)
    path = str(tmp_path / "model.keras")
    model.save(path)
    # Another LM of the same architecture at the same path: its weights
    # would load silently and give different captions.
    write_tiny_lm_gguf(own, hidden_dim=64, num_layers=2, seed=1)
    with pytest.raises(ValueError, match="sha256") as error:
        keras.saving.load_model(path, safe_mode=True)
    assert own in str(error.value)
    os.remove(own)
    with pytest.raises(FileNotFoundError, match="missing") as error:
        keras.saving.load_model(path, safe_mode=True)
    assert own in str(error.value)


def test_builtin_asset_mismatch_names_the_fetch_command():
    # Checked before anything is loaded: no asset needed.
    with pytest.raises(ValueError, match="sha256") as error:
        CausalLM(source="smollm2", asset_sha256="0" * 64)
    assert smollm2_assets.fetch_command() in str(error.value)
    with pytest.raises(ValueError, match="asset_sha256"):
        CausalLM(source="smollm2", asset_sha256="abc")

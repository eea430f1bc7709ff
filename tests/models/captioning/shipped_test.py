"""Shipped stage-2 model files (`keras_lgvq.models.captioning.shipped`):
written without the image tokenizer, read back with the tokenizer preset
attached, checked against the recorded sha256, refused when missing. A
tiny compact-vocabulary captioner over a tiny GGUF LM keeps it fast."""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models import compact_vocabulary
from keras_lgvq.models.captioning import Captioner
from keras_lgvq.models.captioning import MLPPrefixMapper
from keras_lgvq.models.captioning import shipped
from keras_lgvq.models.text_to_image import load_tokenizer
from keras_lgvq.models.vqgan.vqgan_presets import file_sha256
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


CAPTIONS = ["red cube", "blue ball"]


def _spec(directory):
    return {
        "tokenizer_preset": "scenes_lgvq_trained",
        "shipped_model": {"name": "tiny_captioner", "directory": directory,
                          "trained_by": "test"},
    }


def _model(lm_path):
    tokenizer = load_tokenizer("scenes_lgvq_trained")
    scratch = {"hidden_dim": 16, "num_layers": 1, "num_query_heads": 2,
               "num_key_value_heads": 2, "intermediate_dim": 32,
               "max_sequence_length": 64,
               "vocabulary_ids": compact_vocabulary(lm_path, CAPTIONS)}
    mapper = MLPPrefixMapper(
        int(tokenizer.grid_size) ** 2, int(tokenizer.quantizer.embedding_dim),
        2, 16, hidden_dim=8, projection_dim=2, name="mapper")
    return Captioner(mapper, lm_path, tokenizer=tokenizer, decoder="scratch",
                     decoder_config=scratch, max_caption_length=10)


def test_shipped_model_round_trip(tmp_path, monkeypatch):
    lm_path = write_tiny_lm_gguf(tmp_path / "tiny.gguf")
    keras.utils.set_random_seed(0)
    model = _model(lm_path)
    codes = np.random.default_rng(0).integers(0, 256, (2, 16, 16))
    data = model.prepare_inputs(CAPTIONS, codes=codes)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(data, epochs=2, verbose=0)
    monkeypatch.setattr(shipped, "PACKAGE_ROOT", str(tmp_path))
    spec = _spec("trained/tiny")
    target = os.path.join(tmp_path, "trained", "tiny")
    assert shipped.shipped_model_dir(spec) == target
    assert not shipped.is_installed(spec)
    with pytest.raises(FileNotFoundError, match="not installed"):
        shipped.load_shipped_model(Captioner, spec)
    config_path, weights_path = shipped.save_shipped_model(model, target)
    with open(config_path) as f:
        config = json.load(f)
    assert config["config"]["tokenizer"] is None
    lm_config = config["config"]["language_model"]["config"]
    assert lm_config["scratch"]["vocabulary_ids"] == (
        model.language_model.vocabulary_ids.tolist())
    # The image tokenizer's ~1 M weights are not in the file.
    assert os.path.getsize(weights_path) < 1_000_000  # tokenizer: 4.5 MB
    with open(os.path.join(target, shipped.SHIPPED_RECORD_FILE), "w") as f:
        json.dump({"weights_sha256": file_sha256(weights_path)}, f)
    assert shipped.is_installed(spec)
    loaded = shipped.load_shipped_model(Captioner, spec)
    # The tokenizer is the shipped preset's, frozen; the rest as trained.
    assert not loaded.tokenizer.trainable
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(data)),
                               ops.convert_to_numpy(model(data)), atol=1e-5)
    assert loaded.generate(codes=codes) == model.generate(codes=codes)
    # load_weights=False: the same architecture, untrained.
    fresh = shipped.load_shipped_model(Captioner, spec, load_weights=False)
    assert fresh.count_params() == loaded.count_params()
    assert not np.allclose(ops.convert_to_numpy(fresh(data)),
                           ops.convert_to_numpy(model(data)), atol=1e-3)
    with pytest.raises(ValueError, match="not a VQAModel"):
        from keras_lgvq.models.vqa import VQAModel

        shipped.load_shipped_model(VQAModel, spec)
    with pytest.raises(ValueError, match="do not pass `tokenizer=`"):
        shipped.load_shipped_model(Captioner, spec,
                                   tokenizer="scenes_vqgan_trained")
    with open(weights_path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="not the file trained"):
        shipped.load_shipped_model(Captioner, spec)

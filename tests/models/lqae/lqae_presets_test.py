"""LQAE / VQAE presets: offline scenes_lqae, imagenet_lqae without RoBERTa."""

import numpy as np
import pytest
from keras import ops

from keras_lgvq.language_models.masked_lm import MaskedLanguageModel
from keras_lgvq.layers.quantizers.frozen_vocabulary_quantizer import (
    FrozenVocabularyQuantizer,
)
from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from keras_lgvq.models import LQAE
from keras_lgvq.models import LQAEBackbone
from keras_lgvq.models import presets
from tests.models.lqae.tiny_lqae import tiny_images

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


NAMES = ("imagenet_lqae", "scenes_lqae", "imagenet_vqae", "scenes_vqae")
SMALL_VIT = dict(
    image_size=32,
    patch_size=8,
    hidden_dim=32,
    encoder_num_layers=1,
    encoder_num_heads=2,
    decoder_num_layers=1,
    decoder_num_heads=2,
    intermediate_dim=64,
)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def test_presets_are_registered_with_the_readme_settings():
    for cls in ("LQAE", "LQAEBackbone"):
        assert set(NAMES) <= set(presets.list_presets(cls))
    spec = presets.get_preset("imagenet_lqae", "LQAE")
    backbone = spec["backbone"]
    assert (backbone["image_size"], backbone["patch_size"]) == (256, 16)
    assert (backbone["hidden_dim"], backbone["intermediate_dim"]) == (768, 3072)
    assert backbone["encoder_num_layers"] == 12
    assert backbone["decoder_num_layers"] == 12
    assert backbone["decoder_input"] == "hidden_states"
    # The official 0.005 term is added twice (lqae-spec §2): 0.01.
    assert backbone["commitment_weight"] == 0.01
    assert spec["model"] == dict(
        mask_ratio=0.5, mlm_weight=1e-4, reconstruction_weight=1.0
    )
    training = spec["training"]
    assert training["learning_rate"] == pytest.approx(1.5e-4 * 512 / 256)
    assert (training["beta_1"], training["beta_2"]) == (0.9, 0.95)
    assert training["weight_decay"] == 5e-4
    assert (training["warmup_epochs"], training["epochs"]) == (5, 100)
    assert spec["language_model"]["vocabulary_size"] == 50265
    vqae = presets.get_preset("imagenet_vqae", "LQAE")
    assert vqae["language_model"] is None
    assert vqae["quantizer"]["num_embeddings"] == 1024
    assert vqae["quantizer"]["beta"] == 0.25


def test_scenes_lqae_builds_offline_with_splade_tiny():
    backbone = LQAEBackbone.from_preset("scenes_lqae")
    lm = backbone.language_model
    assert isinstance(lm, MaskedLanguageModel)
    assert lm.has_pretrained_head and lm.vocabulary_size == 30522
    assert backbone.grid_size == 8 and backbone.hidden_dim == lm.hidden_dim
    quantizer = backbone.quantizer
    assert isinstance(quantizer, FrozenVocabularyQuantizer)
    np.testing.assert_array_equal(
        _np(quantizer.embedding_table), _np(lm.token_embedding_matrix())
    )
    assert quantizer.excluded_token_ids == lm.special_token_ids
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3))
    ids = _np(backbone.encode(images.astype("float32")))
    assert ids.shape == (2, 8, 8)
    assert not np.isin(ids, lm.special_token_ids).any()
    text = lm.detokenize(ids.reshape(2, -1))
    assert len(text) == 2 and all(isinstance(t, str) and t for t in text)
    model = LQAE.from_preset("scenes_lqae", mask_ratio=0.25)
    assert model.built and model.mask_ratio == 0.25
    assert model.mlm_weight == 1e-4


def test_imagenet_lqae_without_roberta_builds_and_names_what_is_missing(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    with pytest.warns(UserWarning, match="roberta-base"):
        model = LQAE.from_preset(
            "imagenet_lqae", project_to_language_model=True, **SMALL_VIT
        )
    backbone = model.backbone
    assert backbone.language_model is None
    assert backbone.num_embeddings == 50265 and backbone.code_dim == 768
    images = tiny_images(2)
    for call in (
        lambda: backbone.encode(images),
        lambda: backbone.decode(np.zeros((1, 4, 4), "int32")),
        lambda: model.fit(images, batch_size=2, verbose=0),
    ):
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        assert "roberta-base" in message and "language_model=" in message
        assert str(tmp_path) in message
    with pytest.raises(ValueError, match="has no embedding table"):
        backbone.quantizer(np.zeros((1, 4, 4, 768), "float32"))


def test_imagenet_lqae_with_a_user_language_model(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    lm = MaskedLanguageModel.random(
        vocabulary_size=80, hidden_dim=16, num_layers=1, num_heads=2,
        intermediate_dim=32, max_sequence_length=32, architecture="roberta",
        name="language_model",
    )
    backbone = LQAEBackbone.from_preset(
        "imagenet_lqae",
        language_model=lm,
        project_to_language_model=True,
        **SMALL_VIT,
    )
    assert backbone.language_model is lm
    ids = _np(backbone.encode(tiny_images(2)))
    assert ids.shape == (2, 4, 4) and ids.max() < 80
    with pytest.raises(ValueError, match="Unknown preset override"):
        LQAEBackbone.from_preset("imagenet_lqae", image_sise=32)


def test_scenes_vqae_trains_a_learned_codebook_without_lm():
    model = LQAE.from_preset(
        "scenes_vqae", embedding_dim=32, num_embeddings=64, **SMALL_VIT
    )
    backbone = model.backbone
    assert backbone.language_model is None
    assert isinstance(backbone.quantizer, VectorQuantizer)
    assert backbone.quantizer.num_embeddings == 64
    assert backbone.decoder_input == "quantized"
    codebook = _np(backbone.quantizer.codebook).copy()
    model.compile(learning_rate=1e-3)
    logs = model.fit(tiny_images(4), batch_size=4, verbose=0).history
    assert "mlm_loss" not in logs and np.isfinite(logs["loss"][0])
    # The learned codebook is trained (the codebook term reaches it).
    assert not np.array_equal(codebook, _np(backbone.quantizer.codebook))
    with pytest.raises(ValueError, match="takes no `language_model`"):
        LQAEBackbone.from_preset("scenes_vqae", language_model="splade-tiny")

"""The trained scenes LQAE that ships inside the package
(`scenes_lqae_trained`): its file leaves out the frozen splade-tiny LM (a
separate offline asset), it loads through `from_preset` with no training
and no download, and it reconstructs the fixed procedural test scenes
recorded at training time with the recorded PSNR (to 0.05 dB) and SSIM, on
every backend. Random or mis-loaded weights miss the figure by decibels.
"""

import json
import os
import re

import keras
import numpy as np
import pytest

from keras_lgvq.language_models.masked_lm import MaskedLanguageModel
from keras_lgvq.layers.quantizers.frozen_vocabulary_quantizer import (
    FrozenVocabularyQuantizer,
)
from keras_lgvq.models import LQAE
from keras_lgvq.models import LQAEBackbone
from keras_lgvq.models import presets
from keras_lgvq.models.vqgan import vqgan_presets
from recipes import ship_scenes_tokenizers as ship
from tests.models.lgvq.lgvq_trained_presets_test import README
from tests.models.lgvq.lgvq_trained_presets_test import SECTION
from tests.models.lgvq.lgvq_trained_presets_test import _reconstruct
from tests.models.lgvq.lgvq_trained_presets_test import _test_images
from tests.models.lgvq.lgvq_trained_presets_test import check_recorded_figure

NAME = "scenes_lqae_trained"
MAX_BYTES = 10 * 1024 * 1024


def _spec():
    return presets.get_preset(NAME)


def _record():
    return vqgan_presets.read_shipped_record(_spec())


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def backbone():
    return LQAEBackbone.from_preset(NAME)


def test_the_file_is_small_recorded_and_holds_no_language_model(backbone):
    directory = vqgan_presets.shipped_weights_dir(_spec())
    weights = os.path.join(directory, vqgan_presets.SHIPPED_WEIGHTS_FILE)
    # The 30522 x 128 table alone would be 15.6 MB.
    assert os.path.getsize(weights) <= MAX_BYTES
    record = _record()
    assert record["preset"] == NAME and record["trainer"] == "LQAE"
    assert record["weights_sha256"] == vqgan_presets.file_sha256(weights)
    assert record["weights_bytes"] == os.path.getsize(weights)
    assert re.search(r"--model lqae\b", record["command"])
    # The same budget as the other shipped tokenizers.
    other = vqgan_presets.read_shipped_record(
        presets.get_preset("scenes_vqgan_trained")
    )
    for key in ("seed", "steps", "batch_size", "train_size",
                "learning_rate", "test_scenes"):
        assert record[key] == other[key], key
    # The LM it was trained on: the offline splade-tiny, by its table.
    lm = record["language_model"]
    assert (lm["vocabulary_size"], lm["hidden_dim"]) == (30522, 128)
    assert lm["table_sha256"] == vqgan_presets.language_model_table_sha256(
        backbone.language_model
    )
    with open(os.path.join(directory, vqgan_presets.SHIPPED_CONFIG_FILE)) as f:
        config = json.load(f)["config"]
    # No machine path in the shipped config.
    assert not re.search(r'"(/|[A-Za-z]:\\\\)', json.dumps(config))


def test_reconstruction_matches_the_recorded_figure(backbone):
    check_recorded_figure(
        _record(), backbone, LQAEBackbone.from_preset(NAME, load_weights=False)
    )


def test_images_become_word_pieces(backbone):
    images = _test_images(_record())
    ids = _np(backbone.encode(images))
    assert ids.shape == (len(images), 8, 8)
    assert ids.min() >= 0 and ids.max() < 30522
    # Special tokens ([PAD], [MASK], ...) are never image tokens.
    special = set(backbone.language_model.special_token_ids)
    assert not special & set(np.unique(ids).tolist())
    assert len(np.unique(ids)) >= 32


def _trained_weights(backbone):
    # The LM is the frozen asset (its unused pooler is initialised anew
    # each build); the rest is what the shipped file holds.
    lm = {id(w) for w in backbone.language_model.weights}
    return [w for w in backbone.weights if id(w) not in lm]


def test_the_trainer_loads_the_same_weights(backbone):
    model = LQAE.from_preset(NAME)
    ours, theirs = _trained_weights(model.backbone), _trained_weights(backbone)
    assert len(ours) == len(theirs) > 20
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(_np(a), _np(b))
    images = _test_images(_record())[:4]
    np.testing.assert_allclose(
        _reconstruct(model.backbone, images), _reconstruct(backbone, images),
        atol=1e-6,
    )


def test_stage2_models_load_it_by_name(backbone):
    # The captioning / VQA models name their tokenizer by preset; an LQAE
    # preset is built by LQAEBackbone, not VQGANBackbone.
    from keras_lgvq.models.text_to_image import load_tokenizer

    assert presets.preset_classes(NAME) == ("LQAEBackbone", "LQAE")
    tokenizer = load_tokenizer(NAME)
    assert isinstance(tokenizer, LQAEBackbone)
    assert not tokenizer.trainable
    images = _test_images(_record())[:2]
    np.testing.assert_allclose(
        _reconstruct(tokenizer, images), _reconstruct(backbone, images),
        atol=1e-6,
    )


def test_another_language_model_is_refused():
    # Same sizes, other table: the weights do not fit it.
    other = MaskedLanguageModel.random(
        vocabulary_size=30522,
        hidden_dim=128,
        num_layers=1,
        num_heads=2,
        intermediate_dim=64,
        max_sequence_length=64,
        seed=5,
        name="language_model",
    )
    with pytest.raises(ValueError, match="trained on the splade-tiny"):
        LQAEBackbone.from_preset(NAME, language_model=other)
    # Without weights it builds (the untrained architecture on that LM).
    untrained = LQAEBackbone.from_preset(
        NAME, language_model=other, load_weights=False
    )
    assert untrained.language_model is other


def test_a_missing_language_model_is_a_clear_error():
    spec = _spec()
    quantizer = FrozenVocabularyQuantizer(30522, 128, name="quantizer")
    backbone = LQAEBackbone(
        **spec["backbone"], quantizer=quantizer,
        missing_language_model="No splade-tiny here.",
    )
    with pytest.raises(ValueError, match="language model, which is missing"):
        vqgan_presets.load_shipped_weights(backbone, spec)


def test_registered_described_and_quoted():
    for cls in ("LQAEBackbone", "LQAE"):
        assert NAME in presets.list_presets(cls)
    text = presets.describe_presets()[NAME]
    assert "training.json" in text and "splade-tiny" in text
    spec, base = _spec(), presets.get_preset("scenes_lqae")
    for key in ("backbone", "language_model", "model", "training"):
        assert spec[key] == base[key], key
    with open(README, encoding="utf-8") as handle:
        section = handle.read().split(SECTION, 1)[1].split("\n## ", 1)[0]
    record = _record()
    quoted = (
        f"{record['evaluation']['psnr_db']:.2f} dB / SSIM "
        f"{record['evaluation']['ssim']:.3f}"
    )
    assert quoted in section
    assert ship.SHIPPED["lqae"] == ("LQAE", NAME)

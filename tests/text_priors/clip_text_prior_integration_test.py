import zipfile

import h5py
import numpy as np
import pytest

import keras
import keras_hub

from keras_lgvq.text_priors.clip_text_prior import CLIPTextPrior
from keras_lgvq.text_priors.clip_text_prior import load_hf_clip_text
from keras_lgvq.text_priors.text_prior_registry import get
from tests.text_priors import reference_impls as ref

CAPTIONS = [
    "The small bird with a red crown.",
    "",
    "the bird " * 30,
    "A\u00a0bird\ton  the\nwing, (crowned) #1",
]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tiny_hf_clip"))
    ref.write_tiny_hf_clip(directory)
    return directory


@pytest.fixture(scope="module")
def prior(hf_dir):
    return CLIPTextPrior(hf_dir)


def test_keras_preset_directory(prior, hf_dir, tmp_path):
    encoder, projection, _ = load_hf_clip_text(hf_dir)
    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=4,
        hidden_dim=8,
        num_layers=1,
        num_heads=2,
        intermediate_dim=16,
        image_shape=(8, 8, 3),
    )
    backbone = keras_hub.models.CLIPBackbone(vision, encoder, projection_dim=24)
    backbone.text_projection.kernel.assign(projection.kernel)
    preset = str(tmp_path / "keras_clip")
    backbone.save_to_preset(preset)
    vocab, merges = ref.tiny_clip_vocab()
    keras_hub.models.CLIPTokenizer(vocab, merges).save_to_preset(preset)
    keras_prior = get(preset)
    assert isinstance(keras_prior, CLIPTextPrior)
    # The tokenizer is read from the keras-hub asset files.
    assert dict(keras_prior._frozen.tokenizer.vocabulary) == vocab
    assert list(keras_prior._frozen.tokenizer.merges) == merges
    ids, mask = prior.tokenize(CAPTIONS)
    for key in ("token_features", "sentence_feature"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(keras_prior(ids, mask)[key]),
            keras.ops.convert_to_numpy(prior(ids, mask)[key]),
            atol=1e-5,
        )


def test_saving_reloads_from_path_not_file(prior, tmp_path):
    ids_in = keras.Input((30,), dtype="int32", name="token_ids")
    mask_in = keras.Input((30,), dtype="bool", name="padding_mask")
    features = prior(ids_in, mask_in)
    head = keras.layers.Dense(3, name="head")(features["sentence_feature"])
    model = keras.Model([ids_in, mask_in], head)
    ids, mask = prior.tokenize(CAPTIONS[:3])
    expected = keras.ops.convert_to_numpy(model([ids, mask]))
    path = str(tmp_path / "model.keras")
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        archive.extract("model.weights.h5", tmp_path)
    shapes = []
    with h5py.File(tmp_path / "model.weights.h5") as f:
        f.visititems(
            lambda name, obj: shapes.append(obj.shape)
            if isinstance(obj, h5py.Dataset)
            else None
        )
    # Only the Dense head's kernel and bias are stored, no CLIP tensor.
    assert sorted(shapes) == [(3,), (24, 3)]
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded([ids, mask])), expected, atol=1e-6
    )
    config = prior.get_config()
    assert config["name_or_path"] == prior.name_or_path
    assert config["sequence_length"] == 30
    clone = CLIPTextPrior.from_config(config)
    assert clone.trainable_weights == []


def test_trains_inside_a_model_with_frozen_prior(prior):
    ids_in = keras.Input((30,), dtype="int32")
    mask_in = keras.Input((30,), dtype="bool")
    features = prior({"token_ids": ids_in, "padding_mask": mask_in})
    pooled = keras.layers.GlobalAveragePooling1D()(features["token_features"])
    merged = keras.layers.Concatenate()([pooled, features["sentence_feature"]])
    model = keras.Model([ids_in, mask_in], keras.layers.Dense(2)(merged))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    ids, mask = prior.tokenize(CAPTIONS)
    ids = keras.ops.convert_to_numpy(ids)
    mask = keras.ops.convert_to_numpy(mask)
    before = [keras.ops.convert_to_numpy(w) for w in prior.weights]
    head_before = keras.ops.convert_to_numpy(model.layers[-1].kernel)
    model.fit([ids, mask], np.ones((4, 2)), batch_size=4, epochs=1, verbose=0)
    for old, new in zip(before, prior.weights):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))
    assert not np.allclose(
        head_before, keras.ops.convert_to_numpy(model.layers[-1].kernel)
    )
    assert len(model.trainable_weights) == 2

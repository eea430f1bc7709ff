"""Shipped text-to-image generators (`keras_lgvq.models.captioning.shipped`
serves `TextToImage` too): written without the image tokenizer and the text
prior's weights, read back by preset name with the shipped tokenizer preset
and MiniLM attached, giving the same logits and the same samples per seed;
refused when missing or damaged. A tiny generator over the shipped
`scenes_lgvq_trained` codes (K = 256, 16 x 16) keeps it fast."""

import json
import os

import h5py
import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.models import presets
from keras_lgvq.models.captioning import shipped
from keras_lgvq.models.text_to_image import TextToImage
from keras_lgvq.models.text_to_image import TextToImageBackbone
from keras_lgvq.models.text_to_image import load_tokenizer
from keras_lgvq.models.vqgan.vqgan_presets import file_sha256
from keras_lgvq.text_priors import minilm_assets

NAMES = (
    "scenes_lgvq_text_to_image",
    "scenes_vqgan_text_to_image",
    "scenes_cvq_lg_text_to_image",
)
CAPTIONS = ["a big blue striped star at the top",
            "two figures: two hexagons"]

needs_minilm = pytest.mark.skipif(
    not minilm_assets.is_available(),
    reason="the generator's text prior (MiniLM) is an offline asset that "
    f"is not fetched: run `{minilm_assets.fetch_command()}`")


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def test_shipped_presets_are_the_scenes_generator_on_shipped_tokenizers():
    base = presets.get_preset("text_to_image_scenes", "TextToImage")
    for name, tokenizer in zip(NAMES, ("scenes_lgvq_trained",
                                       "scenes_vqgan_trained",
                                       "scenes_cvq_lg_trained")):
        assert name in presets.list_presets("TextToImage")
        assert name in presets.list_presets("TextToImageBackbone")
        spec = presets.get_preset(name, "TextToImage")
        assert spec["tokenizer_preset"] == tokenizer
        assert presets.get_preset(tokenizer).get("shipped_weights")
        for key in ("backbone", "text", "model", "training", "sampling"):
            assert spec[key] == base[key], key
        assert spec["shipped_model"] == {
            "name": name,
            "directory": f"models/text_to_image/trained/{name}",
            "trained_by": "recipes/ship_scenes_stage2.py",
        }
        assert "training.json" in spec["description"]
        assert tokenizer in spec["description"]
        assert shipped.install_command(spec) == (
            "python recipes/ship_scenes_stage2.py --task text_to_image "
            f"--tokenizer {tokenizer} --out runs/ship_{name} --install")


def _tiny_generator():
    tokenizer = load_tokenizer("scenes_lgvq_trained")
    backbone = TextToImageBackbone(
        num_codes=int(tokenizer.num_embeddings),
        grid_size=int(tokenizer.grid_size), text_dim=384, hidden_dim=16,
        num_layers=1, num_heads=2, intermediate_dim=32)
    model = TextToImage(backbone, tokenizer=tokenizer, text_prior="minilm",
                        seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    # An optimizer state exists (as after training); it must not ship.
    model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    # Weights away from their initial values (a fresh build differs).
    for weight in model.trainable_weights:
        weight.assign(_numpy(weight) + rng.normal(
            0.0, 0.05, weight.shape).astype("float32"))
    data = {
        "codes": rng.integers(0, 256, (4, 16, 16)).astype("int32"),
        "token_features": rng.normal(size=(4, 3, 384)).astype("float32"),
        "padding_mask": np.ones((4, 3), bool),
    }
    return model, data


def _install_root(tmp_path, monkeypatch):
    root = tmp_path / "package"
    monkeypatch.setattr(shipped, "PACKAGE_ROOT", str(root))
    return root


@needs_minilm
def test_shipped_generator_round_trip_by_preset_name(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    model, data = _tiny_generator()
    root = _install_root(tmp_path, monkeypatch)
    name = "scenes_lgvq_text_to_image"
    spec = presets.get_preset(name, "TextToImage")
    target = shipped.shipped_model_dir(spec)
    assert target == os.path.join(str(root), "models", "text_to_image",
                                  "trained", name)
    assert not shipped.is_installed(spec)
    # Not installed: the error names the missing file and the command.
    with pytest.raises(FileNotFoundError) as error:
        TextToImage.from_preset(name)
    message = str(error.value)
    assert os.path.join(target, "task.json") in message
    assert ("recipes/ship_scenes_stage2.py --task text_to_image "
            "--tokenizer scenes_lgvq_trained") in message
    config_path, weights_path = shipped.save_shipped_model(model, target)
    with open(config_path) as f:
        config = json.load(f)
    assert config["config"]["tokenizer"] is None
    assert config["config"]["text_prior"]["config"]["name_or_path"] == (
        "minilm")
    # Neither the tokenizer (4.5 MB) nor MiniLM (90 MB) nor the optimizer
    # state is in the file: 18 k generator weights.
    assert os.path.getsize(weights_path) < 300_000
    with h5py.File(weights_path, "r") as f:
        names = []
        f.visit(names.append)
    assert any(n.startswith("backbone/") for n in names)
    assert not [n for n in names if n.split("/")[0] in (
        "optimizer", "tokenizer", "text_prior")], names
    with open(os.path.join(target, shipped.SHIPPED_RECORD_FILE), "w") as f:
        json.dump({"weights_sha256": file_sha256(weights_path)}, f)
    assert shipped.is_installed(spec)

    loaded = TextToImage.from_preset(name)
    assert not loaded.tokenizer.trainable
    # The preset's measured sampling settings are the loaded model's.
    assert loaded.sampling == spec["sampling"]
    model.sampling = dict(spec["sampling"])  # Compare under the same ones.
    assert loaded.text_prior.name_or_path == "minilm"
    masked = np.where(np.arange(256) % 2 == 0, model.mask_id,
                      data["codes"].reshape(4, 256))
    for text_mask in (data["padding_mask"],
                      np.zeros_like(data["padding_mask"])):
        np.testing.assert_allclose(
            _numpy(loaded.code_logits(masked, data["token_features"],
                                      text_mask)),
            _numpy(model.code_logits(masked, data["token_features"],
                                     text_mask)),
            atol=1e-5)
    np.testing.assert_array_equal(
        loaded.generate_codes(CAPTIONS, steps=3, seed=7),
        model.generate_codes(CAPTIONS, steps=3, seed=7))
    images = loaded.generate(CAPTIONS[:1], steps=2, seed=1)
    assert images.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(
        images, model.generate(CAPTIONS[:1], steps=2, seed=1), atol=1e-5)
    known = np.zeros((16, 16), bool)
    known[:8] = True
    filled = loaded.complete(data["codes"][:2], known, captions=CAPTIONS,
                             steps=2, seed=3)
    np.testing.assert_array_equal(filled[:, :8], data["codes"][:2, :8])
    np.testing.assert_array_equal(
        filled, model.complete(data["codes"][:2], known, captions=CAPTIONS,
                               steps=2, seed=3))

    # The backbone alone, trained; no overrides of a shipped architecture.
    backbone = TextToImageBackbone.from_preset(name)
    for a, b in zip(backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(_numpy(a), _numpy(b))
    with pytest.raises(ValueError, match="cannot take overrides"):
        TextToImageBackbone.from_preset(name, num_layers=2)
    # load_weights=False: the same architecture, untrained.
    fresh = TextToImage.from_preset(name, load_weights=False,
                                    text_prior=None)
    assert [w.shape for w in fresh.trainable_weights] == [
        w.shape for w in model.trainable_weights]
    assert not np.allclose(
        _numpy(fresh.code_logits(masked, data["token_features"],
                                 data["padding_mask"])),
        _numpy(model.code_logits(masked, data["token_features"],
                                 data["padding_mask"])), atol=1e-3)
    # Without a text prior: cached features only.
    bare = TextToImage.from_preset(name, text_prior=None)
    assert bare.text_prior is None
    np.testing.assert_array_equal(
        bare.generate_codes(text_features={
            "token_features": data["token_features"][:2],
            "padding_mask": data["padding_mask"][:2]}, steps=2, seed=0),
        model.generate_codes(text_features={
            "token_features": data["token_features"][:2],
            "padding_mask": data["padding_mask"][:2]}, steps=2, seed=0))
    with pytest.raises(ValueError, match="do not pass `tokenizer=`"):
        TextToImage.from_preset(name, tokenizer="scenes_vqgan_trained")
    with pytest.raises(ValueError, match="not a Captioner"):
        from keras_lgvq.models.captioning import Captioner

        shipped.load_shipped_model(Captioner, spec)
    # A damaged weights file is refused, not loaded.
    with open(weights_path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="not the file trained"):
        TextToImage.from_preset(name)


def test_builtin_untrained_presets_keep_their_behaviour():
    # Still the architecture only, for any tokenizer's codebook / grid.
    model = TextToImage.from_preset("text_to_image_scenes", text_prior=None,
                                    num_codes=64, grid_size=8)
    assert (model.num_codes, model.grid_size) == (64, 8)
    assert model.tokenizer is None

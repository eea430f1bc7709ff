"""The recipe that trains, scores and installs the shipped scenes stage-2
models (captioner, VQA model, text-to-image generator), at a tiny budget:
its flags, the record, the size check, and that
an installed model loads by name (`from_preset`) with its tokenizer preset
attached and answers as the trained model did. The package's own folders
are not touched: the install goes to a temporary package root."""

import json
import os

import keras
import numpy as np
import pytest

from keras_lgvq.language_models import smollm2_assets
from keras_lgvq.models import presets
from keras_lgvq.models.captioning import Captioner
from keras_lgvq.models.captioning import shipped
from keras_lgvq.models.vqa import VQAModel
from keras_lgvq.text_priors import minilm_assets
from recipes import ship_scenes_stage2 as ship

needs_smollm2 = pytest.mark.skipif(
    not smollm2_assets.is_available(),
    reason="the scratch decoder reads SmolLM2's tokenizer from the offline "
    "LM asset, which is not fetched: run `python -m "
    "keras_lgvq.language_models.smollm2_assets`")
# The task recipe's tiny size: a few scenes, a 1-block width-16 decoder.
TINY = ["--", "--train-images", "8", "--epochs", "1", "--decoder-width",
        "16", "--decoder-layers", "1", "--mapper-width", "8",
        "--validation-images", "2", "--checkpoint-every", "0",
        "--verbose", "0"]


def test_flags_names_and_their_errors():
    args = ship.parse_args(["--task", "captioning", "--tokenizer",
                            "scenes_lgvq_trained", "--out", "o"])
    assert (args.test_images, args.eval_images, args.seed) == (50, 300, 0)
    assert args.forwarded == []
    # The task recipe runs with its own defaults, image model only.
    assert ship.task_argv(args)[:8] == [
        "--tokenizer", "scenes_lgvq_trained", "--out",
        os.path.join("o", "train"), "--seed", "0", "--no-blind",
        "--figure-images"]
    args = ship.parse_args(["--task", "vqa", "--tokenizer",
                            "scenes_vqgan_trained", "--out", "o", "--",
                            "--epochs", "2"])
    assert args.forwarded == ["--epochs", "2"]
    assert ship.shipped_name("vqa", "scenes_vqgan_trained") == (
        "scenes_vqgan_vqa")
    assert ship.shipped_name("captioning", "scenes_lgvq_trained") == (
        "scenes_lgvq_captioner")
    assert ship.package_dir("captioning", "x").endswith(
        os.path.join("keras_lgvq", "models", "captioning", "trained", "x"))
    with pytest.raises(SystemExit):
        ship.parse_args(["--task", "image_to_text", "--tokenizer",
                         "scenes_lgvq_trained", "--out", "o"])
    with pytest.raises(SystemExit):
        ship.parse_args(["--task", "vqa", "--tokenizer", "scenes", "--out",
                         "o"])
    with pytest.raises(ValueError, match="--seed is set by this recipe"):
        ship.parse_args(["--task", "vqa", "--tokenizer",
                         "scenes_lgvq_trained", "--out", "o", "--", "--seed",
                         "3"])
    with pytest.raises(ValueError, match="--test-images must be >= 1"):
        ship.parse_args(["--task", "vqa", "--tokenizer",
                         "scenes_lgvq_trained", "--out", "o",
                         "--test-images", "0"])
    # Text-to-image: recipes/text_to_image.py with its defaults, one run
    # named `image`, its own evaluation shrunk to a smoke check.
    args = ship.parse_args(["--task", "text_to_image", "--tokenizer",
                            "scenes_lgvq_trained", "--out", "o", "--",
                            "--train-steps", "4"])
    assert ship.shipped_name("text_to_image", "scenes_lgvq_trained") == (
        "scenes_lgvq_text_to_image")
    argv = ship.task_argv(args)
    assert argv[:8] == ["--tokenizer", "scenes_lgvq_trained", "--out",
                        os.path.join("o", "train"), "--name", "image",
                        "--seed", "0"]
    assert argv[-2:] == ["--train-steps", "4"]
    recipe_args = ship.task_recipe("text_to_image").parse_args(argv)
    assert recipe_args.preset == "text_to_image_scenes"
    assert (recipe_args.train_steps, recipe_args.quick, recipe_args.smoke) == (
        4, False, False)
    for flag in ("--name", "--out", "--seed", "--tokenizer"):
        with pytest.raises(ValueError, match=f"{flag} is set by this"):
            ship.parse_args(["--task", "text_to_image", "--tokenizer",
                             "scenes_lgvq_trained", "--out", "o", "--",
                             flag, "x"])
    with pytest.raises(ValueError, match="--name is set by this"):
        ship.parse_args(["--task", "text_to_image", "--tokenizer",
                         "scenes_lgvq_trained", "--out", "o", "--",
                         "--name=x"])
    # Every shipped name is a registered preset of its class; a pair that
    # ships nothing has no preset and is refused with its reason.
    registered = set(presets.list_presets())
    for task, (_, cls, _) in ship.TASKS.items():
        for tokenizer in ship.TOKENIZERS:
            assert presets.get_preset(tokenizer).get("shipped_weights")
            name = ship.shipped_name(task, tokenizer)
            if (task, tokenizer) in ship.NOT_SHIPPED:
                assert name not in registered
                with pytest.raises(ValueError, match=(
                        f"No {task} model ships for --tokenizer "
                        f"{tokenizer}: ")):
                    ship.parse_args(["--task", task, "--tokenizer",
                                     tokenizer, "--out", "o"])
                continue
            spec = presets.get_preset(name, cls)
            assert spec["tokenizer_preset"] == tokenizer
            assert spec["shipped_model"]["directory"] == (
                f"models/{ship.TASKS[task][0]}/trained/{name}")
    assert set(ship.NOT_SHIPPED) == {
        ("text_to_image", "scenes_vqct_trained"),
        ("text_to_image", "scenes_lqae_trained"),
    }


def _install_root(tmp_path, monkeypatch):
    root = tmp_path / "package"
    monkeypatch.setattr(shipped, "PACKAGE_ROOT", str(root))
    monkeypatch.setattr(
        ship, "package_dir",
        lambda task, name: str(root / "models" / ship.TASKS[task][0]
                               / "trained" / name))
    return root


# Slow: a real (tiny) training run, then five loads of SmolLM2's 49,152-id
# tokenizer from its GGUF (~2.4 s each) and greedy decoding; 36 s on
# TensorFlow, 55 s on JAX, 51 s on torch. The fast part: the flags test
# above, the VQA run below, and tests/models/captioning/shipped_test.py.
@pytest.mark.slow
@needs_smollm2
def test_captioner_trains_installs_and_loads_by_name(tmp_path, monkeypatch):
    root = _install_root(tmp_path, monkeypatch)
    spec = presets.get_preset("scenes_lgvq_captioner")
    assert not shipped.is_installed(spec)
    with pytest.raises(FileNotFoundError, match="ship_scenes_stage2"):
        Captioner.from_preset("scenes_lgvq_captioner")
    out = str(tmp_path / "run")
    ship.main(["--task", "captioning", "--tokenizer", "scenes_lgvq_trained",
               "--out", out, "--test-images", "2", "--eval-images", "2",
               "--install"] + TINY)
    with open(os.path.join(out, "training.json")) as f:
        record = json.load(f)
    assert record["preset"] == "scenes_lgvq_captioner"
    assert record["tokenizer_preset"] == "scenes_lgvq_trained"
    assert record["settings"]["train_images"] == 8
    assert record["settings"]["decoder_vocabulary"] == "compact"
    assert 3 <= record["decoder_vocabulary_size"] < 200
    assert record["test"]["images"] == record["evaluation"]["images"] == 2
    assert {"BLEU-4", "CIDEr-D", "ROUGE-L"} <= set(record["test"]["scores"])
    assert record["backend"] == keras.backend.backend()
    assert record["cpu_s"] > 0 and record["wall_s"] > 0
    target = root / "models" / "captioning" / "trained" / (
        "scenes_lgvq_captioner")
    assert sorted(os.listdir(target)) == [
        "task.json", "task.weights.h5", "training.json"]
    installed = shipped.read_shipped_model_record(spec)
    assert installed["weights_sha256"] == ship.tokenizers_recipe.file_sha256(
        str(target / "task.weights.h5"))
    assert len(installed["segments"]) == 1
    # The tokenizer is left out of the shipped files.
    with open(target / "task.json") as f:
        assert json.load(f)["config"]["tokenizer"] is None
    assert installed["weights_bytes"] < 500_000
    # Loaded by name: the trained model, its tokenizer preset attached.
    trained = keras.saving.load_model(
        os.path.join(out, "train", "image", "last.keras"), safe_mode=True)
    model = Captioner.from_preset("scenes_lgvq_captioner")
    codes, _ = ship.fixed_test_scenes(model.tokenizer, 2, 0)
    np.testing.assert_array_equal(
        codes, ship.fixed_test_scenes(trained.tokenizer, 2, 0)[0])
    assert model.generate(codes=codes) == trained.generate(codes=codes)
    np.testing.assert_array_equal(model.language_model.vocabulary_ids,
                                  trained.language_model.vocabulary_ids)
    for a, b in zip(model.mapper.weights, trained.mapper.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    # Its recorded figure comes back (same backend, same weights).
    again = ship.score_captioner(model, 2, 0)
    for metric in ("BLEU-4", "ROUGE-L", "CIDEr-D"):
        np.testing.assert_allclose(again["scores"][metric],
                                   record["test"]["scores"][metric],
                                   atol=1e-9)
    with pytest.raises(ValueError, match="do not pass `tokenizer=`"):
        Captioner.from_preset("scenes_lgvq_captioner",
                              tokenizer="scenes_vqgan_trained")
    # A damaged weights file is refused, not loaded.
    with open(target / "task.weights.h5", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="not the file trained"):
        Captioner.from_preset("scenes_lgvq_captioner")
    # --install-only checks the run matches the name.
    with pytest.raises(ValueError, match="not 'scenes_vqgan_captioner'"):
        ship.install(out, "captioning", "scenes_vqgan_captioner")


@pytest.mark.end_to_end("torch")
@needs_smollm2
def test_vqa_model_trains_installs_and_loads_by_name(tmp_path, monkeypatch):
    root = _install_root(tmp_path, monkeypatch)
    out = str(tmp_path / "run")
    ship.main(["--task", "vqa", "--tokenizer", "scenes_vqgan_trained",
               "--out", out, "--test-images", "2", "--eval-images", "2"]
              + TINY)
    # Not installed without --install; --install-only does it.
    assert not (root / "models").exists()
    monkeypatch.setattr(ship, "MAX_SHIPPED_BYTES", 1000)
    with pytest.raises(ValueError, match="over the"):
        ship.install(out, "vqa", "scenes_vqgan_vqa")
    monkeypatch.setattr(ship, "MAX_SHIPPED_BYTES", 10 * 1024 * 1024)
    ship.main(["--task", "vqa", "--tokenizer", "scenes_vqgan_trained",
               "--out", out, "--install-only"])
    with open(os.path.join(out, "training.json")) as f:
        record = json.load(f)
    # Compact: the scenes question language (43 ids), not 49,152.
    assert record["decoder_vocabulary_size"] < 60
    assert record["test"]["questions"] > 0
    assert 0.0 <= record["test"]["scores"]["accuracy"] <= 1.0
    model = VQAModel.from_preset("scenes_vqgan_vqa")
    trained = keras.saving.load_model(
        os.path.join(out, "train", "image", "last.keras"), safe_mode=True)
    assert model.answer_vocabulary == trained.answer_vocabulary
    again = ship.score_vqa(model, 2, 0)
    assert again["scores"]["accuracy"] == record["test"]["scores"][
        "accuracy"]
    untrained = VQAModel.from_preset("scenes_vqgan_vqa", load_weights=False)
    assert untrained.language_model.vocabulary_size == (
        model.language_model.vocabulary_size)
    with pytest.raises(ValueError, match="Answer vocabulary mismatch"):
        VQAModel.from_preset("scenes_vqgan_vqa",
                             answer_vocabulary=["yes", "no"])


# === Text-to-image ===


def test_text_to_image_fixed_test_mask_is_byte_exact():
    import hashlib

    masks = ship.fixed_test_mask(3, 256, 0)
    assert masks.shape == (3, 256) and masks.dtype == bool
    assert masks.sum(axis=1).tolist() == [128, 128, 128]
    # Pinned bytes: the same masks on every machine and backend.
    assert hashlib.sha256(masks.tobytes()).hexdigest() == (
        "01a01cc71f1d0283e9bfa251de4616e739093d17c6b23b47e5f780ef40552e73")
    # Reference: the 128 positions with the smallest SeedSequence words.
    for i in range(3):
        words = np.random.SeedSequence([0, i]).generate_state(256)
        smallest = sorted(range(256), key=lambda p: (int(words[p]), p))[:128]
        assert sorted(np.flatnonzero(masks[i]).tolist()) == sorted(smallest)
    assert not np.array_equal(masks[0], masks[1])
    assert not np.array_equal(ship.fixed_test_mask(1, 256, 1)[0], masks[0])
    np.testing.assert_array_equal(ship.fixed_test_mask(2, 256, 0), masks[:2])


def test_text_to_image_masked_nll_matches_numpy():
    from keras_lgvq.models.text_to_image import TextToImage
    from keras_lgvq.models.text_to_image import TextToImageBackbone

    backbone = TextToImageBackbone(num_codes=8, grid_size=4, text_dim=6,
                                   hidden_dim=16, num_layers=1, num_heads=2)
    model = TextToImage(backbone, seed=0)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 8, (4, 4, 4)).astype("int32")
    text = {"token_features": rng.normal(size=(4, 3, 6)).astype("float32"),
            "padding_mask": np.ones((4, 3), bool)}
    mask = ship.fixed_test_mask(4, 16, 0)
    flat = codes.reshape(4, 16)
    nll = []
    for given, text_mask in ((text, text["padding_mask"]),
                             (None, np.zeros((4, 1), bool))):
        features = (text["token_features"] if given else
                    np.zeros((4, 1, 6), "float32"))
        logits = np.asarray(keras.ops.convert_to_numpy(model.code_logits(
            np.where(mask, model.mask_id, flat), features, text_mask)),
            "float64")
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        picked = log_probs[np.arange(4)[:, None], np.arange(16), flat]
        expected = -(picked * mask).sum() / mask.sum()
        accuracy = ((logits.argmax(-1) == flat) & mask).sum() / mask.sum()
        # In batches of 2, pooled over the batches.
        result = ship.masked_nll(model, codes, given, mask, batch_size=2)
        np.testing.assert_allclose(result["nll"], expected, rtol=1e-6)
        np.testing.assert_allclose(result["masked_accuracy"], accuracy)
        nll.append(result["nll"])
    # The caption changes the figure (the text path is used).
    assert nll[0] != nll[1]


# The recipe's smallest run (`--smoke`: a 1 x 16 generator, a judge on 64
# scenes, caches in tmp_path), then scoring and install: ~100 s on one
# backend, so one backend runs it (the model code is tested on all three in
# tests/models/text_to_image/).
@pytest.mark.end_to_end("torch")
@pytest.mark.skipif(
    not minilm_assets.is_available(),
    reason="the generator's text prior (MiniLM) is not fetched: run "
    f"`{minilm_assets.fetch_command()}`")
def test_text_to_image_trains_installs_and_loads_by_name(tmp_path,
                                                         monkeypatch):
    from keras_lgvq.models.text_to_image import TextToImage

    root = _install_root(tmp_path, monkeypatch)
    name = "scenes_lgvq_text_to_image"
    spec = presets.get_preset(name, "TextToImage")
    assert not shipped.is_installed(spec)
    with pytest.raises(FileNotFoundError, match="--task text_to_image"):
        TextToImage.from_preset(name)
    out = str(tmp_path / "run")
    ship.main(["--task", "text_to_image", "--tokenizer",
               "scenes_lgvq_trained", "--out", out, "--test-images", "3",
               "--eval-images", "2", "--", "--smoke", "--train-steps", "4",
               "--cache-dir", str(tmp_path / "cache"), "--verbose", "0",
               "--checkpoint-every", "0"])
    assert not (root / "models").exists()
    with open(os.path.join(out, "training.json")) as f:
        record = json.load(f)
    assert record["preset"] == name
    assert record["model_class"] == "TextToImage"
    assert record["tokenizer_preset"] == "scenes_lgvq_trained"
    assert record["task_recipe"] == "recipes/text_to_image.py"
    assert record["settings"]["train_steps"] == 4
    assert record["settings"]["smoke"] is True
    assert record["backend"] == keras.backend.backend()
    assert record["cpu_s"] > 0 and record["wall_s"] > 0
    assert np.isfinite(record["final_loss"])
    test = record["test"]
    assert test["images"] == 3 and test["mask_ratio"] == 0.5
    assert test["masked_positions"] == 3 * 128
    # An untrained-ish generator: about log(256) nats per code.
    assert 0.0 < test["nll"] < 2 * np.log(256)
    assert 0.0 < test["nll_unconditional"] < 2 * np.log(256)
    evaluation = record["evaluation"]
    assert evaluation["images"] == 2
    for key in ("generated", "unconditional", "reconstruction_ceiling",
                "reconstruction_shuffled_chance", "real_ceiling",
                "real_shuffled_chance"):
        assert 0.0 <= evaluation[key]["overall"] <= 1.0, key
        assert evaluation[key]["checks"] > 0, key
    assert evaluation["sampling"]["steps"] == 4  # the recipe's smoke size
    assert evaluation["judge"]["train_images"] == 64
    # No machine path in a record that ships.
    assert os.sep not in evaluation["judge"]["source"]
    # Size refusal, then --install-only.
    monkeypatch.setattr(ship, "MAX_SHIPPED_BYTES", 1000)
    with pytest.raises(ValueError, match="over the"):
        ship.install(out, "text_to_image", name)
    monkeypatch.setattr(ship, "MAX_SHIPPED_BYTES", 10 * 1024 * 1024)
    with pytest.raises(ValueError, match="not 'scenes_vqgan_text_to_image'"):
        ship.install(out, "text_to_image", "scenes_vqgan_text_to_image")
    ship.main(["--task", "text_to_image", "--tokenizer",
               "scenes_lgvq_trained", "--out", out, "--install-only"])
    target = root / "models" / "text_to_image" / "trained" / name
    assert sorted(os.listdir(target)) == [
        "task.json", "task.weights.h5", "training.json"]
    installed = shipped.read_shipped_model_record(spec)
    assert installed["weights_sha256"] == ship.tokenizers_recipe.file_sha256(
        str(target / "task.weights.h5"))
    assert installed["weights_bytes"] < 500_000
    # Loaded by name: the trained generator with its tokenizer and prior.
    model = TextToImage.from_preset(name)
    trained = keras.saving.load_model(
        os.path.join(out, "train", "image", "last.keras"), safe_mode=True)
    for a, b in zip(model.backbone.weights, trained.backbone.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    captions = ["a big red star", "two figures: two hexagons"]
    np.testing.assert_array_equal(
        model.generate_codes(captions, steps=2, seed=5),
        trained.generate_codes(captions, steps=2, seed=5))
    # Its recorded figure comes back (same backend, same weights).
    again = ship.score_text_to_image_nll(model, 3, 0)
    assert again["mask_sha256"] == test["mask_sha256"]
    assert again["codes_sha256"] == test["codes_sha256"]
    np.testing.assert_allclose(again["nll"], test["nll"], rtol=1e-6)
    np.testing.assert_allclose(again["nll_unconditional"],
                               test["nll_unconditional"], rtol=1e-6)

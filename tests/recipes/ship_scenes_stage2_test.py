"""The recipe that trains, scores and installs the shipped scenes stage-2
models, at a tiny budget: its flags, the record, the size check, and that
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
        ship.parse_args(["--task", "text_to_image", "--tokenizer",
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
    # Every shipped name is a registered preset of its class.
    for task, (_, cls, _) in ship.TASKS.items():
        for tokenizer in ship.TOKENIZERS:
            name = ship.shipped_name(task, tokenizer)
            spec = presets.get_preset(name, cls)
            assert spec["tokenizer_preset"] == tokenizer
            assert spec["shipped_model"]["directory"] == (
                f"models/{ship.TASKS[task][0]}/trained/{name}")


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

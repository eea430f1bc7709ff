"""Smoke runs of recipes/captioning.py and recipes/vqa.py with a tiny
tokenizer (.keras) and a tiny GGUF LM: they train, score with the caption /
VQA metrics (Python tokenizer, no Java needed) and write their outputs,
PNG figures included; VQA on scenes and on a fake COCO-QA tree."""

import json
import os

import numpy as np
import pytest

from keras_lgvq.evaluation.captioning_downstream import blind_code_vectors
from keras_lgvq.models.vqa.vqa_presets import SCENES_ANSWERS
from keras_lgvq.visualization import read_png
from recipes import captioning
from recipes import vqa
from tests.datasets.coco_qa_test import TEST as COCO_QA_TEST
from tests.datasets.coco_qa_test import make_tree
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
from tests.models.tiny_configs import tiny_backbone


def _assets(tmp_path):
    tokenizer = tiny_backbone(resolution=32, attn_resolutions=())
    path = str(tmp_path / "tokenizer.keras")
    tokenizer.save(path)
    return path, write_tiny_lm_gguf(tmp_path / "tiny.gguf")


def _assert_checkpoints_and_logs(out, names, epochs):
    """What every training recipe keeps (recipes/common.py `train`)."""
    import csv
    import glob

    import keras

    for name in names:
        run = os.path.join(out, name)
        with open(os.path.join(run, "history.csv")) as f:
            rows = list(csv.DictReader(f))
        assert [int(r["epoch"]) for r in rows] == list(range(epochs))
        assert all(np.isfinite(float(r["val_loss"])) for r in rows)
        for part in ("train", "validation"):
            assert glob.glob(os.path.join(run, "logs", part, "events.*"))
        for file in ("best.keras", "last.keras"):
            keras.saving.load_model(os.path.join(run, file), safe_mode=True)
        # The backup is deleted once the model's training completed.
        assert not os.path.exists(os.path.join(run, "backup"))


@pytest.mark.end_to_end("torch")
def test_captioning_recipe_smoke(tmp_path):
    tokenizer, lm = _assets(tmp_path)
    out = str(tmp_path / "cap")
    results = captioning.run(captioning.parse_args([
        "--tokenizer", tokenizer, "--lm", lm, "--train-images", "6",
        "--eval-images", "3", "--epochs", "1", "--prefix-length", "2",
        "--mapper-width", "8", "--max-caption-length", "6", "--out", out,
        # The paper's design (not the CPU default): the frozen LM behind
        # ClipCap's flattening MLP.
        "--decoder", "pretrained", "--mapper", "mlp",
        # The stage-2 models can leave a NaN step out (the guard arms it).
        "--nan-policy", "skip",
    ]))
    assert set(results["models"]) == {"image", "blind"}
    for entry in results["models"].values():
        assert 0.0 <= entry["scores"]["BLEU-1"] <= 1.0
        assert entry["scores"]["count"] == 3
        assert np.isfinite(entry["final_loss"])
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["models"]["image"]["scores"]["count"] == 3
    with open(os.path.join(out, "report.md")) as f:
        report = f.read()
    assert "| image |" in report and "![captions](captions.png)" in report
    assert "Paired bootstrap over test images" in report
    assert {"BLEU-4", "ROUGE-L", "CIDEr-D"} <= set(results["paired"])
    assert results["paired"]["CIDEr-D"]["n"] == 3
    assert read_png(os.path.join(out, "captions.png")).shape[-1] == 3
    assert results["timings"]["total"]["wall_s"] > 0
    _assert_checkpoints_and_logs(out, ("image", "blind"), epochs=1)


@pytest.mark.end_to_end("jax")
def test_captioning_recipe_scratch_decoder_smoke(tmp_path):
    tokenizer, lm = _assets(tmp_path)
    out = str(tmp_path / "cap_scratch")
    results = captioning.run(captioning.parse_args([
        "--tokenizer", tokenizer, "--lm", lm, "--train-images", "4",
        "--eval-images", "2", "--epochs", "1", "--prefix-length", "4",
        "--mapper", "pooled", "--mapper-width", "8",
        "--max-caption-length", "6", "--decoder",
        "scratch", "--decoder-width", "16", "--decoder-layers", "1",
        "--no-blind", "--figure-images", "0", "--out", out,
    ]))
    assert set(results["models"]) == {"image"}
    per_image = results["models"]["image"]["per_image"]
    assert len(per_image["CIDEr-D"]) == 2
    assert not os.path.exists(os.path.join(out, "captions.png"))
    with open(os.path.join(out, "report.md")) as f:
        assert "scratch decoder (width 16, 1 blocks)" in f.read()


def test_captioning_recipe_defaults_are_the_measured_ones():
    from keras_lgvq.evaluation.captioning_downstream import CAPTIONING_DEFAULTS
    from keras_lgvq.evaluation.captioning_downstream import CAPTIONING_SIZES

    args = captioning.parse_args(["--tokenizer", "scenes_lgvq_trained"])
    # The recipe and `captioning_downstream_scenes` run the same setting.
    assert captioning.settings_of(args) == CAPTIONING_DEFAULTS
    assert {k: getattr(args, k) for k in CAPTIONING_SIZES} == CAPTIONING_SIZES


@pytest.mark.end_to_end("tensorflow")
def test_vqa_recipe_smoke(tmp_path):
    tokenizer, lm = _assets(tmp_path)
    out = str(tmp_path / "vqa")
    results = vqa.run(vqa.parse_args([
        "--tokenizer", tokenizer, "--lm", lm, "--train-images", "12",
        "--eval-images", "8", "--epochs", "1", "--prefix-length", "2",
        "--mapper-width", "8", "--projection-dim", "2", "--out", out,
        # The paper's design (not the CPU default): the frozen LM.
        "--decoder", "pretrained", "--mapper", "mlp",
    ]))
    assert set(results["models"]) == {"image", "blind"}
    test = results["models"]["image"]["test"]
    assert 0.0 <= test["accuracy"] <= test["WUPS@0.0"] <= 1.0
    assert results["sizes"]["test"] == test["count"]
    with open(os.path.join(out, "report.md")) as f:
        assert "| blind | test |" in f.read()
    assert read_png(os.path.join(out, "answers.png")).shape[-1] == 3
    # Every scenes answer can be predicted: the preset's vocabulary.
    assert results["answer_vocabulary"] == SCENES_ANSWERS
    _assert_checkpoints_and_logs(out, ("image", "blind"), epochs=1)
    assert results["sizes"]["validation"] > 0
    assert 0.0 <= results["type_prior"]["test"]["accuracy"] <= 1.0
    paired = results["paired"]["test"]
    assert set(paired) == {"image vs blind", "image vs type prior"}
    assert paired["image vs blind"]["n"] == test["count"]


@pytest.mark.end_to_end("jax")
def test_vqa_recipe_with_a_scratch_decoder(tmp_path):
    import keras

    tokenizer, lm = _assets(tmp_path)
    out = str(tmp_path / "vqa_scratch")
    results = vqa.run(vqa.parse_args([
        "--tokenizer", tokenizer, "--lm", lm, "--train-images", "8",
        "--eval-images", "4", "--validation-images", "2", "--epochs", "1",
        "--prefix-length", "4", "--mapper", "pooled", "--mapper-width",
        "8", "--decoder", "scratch", "--decoder-width", "16",
        "--decoder-layers", "1", "--figure-images", "0", "--out", out,
    ]))
    assert set(results["models"]) == {"image", "blind"}
    assert results["settings"]["language_model_training"] == "full"
    with open(os.path.join(out, "report.md")) as f:
        assert "scratch decoder (width 16, 1 blocks)" in f.read()
    model = keras.saving.load_model(
        os.path.join(out, "image", "last.keras"), safe_mode=True)
    backbone = model.language_model.backbone
    # A new decoder of the asked size over the tiny LM's tokenizer, and it
    # trained: its weights are in the model's trainable weights.
    assert backbone.hidden_dim == 16 and backbone.num_layers == 1
    trainable = {id(v) for v in model.trainable_weights}
    assert all(id(v) in trainable for v in backbone.weights)


def test_vqa_scratch_decoder_flags_are_checked():
    args = vqa.parse_args(["--tokenizer", "t.keras"])
    # The measured CPU default is the scratch decoder, which trains fully.
    assert (args.decoder, args.language_model_training, args.mapper) == (
        "scratch", "full", "pooled")
    args = vqa.parse_args(["--tokenizer", "t.keras", "--decoder",
                           "pretrained"])
    assert args.language_model_training == "frozen"
    for mode in ("frozen", "lora"):
        with pytest.raises(ValueError, match="--decoder scratch"):
            vqa.parse_args(["--tokenizer", "t.keras", "--decoder",
                            "scratch", "--language-model-training", mode])
    with pytest.raises(ValueError, match="--decoder-width"):
        vqa.parse_args(["--tokenizer", "t.keras", "--decoder", "scratch",
                        "--decoder-width", "0"])


def test_paired_tests_compare_per_question_accuracy():
    rng = np.random.default_rng(0)
    truth = rng.choice(["red", "blue", "yes"], 200).tolist()
    sets = {"test": [{"answer": t} for t in truth]}
    image = [t if i % 4 else "no" for i, t in enumerate(truth)]  # 75 %
    blind = [t if i % 2 else "no" for i, t in enumerate(truth)]  # 50 %
    prior = ["no"] * 200                                         # 0 %
    out = vqa.paired_tests(sets, ["test"], {
        "image": {"test": image}, "blind": {"test": blind},
        "type prior": {"test": prior}})["test"]
    versus_blind = out["image vs blind"]
    assert versus_blind["n"] == 200
    np.testing.assert_allclose(versus_blind["difference"], 0.25)
    np.testing.assert_allclose(out["image vs type prior"]["difference"],
                               0.75)
    assert versus_blind["significant"] and versus_blind["ci_low"] > 0
    # Equal answers: no difference, not significant.
    same = vqa.paired_tests(sets, ["test"], {
        "image": {"test": blind}, "blind": {"test": blind}})["test"]
    assert same["image vs blind"]["difference"] == 0.0
    assert not same["image vs blind"]["significant"]
    assert vqa.paired_tests(sets, ["test"], {"blind": {"test": blind}}) == {}


def test_projection_dim_needs_the_mlp_mapper():
    for module in (captioning, vqa):
        with pytest.raises(ValueError, match="--projection-dim"):
            module.parse_args(["--tokenizer", "t.keras", "--mapper",
                               "pooled", "--projection-dim", "4"])


def test_type_prior_answers_each_type_with_its_top_training_answer():
    train = [{"type": "color", "answer": a} for a in ("red", "blue", "red")]
    train += [{"type": "count", "answer": a} for a in ("two", "one")]
    questions = [{"type": "count"}, {"type": "color"}, {"type": "shape"}]
    # count: a tie, broken alphabetically; shape: unseen type, the first of
    # the per-type answers in sorted order.
    assert vqa.type_prior_answers(train, questions) == ["one", "red", "one"]


# A whole recipe run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
def test_vqa_recipe_on_a_fake_coco_qa_tree(tmp_path):
    tokenizer, lm = _assets(tmp_path)
    manual = str(tmp_path / "coco_qa")
    make_tree(manual)
    out = str(tmp_path / "vqa_coco")
    results = vqa.run(vqa.parse_args([
        "--tokenizer", tokenizer, "--lm", lm, "--dataset", "coco_qa",
        "--manual-dir", manual, "--data-dir", str(tmp_path / "tfds"),
        "--epochs", "1", "--prefix-length", "2", "--mapper-width", "8",
        "--decoder", "pretrained", "--mapper", "mlp",
        "--language-model-training", "lora", "--lora-rank", "2",
        "--out", out,
    ]))
    # The last of the 3 training images is held out for validation; the
    # answer vocabulary still spans the whole training split.
    assert results["sizes"] == {"train": 3, "validation": 1,
                                "test": len(COCO_QA_TEST)}
    assert results["answer_vocabulary"] == ["red", "table", "two",
                                            "umbrella"]
    test = results["models"]["image"]["test"]
    assert test["count"] == 2
    assert set(test["per_type"]) == {"object", "color"}
    assert read_png(os.path.join(out, "answers.png")).shape[-1] == 3


def test_blind_input_is_one_constant_grid_without_zeros(tmp_path):
    tokenizer = tiny_backbone(resolution=32, attn_resolutions=())
    codes = np.random.default_rng(0).integers(
        0, int(tokenizer.num_embeddings), (5, 8, 8))
    blind = blind_code_vectors(tokenizer, codes, 3)
    from keras import ops

    all_codes = np.arange(int(tokenizer.num_embeddings))
    table = np.asarray(ops.convert_to_numpy(
        tokenizer.quantizer.indices_to_codes(all_codes)))
    # Independent: the per-position mean of the looked-up code vectors.
    want = table[codes].reshape(5, 64, -1).mean(axis=0)
    assert blind.shape == (3, 64, table.shape[-1])
    for row in blind:
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-6)


class _Crash(Exception):
    pass


# A whole recipe run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
def test_vqa_recipe_resumes_a_crashed_run_to_the_uninterrupted_weights(
    tmp_path, monkeypatch, capsys
):
    import keras

    from recipes import common

    tokenizer, lm = _assets(tmp_path)
    argv = ["--tokenizer", tokenizer, "--lm", lm, "--train-images", "6",
            "--eval-images", "2", "--validation-images", "2",
            "--questions-per-image", "2", "--epochs", "2",
            "--batch-size", "4", "--prefix-length", "2",
            "--decoder", "pretrained", "--mapper", "mlp",
            "--mapper-width", "8", "--no-blind", "--figure-images", "0",
            "--checkpoint-every", "1", "--verbose", "0"]
    straight = str(tmp_path / "straight")
    vqa.run(vqa.parse_args(argv + ["--out", straight]))

    class CrashAt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (1, 0):
                raise _Crash()

    original = common.training_callbacks
    monkeypatch.setattr(common, "training_callbacks",
                        lambda *a, **k: original(*a, **k) + [CrashAt()])
    out = str(tmp_path / "resumed")
    backup = str(tmp_path / "backups")
    resumed_argv = argv + ["--out", out, "--backup-dir", backup]
    try:
        vqa.run(vqa.parse_args(resumed_argv))
    except _Crash:
        pass
    else:
        raise AssertionError("the crash callback did not fire")
    # --backup-dir holds one folder per trained model.
    with open(os.path.join(backup, "image",
                           "training_metadata.json")) as f:
        assert json.load(f)["epoch"] == 1
    monkeypatch.setattr(common, "training_callbacks", original)
    capsys.readouterr()
    vqa.run(vqa.parse_args(resumed_argv))
    assert "Resuming from" in capsys.readouterr().out
    assert not os.path.exists(os.path.join(backup, "image"))
    _assert_checkpoints_and_logs(out, ("image",), epochs=2)
    want = keras.saving.load_model(
        os.path.join(straight, "image", "last.keras")).get_weights()
    got = keras.saving.load_model(
        os.path.join(out, "image", "last.keras")).get_weights()
    assert len(want) == len(got)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)

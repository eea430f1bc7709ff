"""Smoke runs of recipes/captioning.py and recipes/vqa.py with a tiny
tokenizer (.keras) and a tiny GGUF LM: they train, score with the caption /
VQA metrics (Python tokenizer, no Java needed) and write their outputs."""

import json
import os

from recipes import captioning
from recipes import vqa
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
from tests.models.tiny_configs import tiny_backbone


def _assets(tmp_path):
    tokenizer = tiny_backbone(resolution=32, attn_resolutions=())
    path = str(tmp_path / "tokenizer.keras")
    tokenizer.save(path)
    return path, write_tiny_lm_gguf(tmp_path / "tiny.gguf")


def test_captioning_recipe_smoke(tmp_path):
    tokenizer, lm = _assets(tmp_path)
    out = str(tmp_path / "cap")
    results = captioning.run(captioning.parse_args([
        "--tokenizer", tokenizer, "--lm", lm, "--train-images", "6",
        "--eval-images", "3", "--epochs", "1", "--prefix-length", "2",
        "--mapper-width", "8", "--max-caption-length", "6", "--out", out,
    ]))
    assert set(results["models"]) == {"image", "blind"}
    for entry in results["models"].values():
        assert 0.0 <= entry["scores"]["BLEU-1"] <= 1.0
        assert entry["scores"]["count"] == 3
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["models"]["image"]["scores"]["count"] == 3
    with open(os.path.join(out, "report.md")) as f:
        assert "| image |" in f.read()


def test_vqa_recipe_smoke(tmp_path):
    tokenizer, lm = _assets(tmp_path)
    out = str(tmp_path / "vqa")
    results = vqa.run(vqa.parse_args([
        "--tokenizer", tokenizer, "--lm", lm, "--train-images", "12",
        "--eval-images", "8", "--epochs", "1", "--prefix-length", "2",
        "--mapper-width", "8", "--out", out,
    ]))
    assert set(results["models"]) == {"image", "blind"}
    test = results["models"]["image"]["test"]
    assert 0.0 <= test["accuracy"] <= test["WUPS@0.0"] <= 1.0
    assert results["sizes"]["test"] == test["count"]
    with open(os.path.join(out, "report.md")) as f:
        assert "| blind | test |" in f.read()

"""The comparison's captioning task without training: which rows, budgets,
flat metrics / per-image items, the report section, stored results."""

import numpy as np
import pytest

from keras_lgvq import comparison
from keras_lgvq.comparison import captioning
from keras_lgvq.comparison import run_state
from keras_lgvq.comparison.budgets import captioning_budget


def _result(image, blind, seed=0):
    """A `run_captioning`-shaped result from per-image ROUGE-L / CIDEr-D
    lists (corpus score = their mean, as pycocoevalcap's)."""
    per = {
        model: {"ROUGE-L": list(v), "CIDEr-D": [2 * x for x in v]}
        for model, v in (("image", image), ("blind", blind))
    }
    scores = {
        model: {"BLEU-4": 0.1, "METEOR": None, "ROUGE-L": float(np.mean(v)),
                "CIDEr-D": float(np.mean([2 * x for x in v]))}
        for model, v in (("image", image), ("blind", blind))
    }
    settings = {"bootstrap_resamples": 200}
    return {
        "scores": scores,
        "per_image": per,
        "image_ids": [f"test_{i}" for i in range(len(image))],
        "image_vs_blind": {
            name: captioning._bootstrap(per["image"][name],
                                        per["blind"][name], settings, seed)
            for name in ("ROUGE-L", "CIDEr-D")
        },
        "examples": [{"image_id": "test_0", "references": ["a red | box"],
                      "image": "a red box", "blind": "a box"}],
        "sizes": {"train_images": 16, "eval_images": len(image),
                  "captions_per_image": 1, "validation_images": 4},
        "settings": dict(captioning_budget("smoke")["settings"]),
        "language_model": "smollm2",
        "seconds": {"total": 1.0},
        "notes": ["METEOR not scored: no Java"],
    }


def test_every_vqgan_family_row_is_captioned():
    captioned = [k for k in comparison.MODELS if captioning.has_captioning(k)]
    # VQCT's several codes per position included; not the LQAE ViTs.
    assert captioned == ["lgvq", "vqgan", "cvq_lg", "cvq", "vqct_lg", "vqct"]
    with pytest.raises(ValueError, match="`kind`"):
        captioning.has_captioning("vqtc")


def test_budgets():
    from keras_lgvq.evaluation.captioning_downstream import CAPTIONING_DEFAULTS

    assert captioning_budget("quick") is None
    assert captioning_budget("default", off=True) is None
    default = captioning_budget("default")
    assert default["settings"] == CAPTIONING_DEFAULTS
    assert default["use_java"] is None
    with pytest.raises(ValueError, match="captioning-lm"):
        captioning_budget("default", language_model="")
    # A bad budget override is caught by the captioning settings check.
    with pytest.raises(ValueError, match="Unknown captioning settings"):
        from keras_lgvq.evaluation.captioning_downstream import (
            check_captioning_settings,
        )

        check_captioning_settings({"layers": 2})


def test_unavailable_reasons(monkeypatch):
    from keras_lgvq.language_models import smollm2_assets

    quick = comparison.resolve_settings({"quick": True})
    assert "--quick" in captioning.captioning_unavailable(quick)
    off = comparison.resolve_settings({"smoke": True, "no_captioning": True})
    assert "--no-captioning" in captioning.captioning_unavailable(off)
    smoke = comparison.resolve_settings({"smoke": True})
    monkeypatch.setattr(smollm2_assets, "is_available", lambda *a: False)
    with pytest.warns(UserWarning, match="smollm2_assets"):
        reason = captioning.captioning_unavailable(smoke)
    assert smollm2_assets.fetch_command() in reason
    # Another LM source does not need the asset.
    other = comparison.resolve_settings(
        {"smoke": True, "captioning_lm": "/x/lm.gguf"})
    assert captioning.captioning_unavailable(other) is None


def test_flat_metrics_items_and_report_section():
    image = [0.5, 0.25, 0.75, 0.5]
    blind = [0.25, 0.25, 0.25, 0.25]
    result = _result(image, blind)
    flat = captioning.captioning_metrics(result)
    assert flat == {
        "caption_bleu4": 0.1, "caption_bleu4_blind": 0.1,
        "caption_rouge_l": 0.5, "caption_rouge_l_blind": 0.25,
        "caption_cider_d": 1.0, "caption_cider_d_blind": 0.5,
    }
    items = captioning.captioning_items(result)
    assert items == {"caption_rouge_l": image,
                     "caption_cider_d": [2 * x for x in image]}
    test = result["image_vs_blind"]["ROUGE-L"]
    assert test["difference"] == pytest.approx(
        np.mean(np.subtract(image, blind)))
    summary = {
        "lgvq": {"captioning": result},
        "vqgan": {"captioning": _result(blind, blind)},
        "lqae": {},
        "comparison": {"captioned": ["lgvq", "vqgan"]},
    }
    lines = captioning.captioning_section(summary, ["lgvq", "vqgan",
                                                    "lqae"])
    text = "\n".join(lines)
    assert "| LG-VQ | image | 0.100 | — | 0.500 | 1.000 |" in text
    assert "| LG-VQ | blind | 0.100 | — | 0.250 | 0.500 |" in text
    assert "| VQGAN | image | 0.100 | — | 0.250 | 0.500 |" in text
    # A '|' inside a caption does not break the table.
    assert "a red / box" in text
    notes = captioning.captioning_notes(
        summary, ["lgvq", "vqgan", "lqae"], {})
    assert "Captioning (LG-VQ): METEOR not scored: no Java." in notes
    assert f"LQAE {captioning.NOT_CAPTIONED}." in notes
    assert not any("VQGAN not captioned" in n for n in notes)
    assert captioning.captioning_section({"lgvq": {}}, ["lgvq"]) == []


def test_stored_captions_are_dropped_with_a_retrained_unit(tmp_path):
    out = str(tmp_path)
    assert run_state.load_captioning(out, "lgvq", 0) is None
    result = _result([0.5, 0.5], [0.25, 0.25])
    run_state.save_captioning(out, "lgvq", 0, result)
    loaded = run_state.load_captioning(out, "lgvq", 0)
    assert loaded["per_image"] == result["per_image"]
    # Retraining the tokenizer invalidates the captions made over it.
    run_state.save_unit(out, "lgvq", 0, {"kind": "lgvq"})
    assert run_state.load_captioning(out, "lgvq", 0) is None


# A whole captioning task run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
def test_run_captioning_at_smoke_size_over_vqct_codes(tmp_path):
    # VQCT gives (B, h, w, top_k + 1) codes: the captioners read them
    # (one code vector per position) and the blind one a mean grid.
    from keras_lgvq.comparison.budgets import SMOKE_VQCT
    from keras_lgvq.models import VQCTBackbone
    from tests.models.captioning.tiny_lm import write_tiny_lm_gguf

    tokenizer = VQCTBackbone.from_preset("scenes_vqct", **SMOKE_VQCT)
    lm = write_tiny_lm_gguf(tmp_path / "tiny.gguf")
    settings = comparison.resolve_settings({
        "smoke": True, "captioning_lm": lm, "bootstrap_resamples": 100})
    settings["captioning"]["sizes"].update(train_images=4, eval_images=3,
                                           validation_images=2)
    result = captioning.run_captioning(tokenizer, settings, seed=0)
    assert len(result["image_ids"]) == 3
    items = captioning.captioning_items(result)
    assert set(items) == {"caption_bleu4", "caption_rouge_l",
                          "caption_cider_d"}
    assert all(len(v) == 3 for v in items.values())
    assert result["image_vs_blind"]["CIDEr-D"]["n"] == 3
    assert all(isinstance(e["image"], str) for e in result["examples"])

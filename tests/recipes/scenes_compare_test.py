import json
import math
import os

import pytest

from keras_lgvq import visualization
from keras_lgvq.evaluation import METRIC_SPECS
from keras_lgvq.evaluation import REFERENCE_KEYS
from recipes import scenes_compare

# Metrics a model may legitimately lack in a smoke run: LPIPS / rFID need
# ImageNet weights that CI does not have (the summary then says why), and a
# VQGAN has no text heads of its own.
_OWN_HEAD_KEYS = {k for k in METRIC_SPECS if k.endswith("_own")}
_WEIGHT_KEYS = {"lpips", "rfid"}
# Per-sub-codebook usage: only tokenizers with sub-codebooks (VQCT).
_SUB_CODEBOOK_KEYS = {
    k for k in METRIC_SPECS
    if k.startswith(("codebook_usage_pct_", "codebook_perplexity_"))
}


def test_settings_per_mode_and_overrides():
    quick = scenes_compare.resolve_settings(
        scenes_compare.parse_args(["--quick"])
    )
    default = scenes_compare.resolve_settings(scenes_compare.parse_args([]))
    smoke = scenes_compare.resolve_settings(
        scenes_compare.parse_args(["--smoke"])
    )
    assert quick["mode"] == "quick" and default["mode"] == "default"
    assert quick["total_steps"] == 768 // 16 * 1
    assert default["total_steps"] == 2560 // 16 * 3
    assert smoke["total_steps"] == 4 and smoke["smoke"]
    # All three end long before the preset's disc_start: no discriminator.
    assert not quick["discriminator"] and not default["discriminator"]
    custom = scenes_compare.resolve_settings(
        scenes_compare.parse_args(
            ["--quick", "--with-discriminator", "--epochs", "2",
             "--batch-size", "8", "--learning-rate", "2e-4"]
        )
    )
    assert custom["discriminator"]
    assert custom["total_steps"] == 2 * (768 // 8)
    assert custom["learning_rate"] == 2e-4
    with pytest.raises(ValueError, match="train-size"):
        scenes_compare.resolve_settings(
            scenes_compare.parse_args(["--train-size", "4"])
        )
    with pytest.raises(SystemExit):
        scenes_compare.parse_args(["--quick", "--smoke"])


def test_models_argument_selects_registry_entries():
    def models(*argv):
        args = scenes_compare.parse_args(["--smoke", *argv])
        return scenes_compare.resolve_settings(args)["models"]

    assert models() == ["lgvq", "vqgan"]
    assert models("--models", "vqct_lg, vqct,vqct_lg") == ["vqct_lg", "vqct"]
    assert models("--models", "all") == list(scenes_compare.MODELS)
    assert {"vqct", "vqct_lg"} <= set(scenes_compare.MODELS)
    with pytest.raises(ValueError, match="unknown: \\['vqtc'\\]"):
        models("--models", "lgvq,vqtc")
    with pytest.raises(ValueError, match="--models"):
        models("--models", ",")
    # Every registry entry names a preset its class can build.
    from keras_lgvq.models import presets

    for kind, spec in scenes_compare.MODELS.items():
        assert spec.preset in presets.list_presets(spec.model_class), kind
        if spec.baseline is not None:
            twin = scenes_compare.MODELS[spec.baseline]
            assert spec.guided and not twin.guided


def test_module_entry_point_dispatches(capsys):
    from keras_lgvq import __main__ as entry

    assert entry.main(["--help"]) == 0
    assert "compare" in capsys.readouterr().out
    assert entry.main(["nope"]) == 2


def _minilm_available():
    from keras_lgvq.text_priors import minilm_assets

    return minilm_assets.is_available()


needs_minilm = pytest.mark.skipif(
    not _minilm_available(),
    reason="MiniLM text prior is not cached (python -m "
    "keras_lgvq.fetch_assets)",
)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The main job's code path at `--smoke` size, run once per module."""
    root = tmp_path_factory.mktemp("scenes_smoke")
    out, data = root / "run", str(root / "tfds")
    scenes_compare.main(
        ["--smoke", "--out", str(out), "--data-dir", data, "--verbose", "0"]
    )
    with open(out / "summary.json") as f:
        summary = json.load(f)
    return out, data, summary


def _walk_numbers(value, path=""):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_numbers(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_numbers(v, f"{path}[{i}]")


@needs_minilm
def test_smoke_summary_schema_values_and_promised_metrics(smoke_run):
    out, _, summary = smoke_run
    assert set(summary) >= {
        "lgvq", "vqgan", "config", "comparison", "timing", "machine", "notes"
    }
    assert summary["config"]["mode"] == "smoke"
    # No NaN or inf anywhere in the summary.
    bad = [p for p, v in _walk_numbers(summary) if not math.isfinite(v)]
    assert not bad, bad
    for kind in ("lgvq", "vqgan"):
        result = summary[kind]
        for key in ("psnr", "ssim", "codebook_usage", "codebook_perplexity",
                    "retrieval_probe", "masked_word_probe",
                    "relation_mse_probe", "attribute_probe", "lpips", "rfid",
                    "probe_training", "training", "figures", "seconds"):
            assert key in result, (kind, key)
        assert result["num_eval_images"] == 16
        training = result["training"]
        assert training["steps"] == 4
        assert training["step_history"]["loss"]["steps"] == [1, 2, 3, 4]
        flat = result["table_metrics"]
        # Every metric the report promises, and its reference, is there.
        assert list(flat) == list(METRIC_SPECS) + list(REFERENCE_KEYS)
        may_lack = set(_WEIGHT_KEYS) | _SUB_CODEBOOK_KEYS
        if kind == "vqgan":
            may_lack |= _OWN_HEAD_KEYS
        for key in METRIC_SPECS:
            if key in _WEIGHT_KEYS:
                # Absent only with the reason recorded.
                assert (flat[key] is None) == (
                    not result[key]["available"]
                ), key
                assert result[key]["available"] or result[key]["reason"]
            elif key in may_lack:
                assert flat[key] is None, (kind, key)
            else:
                assert flat[key] is not None, (kind, key)
        for name, path in result["figures"].items():
            assert visualization.read_png(str(out / path)).ndim == 3, name
    assert set(summary["lgvq"]["figures"]) == {
        "reconstructions.png", "codebook_usage.png", "retrieval_probe.png",
        "retrieval_own.png",
    }
    assert "retrieval" in summary["lgvq"]["own_heads"]
    assert summary["vqgan"]["own_heads"]["available"] is False
    # Same initial backbone for both models.
    assert summary["lgvq"]["training"]["initial_backbone_abs_sum"] == (
        pytest.approx(summary["vqgan"]["training"]["initial_backbone_abs_sum"])
    )
    figures = summary["comparison"]["figures"]
    assert set(figures) == {
        "metrics.png", "training_curves.png", "codebook_usage.png"
    }
    for name in figures.values():
        assert visualization.read_png(str(out / name)).ndim == 3


@needs_minilm
def test_smoke_report_has_a_row_for_every_metric_with_a_value(smoke_run):
    out, _, summary = smoke_run
    report = (out / "report.md").read_text()
    assert "| Metric | LG-VQ | VQGAN | Chance/baseline | Better |" in report
    rows = {row[0]: row for row in summary["comparison"]["rows"]}
    for key, spec in METRIC_SPECS.items():
        values = [summary[k]["table_metrics"][key] for k in ("lgvq", "vqgan")]
        if all(v is None for v in values):
            continue
        arrow = " ↑" if spec.higher_is_better else " ↓"
        label = spec.label + arrow
        assert label in rows, key
        assert f"| {label} |" in report, key
    assert len(rows) == len(summary["comparison"]["rows"])
    for figure in summary["comparison"]["figures"].values():
        assert f"]({figure})" in report


@needs_minilm
def test_evaluate_recipe_on_the_smoke_preset(smoke_run, tmp_path):
    from recipes import evaluate

    out, data, _ = smoke_run
    evaluate.main([
        str(out / "lgvq" / "preset"), "--out", str(tmp_path / "eval"),
        "--eval-size", "16", "--probe-size", "0", "--train-size", "32",
        "--data-dir", data, "--verbose", "0",
    ])
    with open(tmp_path / "eval" / "evaluation.json") as f:
        result = json.load(f)
    assert result["model"] == "LGVQ" and result["num_eval_images"] == 16
    assert math.isfinite(result["table_metrics"]["psnr"])
    assert os.path.isfile(tmp_path / "eval" / "reconstructions.png")
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| PSNR (dB) ↑ |" in report


@needs_minilm
def test_smoke_vqct_rows_and_their_evaluation(smoke_run, tmp_path):
    # VQCT and VQCT+LG through the same recipe (the data of the default
    # smoke run is reused; probes are skipped to keep CI short: they run
    # on VQCT codes in tests/evaluation/vqct_evaluation_test.py).
    from recipes import evaluate

    _, data, _ = smoke_run
    out = tmp_path / "vqct"
    summary = scenes_compare.run(
        scenes_compare.parse_args([
            "--smoke", "--models", "vqct,vqct_lg", "--probe-size", "0",
            "--out", str(out), "--data-dir", data, "--verbose", "0",
        ])
    )
    assert summary["config"]["models"] == ["vqct", "vqct_lg"]
    assert summary["comparison"]["header"][1:3] == ["VQCT", "VQCT+LG"]
    for kind in ("vqct", "vqct_lg"):
        result = summary[kind]
        assert set(result["sub_codebooks"]) == {"adjective", "noun"}
        flat = result["table_metrics"]
        assert list(flat) == list(METRIC_SPECS) + list(REFERENCE_KEYS)
        for key in _SUB_CODEBOOK_KEYS:
            assert math.isfinite(flat[key]), (kind, key)
        assert flat["codebook_usage_pct_noun"] == pytest.approx(
            100.0 * result["sub_codebooks"]["noun"]["usage"]
        )
        assert "adjective_loss" in result["training"]["step_history"]
    assert "retrieval" in summary["vqct_lg"]["own_heads"]
    assert summary["vqct"]["own_heads"]["available"] is False
    # The guided model and its unguided twin start from the same backbone.
    checksums = [
        summary[k]["training"]["initial_backbone_abs_sum"]
        for k in ("vqct", "vqct_lg")
    ]
    assert checksums[0] == pytest.approx(checksums[1])
    rows = {row[0] for row in summary["comparison"]["rows"]}
    assert "Codebook usage, adjectives (%) ↑" in rows
    report = (out / "report.md").read_text()
    assert report.startswith("# VQCT vs VQCT+LG on the scenes set")
    assert "| Metric | VQCT | VQCT+LG | Chance/baseline | Better |" in report
    assert visualization.read_png(str(out / "codebook_usage.png")).ndim == 3

    evaluate.main([
        str(out / "vqct" / "preset"), "--out", str(tmp_path / "eval"),
        "--eval-size", "16", "--probe-size", "0", "--train-size", "32",
        "--data-dir", data, "--verbose", "0",
    ])
    with open(tmp_path / "eval" / "evaluation.json") as f:
        result = json.load(f)
    assert result["model"] == "VQCT"
    assert math.isfinite(result["table_metrics"]["codebook_usage_pct_noun"])
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| Codebook perplexity, nouns ↑ |" in report

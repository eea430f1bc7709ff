import json
import math
import os

import pytest

from keras_lgvq import comparison
from keras_lgvq import visualization
from keras_lgvq.comparison.captioning import CAPTION_METRICS
from keras_lgvq.comparison.captioning import CAPTIONING_SPECS
from keras_lgvq.comparison.vqa import VQA_METRICS
from keras_lgvq.comparison.vqa import VQA_SPECS
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
    quick = comparison.resolve_settings(
        scenes_compare.parse_args(["--quick"])
    )
    default = comparison.resolve_settings(scenes_compare.parse_args([]))
    smoke = comparison.resolve_settings(
        scenes_compare.parse_args(["--smoke"])
    )
    assert quick["mode"] == "quick" and default["mode"] == "default"
    assert quick["total_steps"] == 768 // 16 * 1
    assert default["total_steps"] == 2560 // 16 * 3
    assert smoke["total_steps"] == 4 and smoke["smoke"]
    # All three end long before the preset's disc_start: no discriminator.
    assert not quick["discriminator"] and not default["discriminator"]
    custom = comparison.resolve_settings(
        scenes_compare.parse_args(
            ["--quick", "--with-discriminator", "--epochs", "2",
             "--batch-size", "8", "--learning-rate", "2e-4"]
        )
    )
    assert custom["discriminator"]
    assert custom["total_steps"] == 2 * (768 // 8)
    assert custom["learning_rate"] == 2e-4
    with pytest.raises(ValueError, match="train-size"):
        comparison.resolve_settings(
            scenes_compare.parse_args(["--train-size", "4"])
        )
    with pytest.raises(SystemExit):
        scenes_compare.parse_args(["--quick", "--smoke"])
    # Seeds: consecutive from --seed; the bootstrap needs >= 100 resamples.
    seeded = comparison.resolve_settings(
        scenes_compare.parse_args(["--smoke", "--seeds", "3", "--seed", "5"])
    )
    assert seeded["seeds"] == [5, 6, 7] and default["seeds"] == [0]
    for bad in (["--seeds", "0"], ["--seeds", "17"],
                ["--bootstrap-resamples", "50"]):
        with pytest.raises(ValueError, match=bad[0]):
            comparison.resolve_settings(
                scenes_compare.parse_args(["--smoke", *bad])
            )
    # Captioning: the default budget runs the captioning_downstream_scenes
    # defaults (read from the function, not copied); --quick and
    # --no-captioning have none; the settings are in the fingerprint.
    import inspect

    from keras_lgvq.evaluation import captioning_downstream

    caption = default["captioning"]
    parameters = inspect.signature(
        captioning_downstream.captioning_downstream_scenes).parameters
    assert caption["sizes"] == {k: parameters[k].default
                                for k in caption["sizes"]}
    assert caption["settings"] == captioning_downstream.CAPTIONING_DEFAULTS
    assert caption["language_model"] == "smollm2"
    assert quick["captioning"] is None
    assert smoke["captioning"]["sizes"]["eval_images"] == 8
    assert smoke["captioning"]["use_java"] is False
    off = comparison.resolve_settings(
        scenes_compare.parse_args(["--no-captioning"]))
    assert off["captioning"] is None
    assert comparison.result_fingerprint(default)["captioning"] == caption
    # VQA: off in the default budget unless --all, none under --quick,
    # tiny under --smoke, --no-vqa turns it off.
    assert default["vqa"] is None and quick["vqa"] is None
    assert smoke["vqa"]["sizes"]["eval_images"] == 4
    everything = comparison.resolve_settings(
        scenes_compare.parse_args(["--all"]))
    assert everything["vqa"]["settings"]["epochs"] == 10
    assert comparison.resolve_settings(
        scenes_compare.parse_args(["--smoke", "--no-vqa"]))["vqa"] is None
    # --leak-free-mtp is documented as a no-op for the `scenes` rows.
    from keras_lgvq.models.presets import get_preset

    assert get_preset("scenes")["guidance"]["mtp_leak_free"] is True


def test_models_argument_selects_registry_entries():
    def models(*argv):
        args = scenes_compare.parse_args(["--smoke", *argv])
        return comparison.resolve_settings(args)["models"]

    assert models() == ["lgvq", "vqgan"]
    assert models("--models", "vqct_lg, vqct,vqct_lg") == ["vqct_lg", "vqct"]
    assert models("--models", "all") == list(comparison.MODELS)
    assert models("--all") == list(comparison.MODELS)
    with pytest.raises(ValueError, match="--all"):
        models("--all", "--models", "lgvq")
    # Every row the issue names is in the registry.
    assert [s.label for s in comparison.MODELS.values()] == [
        "LG-VQ", "VQGAN", "CVQ+LG", "CVQ", "VQCT+LG", "VQCT", "LQAE", "VQAE"
    ]
    with pytest.raises(ValueError, match="unknown: \\['vqtc'\\]"):
        models("--models", "lgvq,vqtc")
    with pytest.raises(ValueError, match="--models"):
        models("--models", ",")
    # Every registry entry names a preset its class can build.
    from keras_lgvq.models import presets

    for kind, spec in comparison.MODELS.items():
        assert spec.preset in presets.list_presets(spec.model_class), kind
        if spec.guided:
            assert spec.baseline is not None, kind
        if spec.baseline is not None:
            twin = comparison.MODELS[spec.baseline]
            assert not twin.guided and twin.baseline is None
            assert twin.family == spec.family


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
    from tests.models.captioning.tiny_lm import write_tiny_lm_gguf

    root = tmp_path_factory.mktemp("scenes_smoke")
    out, data = root / "run", str(root / "tfds")
    # The captioners' decoder reads a tiny GGUF's tokenizer: the captioning
    # code path of the default run at a cost of seconds.
    lm = write_tiny_lm_gguf(root / "tiny_lm.gguf")
    scenes_compare.main(
        ["--smoke", "--seeds", "2", "--out", str(out), "--data-dir", data,
         "--verbose", "0", "--captioning-lm", lm,
         # Tested in tests/comparison/text_to_image_test.py.
         "--no-text-to-image"]
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


@pytest.mark.end_to_end("torch")
@needs_minilm
def test_smoke_summary_schema_values_and_promised_metrics(smoke_run):
    out, _, summary = smoke_run
    assert set(summary) >= {
        "lgvq", "vqgan", "config", "comparison", "timing", "machine", "notes",
        "significance", "seed_statistics",
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
    # LG-VQ read its caption features from the run's cache; the VQGAN has
    # no use for them. The report says so per system.
    assert summary["lgvq"]["training"]["setup"]["cached_text_features"]
    assert not summary["vqgan"]["training"]["setup"]["cached_text_features"]
    assert "Cached text features" in (out / "report.md").read_text()
    # Same initial backbone for both models.
    assert summary["lgvq"]["training"]["initial_backbone_abs_sum"] == (
        pytest.approx(summary["vqgan"]["training"]["initial_backbone_abs_sum"])
    )
    figures = summary["comparison"]["figures"]
    # The default budget captions (no VQA): the captions figure too.
    assert set(figures) == {
        "metrics.png", "training_curves.png", "codebook_usage.png",
        "significance.png", "metrics_seeds.png", "stage2_examples.png",
    }
    for name in figures.values():
        assert visualization.read_png(str(out / name)).ndim == 3


@pytest.mark.end_to_end("torch")
@needs_minilm
def test_smoke_significance_fields_against_numpy(smoke_run):
    import itertools

    import numpy as np

    out, _, summary = smoke_run
    assert summary["config"]["seeds"] == [0, 1]
    pair = summary["significance"]["lgvq_vs_vqgan"]
    assert pair["models"] == ["lgvq", "vqgan"] and pair["seeds"] == [0, 1]
    metrics = pair["metrics"]
    # Every metric both models have is in the pair; the ones with per-item
    # values (PSNR, SSIM, probe retrieval) carry a bootstrap interval.
    flat_a = {**summary["lgvq"]["table_metrics"],
              **summary["lgvq"]["captioning_metrics"],
              **summary["lgvq"]["vqa_metrics"]}
    flat_b = {**summary["vqgan"]["table_metrics"],
              **summary["vqgan"]["captioning_metrics"],
              **summary["vqgan"]["vqa_metrics"]}
    specs = {**METRIC_SPECS, **CAPTIONING_SPECS, **VQA_SPECS}
    # Smoke captions are scored without Java: no METEOR.
    captioned = ["caption_bleu4", "caption_rouge_l", "caption_cider_d"]
    both = [k for k in specs
            if flat_a.get(k) is not None and flat_b.get(k) is not None]
    assert list(metrics) == both and set(captioned) <= set(both)
    assert set(VQA_SPECS) <= set(both)
    per_item = {k for k, m in metrics.items() if m["per_item"]}
    assert per_item == {"psnr", "ssim"} | {
        f"retrieval_{t}_R@{k}_probe" for t in ("i2t", "t2i")
        for k in (1, 5, 10)
    } | set(captioned) | set(VQA_SPECS)
    runs = {
        kind: [{**summary[kind]["table_metrics"],
                **summary[kind]["captioning_metrics"],
                **summary[kind]["vqa_metrics"]}]
        + [{**r["table_metrics"], **r["captioning_metrics"],
            **r["vqa_metrics"]}
           for r in summary[kind]["seed_runs"]]
        for kind in ("lgvq", "vqgan")
    }
    assert [r["seed"] for r in summary["lgvq"]["seed_runs"]] == [1]
    for key, metric in metrics.items():
        spec = specs[key]
        assert metric["difference"] == pytest.approx(
            flat_a[key] - flat_b[key]
        )
        test = metric["per_item"]
        if test is not None and key.startswith("caption_"):
            # Paired over the same 8 captioned test images: the mean
            # difference of the stored per-image scores.
            name = CAPTION_METRICS[key]
            a_items = np.array(
                summary["lgvq"]["captioning"]["per_image"]["image"][name])
            b_items = np.array(
                summary["vqgan"]["captioning"]["per_image"]["image"][name])
            assert test["difference"] == pytest.approx(
                (a_items - b_items).mean(), abs=1e-12)
            if key != "caption_bleu4":
                # ROUGE-L and CIDEr-D average to the corpus score (BLEU-4's
                # per-image values are sentence-level).
                assert a_items.mean() == pytest.approx(flat_a[key], abs=1e-9)
            assert test["n"] == 8
        elif test is not None and key.startswith("vqa_"):
            # Paired over the same test questions: the mean difference of
            # the stored per-question values, which average to the scores.
            name = VQA_METRICS[key]
            a_items = np.array(
                summary["lgvq"]["vqa"]["per_question"]["image"][name])
            b_items = np.array(
                summary["vqgan"]["vqa"]["per_question"]["image"][name])
            assert test["difference"] == pytest.approx(
                (a_items - b_items).mean(), abs=1e-12)
            assert a_items.mean() == pytest.approx(flat_a[key], abs=1e-9)
            assert test["n"] == len(summary["lgvq"]["vqa"]["question_ids"])
        elif test is not None:
            # The per-item means are the table's numbers (recall hits in %).
            rel = 1e-3 if key in ("psnr", "ssim") else 1e-9
            assert test["difference"] == pytest.approx(
                metric["difference"], rel=rel, abs=1e-4
            ), key
            assert test["n"] == 16
        if test is not None:
            assert test["ci_low"] <= test["difference"] <= test["ci_high"]
            assert test["significant"] == (
                test["ci_low"] > 0 or test["ci_high"] < 0
            )
            assert test["num_resamples"] == 2000
        # Across seeds: numpy mean / sd and the exact sign-flip p.
        a = np.array([r[key] for r in runs["lgvq"]])
        b = np.array([r[key] for r in runs["vqgan"]])
        seeds = metric["across_seeds"]
        diff = a - b
        assert seeds["difference"] == pytest.approx(diff.mean())
        flips = [abs(np.mean(np.array(s) * diff))
                 for s in itertools.product((1, -1), repeat=2)]
        expected_p = np.mean(
            [f >= abs(diff.mean()) - 1e-12 for f in flips]
        )
        assert seeds["p_value"] == pytest.approx(expected_p)
        # Every seed's own paired bootstrap, counted; seed 0's is the one
        # the table shows.
        by_seed = metric["per_item_by_seed"]
        if test is None:
            assert by_seed is None, key
        else:
            assert by_seed["n"] == 2
            assert by_seed["seeds"][0]["difference"] == pytest.approx(
                test["difference"])
            assert by_seed["better"] + by_seed["worse"] + by_seed[
                "unclear"] == 2
        # Two seeds can never reach p < 0.05, and the note says so.
        assert not seeds["significant"] and "cannot reach" in seeds["note"]
        stats = metric["seed_statistics"]
        assert stats["lgvq"]["mean"] == pytest.approx(a.mean())
        assert stats["vqgan"]["std"] == pytest.approx(b.std(ddof=1))
        assert summary["seed_statistics"]["lgvq"][key]["n"] == 2
        # Two seeds: a per-item metric is better / worse only when it is
        # beyond its interval in both seeds (the sign-flip test cannot
        # decide with 2); else the across-seed test decides.
        if test is not None:
            if spec.higher_is_better is None:
                expected = "not ranked"
            elif by_seed["better"] == 2:
                expected = "better"
            elif by_seed["worse"] == 2:
                expected = "worse"
            else:
                expected = "no clear difference"
        elif not seeds["significant"]:
            expected = "no clear difference"
        else:
            up = seeds["difference"] > 0
            expected = "better" if up == spec.higher_is_better else "worse"
        assert metric["verdict"] == expected, key
        assert metric["tested_by"] == (
            "per_item_every_seed" if test else "across_seeds")
    report = (out / "report.md").read_text()
    summary_part = report.split("## All metrics")[0]
    assert summary_part.startswith("# LG-VQ vs VQGAN on the scenes set")
    assert "## Summary" in summary_part and "### LG-VQ vs VQGAN" in summary_part
    assert "| Metric | LG-VQ | VQGAN | Δ [95% CI] over items |" in summary_part
    assert "sign-flip p" in summary_part
    assert "Beyond its interval, per seed" in summary_part
    psnr = metrics["psnr"]["per_item"]
    ci = (f"{psnr['difference']:+.3g} [{psnr['ci_low']:+.3g}, "
          f"{psnr['ci_high']:+.3g}]")
    assert f"| {ci} |" in summary_part
    # The budget and the per-system settings are stated.
    assert "Budget `smoke`: every system trains 4 steps of 8 images" in (
        summary_part
    )
    assert "| LG-VQ | `scenes` | VQGANBackbone | 64 |" in summary_part
    for name in ("significance.png", "metrics_seeds.png"):
        assert summary["comparison"]["figures"][name] == name
        assert f"]({name})" in report
        assert visualization.read_png(str(out / name)).ndim == 3


@pytest.mark.end_to_end("torch")
@needs_minilm
def test_smoke_captioning_task_per_system_with_its_blind_baseline(smoke_run):
    import numpy as np

    out, _, summary = smoke_run
    assert summary["comparison"]["captioned"] == ["lgvq", "vqgan"]
    ids = None
    for kind in ("lgvq", "vqgan"):
        result = summary[kind]["captioning"]
        # The same 8 test images for both rows (they pair up).
        ids = ids or result["image_ids"]
        assert result["image_ids"] == ids and len(ids) == 8
        assert result["sizes"]["train_images"] == 16
        flat = summary[kind]["captioning_metrics"]
        for key in ("caption_bleu4", "caption_rouge_l", "caption_cider_d"):
            name = CAPTION_METRICS[key]
            for model, suffix in (("image", ""), ("blind", "_blind")):
                assert flat[key + suffix] == result["scores"][model][name]
                assert len(result["per_image"][model][name]) == 8
            # Image minus blind: the paired per-image difference.
            test = result["image_vs_blind"][name]
            diff = (np.array(result["per_image"]["image"][name])
                    - np.array(result["per_image"]["blind"][name]))
            assert test["difference"] == pytest.approx(diff.mean(),
                                                       abs=1e-12)
            assert test["ci_low"] <= test["difference"] <= test["ci_high"]
        # No Java at smoke size: METEOR left out, with the reason.
        assert "caption_meteor" not in flat
        assert any("METEOR" in n for n in result["notes"])
        assert len(result["examples"]) == 8
        assert all(isinstance(e["image"], str) and e["references"]
                   for e in result["examples"])
        # Every seed has its own captioners (stored beside its result).
        assert summary[kind]["seed_runs"][0]["captioning_metrics"]
        for seed in (0, 1):
            assert (out / kind / f"seed_{seed}" / "captioning.json").is_file()
    report = (out / "report.md").read_text()
    section = report.split("## Downstream: captioning")[1].split("## ")[0]
    assert "| System | Captioner | BLEU-4 | METEOR | ROUGE-L | CIDEr-D |" in (
        section
    )
    for name in ("LG-VQ", "VQGAN"):
        assert f"| {name} | image |" in section
        assert f"| {name} | blind |" in section
    assert "Downstream: image and blind captioners over each of LG-VQ, " \
        "VQGAN's codes" in report
    assert "Captioning (LG-VQ): METEOR not scored" in report
    timing = summary["timing"]
    assert {"caption_lgvq", "caption_vqgan"} <= set(timing)


@pytest.mark.end_to_end("torch")
@needs_minilm
def test_smoke_vqa_task_per_system_with_its_blind_baseline(smoke_run):
    import numpy as np

    out, _, summary = smoke_run
    assert summary["comparison"]["answered"] == ["lgvq", "vqgan"]
    assert summary["comparison"]["vqa_skipped"] is None
    ids = None
    for kind in ("lgvq", "vqgan"):
        result = summary[kind]["vqa"]
        # The same test questions for both rows (they pair up).
        ids = ids or result["question_ids"]
        assert result["question_ids"] == ids and ids
        assert result["sizes"]["train_images"] == 8
        flat = summary[kind]["vqa_metrics"]
        for key, name in VQA_METRICS.items():
            for model, suffix in (("image", ""), ("blind", "_blind")):
                assert flat[key + suffix] == (
                    result["scores"][model]["test"][name])
                assert len(result["per_question"][model][name]) == len(ids)
            test = result["image_vs_blind"]["test"][name]
            diff = (np.array(result["per_question"]["image"][name])
                    - np.array(result["per_question"]["blind"][name]))
            assert test["difference"] == pytest.approx(diff.mean(),
                                                       abs=1e-12)
        assert summary[kind]["seed_runs"][0]["vqa_metrics"]
        for seed in (0, 1):
            assert (out / kind / f"seed_{seed}" / "vqa.json").is_file()
    report = (out / "report.md").read_text()
    section = report.split("## Downstream: VQA")[1].split("## ")[0]
    assert "| System | Model | Split | accuracy | WUPS@0.9 | WUPS@0.0 |" in (
        section)
    for name in ("LG-VQ", "VQGAN"):
        for model in ("image", "blind", "type prior"):
            assert f"| {name} | {model} | test |" in section
    assert "VQA: image and blind models over each of LG-VQ, VQGAN's" in (
        report)
    assert {"vqa_lgvq", "vqa_vqgan"} <= set(summary["timing"])


@pytest.mark.end_to_end("torch")
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


@pytest.mark.end_to_end("torch")
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


def test_lqae_rows_need_the_splade_asset(monkeypatch):
    from keras_lgvq.language_models import splade_assets

    spec = comparison.MODELS["lqae"]
    monkeypatch.setattr(splade_assets, "is_available", lambda path=None: False)
    reason = spec.requires({})
    assert "splade-tiny" in reason and "splade_assets" in reason
    monkeypatch.setattr(splade_assets, "is_available", lambda path=None: True)
    assert spec.requires({}) is None


def _copy_run(source, target):
    """A copy of a finished run folder. Preset files are hard-linked (a
    run rewrites a preset as new files, never in place); every other file
    is copied, so the copy's run cannot touch the fixture's files."""
    import shutil

    def copy(src, dst):
        if os.sep + "preset" + os.sep in src:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=copy)


def _captioning_lm(out):
    with open(out / "comparison_settings.json") as f:
        return json.load(f)["captioning"]["language_model"]


def _weights_mtimes(out):
    return {
        path: os.stat(path).st_mtime_ns
        for path in (
            str(out / kind / "seed_0" / "preset" / "model.weights.h5")
            for kind in ("lgvq", "vqgan")
        )
    }


@pytest.mark.end_to_end("torch")
@needs_minilm
def test_rerun_with_other_settings_names_them(smoke_run, tmp_path):
    out, data, _ = smoke_run
    copy = tmp_path / "run"
    _copy_run(out, copy)
    with pytest.raises(ValueError) as error:
        scenes_compare.main([
            "--smoke", "--epochs", "2", "--out", str(copy),
            "--data-dir", data, "--verbose", "0", "--captioning-lm",
            _captioning_lm(copy),
        ])
    message = str(error.value)
    assert "epochs: 1 there, 2 now" in message and "--no-resume" in message
    # Nothing was retrained or rewritten.
    assert (copy / "summary.json").read_text() == (
        out / "summary.json"
    ).read_text()


@pytest.mark.end_to_end("torch")
@needs_minilm
def test_smoke_all_rows_resume_and_lqae_downstream(
    smoke_run, tmp_path, monkeypatch
):
    # `--all` in a copy of the fixture's finished `--smoke` run: LG-VQ and
    # VQGAN (seed 0) must be reused, not retrained (their weights files are
    # untouched), and the run completes with the rows that were missing;
    # that is also how a run killed midway resumes. CVQ, CVQ+LG and VQCT
    # (the VQGAN / LG-VQ trainers again) are declared missing to keep CI
    # short: they must appear as skipped rows with their reasons. LQAE and
    # VQAE add their downstream numbers (few-shot with the local SmolLM2,
    # one episode per attribute at smoke size).
    import dataclasses

    from keras_lgvq.comparison.downstream import ATTRIBUTE_LABELS
    from keras_lgvq.comparison.downstream import NOT_WORDS
    from keras_lgvq.language_models import smollm2_assets
    from keras_lgvq.language_models import splade_assets
    from recipes import evaluate

    if not splade_assets.is_available():
        pytest.skip("splade-tiny is not fetched (LQAE rows)")
    left_out = ("cvq_lg", "cvq", "vqct")
    for kind in left_out:
        spec = comparison.MODELS[kind]
        monkeypatch.setitem(
            comparison.MODELS, kind,
            dataclasses.replace(
                spec, requires=lambda s, k=kind: f"{k} left out by the test"
            ),
        )
    first, data, first_summary = smoke_run
    out = tmp_path / "all"
    _copy_run(first, out)
    before = _weights_mtimes(out)
    captions = {
        kind: (out / kind / "seed_0" / "captioning.json").stat().st_mtime_ns
        for kind in ("lgvq", "vqgan")
    }
    answers = {
        kind: (out / kind / "seed_0" / "vqa.json").stat().st_mtime_ns
        for kind in ("lgvq", "vqgan")
    }
    summary = scenes_compare.run(
        scenes_compare.parse_args([
            "--smoke", "--all", "--out", str(out), "--data-dir", data,
            "--verbose", "0", "--captioning-lm", _captioning_lm(out),
            "--no-text-to-image",
        ])
    )
    # Reused: same weights files, same metrics, same captioners, said so
    # in the progress lines, the summary and the report.
    assert _weights_mtimes(out) == before
    for kind in ("lgvq", "vqgan"):
        assert summary[kind]["reused"] is True
        assert summary[kind]["table_metrics"] == (
            first_summary[kind]["table_metrics"]
        )
        assert summary[kind]["captioning"] == first_summary[kind][
            "captioning"]
        assert (out / kind / "seed_0" / "captioning.json").stat(
        ).st_mtime_ns == captions[kind]
        assert summary[kind]["vqa"] == first_summary[kind]["vqa"]
        assert (out / kind / "seed_0" / "vqa.json").stat(
        ).st_mtime_ns == answers[kind]
    progress = summary["comparison"]["progress"]
    assert progress[0] == (
        f"[1/16] train LG-VQ seed 0: reused from "
        f"{out / 'lgvq' / 'seed_0'}"
    )
    assert progress[2].startswith("[3/16] caption LG-VQ seed 0: reused")
    assert progress[3].startswith("[4/16] vqa LG-VQ seed 0: reused")
    # VQCT+LG's several codes per position are captioned and answered
    # over too; the LQAE rows have neither (a note says so).
    phases = {"VQCT+LG": ("train", "evaluate", "caption", "vqa"),
              "LQAE": ("train", "evaluate"), "VQAE": ("train", "evaluate")}
    trained = [line for line in progress if "reused" not in line]
    assert [line.split(" ... ")[0] for line in trained] == [
        f"[{i}/16] {phase} {name} seed 0"
        for i, (phase, name) in enumerate(
            [(p, n) for n, ps in phases.items() for p in ps],
            start=9,
        )
    ]
    assert summary["comparison"]["captioned"] == ["lgvq", "vqgan", "vqct_lg"]
    assert summary["comparison"]["answered"] == ["lgvq", "vqgan", "vqct_lg"]
    assert len(summary["vqct_lg"]["captioning"]["image_ids"]) == 8
    assert summary["vqct_lg"]["vqa"]["question_ids"]
    # The reused steps' recorded times give an ETA from the first step on.
    assert "ETA" in trained[0] and "unknown" not in trained[0]
    assert summary["comparison"]["reused"] == ["LG-VQ seed 0", "VQGAN seed 0"]
    assert summary["config"]["models"] == list(comparison.MODELS)
    ran = ["lgvq", "vqgan", "vqct_lg", "lqae", "vqae"]
    assert summary["comparison"]["models"] == ran
    assert summary["comparison"]["header"][1:6] == [
        "LG-VQ", "VQGAN", "VQCT+LG", "LQAE", "VQAE"
    ]
    report = (out / "report.md").read_text()
    assert "Resumed run: LG-VQ seed 0, VQGAN seed 0 came from results" in (
        report
    )
    for kind in left_out:
        reason = f"{kind} left out by the test"
        assert summary[kind] == {"skipped": True, "reason": reason}
        assert summary["comparison"]["skipped"][kind] == reason
        assert f"{comparison.MODEL_NAMES[kind]} not run: {reason}." in (
            report
        )
    # Only pairs whose both rows ran are tested (VQCT+LG has no baseline
    # here).
    assert set(summary["significance"]) == {"lgvq_vs_vqgan", "lqae_vs_vqae"}
    for pair in summary["significance"].values():
        psnr = pair["metrics"]["psnr"]
        assert psnr["per_item"]["ci_low"] <= psnr["per_item"]["ci_high"]
        assert psnr["across_seeds"] is None
        # Usage has no per-item values and one seed: untested, said so.
        assert pair["metrics"]["codebook_usage_pct"]["verdict"].startswith(
            "untested"
        )
    assert "### LQAE vs VQAE" in report and "### VQCT+LG vs" not in report
    assert "LQAE not captioned: the LQAE-family rows" in report
    assert "LQAE has no VQA task" in report
    # Each system's setup is recorded: the VQCT and LQAE trainers.
    setup = {k: summary[k]["training"]["setup"] for k in ran}
    assert not setup["vqct_lg"]["cvq_reinit"]
    assert setup["lqae"]["optimizer"].startswith("AdamW")
    assert setup["lqae"]["codebook_size"] == 30522
    assert setup["vqae"]["codebook_size"] == 1024
    assert not any(s["discriminator"] or s["lpips"] for s in setup.values())
    result = summary["vqct_lg"]
    assert set(result["sub_codebooks"]) == {"adjective", "noun"}
    flat = result["table_metrics"]
    assert list(flat) == list(METRIC_SPECS) + list(REFERENCE_KEYS)
    for key in _SUB_CODEBOOK_KEYS:
        assert math.isfinite(flat[key]), key
    assert flat["codebook_usage_pct_noun"] == pytest.approx(
        100.0 * result["sub_codebooks"]["noun"]["usage"]
    )
    assert "adjective_loss" in result["training"]["step_history"]
    assert "retrieval" in summary["vqct_lg"]["own_heads"]
    assert summary["vqae"]["own_heads"]["available"] is False
    assert "mlm_loss" in summary["lqae"]["training"]["step_history"]
    rows = {row[0] for row in summary["comparison"]["rows"]}
    assert "Codebook usage, adjectives (%) ↑" in rows
    assert report.startswith("# LG-VQ vs VQGAN vs VQCT+LG vs LQAE vs VQAE")
    assert visualization.read_png(str(out / "codebook_usage.png")).ndim == 3
    # Captions and VQA answers of every system under the same test images.
    assert visualization.read_png(str(out / "stage2_examples.png")).ndim == 3
    assert "![Captions and answers](stage2_examples.png)" in report

    # LQAE downstream: a linear probe per attribute for both rows, few-shot
    # prompting for LQAE only; every number a percentage with its chance.
    lqae, vqae = summary["lqae"], summary["vqae"]
    for entry in (lqae, vqae):
        probe = entry["downstream"]["linear_probe"]
        for attribute in ATTRIBUTE_LABELS:
            assert 0.0 <= probe[attribute]["accuracy"] <= 100.0
            assert 0.0 < probe[attribute]["chance"] <= 100.0
    assert lqae["downstream"]["linear_probe"]["layers"][-1].startswith("lm_")
    assert vqae["downstream"]["linear_probe"]["layers"] == ["encoder_0"]
    assert vqae["downstream"]["few_shot"] == {"skipped": NOT_WORDS}
    shots = lqae["downstream"]["few_shot"]
    if smollm2_assets.is_available():
        scored = {a: r for a, r in shots.items() if "accuracy" in r}
        # At least the object count (three classes over every test image)
        # has enough examples for one 2-way 1-shot episode.
        assert "num_objects" in scored
        for attribute, entry in shots.items():
            if attribute not in scored:
                assert "classes" in entry["skipped"]
                continue
            assert 0.0 <= entry["accuracy"] <= 100.0
            assert entry["chance"] == 50.0 and entry["num_predictions"] == 2
            assert "SmolLM2" in entry["causal_lm"]
            assert lqae["downstream_metrics"][f"few_shot_{attribute}"] == (
                entry["accuracy"]
            )
        assert "| LQAE few-shot (%) | Few-shot chance (%) |" in report
    else:
        assert "few-shot columns are left out" in shots["skipped"]
        assert "LQAE downstream: SmolLM2" in report
    assert "## LQAE downstream" in report
    assert "| Attribute | LQAE probe (%) | VQAE probe (%) |" in report
    # The downstream probes of the pair are tested like every metric
    # (one seed: untested across seeds, no per-item values).
    pair = summary["significance"]["lqae_vs_vqae"]["metrics"]
    assert pair["lqae_probe_shape"]["a"] == (
        lqae["downstream"]["linear_probe"]["shape"]["accuracy"]
    )
    assert pair["lqae_probe_shape"]["verdict"].startswith("untested")

    evaluate.main([
        str(out / "vqct_lg" / "preset"), "--out", str(tmp_path / "eval"),
        "--eval-size", "16", "--probe-size", "0", "--train-size", "32",
        "--data-dir", data, "--verbose", "0",
    ])
    with open(tmp_path / "eval" / "evaluation.json") as f:
        result = json.load(f)
    assert result["model"] == "VQCTLG"
    assert math.isfinite(result["table_metrics"]["codebook_usage_pct_noun"])
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| Codebook perplexity, nouns ↑ |" in report


def test_cvq_rows_build_the_cvq_quantizer():
    # CVQ / CVQ+LG are left out of the `--all` smoke test above (they are
    # the VQGAN / LG-VQ trainers with another quantizer): their tokenizer
    # and setup are checked here without training.
    from keras_lgvq.comparison.training import build_model
    from keras_lgvq.comparison.training import system_setup

    settings = comparison.resolve_settings({"smoke": True, "models": "cvq"})
    model = build_model("cvq", None, settings)
    setup = system_setup("cvq", model)
    assert setup["cvq_reinit"] and setup["quantizer"] == "VectorQuantizer"
    assert setup["codebook_size"] == comparison.SMOKE_BACKBONE[
        "num_embeddings"
    ]
    assert not setup["discriminator"] and not setup["lpips"]
    quantizer = model.backbone.quantizer
    assert quantizer.anchor == "probrandom"
    assert comparison.MODELS["cvq_lg"].backbone is comparison.MODELS[
        "cvq"
    ].backbone

"""The comparison's text-to-image task and the stage-2 task table: which
rows, budgets, flat metrics / per-item lists, the report section, stored
results and resume, pairing across rows of a seed, and a tiny run of the
library function `text_to_image_downstream_scenes` over two tokenizers."""

import os

import numpy as np
import pytest

from keras_lgvq.comparison import run_state
from keras_lgvq.comparison import runner
from keras_lgvq.comparison import stage2_tasks
from keras_lgvq.comparison import text_to_image
from keras_lgvq.comparison.budgets import resolve_settings
from keras_lgvq.comparison.budgets import result_fingerprint
from keras_lgvq.comparison.budgets import text_to_image_budget
from keras_lgvq.comparison.systems import MODELS


def _minilm_available():
    from keras_lgvq.text_priors import minilm_assets

    return minilm_assets.is_available()


needs_minilm = pytest.mark.skipif(
    not _minilm_available(),
    reason="MiniLM text prior is not cached (python -m "
    "keras_lgvq.fetch_assets)",
)


def _judged(passed, checks):
    total = sum(checks)
    return {"overall": sum(passed) / total, "captions": len(passed)}


def _result(passed, checks=None, psnr=None, seed=0):
    """A `run_text_to_image`-shaped result from per-caption passed checks
    of the generated images (chance: one check passed per caption;
    completion without caption: 1 dB lower than with)."""
    checks = checks or [4] * len(passed)
    psnr = psnr or [20.0 + i for i in range(len(passed))]
    ids = [f"test_{i}:{i % 10}" for i in range(len(passed))]
    chance = [1] * len(passed)
    # Presence: as many checks, one more passed per caption (capped).
    present = [min(p + 1, c) for p, c in zip(passed, checks)]
    per_caption = {
        "generated": {"passed": list(passed), "checks": list(checks),
                      "presence_passed": present,
                      "presence_checks": list(checks)},
        "generated_mismatched": {"passed": chance, "checks": list(checks),
                                 "presence_passed": chance,
                                 "presence_checks": list(checks)},
        "unconditional": {"passed": chance, "checks": list(checks)},
        "chance": {"passed": chance, "checks": list(checks)},
        "ceiling": {"passed": list(checks), "checks": list(checks)},
        "held_out_generated": {"passed": [1, 2], "checks": [3, 3]},
        "completion_caption": {"passed": list(passed),
                               "checks": list(checks)},
        "completion_no_caption": {"passed": chance, "checks": list(checks)},
    }
    ssim = [0.5] * len(passed)
    completion_per_image = {
        "caption": {"psnr": list(psnr), "ssim": ssim},
        "no_caption": {"psnr": [p - 1.0 for p in psnr], "ssim": ssim},
    }
    judged = {k: _judged(v["passed"], v["checks"])
              for k, v in per_caption.items()}
    for name in ("generated", "generated_mismatched"):
        # Every presence attribute at the pooled presence share.
        share = _judged(per_caption[name]["presence_passed"],
                        per_caption[name]["presence_checks"])["overall"]
        judged[name]["presence"] = {
            a: {"accuracy": share}
            for a in ("shape", "color", "size", "fill", "region")}
        judged[name]["presence_overall"] = share
    completion = {
        name: {"psnr": float(np.mean(values["psnr"])),
               "ssim": float(np.mean(values["ssim"])),
               "conditioning": judged[f"completion_{name}"]}
        for name, values in completion_per_image.items()
    }
    completion["tokenizer_reconstruction"] = {"psnr": 30.0, "ssim": 0.9}
    return {
        "caption_ids": ids,
        "completion_ids": ids,
        "held_out_ids": ["test_50:3", "test_61:0"],
        "per_caption": per_caption,
        "completion_per_image": completion_per_image,
        "generated": judged["generated"],
        "generated_mismatched": judged["generated_mismatched"],
        "unconditional": judged["unconditional"],
        "tokenizer_reconstruction": {"overall": 0.7},
        "held_out_generated": {**judged["held_out_generated"],
                               "held_out": {"accuracy": 0.5}},
        "references": {"chance": judged["chance"],
                       "ceiling": judged["ceiling"]},
        "completion": completion,
        "within_row": {},
        "sizes": {"train_images": 32, "captions_per_image": 1,
                  "eval_images": len(passed),
                  "completion_images": len(passed)},
        "settings": {"train_steps": 4, "batch_size": 8,
                     "sampling_steps": 4, "guidance_scale": 3.0},
        "judge": {"train_images": 64},
        "figure": "lgvq/seed_0/text_to_image_samples.png",
        "seconds": {"total": 1.5},
        "notes": [],
        "seed": seed,
    }


def test_row_rule_single_code_vqgan_family_rows_only():
    drawn = {k for k in MODELS if text_to_image.has_text_to_image(k)}
    assert drawn == {"lgvq", "vqgan", "cvq_lg", "cvq"}
    # Every drawn row is a VQGAN-family, non-VQCT tokenizer; every
    # VQGAN-family row left out is a VQCT one (several ids per position).
    for kind, spec in MODELS.items():
        single_code = spec.family == "vqgan" and "VQCT" not in (
            spec.model_class)
        assert (kind in drawn) == single_code, kind
    with pytest.raises(ValueError, match="kind"):
        text_to_image.has_text_to_image("dalle")


def test_budgets_flag_and_fingerprint():
    assert text_to_image_budget("default") is None
    assert text_to_image_budget("quick") is None
    full = text_to_image_budget("default", all_rows=True)
    assert full["settings"]["train_steps"] == 1000
    assert full["sizes"]["eval_images"] == 192
    assert full["judge"] == {"images": 2500, "epochs": 6,
                             "degradation": 0.5}
    smoke = text_to_image_budget("smoke")
    assert smoke["settings"]["generator"]["hidden_dim"] == 16
    assert smoke["judge"]["images"] == 64
    with pytest.raises(ValueError, match="mode"):
        text_to_image_budget("huge")
    settings = resolve_settings({"smoke": True, "no_text_to_image": True})
    assert settings["text_to_image"] is None
    assert text_to_image.text_to_image_unavailable(settings) == (
        "turned off (--no-text-to-image)")
    # The stored task's settings are fingerprinted whether or not this
    # run has the task, so --no-text-to-image resumes the same --out.
    on = result_fingerprint(resolve_settings({"smoke": True}))
    assert on == result_fingerprint(settings)
    assert on["text_to_image_task"]["settings"]["train_steps"] == 4
    default = resolve_settings({})
    assert (text_to_image.text_to_image_unavailable(default)
            == text_to_image.OFF_BY_DEFAULT)
    assert "--quick" in text_to_image.text_to_image_unavailable(
        resolve_settings({"quick": True}))


def test_metrics_and_items_on_a_hand_built_result():
    result = _result([4, 2, 3, 1], checks=[4, 4, 2, 2])
    flat = text_to_image.text_to_image_metrics(result)
    assert flat["t2i_conditioning"] == pytest.approx(10 / 12)
    assert flat["t2i_conditioning_chance"] == pytest.approx(4 / 12)
    assert flat["t2i_conditioning_mismatched"] == pytest.approx(4 / 12)
    assert flat["t2i_presence"] == pytest.approx(11 / 12)
    assert flat["t2i_presence_mismatched"] == pytest.approx(4 / 12)
    assert flat["t2i_conditioning_ceiling"] == 1.0
    assert flat["t2i_heldout_conditioning"] == pytest.approx(3 / 6)
    assert flat["completion_psnr"] == pytest.approx(21.5)
    assert flat["completion_psnr_no_caption"] == pytest.approx(20.5)
    assert flat["completion_conditioning_no_caption"] == pytest.approx(
        4 / 12)
    # Every metric's reference is a flat key of the same result.
    for key, spec in text_to_image.TEXT_TO_IMAGE_SPECS.items():
        assert key in flat and spec.reference in flat, key
    items = text_to_image.text_to_image_items(result)
    assert set(items) == set(text_to_image.TEXT_TO_IMAGE_SPECS)
    # The per-item lists average to the flat metrics (the pooled shares).
    for key, values in items.items():
        assert np.mean(values) == pytest.approx(flat[key]), key
    assert len(items["t2i_conditioning"]) == len(result["caption_ids"])
    assert len(items["t2i_heldout_conditioning"]) == 2
    assert text_to_image.scaled_passes({"passed": [0], "checks": [0]}) is None
    assert text_to_image.scaled_passes(
        {"presence_passed": [1, 3], "presence_checks": [2, 2]},
        presence=True) == [0.5, 1.5]
    # A result stored before the presence checks has no presence metric
    # (and no error).
    old = _result([4, 2, 3, 1], checks=[4, 4, 2, 2])
    for entry in old["per_caption"].values():
        entry.pop("presence_passed", None)
        entry.pop("presence_checks", None)
    assert "t2i_presence" not in text_to_image.text_to_image_metrics(old)
    assert "t2i_presence" not in text_to_image.text_to_image_items(old)
    with pytest.raises(ValueError, match="aligned"):
        text_to_image.scaled_passes({"passed": [1], "checks": [1, 2]})


def test_rows_of_a_seed_pair_up_in_the_significance_tests():
    from keras_lgvq.comparison.pair_tests import significance_tests

    better = _result([4, 4, 4, 3, 4, 4, 4, 4], psnr=[25.0] * 8)
    worse = _result([1, 0, 1, 1, 0, 1, 1, 0], psnr=[20.0] * 8)
    flats = {"lgvq": [text_to_image.text_to_image_metrics(better)],
             "vqgan": [text_to_image.text_to_image_metrics(worse)]}
    items = {"lgvq": [text_to_image.text_to_image_items(better)],
             "vqgan": [text_to_image.text_to_image_items(worse)]}
    pairs = significance_tests(
        ["lgvq", "vqgan"], flats, items,
        {"seeds": [0], "bootstrap_resamples": 200},
        specs=text_to_image.TEXT_TO_IMAGE_SPECS,
    )
    metrics = pairs["lgvq_vs_vqgan"]["metrics"]
    assert metrics["t2i_conditioning"]["tested_by"] == "per_item"
    assert metrics["t2i_conditioning"]["verdict"] == "better"
    assert metrics["completion_psnr"]["per_item"]["difference"] == (
        pytest.approx(5.0))
    # The held-out lists are equal in both rows: no difference.
    assert metrics["t2i_heldout_conditioning"]["verdict"] == (
        "no clear difference")


def test_stage2_task_table():
    tasks = stage2_tasks.STAGE2_TASKS
    assert [t.name for t in tasks] == ["captioning", "vqa", "text_to_image"]
    # The keys of the stored runs and of the summary, unchanged.
    assert [t.phase for t in tasks] == ["caption", "vqa", "t2i"]
    assert [t.metrics_key for t in tasks] == [
        "captioning_metrics", "vqa_metrics", "text_to_image_metrics"]
    assert [(t.rows_key, t.skipped_key) for t in tasks] == [
        ("captioned", "captioning_skipped"), ("answered", "vqa_skipped"),
        ("drawn", "text_to_image_skipped")]
    # The tasks' flat keys do not collide (one flat dict per unit).
    keys = [k for t in tasks for k in t.specs]
    assert len(keys) == len(set(keys))
    assert runner.caption_unit.args == (stage2_tasks.CAPTIONING,)
    assert runner.vqa_unit.args == (stage2_tasks.VQA,)
    with pytest.raises(dataclass_error()):
        tasks[0].name = "other"


def dataclass_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


class _Progress:
    """Records the progress steps a unit went through."""

    def __init__(self):
        self.steps = []

    def step(self, phase, kind, seed):
        import contextlib

        self.steps.append((phase, kind, seed))
        return contextlib.nullcontext()


def test_task_unit_stores_and_a_resumed_unit_reuses(tmp_path, monkeypatch):
    from keras_lgvq.comparison.progress import Stopwatch

    out = str(tmp_path)
    stored = _result([4, 2, 3, 1])
    calls = []

    def fake_run(tokenizer, settings, seed, folder=None):
        calls.append((tokenizer, seed, folder))
        return stored

    monkeypatch.setattr(text_to_image, "run_text_to_image", fake_run)
    task = stage2_tasks.TEXT_TO_IMAGE
    settings = {"out": out}
    fresh = {"per_item": {"psnr": [1.0, 2.0]}, "tokenizer": "backbone"}
    progress = _Progress()
    runner.task_unit(task, "lgvq", 0, fresh, settings, Stopwatch(), progress)
    assert calls == [("backbone", 0, run_state.unit_dir(out, "lgvq", 0))]
    assert progress.steps == [("t2i", "lgvq", 0)]
    assert run_state.load_text_to_image(out, "lgvq", 0) == stored
    assert fresh["text_to_image_metrics"]["t2i_conditioning"] == 10 / 16
    assert fresh["per_item"]["psnr"] == [1.0, 2.0]
    assert len(fresh["per_item"]["t2i_conditioning"]) == 4
    # A reused unit reads text_to_image.json and trains nothing.
    reused = {"per_item": {}, "reused": True}
    progress = _Progress()
    runner.task_unit(task, "lgvq", 0, reused, settings, Stopwatch(),
                     progress)
    assert len(calls) == 1 and progress.steps == []
    assert reused["text_to_image"] == stored
    # A reused unit without a stored result runs over its preset.
    other = {"per_item": {}, "reused": True}
    runner.task_unit(task, "vqgan", 1, other, settings, Stopwatch(),
                     _Progress())
    assert calls[-1][0] == os.path.join(
        run_state.unit_dir(out, "vqgan", 1), "preset")
    # Retraining the tokenizer invalidates the images drawn over it.
    figure = os.path.join(run_state.unit_dir(out, "lgvq", 0),
                          run_state.TEXT_TO_IMAGE_FIGURE)
    open(figure, "w").close()
    run_state.save_unit(out, "lgvq", 0, {"kind": "lgvq"})
    assert run_state.load_text_to_image(out, "lgvq", 0) is None
    assert not os.path.exists(figure)


class _SkipProgress:
    """Records the steps a resumed run marks done, with their durations."""

    def __init__(self):
        self.skipped = []

    def skip(self, phase, kind, seed, seconds=None, reason="reused"):
        self.skipped.append((phase, kind, seed, seconds))


def test_resumed_run_reads_every_tasks_recorded_duration(tmp_path):
    # A resumed `--all` run marks the stored stage-2 results done with
    # their recorded durations. Text-to-image results stored before the
    # tasks shared one layout hold the total as a number (a resume of such
    # a run crashed on it); both layouts are read.
    out = str(tmp_path)
    unit = {"training": {"wall_s": 60.0}, "evaluation_wall_s": 30.0}
    old = {**_result([1, 2]), "seconds": 1886.2}
    new = {**_result([1, 2]), "seconds": {"total": 12.5}}
    run_state.save_text_to_image(out, "lgvq", 0, old)
    run_state.save_text_to_image(out, "vqgan", 0, new)
    run_state.save_captioning(out, "vqgan", 0, {"seconds": {"total": 7.0}})
    progress = _SkipProgress()
    rows = {"captioning": ("vqgan",), "vqa": (),
            "text_to_image": ("lgvq", "vqgan")}
    runner.announce_reused(
        progress, {("lgvq", 0): unit, ("vqgan", 0): unit}, out, rows)
    assert progress.skipped == [
        ("train", "lgvq", 0, 60.0), ("evaluate", "lgvq", 0, 30.0),
        ("t2i", "lgvq", 0, 1886.2),
        ("train", "vqgan", 0, 60.0), ("evaluate", "vqgan", 0, 30.0),
        ("caption", "vqgan", 0, 7.0), ("t2i", "vqgan", 0, 12.5),
    ]
    assert stage2_tasks.recorded_seconds({"notes": []}) is None


def test_report_section_and_notes():
    summary = {
        "lgvq": {"text_to_image": _result([4, 2, 3, 1])},
        "vqgan": {"text_to_image": _result([1, 1, 1, 1])},
        "vqct": {},
        "lqae": {},
        "comparison": {"drawn": ["lgvq", "vqgan"]},
    }
    summary["vqgan"]["text_to_image"]["notes"] = ["a note"]
    summary["lgvq"]["text_to_image"]["within_row"] = {
        "t2i_generated_vs_mismatched": {
            "difference": 0.375, "ci_low": 0.1, "ci_high": 0.6,
            "verdict": "better"},
        "t2i_presence_generated_vs_mismatched": {
            "difference": 0.5, "ci_low": 0.25, "ci_high": 0.75,
            "verdict": "better"},
    }
    kinds = ["lgvq", "vqgan", "vqct", "lqae"]
    text = "\n".join(text_to_image.text_to_image_section(summary, kinds))
    assert "## Downstream: text-to-image and completion" in text
    assert ("| LG-VQ | 62.5 | 25.0 | +37.5 [+10.0, +60.0] better | 25.0 | "
            "70.0 | — | 50.0 | 50.0 |") in text
    assert "| VQGAN | 25.0 | 25.0 | — | 25.0 |" in text
    # Presence: own caption / own chance per attribute, pooled, the test.
    assert ("| LG-VQ | 81.2 / 25.0 | 81.2 / 25.0 | 81.2 / 25.0 | "
            "81.2 / 25.0 | 81.2 / 25.0 | 81.2 / 25.0 | "
            "+50.0 [+25.0, +75.0] better |") in text
    # A result stored before the presence checks: no presence row.
    del summary["vqgan"]["text_to_image"]["generated"]["presence"]
    lines = text_to_image.presence_table(summary, ["lgvq", "vqgan"])
    assert not any(line.startswith("| VQGAN") for line in lines)
    assert "| LG-VQ | 21.50 | 20.50 | 30.00 | 0.500 | 0.500 | 62.5 | 25.0 |" \
        in text
    assert "](lgvq/seed_0/text_to_image_samples.png)" in text
    assert text_to_image.text_to_image_section({"lgvq": {}}, ["lgvq"]) == []
    notes = text_to_image.text_to_image_notes(summary, kinds, {})
    assert f"VQCT {text_to_image.NOT_DRAWN['vqct']}." in notes
    assert f"LQAE {text_to_image.NOT_DRAWN['lqae']}." in notes
    assert "Text-to-image (VQGAN): a note." in notes
    skipped = {"comparison": {
        "text_to_image_skipped": text_to_image.OFF_BY_DEFAULT}}
    assert text_to_image.text_to_image_notes(skipped, ["lgvq"], {}) == [
        f"Text-to-image downstream task: {text_to_image.OFF_BY_DEFAULT}."]


# The library function at a tiny size: the smoke budget with fewer images.
TINY_SIZES = dict(train_images=4, captions_per_image=1, validation_images=2,
                  eval_images=3, held_out_images=1, completion_images=2,
                  figure_captions=1, samples_per_caption=2)
TINY_SETTINGS = dict(train_steps=2, batch_size=4, sampling_steps=2,
                     generator=dict(hidden_dim=8, num_layers=1, num_heads=1,
                                    intermediate_dim=16))
TINY_JUDGE = dict(images=16, epochs=1, degradation=0.5)


def _tiny_settings(out):
    return {"text_to_image": {"sizes": TINY_SIZES,
                              "settings": TINY_SETTINGS,
                              "judge": TINY_JUDGE},
            "out": str(out), "seed": 0, "verbose": 0,
            "bootstrap_resamples": 100}


@pytest.fixture(scope="module")
def tiny_run_dir(tmp_path_factory):
    """A run folder with its judge trained (once for the module)."""
    out = tmp_path_factory.mktemp("t2i_run")
    text_to_image.judge_for(_tiny_settings(out), 32)
    return out


def _expected_captions(seed, count):
    """The test captions and ids every row of `seed` is judged on."""
    from keras_lgvq.evaluation.text_to_image_downstream import scenes_examples

    _, examples = scenes_examples(count, 32, "test", seed=seed)
    picks = [i % len(e["captions"]) for i, e in enumerate(examples)]
    return ([e["captions"][k] for e, k in zip(examples, picks)],
            [f"{e['image_id']}:{k}" for e, k in zip(examples, picks)])


# A whole text-to-image task run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
@needs_minilm
def test_library_function_at_tiny_size(tiny_run_dir):
    from keras_lgvq.evaluation import text_to_image_downstream as lib
    from tests.models.tiny_configs import tiny_backbone

    # The run's judge is found again, not retrained.
    judge, report = text_to_image.judge_for(_tiny_settings(tiny_run_dir), 32)
    assert report["source"].startswith(str(tiny_run_dir))
    result = lib.text_to_image_downstream_scenes(
        tiny_backbone(num_embeddings=16), seed=3, judge=judge,
        settings=TINY_SETTINGS, cache_dir=str(tiny_run_dir / "cache"),
        prior=text_to_image.generator_prior(), return_arrays=True,
        **TINY_SIZES)
    assert result["num_codes"] == 16
    # The captions and ids are those of the seed's test scenes only (so
    # every tokenizer of this seed is judged on them); another seed draws
    # other scenes.
    captions, ids = _expected_captions(3, 3)
    assert result["captions"] == captions and result["caption_ids"] == ids
    assert result["completion_ids"] == ids[:2]
    assert _expected_captions(4, 3)[0] != captions
    assert len(result["held_out_ids"]) == 1
    # The pooled share of the per-caption lists is the judge's overall.
    generated = result["per_caption"]["generated"]
    assert len(generated["passed"]) == 3
    assert sum(generated["passed"]) / sum(generated["checks"]) == (
        pytest.approx(result["generated"]["overall"]))
    assert sum(generated["presence_passed"]) / sum(
        generated["presence_checks"]) == pytest.approx(
            result["generated"]["presence_overall"])
    # The generated images' own chance: the same images against the other
    # captions (3 captions: 2 shifts), as many checks as the own captions.
    mismatched = result["per_caption"]["generated_mismatched"]
    assert result["generated_mismatched"]["rolls"] == 2
    assert sum(mismatched["checks"]) == pytest.approx(
        sum(generated["checks"]))
    assert result["generated_mismatched"]["checks"] == 2 * sum(
        generated["checks"])
    for part in ("caption", "no_caption"):
        values = result["completion_per_image"][part]["psnr"]
        assert len(values) == 2 and all(np.isfinite(values))
        assert np.mean(values) == pytest.approx(
            result["completion"][part]["psnr"])
    assert result["arrays"]["samples"].shape == (1, 2, 32, 32, 3)
    assert len(result["history"]["loss"]) == 2
    with pytest.raises(ValueError, match="completion_images"):
        lib.text_to_image_downstream_scenes(
            tiny_backbone(), judge=judge, eval_images=2,
            completion_images=3)
    with pytest.raises(ValueError, match="Unknown text-to-image size"):
        lib.text_to_image_downstream_scenes(tiny_backbone(), judge=judge,
                                            eval_size=3)


# A whole text-to-image task run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
@needs_minilm
def test_run_text_to_image_pairs_with_other_rows(tiny_run_dir):
    from keras_lgvq.comparison.budgets import SMOKE_BACKBONE
    from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

    # Another tokenizer (the smoke rows' architecture, 64 codes) through
    # the comparison's task: judged on the seed's captions, like the
    # library run above, so its lists pair with that row's.
    folder = tiny_run_dir / "vqgan" / "seed_3"
    folder.mkdir(parents=True)
    result = text_to_image.run_text_to_image(
        VQGANBackbone(**SMOKE_BACKBONE), _tiny_settings(tiny_run_dir), 3,
        folder=str(folder))
    captions, ids = _expected_captions(3, 3)
    assert result["caption_ids"] == ids and result["captions"] == captions
    assert result["num_codes"] == 64
    # The shared judge, the figure beside the result, JSON-ready.
    assert result["judge"]["source"].startswith("text_to_image_judge")
    assert result["figure"] == os.path.join(
        "vqgan", "seed_3", text_to_image.FIGURE_FILE)
    assert (tiny_run_dir / result["figure"]).stat().st_size > 0
    assert "arrays" not in result and "model" not in result
    assert result["seconds"]["total"] > 0
    import json

    json.dumps(result)
    assert set(result["within_row"]) >= {
        "t2i_conditioning_vs_chance", "completion_psnr_caption_vs_none",
        "t2i_generated_vs_mismatched",
        "t2i_presence_generated_vs_mismatched",
        "t2i_generated_vs_unconditional"}
    assert "t2i_presence" in text_to_image.text_to_image_metrics(result)
    items = text_to_image.text_to_image_items(result)
    assert len(items["t2i_conditioning"]) == 3
    assert len(items["completion_psnr"]) == 2

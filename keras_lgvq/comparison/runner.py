"""`run_comparison`: the scenes comparison from settings to report.

Steps: resolve the settings, check `--out` against a stored run (resume),
build the shared scenes splits, then for every seed and system either
reuse its stored result or train, evaluate (and, for LQAE-family rows, run
the downstream evaluations) and store it, then (VQGAN-family rows, unless
the budget has none) reuse or run and store its captioning task and its
VQA task; finally test every
guided-vs-baseline pair, draw the figures and write `summary.json` and
`report.md`. Progress lines with an ETA mark every training and
evaluation step.
"""

import os
import shutil
import time

from keras_lgvq.comparison.budgets import SMOKE_HEADS
from keras_lgvq.comparison.budgets import resolve_settings
from keras_lgvq.comparison.budgets import result_fingerprint
from keras_lgvq.comparison.captioning import CAPTIONING_SPECS
from keras_lgvq.comparison.captioning import captioning_items
from keras_lgvq.comparison.captioning import captioning_metrics
from keras_lgvq.comparison.captioning import captioning_unavailable
from keras_lgvq.comparison.captioning import has_captioning
from keras_lgvq.comparison.captioning import run_captioning
from keras_lgvq.comparison.data import comparison_splits
from keras_lgvq.comparison.downstream import DOWNSTREAM_SPECS
from keras_lgvq.comparison.downstream import downstream_metrics
from keras_lgvq.comparison.downstream import few_shot_language_model
from keras_lgvq.comparison.downstream import has_downstream
from keras_lgvq.comparison.downstream import run_downstream
from keras_lgvq.comparison.figures import stored_artifacts
from keras_lgvq.comparison.figures import summary_figures
from keras_lgvq.comparison.figures import system_figures
from keras_lgvq.comparison.figures import unit_artifacts
from keras_lgvq.comparison.pair_tests import per_item_table_scores
from keras_lgvq.comparison.pair_tests import seed_statistics_by_model
from keras_lgvq.comparison.pair_tests import significance_tests
from keras_lgvq.comparison.progress import ComparisonProgress
from keras_lgvq.comparison.progress import Stopwatch
from keras_lgvq.comparison.progress import format_duration
from keras_lgvq.comparison.report import best_sentence
from keras_lgvq.comparison.report import report_notes
from keras_lgvq.comparison.report import verdict_lines
from keras_lgvq.comparison.report import write_report
from keras_lgvq.comparison.run_state import check_settings
from keras_lgvq.comparison.run_state import load_captioning
from keras_lgvq.comparison.run_state import load_unit
from keras_lgvq.comparison.run_state import load_vqa
from keras_lgvq.comparison.run_state import save_captioning
from keras_lgvq.comparison.run_state import save_unit
from keras_lgvq.comparison.run_state import save_vqa
from keras_lgvq.comparison.run_state import unit_dir
from keras_lgvq.comparison.run_state import write_json_atomic
from keras_lgvq.comparison.systems import MODEL_NAMES
from keras_lgvq.comparison.systems import MODELS
from keras_lgvq.comparison.training import image_size_of
from keras_lgvq.comparison.training import train_system
from keras_lgvq.comparison.vqa import VQA_SPECS
from keras_lgvq.comparison.vqa import has_vqa
from keras_lgvq.comparison.vqa import run_vqa
from keras_lgvq.comparison.vqa import vqa_items
from keras_lgvq.comparison.vqa import vqa_metrics
from keras_lgvq.comparison.vqa import vqa_unavailable
from keras_lgvq.utils.machine import quiet_tensorflow

PHASES = ("train", "evaluate")


def _build_splits(prior, kinds, settings):
    """One (eval, probe) split pair per image size the systems use."""
    import keras

    keras.utils.set_random_seed(settings["seed"])
    splits = {}
    for size in sorted({image_size_of(k, settings) for k in kinds}):
        splits[size] = comparison_splits(
            prior,
            eval_size=settings["eval_size"],
            probe_size=settings["probe_size"],
            image_size=size,
            train_size=settings["train_size"],
            seed=settings["seed"],
            data_dir=settings["data_dir"],
            verbose=settings["verbose"],
        )
    return splits


def run_unit(kind, seed, prior, splits, settings, watch, progress,
             causal_lm_state):
    """Train, evaluate and store one (system, seed); returns its result.

    Args:
        kind: str. `MODELS` key.
        seed: int.
        prior: the scenes `TextPrior`.
        splits: dict image size -> `(eval_split, probe_split)`.
        settings: dict from `resolve_settings`.
        watch: `Stopwatch` of the run.
        progress: `ComparisonProgress` of the run.
        causal_lm_state: dict caching the few-shot LM (`lm`, `reason`)
            across units.

    Returns:
        dict: the stored result (`results` of `evaluate_model`,
        `training`, `table_metrics`, `per_item`, `report_artifacts`,
        `downstream` and `downstream_metrics` for LQAE-family rows,
        `evaluation_wall_s`), with its `reconstructions` and the trained
        `tokenizer` backbone (for the captioning and VQA tasks) in
        memory.

    Examples:

    ```python
    unit = run_unit("vqgan", 0, prior, splits, settings, watch, progress, {})
    ```
    """
    from keras_lgvq.evaluation import evaluate_model
    from keras_lgvq.evaluation import flatten_metrics

    probe_config = dict(
        epochs=settings["probe_epochs"],
        batch_size=settings["probe_batch_size"],
        linear_epochs=settings["linear_epochs"],
        jit_compile=settings["jit_compile"],
    )
    if settings["smoke"]:
        probe_config.update(SMOKE_HEADS)
    with progress.step("train", kind, seed):
        model, training = train_system(kind, prior, settings, seed, watch)
    eval_split, probe_split = splits[model.backbone.resolution]
    with progress.step("evaluate", kind, seed):
        print(f"\n== Evaluating {MODEL_NAMES[kind]} (seed {seed})")
        start = time.time()
        with watch.phase(f"eval_{kind}"):
            results, artifacts = evaluate_model(
                model,
                eval_split,
                probe_split,
                text_prior=prior,
                probe_config=probe_config,
                seed=seed,
                verbose=settings["verbose"],
                return_artifacts=True,
            )
            items = per_item_table_scores(model, eval_split, artifacts)
        unit = {
            "kind": kind,
            "seed": int(seed),
            "results": results,
            "training": training,
            "table_metrics": flatten_metrics(results),
            "per_item": items,
            "report_artifacts": stored_artifacts(artifacts),
        }
        if has_downstream(kind):
            needs_lm = getattr(model.backbone, "language_model", None)
            if needs_lm is not None and not causal_lm_state:
                lm, reason = few_shot_language_model()
                causal_lm_state.update(lm=lm, reason=reason)
            with watch.phase(f"downstream_{kind}"):
                downstream = run_downstream(
                    model, probe_split, eval_split, settings, seed,
                    causal_lm=causal_lm_state.get("lm"),
                    lm_reason=causal_lm_state.get("reason"),
                )
            unit["downstream"] = downstream
            unit["downstream_metrics"] = downstream_metrics(downstream)
        unit["evaluation_wall_s"] = round(time.time() - start, 1)
    reconstructions = artifacts["reconstructions"][:32]
    save_unit(
        settings["out"], kind, seed, unit,
        reconstructions=reconstructions,
        model=model if settings["save"] else None,
    )
    unit["reconstructions"] = reconstructions
    unit["tokenizer"] = model.backbone
    return unit


def caption_unit(kind, seed, unit, settings, watch, progress):
    """Run (or reuse) the captioning task of one (system, seed) and merge
    it into `unit` (`captioning`, `captioning_metrics`, and the per-image
    scores into `per_item` for the pair tests).

    The tokenizer is the one just trained (`unit["tokenizer"]`) or, for a
    reused unit, its stored preset. The result is stored in the unit's
    folder (`captioning.json`), so a rerun reuses it.

    Args:
        kind: str. `MODELS` key (a row with `has_captioning`).
        seed: int.
        unit: dict from `run_unit` or `load_unit`.
        settings: dict from `resolve_settings` (`captioning` not None).
        watch: `Stopwatch` of the run.
        progress: `ComparisonProgress` of the run.

    Examples:

    ```python
    caption_unit("lgvq", 0, unit, settings, watch, progress)
    ```
    """
    out = settings["out"]
    result = load_captioning(out, kind, seed) if unit.get("reused") else None
    if result is None:
        tokenizer = unit.get("tokenizer") or os.path.join(
            unit_dir(out, kind, seed), "preset"
        )
        with progress.step("caption", kind, seed):
            print(f"\n== Captioning over {MODEL_NAMES[kind]} codes (seed "
                  f"{seed}): image and blind captioners")
            with watch.phase(f"caption_{kind}"):
                result = run_captioning(tokenizer, settings, seed)
        save_captioning(out, kind, seed, result)
    unit["captioning"] = result
    unit["captioning_metrics"] = captioning_metrics(result)
    unit["per_item"] = {**unit["per_item"], **captioning_items(result)}
    return unit


def vqa_unit(kind, seed, unit, settings, watch, progress):
    """Run (or reuse) the VQA task of one (system, seed) and merge it into
    `unit` (`vqa`, `vqa_metrics`, and the per-question values into
    `per_item` for the pair tests).

    The tokenizer is the one just trained (`unit["tokenizer"]`) or, for a
    reused unit, its stored preset. The result is stored in the unit's
    folder (`vqa.json`), so a rerun reuses it.

    Args:
        kind: str. `MODELS` key (a row with `has_vqa`).
        seed: int.
        unit: dict from `run_unit` or `load_unit`.
        settings: dict from `resolve_settings` (`vqa` not None).
        watch: `Stopwatch` of the run.
        progress: `ComparisonProgress` of the run.

    Examples:

    ```python
    vqa_unit("lgvq", 0, unit, settings, watch, progress)
    ```
    """
    out = settings["out"]
    result = load_vqa(out, kind, seed) if unit.get("reused") else None
    if result is None:
        tokenizer = unit.get("tokenizer") or os.path.join(
            unit_dir(out, kind, seed), "preset"
        )
        with progress.step("vqa", kind, seed):
            print(f"\n== VQA over {MODEL_NAMES[kind]} codes (seed {seed}): "
                  "image and blind models")
            with watch.phase(f"vqa_{kind}"):
                result = run_vqa(tokenizer, settings, seed)
        save_vqa(out, kind, seed, result)
    unit["vqa"] = result
    unit["vqa_metrics"] = vqa_metrics(result)
    unit["per_item"] = {**unit["per_item"], **vqa_items(result)}
    return unit


def _summary_entry(kind, unit, figures, seed_units):
    entry = dict(unit["results"])
    entry["training"] = unit["training"]
    entry["figures"] = {k: os.path.join(kind, v) for k, v in figures.items()}
    entry["table_metrics"] = unit["table_metrics"]
    if "downstream" in unit:
        entry["downstream"] = unit["downstream"]
        entry["downstream_metrics"] = unit["downstream_metrics"]
    if "captioning" in unit:
        entry["captioning"] = unit["captioning"]
        entry["captioning_metrics"] = unit["captioning_metrics"]
    if "vqa" in unit:
        entry["vqa"] = unit["vqa"]
        entry["vqa_metrics"] = unit["vqa_metrics"]
    entry["reused"] = bool(unit.get("reused"))
    entry["seed_runs"] = []
    for other in seed_units:
        run = {
            "seed": other["seed"],
            "table_metrics": other["table_metrics"],
            "training": {
                k: v for k, v in other["training"].items()
                if k not in ("history", "step_history")
            },
            "reused": bool(other.get("reused")),
        }
        if "downstream_metrics" in other:
            run["downstream_metrics"] = other["downstream_metrics"]
        if "captioning_metrics" in other:
            run["captioning_metrics"] = other["captioning_metrics"]
        if "vqa_metrics" in other:
            run["vqa_metrics"] = other["vqa_metrics"]
        entry["seed_runs"].append(run)
    return entry


def _link_or_copy(source, target):
    """Hard-link a file (no second copy of a large preset on disk), or copy
    it where the file system has no hard links."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _publish_preset(out, kind, seed):
    """`out/<kind>/preset`: the first seed's preset (the path the recipes
    and the README use), hard-linked to `out/<kind>/seed_<s>/preset`."""
    source = os.path.join(unit_dir(out, kind, seed), "preset")
    target = os.path.join(out, kind, "preset")
    if not os.path.isdir(source):
        return None
    if os.path.isdir(target):
        shutil.rmtree(target)
    shutil.copytree(source, target, copy_function=_link_or_copy)
    return os.path.join(kind, "preset")


def run_comparison(options=None):
    """Train, evaluate and compare the systems of one run; write the report.

    Resumable: every finished (system, seed) is stored in `--out` and a
    rerun with the same settings reuses it (see
    `keras_lgvq.comparison.run_state`); different settings in the same
    `--out` stop the run with a `ValueError` naming them (`no_resume`
    starts over).

    Args:
        options: an `argparse.Namespace` of `recipes/scenes_compare.py`, a
            dict with keys of `keras_lgvq.comparison.DEFAULT_OPTIONS`
            (e.g. `{"smoke": True, "out": "runs/x"}`), or None.

    Returns:
        dict: the summary written to `out/summary.json` (one key per
        system, plus `config`, `comparison`, `significance`,
        `seed_statistics`, `timing`, `machine`, `notes`).

    Examples:

    ```python
    from keras_lgvq.comparison import run_comparison

    summary = run_comparison({"quick": True, "out": "runs/scenes_quick"})
    summary["significance"]["lgvq_vs_vqgan"]["metrics"]["psnr"]["verdict"]
    ```
    """
    from keras_lgvq import text_priors
    from keras_lgvq import visualization
    from keras_lgvq.evaluation import METRIC_SPECS
    from keras_lgvq.models.presets import get_preset
    from keras_lgvq.utils.machine import load_average
    from keras_lgvq.utils.machine import machine_info
    from keras_lgvq.utils.machine import peak_rss_mb

    # Fail before any training if the report's figures cannot be drawn.
    visualization.require_matplotlib()
    settings = resolve_settings(options)
    watch = Stopwatch()
    quiet_tensorflow()
    out = settings["out"]
    resumed = check_settings(
        out, result_fingerprint(settings), settings["resume"]
    )
    machine = machine_info()
    print(
        f"keras-lgvq scenes comparison ({settings['mode']}): backend "
        f"{machine['backend']}, {machine['cpu_count']} CPUs, load "
        f"{machine['load_average']}; output in {out}"
        + (" (resuming: finished systems are reused)" if resumed else "")
    )
    skipped = {}
    for kind in settings["models"]:
        reason = MODELS[kind].requires and MODELS[kind].requires(settings)
        if reason:
            skipped[kind] = reason
            print(f"Skipping {MODEL_NAMES[kind]}: {reason}.")
    kinds = tuple(k for k in settings["models"] if k not in skipped)
    if not kinds:
        raise ValueError(
            "No model of --models can run here: "
            + "; ".join(f"{MODEL_NAMES[k]}: {r}" for k, r in skipped.items())
        )
    seeds = settings["seeds"]
    captioning_skipped = None
    captioned = ()
    if any(has_captioning(k) for k in kinds):
        captioning_skipped = captioning_unavailable(settings)
        if captioning_skipped is None:
            captioned = tuple(k for k in kinds if has_captioning(k))
        else:
            print(f"Captioning task: {captioning_skipped}.")
    vqa_skipped = None
    answered = ()
    if any(has_vqa(k) for k in kinds):
        vqa_skipped = vqa_unavailable(settings)
        if vqa_skipped is None:
            answered = tuple(k for k in kinds if has_vqa(k))
        else:
            print(f"VQA task: {vqa_skipped}.")
    stored = {}
    if settings["resume"]:
        for seed in seeds:
            for kind in kinds:
                unit = load_unit(out, kind, seed, need_preset=settings["save"])
                if unit is None:
                    continue
                folder = unit_dir(out, kind, seed)
                missing = (
                    kind in captioned
                    and load_captioning(out, kind, seed) is None
                ) or (kind in answered and load_vqa(out, kind, seed) is None)
                if missing and not os.path.isdir(
                    os.path.join(folder, "preset")
                ):
                    # Stored with --no-save and without a downstream task
                    # this run has: the tokenizer to run it with is gone,
                    # so the unit is retrained.
                    continue
                unit["reused"] = True
                stored[(kind, seed)] = unit
    progress = ComparisonProgress(
        [(phase, kind, seed) for seed in seeds for kind in kinds
         for phase in PHASES
         + (("caption",) if kind in captioned else ())
         + (("vqa",) if kind in answered else ())],
        names=MODEL_NAMES,
    )
    # Reused results first: their recorded durations inform the ETA.
    for (kind, seed), unit in stored.items():
        progress.skip(
            "train", kind, seed, seconds=unit["training"].get("wall_s"),
            reason=f"reused from {unit_dir(out, kind, seed)}",
        )
        progress.skip(
            "evaluate", kind, seed, seconds=unit.get("evaluation_wall_s"),
            reason="reused",
        )
        captions = (
            load_captioning(out, kind, seed) if kind in captioned else None
        )
        if captions is not None:
            progress.skip(
                "caption", kind, seed,
                seconds=captions["seconds"].get("total"), reason="reused",
            )
        answers = load_vqa(out, kind, seed) if kind in answered else None
        if answers is not None:
            progress.skip(
                "vqa", kind, seed,
                seconds=answers["seconds"].get("total"), reason="reused",
            )
    text = get_preset("scenes")["text"]
    with watch.phase("data"):
        print("\n== Text prior and the scenes set")
        prior = text_priors.get(
            text["text_prior"], sequence_length=text["sequence_length"]
        )
        splits = _build_splits(prior, kinds, settings)
    units = {}
    causal_lm_state = {}
    for seed in seeds:
        for kind in kinds:
            unit = stored.get((kind, seed))
            if unit is None:
                unit = run_unit(kind, seed, prior, splits, settings, watch,
                                progress, causal_lm_state)
            if kind in captioned:
                caption_unit(kind, seed, unit, settings, watch, progress)
            if kind in answered:
                vqa_unit(kind, seed, unit, settings, watch, progress)
            # The trained model is not needed any more.
            unit.pop("tokenizer", None)
            units[(kind, seed)] = unit
    specs = {**METRIC_SPECS, **DOWNSTREAM_SPECS, **CAPTIONING_SPECS,
             **VQA_SPECS}
    flats_by_seed = {
        k: [
            {**units[(k, s)]["table_metrics"],
             **units[(k, s)].get("downstream_metrics", {}),
             **units[(k, s)].get("captioning_metrics", {}),
             **units[(k, s)].get("vqa_metrics", {})}
            for s in seeds
        ]
        for k in kinds
    }
    items_by_seed = {k: [units[(k, s)]["per_item"] for s in seeds]
                     for k in kinds}
    summary = {}
    flat = {}
    artifacts_by_model = {}
    with watch.phase("figures"):
        for kind in kinds:
            first = units[(kind, seeds[0])]
            size = image_size_of(kind, settings)
            artifacts = unit_artifacts(first, splits[size][0])
            figures = system_figures(
                os.path.join(out, kind), artifacts, MODEL_NAMES[kind]
            )
            summary[kind] = _summary_entry(
                kind, first, figures, [units[(kind, s)] for s in seeds[1:]]
            )
            if settings["save"]:
                summary[kind]["preset"] = _publish_preset(out, kind, seeds[0])
            flat[kind] = first["table_metrics"]
            artifacts_by_model[kind] = artifacts
    for kind, reason in skipped.items():
        summary[kind] = {"skipped": True, "reason": reason}

    significance = significance_tests(
        kinds, flats_by_seed, items_by_seed, settings, specs=specs
    )
    seed_stats = seed_statistics_by_model(kinds, flats_by_seed, specs=specs)
    with watch.phase("figures"):
        comparison_figures = visualization.write_comparison_figures(
            out,
            flat,
            histories={
                k: summary[k]["training"]["step_history"] for k in flat
            },
            histograms={
                k: visualization.usage_counts(artifacts_by_model[k])
                for k in flat
            },
            names=MODEL_NAMES,
        )
        comparison_figures.update(
            summary_figures(out, significance, seed_stats, kinds, specs)
        )
    rows = visualization.comparison_rows(flat, names=kinds)
    header = (
        ("Metric",)
        + tuple(MODEL_NAMES[k] for k in kinds)
        + ("Chance/baseline", "Better")
    )
    print("\n" + visualization.text_table(rows, header))
    best_counts = {k: sum(r[-1] == k for r in rows) for k in kinds}
    print(best_sentence(best_counts) + ".")
    for line in verdict_lines(significance):
        print(line)
    timing = watch.as_dict()
    timing["peak_rss_mb"] = peak_rss_mb()
    machine["load_average_at_end"] = load_average()
    reused = [
        f"{MODEL_NAMES[k]} seed {s}" for (k, s) in units
        if units[(k, s)].get("reused")
    ]
    summary.update(
        config={k: v for k, v in settings.items()},
        comparison={
            "models": list(kinds),
            "skipped": dict(skipped),
            "header": list(header),
            "rows": [list(r) for r in rows],
            **{f"{k}_better": n for k, n in best_counts.items()},
            "figures": comparison_figures,
            "reused": reused,
            "progress": list(progress.lines),
            "captioned": list(captioned),
            "captioning_skipped": captioning_skipped,
            "answered": list(answered),
            "vqa_skipped": vqa_skipped,
        },
        significance=significance,
        seed_statistics=seed_stats,
        timing=timing,
        machine=machine,
    )
    summary["notes"] = report_notes(settings, summary, kinds)
    write_json_atomic(os.path.join(out, "summary.json"), summary)
    report = write_report(summary, rows, header, artifacts_by_model, settings)
    temporary = os.path.join(out, "report.md.partial")
    with open(temporary, "w") as f:
        f.write(report)
    os.replace(temporary, os.path.join(out, "report.md"))
    total = timing["total"]
    print(
        f"\nWrote {out}/summary.json and report.md in "
        f"{format_duration(total['wall_s'])}. Total wall "
        f"{total['wall_s']:.0f} s, CPU {total['cpu_s']:.0f} s, peak RSS "
        f"{timing['peak_rss_mb']:.0f} MiB."
    )
    return summary

"""`run_comparison`: the scenes comparison from settings to report.

Steps: resolve the settings, check `--out` against a stored run (resume),
build the shared scenes splits, then for every seed and system either
reuse its stored result or train, evaluate (and, for LQAE-family rows, run
the downstream evaluations) and store it, then reuse or run and store each
stage-2 task of its row (`stage2_tasks.STAGE2_TASKS`: captioning, VQA,
text-to-image, unless the budget has none); finally test every
guided-vs-baseline pair, draw the figures and write `summary.json` and
`report.md`. Progress lines with an ETA mark every training and
evaluation step.
"""

import functools
import os
import shutil
import time

from keras_lgvq.comparison.budgets import SMOKE_HEADS
from keras_lgvq.comparison.budgets import resolve_settings
from keras_lgvq.comparison.budgets import result_fingerprint
from keras_lgvq.comparison.data import comparison_splits
from keras_lgvq.comparison.downstream import DOWNSTREAM_SPECS
from keras_lgvq.comparison.downstream import downstream_metrics
from keras_lgvq.comparison.downstream import few_shot_language_model
from keras_lgvq.comparison.downstream import has_downstream
from keras_lgvq.comparison.downstream import run_downstream
from keras_lgvq.comparison.figures import stored_artifacts
from keras_lgvq.comparison.figures import stage2_examples_figure
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
from keras_lgvq.comparison.run_state import load_unit
from keras_lgvq.comparison.run_state import save_unit
from keras_lgvq.comparison.run_state import unit_dir
from keras_lgvq.comparison.run_state import write_json_atomic
from keras_lgvq.comparison.stage2_tasks import CAPTIONING
from keras_lgvq.comparison.stage2_tasks import STAGE2_TASKS
from keras_lgvq.comparison.stage2_tasks import VQA
from keras_lgvq.comparison.stage2_tasks import recorded_seconds
from keras_lgvq.comparison.systems import MODEL_NAMES
from keras_lgvq.comparison.systems import MODELS
from keras_lgvq.comparison.training import image_size_of
from keras_lgvq.comparison.training import train_system
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


def task_unit(task, kind, seed, unit, settings, watch, progress):
    """Run (or reuse) one stage-2 task of one (system, seed) and merge it
    into `unit` (`unit[task.name]`, `unit[task.metrics_key]`, and its
    per-item values into `per_item` for the pair tests).

    The tokenizer is the one just trained (`unit["tokenizer"]`) or, for a
    reused unit, its stored preset. The result is stored in the unit's
    folder (`task.save`), so a rerun reuses it; only a reused unit reads a
    stored one (a freshly trained tokenizer's folder has none).

    Args:
        task: a `stage2_tasks.Stage2Task`.
        kind: str. `MODELS` key (a row with `task.has(kind)`).
        seed: int.
        unit: dict from `run_unit` or `load_unit`.
        settings: dict from `resolve_settings` (the task's budget set).
        watch: `Stopwatch` of the run.
        progress: `ComparisonProgress` of the run.

    Returns:
        `unit`, updated.

    Examples:

    ```python
    task_unit(stage2_tasks.VQA, "lgvq", 0, unit, settings, watch, progress)
    ```
    """
    out = settings["out"]
    result = task.load(out, kind, seed) if unit.get("reused") else None
    if result is None:
        folder = unit_dir(out, kind, seed)
        tokenizer = unit.get("tokenizer") or os.path.join(folder, "preset")
        with progress.step(task.phase, kind, seed):
            print("\n== " + task.heading.format(model=MODEL_NAMES[kind],
                                                 seed=seed))
            with watch.phase(f"{task.phase}_{kind}"):
                result = task.run(tokenizer, settings, seed, folder)
        task.save(out, kind, seed, result)
    unit[task.name] = result
    unit[task.metrics_key] = task.metrics(result)
    unit["per_item"] = {**unit["per_item"], **task.items(result)}
    return unit


# The task units under their former names.
caption_unit = functools.partial(task_unit, CAPTIONING)
vqa_unit = functools.partial(task_unit, VQA)


def _summary_entry(kind, unit, figures, seed_units):
    entry = dict(unit["results"])
    entry["training"] = unit["training"]
    entry["figures"] = {k: os.path.join(kind, v) for k, v in figures.items()}
    entry["table_metrics"] = unit["table_metrics"]
    if "downstream" in unit:
        entry["downstream"] = unit["downstream"]
        entry["downstream_metrics"] = unit["downstream_metrics"]
    for task in STAGE2_TASKS:
        if task.name in unit:
            entry[task.name] = unit[task.name]
            entry[task.metrics_key] = unit[task.metrics_key]
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
        for task in STAGE2_TASKS:
            if task.metrics_key in other:
                run[task.metrics_key] = other[task.metrics_key]
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


def announce_reused(progress, stored, out, task_rows):
    """Mark the stored (system, seed) units and their stored stage-2
    results done in `progress`, with their recorded durations (which
    inform the ETA of the steps left).

    Args:
        progress: `ComparisonProgress` of the run.
        stored: dict `(kind, seed)` -> unit from `load_unit`.
        out: str. The run's output folder.
        task_rows: dict task name -> the rows that run the task.

    Examples:

    ```python
    announce_reused(progress, {("lgvq", 0): unit}, "runs/x",
                    {"captioning": ("lgvq",)})
    ```
    """
    for (kind, seed), unit in stored.items():
        progress.skip(
            "train", kind, seed, seconds=unit["training"].get("wall_s"),
            reason=f"reused from {unit_dir(out, kind, seed)}",
        )
        progress.skip(
            "evaluate", kind, seed, seconds=unit.get("evaluation_wall_s"),
            reason="reused",
        )
        for task in STAGE2_TASKS:
            stored_result = (task.load(out, kind, seed)
                             if kind in task_rows[task.name] else None)
            if stored_result is not None:
                progress.skip(
                    task.phase, kind, seed,
                    seconds=recorded_seconds(stored_result),
                    reason="reused",
                )


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
    # Per stage-2 task: the rows that run it, or why the run has none.
    task_rows = {}
    task_skipped = {}
    for task in STAGE2_TASKS:
        task_rows[task.name] = ()
        task_skipped[task.name] = None
        if any(task.has(k) for k in kinds):
            reason = task.unavailable(settings)
            task_skipped[task.name] = reason
            if reason is None:
                task_rows[task.name] = tuple(k for k in kinds if task.has(k))
            else:
                print(f"{task.label}: {reason}.")
    stored = {}
    if settings["resume"]:
        for seed in seeds:
            for kind in kinds:
                unit = load_unit(out, kind, seed, need_preset=settings["save"])
                if unit is None:
                    continue
                folder = unit_dir(out, kind, seed)
                missing = any(
                    kind in task_rows[task.name]
                    and task.load(out, kind, seed) is None
                    for task in STAGE2_TASKS
                )
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
         for phase in PHASES + tuple(
             task.phase for task in STAGE2_TASKS
             if kind in task_rows[task.name])],
        names=MODEL_NAMES,
    )
    # Reused results first: their recorded durations inform the ETA.
    announce_reused(progress, stored, out, task_rows)
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
            for task in STAGE2_TASKS:
                if kind in task_rows[task.name]:
                    task_unit(task, kind, seed, unit, settings, watch,
                              progress)
            # The trained model is not needed any more.
            unit.pop("tokenizer", None)
            units[(kind, seed)] = unit
    specs = {**METRIC_SPECS, **DOWNSTREAM_SPECS}
    for task in STAGE2_TASKS:
        specs.update(task.specs)

    def flat_metrics(unit):
        flat = {**unit["table_metrics"],
                **unit.get("downstream_metrics", {})}
        for task in STAGE2_TASKS:
            flat.update(unit.get(task.metrics_key, {}))
        return flat

    flats_by_seed = {
        k: [flat_metrics(units[(k, s)]) for s in seeds] for k in kinds
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
        captioned = [k for k in kinds if summary[k].get("captioning")]
        if captioned:
            comparison_figures.update(stage2_examples_figure(
                out, summary, kinds,
                image_size_of(captioned[0], settings), seeds[0]))
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
            **{task.rows_key: list(task_rows[task.name])
               for task in STAGE2_TASKS},
            **{task.skipped_key: task_skipped[task.name]
               for task in STAGE2_TASKS},
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

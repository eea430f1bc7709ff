"""Helpers shared by the comparison's stage-2 task modules (`captioning`,
`vqa`, `text_to_image`): which rows get a task, why a run has none, the
image-vs-blind result skeleton, per-item lists, the paired bootstrap,
Markdown cells and tables, and the report notes.
"""

# The reason of every task when the budget is --quick.
QUICK_BUDGET = "the --quick budget has no downstream task"


def model_of(kind):
    """The `MODELS` entry of row `kind`, or a clear error.

    Args:
        kind: str. A `MODELS` key.

    Examples:

    ```python
    model_of("lgvq").family   # "vqgan"
    ```
    """
    from keras_lgvq.comparison.systems import MODELS

    if kind not in MODELS:
        raise ValueError(
            f"`kind` must be one of {list(MODELS)}; received {kind!r}."
        )
    return MODELS[kind]


def no_budget_reason(settings, option, off_key=None, by_default=None):
    """Why a run whose budget has no such task has none.

    Args:
        settings: dict from `resolve_settings`.
        option: str. The flag that turns the task off (`"--no-vqa"`).
        off_key: str or None. The settings key of that flag; None when
            the task is on in every budget but --quick (then the flag is
            the only other reason).
        by_default: str or None. The reason when the flag is not given
            (the default budget runs the task only with --all).

    Examples:

    ```python
    no_budget_reason({"mode": "quick"}, "--no-vqa", "no_vqa", "off")
    # "the --quick budget has no downstream task"
    ```
    """
    if settings["mode"] == "quick":
        return QUICK_BUDGET
    if off_key is None or settings.get(off_key):
        return f"turned off ({option})"
    return by_default


def smollm2_missing(budget, template):
    """The reason (also warned) a SmolLM2-read task is left out when the
    SmolLM2 asset is not fetched, or None.

    Args:
        budget: dict. The task's budget (`language_model`).
        template: str. The reason, with `{command}` for the fetch command.

    Examples:

    ```python
    reason = smollm2_missing(settings["vqa"], SMOLLM2_MISSING)
    ```
    """
    import warnings

    from keras_lgvq.language_models import smollm2_assets

    if budget["language_model"] == "smollm2" and not (
        smollm2_assets.is_available()
    ):
        reason = template.format(command=smollm2_assets.fetch_command())
        warnings.warn(reason + ".", UserWarning, stacklevel=3)
        return reason
    return None


def bootstrap(a, b, settings, seed):
    """Paired bootstrap of `a` minus `b`, with its `verdict`.

    Args:
        a, b: aligned lists of per-item values.
        settings: dict from `resolve_settings` (`bootstrap_resamples`).
        seed: int. The resampling seed.

    Examples:

    ```python
    bootstrap(image_scores, blind_scores, settings, seed=0)["verdict"]
    ```
    """
    from keras_lgvq.comparison.pair_tests import verdict
    from keras_lgvq.evaluation.significance import paired_bootstrap

    test = paired_bootstrap(
        a, b, num_resamples=settings["bootstrap_resamples"], seed=seed
    )
    test["verdict"] = verdict(test, True)
    return test


def image_blind_result(out, budget, items_key, items_of, ids_key, ids,
                       extra=None):
    """The result skeleton of a task with an image and a blind model.

    Args:
        out: dict from the library's `*_downstream_scenes` (`image`,
            `blind`, `sizes`, `seconds`).
        budget: dict. The task's budget (`settings`, `language_model`).
        items_key: str. The result key of the per-item lists.
        items_of: callable. `items_of(part)`: the per-item lists of one
            model's part of `out`.
        ids_key: str. The result key of the item ids.
        ids: list. The item ids.
        extra: dict or None. Entries placed after `scores`.

    Returns:
        dict: `scores`, `extra`, `<items_key>`, `<ids_key>`, an empty
        `image_vs_blind`, `loss`, `val_loss`, `sizes`, `settings`,
        `language_model`, `seconds` and empty `notes`.

    Examples:

    ```python
    result = image_blind_result(out, budget, "per_image",
                                lambda part: part["per_image"],
                                "image_ids", ids)
    ```
    """
    result = {
        "scores": {},
        **(extra or {}),
        items_key: {},
        ids_key: ids,
        "image_vs_blind": {},
        "loss": {},
        "val_loss": {},
        "sizes": dict(out["sizes"]),
        "settings": dict(budget["settings"]),
        "language_model": budget["language_model"],
        "seconds": {"total": round(float(out["seconds"]), 1)},
        "notes": [],
    }
    for model in ("image", "blind"):
        part = out[model]
        result["scores"][model] = part["scores"]
        result[items_key][model] = items_of(part)
        result["loss"][model] = part["loss"]
        result["val_loss"][model] = part["val_loss"]
        result["seconds"][model] = part["seconds"]
    return result


def keyed_items(per_item, metrics):
    """Per-item lists keyed like the flat metrics.

    Args:
        per_item: dict. Metric name -> list.
        metrics: dict. Flat key -> metric name.

    Examples:

    ```python
    keyed_items({"accuracy": [1, 0]}, {"vqa_accuracy": "accuracy"})
    # {"vqa_accuracy": [1, 0]}
    ```
    """
    return {
        key: list(per_item[name])
        for key, name in metrics.items() if name in per_item
    }


def fmt(value, scale=1.0, digits=3):
    """A score cell: `scale * value` with `digits` decimals, or `—`.

    Examples:

    ```python
    fmt(0.5), fmt(0.5, 100, 1), fmt(None)   # "0.500", "50.0", "—"
    ```
    """
    return "—" if value is None else f"{scale * value:.{digits}f}"


def ci(test, scale=1.0, digits=3):
    """A bootstrap cell: difference [interval] verdict, times `scale`.

    Examples:

    ```python
    ci({"difference": 0.1, "ci_low": 0.05, "ci_high": 0.2,
        "verdict": "better"}, 100, 1)   # "+10.0 [+5.0, +20.0] better"
    ```
    """
    return (
        f"{scale * test['difference']:+.{digits}f} "
        f"[{scale * test['ci_low']:+.{digits}f}, "
        f"{scale * test['ci_high']:+.{digits}f}] {test['verdict']}"
    )


def table_row(cells):
    """A Markdown table row of text cells (`|` and newlines replaced).

    Examples:

    ```python
    table_row(["a|b", "c"])   # "| a/b | c |"
    ```
    """
    return "| " + " | ".join(
        str(c).replace("|", "/").replace("\n", " ") for c in cells
    ) + " |"


def table_header(columns, names, suffix="", align="---:|"):
    """The two header lines of a table: `columns`, then one column per
    metric name (with `suffix`).

    Args:
        columns: list of str. The leading (left-aligned) columns.
        names: list of str. The metric names.
        suffix: str. Appended to every metric name.
        align: str. The alignment cell of the metric columns.

    Examples:

    ```python
    table_header(["System"], ["BLEU-4"])
    # ["| System | BLEU-4 |", "|---|---:|"]
    ```
    """
    return [
        "| " + " | ".join(
            list(columns) + [f"{n}{suffix}" for n in names]) + " |",
        "|" + "---|" * len(columns) + align * len(names),
    ]


def task_rows(summary, kinds, name):
    """The rows of `kinds` whose summary entry has task `name`.

    Examples:

    ```python
    task_rows(summary, ["lgvq", "lqae"], "vqa")   # ["lgvq"]
    ```
    """
    return [k for k in kinds if name in summary.get(k, {})]


def task_notes(summary, kinds, name, label, skipped_key, rows_key,
               row_note):
    """Report notes of a stage-2 task: why it did not run, the rows
    without it, and the results' own notes (each once).

    Args:
        summary: the summary dict.
        kinds: the systems that ran.
        name: str. The task's key in a summary entry (`"vqa"`).
        label: str. Names the task in the notes (`"VQA"`).
        skipped_key: str. `summary["comparison"]` key of why it did not
            run.
        rows_key: str. `summary["comparison"]` key listing its rows.
        row_note: callable. `row_note(kind)`: None for a row with the
            task, else the note after the row's name.

    Examples:

    ```python
    notes += task_notes(summary, kinds, "vqa", "VQA", "vqa_skipped",
                        "answered", lambda kind: None)
    ```
    """
    from keras_lgvq.comparison.systems import MODEL_NAMES

    notes = []
    comparison = summary.get("comparison", {})
    reason = comparison.get(skipped_key)
    if reason:
        notes.append(f"{label} downstream task: {reason}.")
    elif comparison.get(rows_key):
        for kind in kinds:
            note = row_note(kind)
            if note is not None:
                notes.append(f"{MODEL_NAMES[kind]} {note}.")
    seen = set()
    for kind in kinds:
        result = summary.get(kind, {}).get(name)
        if not result:
            continue
        for note in result.get("notes", []):
            if note not in seen:
                seen.add(note)
                notes.append(f"{label} ({MODEL_NAMES[kind]}): {note}.")
    return notes

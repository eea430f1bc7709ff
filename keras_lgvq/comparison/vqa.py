"""The VQA downstream task of the comparison.

Which rows: every VQGAN-family row (LG-VQ, VQGAN, CVQ+LG, CVQ, VQCT+LG,
VQCT). Their tokenizers give a code grid the `VQAModel` reads: one id per
position (`(B, h, w)`), or VQCT's several ids per position (`(B, h, w, S)`:
top-k adjective ids and a noun id), which `PrefixLanguageModel.
_image_inputs` accepts and the VQCT quantizer turns into one code vector
per position (`keras_lgvq.utils.code_layout`). Not the LQAE / VQAE rows:
the ViT family is evaluated downstream by its own table (attribute linear
probes over encoder / LM layers, few-shot prompting).

For each such row, `keras_lgvq.evaluation.vqa_downstream.
vqa_downstream_scenes` trains a VQA model ([image prefix ; question]
through a small decoder, answer classifier) over the frozen tokenizer's
codes and the same model fed one constant code grid (the blind baseline:
what the questions alone teach), and scores both on the same scenes test
questions (and the held-out-combination questions): accuracy, WUPS@0.9
and WUPS@0.0. Two rows with the same seed answer the same questions from
the same initial model weights, so their per-question values pair up:
`significance_tests` adds a paired bootstrap per metric between rows, and
`run_vqa` tests image vs blind within each row.

The flat keys (`vqa_accuracy`, `vqa_wups_0_9`, `vqa_wups_0_0`;
`VQA_SPECS`) are the image model's test-split scores (fractions), with the
blind model's under `<key>_blind` as their reference; the per-question
lists under the same keys feed the bootstrap (their means are the scores).
"""

import warnings

from keras_lgvq.evaluation.metric_table import MetricSpec

# Flat key -> name in `evaluate_vqa` / `per_question_scores`.
VQA_METRICS = {
    "vqa_accuracy": "accuracy",
    "vqa_wups_0_9": "WUPS@0.9",
    "vqa_wups_0_0": "WUPS@0.0",
}
VQA_SPECS = {
    key: MetricSpec(f"VQA {name} (image model)", True, f"{key}_blind")
    for key, name in VQA_METRICS.items()
}
# The split of the flat metrics and the paired tests between rows.
FLAT_SPLIT = "test"
# Answered questions shown per system in the report.
REPORT_EXAMPLES = 4
# Questions kept as examples in the stored result.
STORED_EXAMPLES = 16

SMOLLM2_MISSING = (
    "the VQA task is left out: its decoder reads SmolLM2's tokenizer "
    "(and, for a pretrained decoder, its weights), which is not fetched; "
    "run `{command}` to add it"
)
# Why the default budget has no VQA task.
OFF_BY_DEFAULT = (
    "off in the default budget (two VQA models per row would take the "
    "default run past its 30 minutes on a 2-core CPU); --all runs it"
)
# The note of a row without a VQA task (the LQAE family).
NOT_ANSWERED = (
    "has no VQA task: the LQAE-family rows are evaluated downstream by "
    "their own table"
)


def has_vqa(kind):
    """Whether row `kind` gets the VQA task: every VQGAN-family row
    (LG-VQ, VQGAN, CVQ+LG, CVQ, VQCT+LG, VQCT), not LQAE / VQAE.

    Args:
        kind: str. A `MODELS` key.

    Examples:

    ```python
    has_vqa("lgvq"), has_vqa("vqct"), has_vqa("lqae")   # True, True, False
    ```
    """
    from keras_lgvq.comparison.systems import MODELS

    if kind not in MODELS:
        raise ValueError(
            f"`kind` must be one of {list(MODELS)}; received {kind!r}."
        )
    return MODELS[kind].family == "vqgan"


def vqa_unavailable(settings):
    """Why this run has no VQA task, or None when it has one.

    Args:
        settings: dict from `resolve_settings`.

    Returns:
        None, or a str (the budget has none, `--no-vqa`, the SmolLM2 asset
        or WordNet is missing; the last two also warn).

    Examples:

    ```python
    vqa_unavailable(resolve_settings({"quick": True}))
    ```
    """
    from keras_lgvq.language_models import smollm2_assets
    from keras_lgvq.metrics.vqa_metrics import find_wordnet_dir

    budget = settings.get("vqa")
    if budget is None:
        if settings["mode"] == "quick":
            return "the --quick budget has no downstream task"
        if settings.get("no_vqa"):
            return "turned off (--no-vqa)"
        return OFF_BY_DEFAULT
    if budget["language_model"] == "smollm2" and not (
        smollm2_assets.is_available()
    ):
        reason = SMOLLM2_MISSING.format(command=smollm2_assets.fetch_command())
        warnings.warn(reason + ".", UserWarning, stacklevel=2)
        return reason
    try:
        find_wordnet_dir()
    except FileNotFoundError as error:
        reason = ("the VQA task is left out: WUPS needs WordNet "
                  f"({str(error).splitlines()[0]})")
        warnings.warn(reason, UserWarning, stacklevel=2)
        return reason
    return None


def _bootstrap(a, b, settings, seed):
    from keras_lgvq.comparison.pair_tests import verdict
    from keras_lgvq.evaluation.significance import paired_bootstrap

    test = paired_bootstrap(
        a, b, num_resamples=settings["bootstrap_resamples"], seed=seed
    )
    test["verdict"] = verdict(test, True)
    return test


def run_vqa(tokenizer, settings, seed):
    """The VQA task of one trained tokenizer (one system, one seed).

    Args:
        tokenizer: the trained tokenizer backbone (or anything
            `vqa_downstream_scenes` accepts, e.g. a preset path).
        settings: dict from `resolve_settings` (`vqa` not None;
            `bootstrap_resamples`).
        seed: int. Scenes, questions and model weights: the same for every
            row of this seed, so rows pair up.

    Returns:
        JSON-ready dict: `scores` (`image`, `blind`: split ->
        `evaluate_vqa` dict), `type_prior` (split -> `evaluate_vqa` dict of
        each type's most frequent training answer), `per_question`
        (`image`, `blind`: metric -> list aligned with `question_ids`, test
        split), `question_ids`, `image_vs_blind` (split -> metric -> paired
        bootstrap of image minus blind, with `verdict`), `examples` (the
        first `STORED_EXAMPLES` test questions with the true, image and
        blind answers), `loss` / `val_loss` per model and epoch, `sizes`,
        `settings`, `language_model`, `seconds` and `notes`.

    Examples:

    ```python
    result = run_vqa(model.backbone, settings, seed=0)
    result["scores"]["image"]["test"]["accuracy"]
    ```
    """
    from keras_lgvq.evaluation.vqa_downstream import vqa_downstream_scenes

    budget = settings["vqa"]
    out = vqa_downstream_scenes(
        tokenizer,
        seed=seed,
        language_model=budget["language_model"],
        blind=True,
        settings=budget["settings"],
        **budget["sizes"],
    )
    result = {
        "scores": {},
        "type_prior": out["type_prior"],
        "per_question": {},
        "question_ids": list(out["question_ids"][FLAT_SPLIT]),
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
        result["per_question"][model] = part["per_question"][FLAT_SPLIT]
        result["loss"][model] = part["loss"]
        result["val_loss"][model] = part["val_loss"]
        result["seconds"][model] = part["seconds"]
    for split in out["question_ids"]:
        result["image_vs_blind"][split] = {
            name: _bootstrap(out["image"]["per_question"][split][name],
                             out["blind"]["per_question"][split][name],
                             settings, seed)
            for name in VQA_METRICS.values()
        }
    if "holdout" not in out["question_ids"]:
        result["notes"].append(
            "no held-out-combination question among the test scenes")
    questions = out["questions"][FLAT_SPLIT]
    result["examples"] = [
        {
            "question_id": result["question_ids"][i],
            "question": questions[i]["question"],
            "answer": questions[i]["answer"],
            "image": out["image"]["answers"][FLAT_SPLIT][i],
            "blind": out["blind"]["answers"][FLAT_SPLIT][i],
        }
        for i in range(min(STORED_EXAMPLES, len(questions)))
    ]
    return result


def vqa_metrics(result):
    """Flat metrics of a `run_vqa` result (keys of `VQA_SPECS`, plus
    `<key>_blind`), test split.

    Args:
        result: dict from `run_vqa`.

    Examples:

    ```python
    vqa_metrics(result)["vqa_accuracy"]
    ```
    """
    flat = {}
    for key, name in VQA_METRICS.items():
        for model, suffix in (("image", ""), ("blind", "_blind")):
            scores = result["scores"][model].get(FLAT_SPLIT) or {}
            if scores.get(name) is not None:
                flat[key + suffix] = float(scores[name])
    return flat


def vqa_items(result):
    """Per-question values of the image model, keyed like the flat metrics
    (for the paired bootstrap between rows).

    Args:
        result: dict from `run_vqa`.

    Examples:

    ```python
    items = vqa_items(result)
    len(items["vqa_accuracy"]) == len(result["question_ids"])   # True
    ```
    """
    per_question = result["per_question"]["image"]
    return {
        key: list(per_question[name])
        for key, name in VQA_METRICS.items() if name in per_question
    }


def _fmt(value):
    return "—" if value is None else f"{100 * value:.1f}"


def _ci(test):
    return (
        f"{100 * test['difference']:+.1f} [{100 * test['ci_low']:+.1f}, "
        f"{100 * test['ci_high']:+.1f}] {test['verdict']}"
    )


def _cell(text):
    return str(text).replace("|", "/").replace("\n", " ")


def vqa_section(summary, kinds):
    """The report's VQA section: per row, the image and the blind model's
    scores per split (and the type prior), the image-vs-blind tests, and
    a few answered questions.

    Args:
        summary: the summary dict (`summary[kind]["vqa"]`).
        kinds: the systems that ran, in table order.

    Returns:
        list of Markdown lines (empty when no row has a VQA task).

    Examples:

    ```python
    lines += vqa_section(summary, ["lgvq", "vqgan"])
    ```
    """
    from keras_lgvq.comparison.systems import MODEL_NAMES

    rows = [k for k in kinds if "vqa" in summary.get(k, {})]
    if not rows:
        return []
    first = summary[rows[0]]["vqa"]
    sizes = first["sizes"]
    options = first["settings"]
    names = list(VQA_METRICS.values())
    counts = sizes.get("questions", {})
    holdout = (
        f" and the {counts['holdout']} questions about held-out attribute "
        "combinations (`holdout`)" if counts.get("holdout")
        else " (no held-out-combination question at this size)"
    )
    lines = [
        "## Downstream: VQA",
        "",
        f"A VQA model per system ({options['mapper']} mapper, k = "
        f"{options['prefix_length']} prefix vectors, {options['decoder']} "
        f"decoder over `{first['language_model']}`'s tokenizer, answer "
        f"classifier; {options['epochs']} epoch(s)) trained on "
        f"{counts.get('train', '?')} questions about the frozen codes of "
        f"{sizes['train_images']} scenes training images, and the same "
        "model fed one constant code grid (blind: what the questions alone "
        f"teach); both answer the same {counts.get('test', '?')} questions "
        f"about {sizes['eval_images']} test images (`test`){holdout}. "
        "Scores in %; type prior: each question "
        "type's most frequent training answer, no model. Image − blind: "
        "paired bootstrap over the questions, 95% interval (x100).",
        "",
        "| System | Model | Split | " + " | ".join(names) + " |",
        "|---|---|---|" + "---:|" * len(names),
    ]
    for kind in rows:
        result = summary[kind]["vqa"]
        for model in ("image", "blind", "type prior"):
            scores = (result["type_prior"] if model == "type prior"
                      else result["scores"][model])
            for split, entry in scores.items():
                lines.append(
                    f"| {MODEL_NAMES[kind]} | {model} | {split} | "
                    + " | ".join(_fmt(entry.get(n)) for n in names) + " |"
                )
    lines += ["", "| System | Split | " + " | ".join(
        f"{n}: image − blind" for n in names) + " |",
        "|---|---|" + "---|" * len(names)]
    for kind in rows:
        for split, tests in summary[kind]["vqa"]["image_vs_blind"].items():
            lines.append(
                f"| {MODEL_NAMES[kind]} | {split} | "
                + " | ".join(_ci(tests[n]) if n in tests else "—"
                             for n in names)
                + " |"
            )
    lines += [
        "",
        "Between systems, the same per-question values (test split) give "
        "the paired bootstrap of the summary's significance table.",
        "",
    ]
    for kind in rows:
        examples = summary[kind]["vqa"]["examples"][:REPORT_EXAMPLES]
        if not examples:
            continue
        lines += [
            f"Answers of {MODEL_NAMES[kind]}'s VQA models (first test "
            "questions):",
            "",
            "| Question | True | Image model | Blind model |",
            "|---|---|---|---|",
        ]
        for example in examples:
            cells = [example["question"], example["answer"],
                     example["image"], example["blind"]]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    return lines


def vqa_notes(summary, kinds, settings):
    """Report notes of the VQA task (why it is missing, rows without it,
    the results' own notes).

    Args:
        summary: the summary dict.
        kinds: the systems that ran.
        settings: dict from `resolve_settings`.

    Examples:

    ```python
    notes += vqa_notes(summary, kinds, settings)
    ```
    """
    from keras_lgvq.comparison.systems import MODEL_NAMES

    notes = []
    comparison = summary.get("comparison", {})
    reason = comparison.get("vqa_skipped")
    if reason:
        notes.append(f"VQA downstream task: {reason}.")
    elif comparison.get("answered"):
        for kind in kinds:
            if not has_vqa(kind):
                notes.append(f"{MODEL_NAMES[kind]} {NOT_ANSWERED}.")
    seen = set()
    for kind in kinds:
        result = summary.get(kind, {}).get("vqa")
        if not result:
            continue
        for note in result.get("notes", []):
            if note not in seen:
                seen.add(note)
                notes.append(f"VQA ({MODEL_NAMES[kind]}): {note}.")
    return notes

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

from keras_lgvq.comparison import task_tables
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
    return task_tables.model_of(kind).family == "vqgan"


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
    from keras_lgvq.metrics.vqa_metrics import find_wordnet_dir

    budget = settings.get("vqa")
    if budget is None:
        return task_tables.no_budget_reason(settings, "--no-vqa", "no_vqa",
                                            OFF_BY_DEFAULT)
    reason = task_tables.smollm2_missing(budget, SMOLLM2_MISSING)
    if reason:
        return reason
    try:
        find_wordnet_dir()
    except FileNotFoundError as error:
        reason = ("the VQA task is left out: WUPS needs WordNet "
                  f"({str(error).splitlines()[0]})")
        warnings.warn(reason, UserWarning, stacklevel=2)
        return reason
    return None


# The paired bootstrap of the task (tests build results with it).
_bootstrap = task_tables.bootstrap


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
    result = task_tables.image_blind_result(
        out, budget, "per_question",
        lambda part: part["per_question"][FLAT_SPLIT],
        "question_ids", list(out["question_ids"][FLAT_SPLIT]),
        extra={"type_prior": out["type_prior"]},
    )
    for split in out["question_ids"]:
        result["image_vs_blind"][split] = {
            name: task_tables.bootstrap(
                out["image"]["per_question"][split][name],
                out["blind"]["per_question"][split][name], settings, seed)
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
    return task_tables.keyed_items(result["per_question"]["image"],
                                   VQA_METRICS)


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

    rows = task_tables.task_rows(summary, kinds, "vqa")
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
        *task_tables.table_header(["System", "Model", "Split"], names),
    ]
    for kind in rows:
        result = summary[kind]["vqa"]
        for model in ("image", "blind", "type prior"):
            scores = (result["type_prior"] if model == "type prior"
                      else result["scores"][model])
            for split, entry in scores.items():
                lines.append(
                    f"| {MODEL_NAMES[kind]} | {model} | {split} | "
                    + " | ".join(task_tables.fmt(entry.get(n), 100, 1)
                                 for n in names) + " |"
                )
    lines += ["", *task_tables.table_header(
        ["System", "Split"], names, ": image − blind", "---|")]
    for kind in rows:
        for split, tests in summary[kind]["vqa"]["image_vs_blind"].items():
            lines.append(
                f"| {MODEL_NAMES[kind]} | {split} | "
                + " | ".join(task_tables.ci(tests[n], 100, 1)
                             if n in tests else "—" for n in names)
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
            lines.append(task_tables.table_row(cells))
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
    return task_tables.task_notes(
        summary, kinds, "vqa", "VQA", "vqa_skipped", "answered",
        lambda kind: None if has_vqa(kind) else NOT_ANSWERED)

"""The captioning downstream task of the comparison (issue 18, Deliver 4).

For every VQGAN-family row (LG-VQ, VQGAN, CVQ+LG, CVQ, VQCT+LG, VQCT: a
code grid the prefix captioner reads, one id per position or VQCT's
several ids per position (top-k adjective ids and a noun id), which
`PrefixLanguageModel._image_inputs` accepts and the VQCT quantizer turns
into one code vector per position, `keras_lgvq.utils.code_layout`; not
the LQAE / VQAE ViTs, which have their own downstream table),
`keras_lgvq.evaluation.captioning_downstream.captioning_downstream_scenes`
trains a ClipCap-style captioner over the frozen tokenizer's codes and the
same model with a constant code grid (the blind baseline), captions the
same scenes test images with both and scores them with BLEU-4, METEOR,
ROUGE-L and CIDEr-D. Two rows with the same seed caption the same test
images from the same initial captioner weights, so their per-image scores
pair up: `significance_tests` adds a paired bootstrap per metric for
LG-VQ vs VQGAN (and every other guided pair), and `run_captioning` tests
image vs blind within each row.

The flat keys (`caption_bleu4`, ...; `CAPTIONING_SPECS`) are the corpus
scores of the image captioner, with the blind captioner's score under
`<key>_blind` as their reference; the per-image lists under the same keys
feed the bootstrap. BLEU-4's per-image values are sentence-level BLEU-4
(pycocoevalcap), whose mean is not the corpus BLEU-4: its interval tests
the mean sentence BLEU-4. ROUGE-L's and CIDEr-D's per-image values average
to the corpus scores; METEOR's need Java (without it the column is left
out and a note says so).
"""

from keras_lgvq.comparison import task_tables
from keras_lgvq.evaluation.metric_table import MetricSpec

# Flat key -> name in `evaluate_captions` / `per_image_caption_scores`.
CAPTION_METRICS = {
    "caption_bleu4": "BLEU-4",
    "caption_meteor": "METEOR",
    "caption_rouge_l": "ROUGE-L",
    "caption_cider_d": "CIDEr-D",
}
CAPTIONING_SPECS = {
    key: MetricSpec(f"Captioning {name} (image captioner)", True,
                    f"{key}_blind")
    for key, name in CAPTION_METRICS.items()
}
# Reference captions shown per system in the report.
REPORT_EXAMPLES = 4
# Predictions kept in the stored result (the report shows a few; the
# per-image scores keep every image).
STORED_PREDICTIONS = 16

SMOLLM2_MISSING = (
    "the captioning task is left out: its decoder reads SmolLM2's tokenizer "
    "(and, for a pretrained decoder, its weights), which is not fetched; "
    "run `{command}` to add it"
)


# The note of a row without captions (the LQAE family).
NOT_CAPTIONED = (
    "not captioned: the LQAE-family rows are evaluated downstream by their "
    "own table"
)


def has_captioning(kind):
    """Whether row `kind` gets the captioning task: every VQGAN-family row
    (LG-VQ, VQGAN, CVQ+LG, CVQ, VQCT+LG, VQCT; VQCT's several codes per
    position become one code vector each), not LQAE / VQAE.

    Args:
        kind: str. A `MODELS` key.

    Examples:

    ```python
    has_captioning("lgvq"), has_captioning("vqct"), has_captioning("lqae")
    # True, True, False
    ```
    """
    return task_tables.model_of(kind).family == "vqgan"


def captioning_unavailable(settings):
    """Why this run has no captioning task, or None when it has one.

    Args:
        settings: dict from `resolve_settings`.

    Returns:
        None, or a str (the budget has none, `--no-captioning`, or the
        SmolLM2 asset is missing; the last also warns with the fetch
        command).

    Examples:

    ```python
    captioning_unavailable(resolve_settings({"quick": True}))
    ```
    """
    budget = settings.get("captioning")
    if budget is None:
        return task_tables.no_budget_reason(settings, "--no-captioning")
    return task_tables.smollm2_missing(budget, SMOLLM2_MISSING)


# The paired bootstrap of the task (tests build results with it).
_bootstrap = task_tables.bootstrap


def run_captioning(tokenizer, settings, seed):
    """The captioning task of one trained tokenizer (one system, one seed).

    Args:
        tokenizer: the trained tokenizer backbone (or anything
            `captioning_downstream_scenes` accepts, e.g. a preset path).
        settings: dict from `resolve_settings` (`captioning` not None;
            `bootstrap_resamples`).
        seed: int. Scenes images, shuffling and captioner weights: the
            same for every row of this seed, so rows pair up.

    Returns:
        JSON-ready dict: `scores` (`image`, `blind`: `evaluate_captions`
        dicts), `per_image` (`image`, `blind`: metric -> list aligned with
        `image_ids`), `image_ids`, `image_vs_blind` (metric -> paired
        bootstrap of image minus blind per-image scores, with `verdict`),
        `examples` (the first `STORED_PREDICTIONS` images: references,
        image and blind captions), `loss` / `val_loss` per model and epoch,
        `sizes`, `settings`, `language_model`, `seconds` and `notes`.

    Examples:

    ```python
    result = run_captioning(model.backbone, settings, seed=0)
    result["scores"]["image"]["CIDEr-D"], result["scores"]["blind"]["CIDEr-D"]
    ```
    """
    from keras_lgvq.evaluation.captioning_downstream import captioning_downstream_scenes

    budget = settings["captioning"]
    out = captioning_downstream_scenes(
        tokenizer,
        seed=seed,
        language_model=budget["language_model"],
        blind=True,
        settings=budget["settings"],
        use_java=budget.get("use_java"),
        **budget["sizes"],
    )
    result = task_tables.image_blind_result(
        out, budget, "per_image",
        lambda part: {name: values
                      for name, values in part["per_image"].items()
                      if values is not None},
        "image_ids", [str(i) for i in out["image_ids"]],
    )
    unavailable = out["image"]["scores"].get("unavailable") or {}
    for name, reason in unavailable.items():
        result["notes"].append(f"{name} not scored: {reason}")
    for name in CAPTION_METRICS.values():
        a = result["per_image"]["image"].get(name)
        b = result["per_image"]["blind"].get(name)
        if a is not None and b is not None:
            result["image_vs_blind"][name] = task_tables.bootstrap(
                a, b, settings, seed)
    count = min(STORED_PREDICTIONS, len(result["image_ids"]))
    references = _test_references(tokenizer, out, count, seed)
    result["examples"] = [
        {
            "image_id": result["image_ids"][i],
            "references": list(references[i][:3]) if references else [],
            "image": out["image"]["predictions"][i],
            "blind": out["blind"]["predictions"][i],
        }
        for i in range(count)
    ]
    return result


def _test_references(tokenizer, out, count, seed):
    """Reference captions of the first `count` test images (regenerated:
    the scenes generator is deterministic per seed and split)."""
    from keras_lgvq.datasets import scenes
    from keras_lgvq.evaluation.captioning_downstream import resolve_tokenizer

    resolution = int(resolve_tokenizer(tokenizer).resolution)
    examples = list(scenes.generate(
        count, seed=seed, image_size=resolution, split="test", holdout=None,
    ))
    ids = [str(e["image_id"]) for e in examples]
    if ids != [str(i) for i in out["image_ids"][:count]]:
        # Not the images that were captioned: show no reference.
        return None
    return [list(e["captions"]) for e in examples]


def captioning_metrics(result):
    """Flat metrics of a `run_captioning` result (keys of
    `CAPTIONING_SPECS`, plus `<key>_blind`).

    Args:
        result: dict from `run_captioning`.

    Examples:

    ```python
    captioning_metrics(result)["caption_cider_d"]
    ```
    """
    flat = {}
    for key, name in CAPTION_METRICS.items():
        image = result["scores"]["image"].get(name)
        blind = result["scores"]["blind"].get(name)
        if image is not None:
            flat[key] = float(image)
        if blind is not None:
            flat[f"{key}_blind"] = float(blind)
    return flat


def captioning_items(result):
    """Per-image scores of the image captioner, keyed like the flat metrics
    (for the paired bootstrap between rows).

    Args:
        result: dict from `run_captioning`.

    Examples:

    ```python
    items = captioning_items(result)
    len(items["caption_rouge_l"]) == len(result["image_ids"])   # True
    ```
    """
    return task_tables.keyed_items(result["per_image"]["image"],
                                   CAPTION_METRICS)


def captioning_section(summary, kinds):
    """The report's captioning section: per row, the image and the blind
    captioner's scores side by side, the image-vs-blind test, and a few
    captions.

    Args:
        summary: the summary dict (`summary[kind]["captioning"]`).
        kinds: the systems that ran, in table order.

    Returns:
        list of Markdown lines (empty when no row has captions).

    Examples:

    ```python
    lines += captioning_section(summary, ["lgvq", "vqgan"])
    ```
    """
    from keras_lgvq.comparison.systems import MODEL_NAMES

    rows = task_tables.task_rows(summary, kinds, "captioning")
    if not rows:
        return []
    first = summary[rows[0]]["captioning"]
    sizes = first["sizes"]
    options = first["settings"]
    names = list(CAPTION_METRICS.values())
    lines = [
        "## Downstream: captioning",
        "",
        f"A captioner per system ({options['mapper']} mapper, k = "
        f"{options['prefix_length']} prefix vectors, "
        f"{options['decoder']} decoder over `{first['language_model']}`'s "
        f"tokenizer, {options['epochs']} epoch(s)) trained on the frozen "
        f"codes of {sizes['train_images']} scenes training images "
        f"({sizes['captions_per_image']} caption(s) each), and the same model "
        "fed one constant code grid (blind: what the captions alone teach); "
        f"both caption the same {sizes['eval_images']} test images, scored "
        "against their 10 references. Image − blind: paired bootstrap over "
        "the test images, 95% interval.",
        "",
        *task_tables.table_header(["System", "Captioner"], names),
    ]
    for kind in rows:
        scores = summary[kind]["captioning"]["scores"]
        for model in ("image", "blind"):
            lines.append(
                f"| {MODEL_NAMES[kind]} | {model} | "
                + " | ".join(task_tables.fmt(scores[model].get(n))
                             for n in names)
                + " |"
            )
    lines += ["", *task_tables.table_header(
        ["System"], names, ": image − blind", "---|")]
    for kind in rows:
        tests = summary[kind]["captioning"]["image_vs_blind"]
        lines.append(
            f"| {MODEL_NAMES[kind]} | "
            + " | ".join(task_tables.ci(tests[n]) if n in tests else "—"
                         for n in names)
            + " |"
        )
    lines += [
        "",
        "Between systems, the same per-image scores give the paired "
        "bootstrap of the summary's significance table (BLEU-4's interval "
        "is over sentence-level BLEU-4).",
        "",
    ]
    for kind in rows:
        examples = summary[kind]["captioning"]["examples"][:REPORT_EXAMPLES]
        if not examples:
            continue
        lines += [
            f"Captions of {MODEL_NAMES[kind]}'s captioners (first test "
            "images):",
            "",
            "| Image | A reference | Image captioner | Blind captioner |",
            "|---|---|---|---|",
        ]
        for example in examples:
            reference = (example["references"] or [""])[0]
            cells = [example["image_id"], reference, example["image"],
                     example["blind"]]
            lines.append(task_tables.table_row(cells))
        lines.append("")
    return lines


def captioning_notes(summary, kinds, settings):
    """Report notes of the captioning task (why it is missing, metrics not
    scored).

    Args:
        summary: the summary dict.
        kinds: the systems that ran.
        settings: dict from `resolve_settings`.

    Examples:

    ```python
    notes += captioning_notes(summary, kinds, settings)
    ```
    """
    return task_tables.task_notes(
        summary, kinds, "captioning", "Captioning", "captioning_skipped",
        "captioned",
        lambda kind: None if has_captioning(kind) else NOT_CAPTIONED)

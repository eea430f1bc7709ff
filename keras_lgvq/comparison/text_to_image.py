"""The text-to-image and image-completion downstream task of the comparison.

Which rows: LG-VQ, VQGAN, CVQ+LG and CVQ, whose tokenizers give one code id
per grid position (`(B, h, w)`), what the masked-token generator
(`keras_lgvq.models.TextToImage`) predicts. Not VQCT+LG / VQCT: their codes
are several ids per position (top-k adjective ids and a noun id), which
the generator cannot generate (`check_single_id_codes`). Not LQAE / VQAE:
the ViT family is evaluated downstream by its own table, and LQAE's codes
are ids of a frozen language model's word vocabulary (tens of thousands),
which a small generator would have to predict at every position.

For each such row, `keras_lgvq.evaluation.text_to_image_downstream.
text_to_image_downstream_scenes` trains the generator over the frozen
tokenizer's codes and judges what it draws with one attribute classifier
trained on real scenes images. The judge is trained once per run (seed of
the run, the tokenizers' image size) and cached in `--out`
(`JUDGE_FOLDER`), so every row and seed is judged by the same classifier.
Two rows with the same seed are judged on the same test captions and
complete the same test images (the captions and images depend only on the
seed and the sizes), so their per-caption and per-image values pair up:
`significance_tests` adds a paired bootstrap per metric between rows, and
`run_text_to_image` tests, within each row, generated vs the
shuffled-caption chance, vs the generated images' own chance (the same
images judged against other captions) and vs the unconditional samples,
and completion with vs without the caption.

Flat keys (`TEXT_TO_IMAGE_SPECS`; fractions for accuracies):

- `t2i_conditioning`: share of the caption checks (shape, colour, size,
  fill, region, counts, relations, background) the judge finds in the
  generated images; reference `t2i_conditioning_mismatched` (the same
  generated images judged against other test captions: their chance
  level); `t2i_conditioning_chance` (real test images judged against
  shuffled captions) is stored too;
- `t2i_presence`: share of the caption's object attributes (shape,
  colour, size, fill, region) found on any object of the generated image,
  whatever its shape; reference `t2i_presence_mismatched`;
- `t2i_heldout_conditioning`: the same on captions asking for attribute
  combinations held out of training; reference the same chance;
- `completion_psnr`, `completion_ssim`: the bottom half completed from the
  top half of the code grid and the caption, against the original;
  references `..._no_caption` (completed without the caption);
- `completion_conditioning`: checks found in the completed images;
  reference `completion_conditioning_no_caption`.

`t2i_conditioning_ceiling` (real images, their own captions) is stored
too. Per-item lists: a caption's passed checks divided by the mean number
of checks per caption of that list (so their mean is the pooled share
above; the captions and so their checks are the same across rows), and
the per-image PSNR / SSIM.
"""

import functools
import os
import warnings

from keras_lgvq.comparison import task_tables
from keras_lgvq.evaluation.metric_table import MetricSpec
from keras_lgvq.evaluation.text_to_image_downstream import (
    conditioning_test_lists,
)
from keras_lgvq.evaluation.text_to_image_downstream import scaled_passes

CHANCE = "t2i_conditioning_chance"
TEXT_TO_IMAGE_SPECS = {
    "t2i_conditioning": MetricSpec(
        "Text-to-image conditioning accuracy (judge)", True,
        "t2i_conditioning_mismatched"),
    "t2i_presence": MetricSpec(
        "Text-to-image attributes present (judge)", True,
        "t2i_presence_mismatched"),
    "t2i_heldout_conditioning": MetricSpec(
        "Text-to-image conditioning, held-out combinations", True, CHANCE),
    "completion_psnr": MetricSpec(
        "Completion PSNR, bottom half (dB)", True,
        "completion_psnr_no_caption"),
    "completion_ssim": MetricSpec(
        "Completion SSIM, bottom half", True, "completion_ssim_no_caption"),
    "completion_conditioning": MetricSpec(
        "Completion conditioning accuracy (judge)", True,
        "completion_conditioning_no_caption"),
}
# Flat conditioning key -> (the `per_caption` list of the library's result,
# presence checks instead of the bound ones).
CONDITIONING_LISTS = {
    "t2i_conditioning": ("generated", False),
    "t2i_conditioning_mismatched": ("generated_mismatched", False),
    "t2i_presence": ("generated", True),
    "t2i_presence_mismatched": ("generated_mismatched", True),
    "t2i_heldout_conditioning": ("held_out_generated", False),
    "completion_conditioning": ("completion_caption", False),
    "completion_conditioning_no_caption": ("completion_no_caption", False),
    CHANCE: ("chance", False),
    "t2i_conditioning_ceiling": ("ceiling", False),
}
# The folder of `--out` that caches the run's judge.
JUDGE_FOLDER = "text_to_image_judge"
FIGURE_FILE = "text_to_image_samples.png"
# Captions kept as examples in the stored result.
STORED_EXAMPLES = 8
# The rows with a text-to-image task (see the module docstring).
TEXT_TO_IMAGE_ROWS = ("lgvq", "vqgan", "cvq_lg", "cvq")

OFF_BY_DEFAULT = (
    "off in the default budget (a generator per row, about 15 CPU-minutes "
    "each on 2 cores, would take the default run past its 30 minutes); "
    "--all runs it"
)
MINILM_MISSING = (
    "the text-to-image task is left out: its generator reads MiniLM "
    "caption features, and MiniLM is not fetched; run `python -m "
    "keras_lgvq.fetch_assets` to add it"
)
NOT_DRAWN = {
    "vqct": "has no text-to-image task: VQCT's codes are several ids per "
    "position (adjectives and a noun), which the generator cannot generate",
    "lqae": "has no text-to-image task: the LQAE-family rows are evaluated "
    "downstream by their own table (and LQAE's codes are ids of a word "
    "vocabulary)",
}


def has_text_to_image(kind):
    """Whether row `kind` gets the text-to-image task: LG-VQ, VQGAN,
    CVQ+LG and CVQ (one code id per position), not VQCT / LQAE rows.

    Args:
        kind: str. A `MODELS` key.

    Examples:

    ```python
    has_text_to_image("lgvq"), has_text_to_image("vqct")   # True, False
    ```
    """
    task_tables.model_of(kind)
    return kind in TEXT_TO_IMAGE_ROWS


def text_to_image_unavailable(settings):
    """Why this run has no text-to-image task, or None when it has one.

    Args:
        settings: dict from `resolve_settings`.

    Returns:
        None, or a str (the budget has none, `--no-text-to-image`, or
        MiniLM is missing, which also warns).

    Examples:

    ```python
    text_to_image_unavailable(resolve_settings({"quick": True}))
    ```
    """
    from keras_lgvq.text_priors import minilm_assets

    if settings.get("text_to_image") is None:
        return task_tables.no_budget_reason(
            settings, "--no-text-to-image", "no_text_to_image",
            OFF_BY_DEFAULT)
    if not minilm_assets.is_available():
        warnings.warn(MINILM_MISSING + ".", UserWarning, stacklevel=2)
        return MINILM_MISSING
    return None


@functools.lru_cache(maxsize=1)
def generator_prior(preset="text_to_image_scenes"):
    """The generator's text prior (MiniLM), loaded once per process: every
    row and seed reads the same frozen encoder.

    Args:
        preset: str. The `TextToImage` preset naming the prior.

    Examples:

    ```python
    prior = generator_prior()
    ```
    """
    from keras_lgvq import text_priors
    from keras_lgvq.models.presets import get_preset

    text = get_preset(preset, "TextToImage")["text"]
    return text_priors.get(text["text_prior"],
                           sequence_length=text["sequence_length"])


def judge_for(settings, image_size):
    """The run's judge at `image_size`: loaded from, or trained into,
    `<out>/JUDGE_FOLDER` (seed of the run), so every row and seed shares
    it.

    Args:
        settings: dict from `resolve_settings` (`text_to_image` not None).
        image_size: int. The tokenizers' image size.

    Returns:
        `(judge, report)` of `load_or_train_scenes_judge`.

    Examples:

    ```python
    judge, report = judge_for(settings, 64)
    ```
    """
    from keras_lgvq.evaluation import text_to_image_downstream as t2i_lib

    budget = settings["text_to_image"]
    return t2i_lib.load_or_train_scenes_judge(
        os.path.join(settings["out"], JUDGE_FOLDER), image_size,
        seed=settings["seed"], verbose=settings.get("verbose", 0),
        **budget["judge"],
    )


def _samples_figure(out, path, model_name):
    import matplotlib.pyplot as plt

    from keras_lgvq.visualization import generation_figures

    arrays = out["arrays"]
    captions = arrays["figure_captions"]
    figure = generation_figures.caption_samples_figure(
        captions, arrays["samples"], path=path,
        references=arrays["images"][: len(captions)],
        title=f"{model_name}: generated (first: the real image)",
    )
    plt.close(figure)


def run_text_to_image(tokenizer, settings, seed, folder=None):
    """The text-to-image task of one trained tokenizer (one system, seed).

    Args:
        tokenizer: the trained tokenizer backbone, or a preset path.
        settings: dict from `resolve_settings` (`text_to_image` not None;
            `out`, `seed`, `bootstrap_resamples`).
        seed: int. Scenes, captions, generator weights and sampling: the
            same for every row of this seed, so rows pair up.
        folder: str or None. The unit's folder: the sample grid is drawn
            there (`FIGURE_FILE`).

    Returns:
        JSON-ready dict: the library's summaries (`generated`,
        `unconditional`, `held_out_generated`, `tokenizer_reconstruction`
        and its `_chance`, `references`, `completion`, `sampling`,
        `history`, `sizes`, `settings`, ...), the paired lists
        (`caption_ids`, `held_out_ids`, `completion_ids`, `per_caption`,
        `completion_per_image`), `within_row` (paired bootstraps over
        the captions / images: generated vs the real-image chance
        (`t2i_conditioning_vs_chance`), vs the generated images' own
        chance and vs the unconditional samples, bound and presence checks
        (`t2i_` + the names of `CONDITIONING_TESTS` of
        `keras_lgvq.evaluation.text_to_image_downstream`), completion with
        vs without caption), `examples` (first captions with their judged
        checks), `figure` (path from `--out`, or None), `seconds`
        (`{"total": s}`) and `notes`.

    Examples:

    ```python
    result = run_text_to_image(model.backbone, settings, seed=0)
    result["generated"]["overall"]
    ```
    """
    from keras_lgvq.evaluation import text_to_image_downstream as t2i_lib
    from keras_lgvq.models.text_to_image import load_tokenizer

    budget = settings["text_to_image"]
    if budget is None:
        raise ValueError(
            "`settings['text_to_image']` is None: this run has no "
            "text-to-image task (see `text_to_image_unavailable`)."
        )
    tokenizer = load_tokenizer(tokenizer)
    judge, judge_report = judge_for(settings, int(tokenizer.resolution))
    out = t2i_lib.text_to_image_downstream_scenes(
        tokenizer, seed=seed, judge=judge, settings=budget["settings"],
        prior=generator_prior(
            (budget["settings"] or {}).get("preset", "text_to_image_scenes")),
        return_arrays=folder is not None, **budget["sizes"],
    )
    out.pop("model", None)
    result = {k: v for k, v in out.items() if k != "arrays"}
    result["judge"] = {k: v for k, v in judge_report.items()
                       if k != "history"}
    if "source" in judge_report:
        result["judge"]["source"] = os.path.relpath(
            judge_report["source"], settings["out"])
    # One layout for every task's duration (`stage2_tasks.recorded_seconds`).
    result["seconds"] = {"total": out["seconds"]}
    result["notes"] = []
    result["figure"] = None
    if folder is not None and "samples" in out["arrays"]:
        from keras_lgvq.comparison.systems import MODEL_NAMES

        path = os.path.join(folder, FIGURE_FILE)
        name = os.path.basename(os.path.dirname(os.path.abspath(folder)))
        _samples_figure(out, path, MODEL_NAMES.get(name, name))
        result["figure"] = os.path.relpath(path, settings["out"])
    per_caption = out["per_caption"]
    within = {}
    chance = scaled_passes(per_caption["chance"])
    for key, list_name in (("t2i_conditioning", "generated"),):
        values = scaled_passes(per_caption[list_name])
        if values is not None and chance is not None:
            within[f"{key}_vs_chance"] = task_tables.bootstrap(
                values, chance, settings, seed)
    # Against the generated images' own chance level (the same images
    # judged against other captions) and the unconditional samples.
    for name, (values, reference) in conditioning_test_lists(
            per_caption).items():
        within[f"t2i_{name}"] = task_tables.bootstrap(
            values, reference, settings, seed)
    completion = out["completion_per_image"]
    for metric in ("psnr", "ssim"):
        within[f"completion_{metric}_caption_vs_none"] = (
            task_tables.bootstrap(completion["caption"][metric],
                                  completion["no_caption"][metric],
                                  settings, seed))
    with_caption = scaled_passes(per_caption["completion_caption"])
    no_caption = scaled_passes(per_caption["completion_no_caption"])
    if with_caption is not None and no_caption is not None:
        # Both lists judge the same captions: the same scale.
        within["completion_conditioning_caption_vs_none"] = (
            task_tables.bootstrap(with_caption, no_caption, settings, seed))
    result["within_row"] = within
    if "held_out_generated" not in out:
        result["notes"].append(
            "no test caption asks for a held-out combination at this size")
    generated = per_caption["generated"]
    result["examples"] = [
        {"caption": out["captions"][i],
         "caption_id": out["caption_ids"][i],
         "passed": generated["passed"][i],
         "checks": generated["checks"][i]}
        for i in range(min(STORED_EXAMPLES, len(out["captions"])))
    ]
    return result


def _share(per_caption, presence=False):
    prefix = "presence_" if presence else ""
    if prefix + "checks" not in per_caption:
        # Stored before the presence checks existed.
        return None
    total = sum(per_caption[prefix + "checks"])
    return sum(per_caption[prefix + "passed"]) / total if total else None


def text_to_image_metrics(result):
    """Flat metrics of a `run_text_to_image` result: keys of
    `TEXT_TO_IMAGE_SPECS`, their references and
    `t2i_conditioning_ceiling`.

    Args:
        result: dict from `run_text_to_image`.

    Examples:

    ```python
    text_to_image_metrics(result)["t2i_conditioning"]
    ```
    """
    flat = {}
    per_caption = result["per_caption"]
    for key, (list_name, presence) in CONDITIONING_LISTS.items():
        if list_name in per_caption:
            value = _share(per_caption[list_name], presence)
            if value is not None:
                flat[key] = float(value)
    completion = result["completion"]
    for metric in ("psnr", "ssim"):
        flat[f"completion_{metric}"] = float(completion["caption"][metric])
        flat[f"completion_{metric}_no_caption"] = float(
            completion["no_caption"][metric])
    return flat


def text_to_image_items(result):
    """Per-caption / per-image values keyed like the flat metrics (for the
    paired bootstrap between rows; their means are the flat metrics).

    Args:
        result: dict from `run_text_to_image`.

    Examples:

    ```python
    items = text_to_image_items(result)
    len(items["t2i_conditioning"]) == len(result["caption_ids"])   # True
    ```
    """
    items = {}
    per_caption = result["per_caption"]
    for key in TEXT_TO_IMAGE_SPECS:
        list_name, presence = CONDITIONING_LISTS.get(key, (None, False))
        if list_name is None or list_name not in per_caption:
            continue
        if presence and "presence_checks" not in per_caption[list_name]:
            continue
        values = scaled_passes(per_caption[list_name], presence)
        if values is not None:
            items[key] = values
    for metric in ("psnr", "ssim"):
        items[f"completion_{metric}"] = list(
            result["completion_per_image"]["caption"][metric])
    return items


def _pct(value):
    return task_tables.fmt(value, 100, 1)


def _ci(test, scale=100.0, digits=1):
    return task_tables.ci(test, scale, digits)


def text_to_image_section(summary, kinds):
    """The report's text-to-image section: per row, conditioning accuracy
    of the generated images against its references, held-out
    combinations, completion, the within-row tests and a sample grid.

    Args:
        summary: the summary dict (`summary[kind]["text_to_image"]`).
        kinds: the systems that ran, in table order.

    Returns:
        list of Markdown lines (empty when no row has the task).

    Examples:

    ```python
    lines += text_to_image_section(summary, ["lgvq", "vqgan"])
    ```
    """
    from keras_lgvq.comparison.systems import MODEL_NAMES

    rows = task_tables.task_rows(summary, kinds, "text_to_image")
    if not rows:
        return []
    first = summary[rows[0]]["text_to_image"]
    sizes, options = first["sizes"], first["settings"]
    refs = first["references"]
    judge = first.get("judge", {})
    lines = [
        "## Downstream: text-to-image and completion",
        "",
        f"A masked-token generator per system ({options['train_steps']} "
        f"steps of {options['batch_size']} over the frozen codes of "
        f"{sizes['train_images']} scenes training images, "
        f"{sizes['captions_per_image']} caption(s) each; "
        f"{options['sampling_steps']} decoding steps, guidance "
        f"{options['guidance_scale']}) draws one image for each of "
        f"{sizes['eval_images']} test captions, the same captions for "
        "every system. One judge, an attribute classifier trained on "
        f"{judge.get('train_images', '?')} real scenes images, checks "
        "each caption's shape / colour / size / fill / region / count / "
        "relation / background; an object's colour, size, fill and "
        "region count only on an object of the asked shape (bound). "
        "Presence: the same object attributes (shape, colour, size, fill, "
        "region) counted on any found object, whatever its shape, which "
        "credits a right colour drawn as a blob. Scores: share of the "
        "checks passed (%). Own chance: the same generated images judged "
        "against other test captions (the chance level of these images; "
        "generated − own chance is conditioning alone). Real chance: real "
        "test images judged against shuffled captions "
        f"({_pct(refs['chance']['overall'])} %); ceiling: real images with "
        f"their own captions ({_pct(refs['ceiling']['overall'])} %). "
        "Recon: the tokenizer's own reconstructions (what its codes can "
        "express); uncond.: the generator without the caption. Intervals: "
        "paired bootstrap over the captions, 95%.",
        "",
        "| System | Generated | Own chance | Generated − own chance (x100) "
        "| Uncond. | Recon | Generated − real chance (x100) "
        "| Held-out captions | Held-out objects |",
        "|---|---:|---:|---|---:|---:|---|---:|---:|",
    ]
    for kind in rows:
        r = summary[kind]["text_to_image"]
        held = r.get("held_out_generated") or {}
        within = r.get("within_row", {})
        test = within.get("t2i_conditioning_vs_chance")
        own = within.get("t2i_generated_vs_mismatched")
        lines.append(
            f"| {MODEL_NAMES[kind]} | {_pct(r['generated']['overall'])} | "
            f"{_pct((r.get('generated_mismatched') or {}).get('overall'))} "
            f"| {_ci(own) if own else '—'} | "
            f"{_pct(r['unconditional']['overall'])} | "
            f"{_pct(r['tokenizer_reconstruction']['overall'])} | "
            f"{_ci(test) if test else '—'} | "
            f"{_pct(held.get('overall'))} | "
            f"{_pct((held.get('held_out') or {}).get('accuracy'))} |"
        )
    lines += presence_table(summary, rows)
    lines += [
        "",
        f"Completion of the bottom half of {sizes['completion_images']} test "
        "images from the top half of their code grid, with the caption and "
        "without it (PSNR / SSIM of the completed half against the "
        "original; tokenizer: its plain reconstruction; with − without: "
        "paired bootstrap over the images, 95% interval).",
        "",
        "| System | PSNR caption | PSNR none | PSNR tokenizer | SSIM caption "
        "| SSIM none | Cond. caption | Cond. none | PSNR: caption − none |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for kind in rows:
        r = summary[kind]["text_to_image"]
        c = r["completion"]
        test = r.get("within_row", {}).get("completion_psnr_caption_vs_none")
        lines.append(
            f"| {MODEL_NAMES[kind]} | {c['caption']['psnr']:.2f} | "
            f"{c['no_caption']['psnr']:.2f} | "
            f"{c['tokenizer_reconstruction']['psnr']:.2f} | "
            f"{c['caption']['ssim']:.3f} | {c['no_caption']['ssim']:.3f} | "
            f"{_pct(c['caption']['conditioning']['overall'])} | "
            f"{_pct(c['no_caption']['conditioning']['overall'])} | "
            f"{_ci(test, 1.0, 2) if test else '—'} |"
        )
    lines += [
        "",
        "Between systems, the same per-caption and per-image values give "
        "the paired bootstrap of the summary's significance table.",
        "",
    ]
    for kind in rows:
        figure = summary[kind]["text_to_image"].get("figure")
        if figure:
            lines += [
                f"Generated by {MODEL_NAMES[kind]}'s generator (one row per "
                "test caption; first image: the real one):",
                "",
                f"![{MODEL_NAMES[kind]} text-to-image samples]({figure})",
                "",
            ]
    return lines


def presence_table(summary, rows):
    """Report lines: per system, each presence attribute of the generated
    images against their own chance, and the pooled presence test.

    Args:
        summary: the summary dict.
        rows: systems with a text-to-image result.

    Returns:
        list of Markdown lines (empty when no row has presence checks,
        e.g. a result stored before they existed).

    Examples:

    ```python
    lines += presence_table(summary, ["lgvq", "vqgan"])
    ```
    """
    from keras_lgvq.comparison.systems import MODEL_NAMES
    from keras_lgvq.metrics.conditioning_accuracy import PRESENCE_ATTRIBUTES

    have = [k for k in rows
            if "presence" in summary[k]["text_to_image"]["generated"]
            and summary[k]["text_to_image"].get("generated_mismatched")]
    if not have:
        return []
    lines = [
        "",
        "Attributes present in the generated images, % (own caption / "
        "own chance), and the pooled presence test:",
        "",
        "| System | " + " | ".join(PRESENCE_ATTRIBUTES)
        + " | All | Generated − own chance (x100) |",
        "|---|" + "---:|" * (len(PRESENCE_ATTRIBUTES) + 1) + "---|",
    ]
    for kind in have:
        r = summary[kind]["text_to_image"]
        own, chance = r["generated"], r["generated_mismatched"]
        cells = [
            f"{_pct(own['presence'][a]['accuracy'])} / "
            f"{_pct(chance['presence'][a]['accuracy'])}"
            for a in PRESENCE_ATTRIBUTES
        ]
        cells.append(f"{_pct(own['presence_overall'])} / "
                     f"{_pct(chance['presence_overall'])}")
        test = r.get("within_row", {}).get(
            "t2i_presence_generated_vs_mismatched")
        cells.append(_ci(test) if test else "—")
        lines.append(f"| {MODEL_NAMES[kind]} | " + " | ".join(cells) + " |")
    return lines


def text_to_image_notes(summary, kinds, settings):
    """Report notes of the text-to-image task (why it is missing, rows
    without it, the results' own notes).

    Args:
        summary: the summary dict.
        kinds: the systems that ran.
        settings: dict from `resolve_settings`.

    Examples:

    ```python
    notes += text_to_image_notes(summary, kinds, settings)
    ```
    """
    def row_note(kind):
        if has_text_to_image(kind):
            return None
        family = task_tables.model_of(kind).family
        return NOT_DRAWN["lqae" if family == "lqae" else "vqct"]

    return task_tables.task_notes(
        summary, kinds, "text_to_image", "Text-to-image",
        "text_to_image_skipped", "drawn", row_note)

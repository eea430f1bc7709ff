"""The comparison's report: `report.md` and the lines printed at the end.

`write_report` composes the Markdown: the one-page summary first (per
guided-vs-baseline pair, the verdict of every metric with its interval,
the budget and each system's settings), then the full metric table and
its figures, the LQAE downstream table (when an LQAE-family row ran), the
captioning and VQA tasks (image and blind models per VQGAN-family row),
the notes, the per-system figures and the timing.
"""

from keras_lgvq.comparison.captioning import captioning_notes
from keras_lgvq.comparison.captioning import captioning_section
from keras_lgvq.comparison.systems import MODEL_NAMES
from keras_lgvq.comparison.systems import MODELS
from keras_lgvq.comparison.text_to_image import text_to_image_notes
from keras_lgvq.comparison.text_to_image import text_to_image_section
from keras_lgvq.comparison.vqa import vqa_notes
from keras_lgvq.comparison.vqa import vqa_section


def best_sentence(best_counts):
    """The sentence 'LG-VQ better on 9, VQGAN better on 4 of the metrics
    both models have', for any number of models.

    Args:
        best_counts: dict kind -> number of table rows it leads.

    Examples:

    ```python
    best_sentence({"lgvq": 9, "vqgan": 4})
    ```
    """
    parts = [f"{MODEL_NAMES[k]} better on {n}" for k, n in best_counts.items()]
    who = "both" if len(best_counts) == 2 else "all"
    if len(best_counts) == 1:
        return f"{parts[0]} (one model: nothing to compare)"
    return ", ".join(parts) + f" of the metrics {who} models have"


def _fmt(value):
    from keras_lgvq import visualization

    return visualization.format_value(value)


def _ci_text(test):
    """'+1.17 [+0.39, +1.95]' from a paired_bootstrap result."""
    return (
        f"{test['difference']:+.3g} [{test['ci_low']:+.3g}, "
        f"{test['ci_high']:+.3g}]"
    )


def _per_seed_text(counts):
    """'better in 3, worse in 0 of 5' from `per_seed_verdicts`, or '-'."""
    if not counts:
        return "-"
    return (
        f"better in {counts['better']}, worse in {counts['worse']} of "
        f"{counts['n']}"
    )


def verdict_lines(significance):
    """One printed line per pair: how many metrics are better / worse /
    unclear for the guided model.

    Args:
        significance: dict from `pair_tests.significance_tests`.

    Examples:

    ```python
    for line in verdict_lines(pairs):
        print(line)
    ```
    """
    lines = []
    for entry in significance.values():
        a, b = entry["models"]
        counts = {}
        for metric in entry["metrics"].values():
            counts[metric["verdict"]] = counts.get(metric["verdict"], 0) + 1
        lines.append(
            f"{MODEL_NAMES[a]} vs {MODEL_NAMES[b]}: better on "
            f"{counts.get('better', 0)}, worse on {counts.get('worse', 0)}, "
            f"no clear difference on "
            f"{counts.get('no clear difference', 0)} metric(s); "
            f"{sum(v for k, v in counts.items() if k.startswith('untested'))}"
            " untested."
        )
    return lines


def _budget_sentence(settings, summary, kinds):
    mode = settings["mode"] + (" --all" if settings["all_rows"] else "")
    return (
        f"Budget `{mode}`: every system trains {settings['total_steps']} "
        f"steps of {settings['batch_size']} images "
        f"({settings['epochs']} epoch(s) of {settings['steps_per_epoch']} "
        f"steps) at {settings['image_size']} px, seed(s) "
        f"{', '.join(map(str, settings['seeds']))}; "
        f"{summary[kinds[0]]['num_eval_images']} test images scored; probes "
        f"trained on {settings['probe_size']} training images for "
        f"{settings['probe_epochs']} epoch(s)." + "".join(
            _task_sentence(summary, *task) for task in _TASK_SENTENCES)
    )


# Per stage-2 task: its name, `summary["comparison"]` keys of its rows and
# of why it did not run, the sentence's start and its counts (`{sizes}`
# keys filled in), and the task's name after "No".
_TASK_SENTENCES = (
    ("captioning", "captioned", "captioning_skipped",
     "Downstream: image and blind captioners",
     "{eval_images} test images captioned", "captioning"),
    ("vqa", "answered", "vqa_skipped", "VQA: image and blind models",
     "{eval_images} test images' questions answered", "VQA"),
    ("text_to_image", "drawn", "text_to_image_skipped",
     "Text-to-image: a generator",
     "{eval_images} test captions drawn, {completion_images} test images "
     "completed", "text-to-image"),
)


def _task_sentence(summary, name, rows_key, skipped_key, lead, counts,
                   label):
    """The setup's sentence of one stage-2 task: its rows and sizes, or
    why it did not run (empty when neither)."""
    comparison = summary.get("comparison", {})
    rows = comparison.get(rows_key) or []
    if rows:
        sizes = summary[rows[0]][name]["sizes"]
        return (
            f" {lead} over each of "
            + ", ".join(MODEL_NAMES[k] for k in rows)
            + f"'s codes ({sizes['train_images']} training images, "
            + counts.format(**sizes) + ")."
        )
    reason = comparison.get(skipped_key)
    return f" No {label} task: {reason}." if reason else ""


def _setup_table(summary, kinds):
    """Markdown rows stating each system's backbone / quantizer / GAN /
    LPIPS settings."""
    lines = [
        "| System | Preset | Tokenizer | Codes | Grid | CVQ re-init | GAN | "
        "LPIPS | Optimizer | LG | Leak-free MTP | Cached text features |",
        "|---|---|---|---:|---:|---|---|---|---|---|---|---|",
    ]
    yes = {True: "yes", False: "no", None: "-"}
    for kind in kinds:
        setup = summary[kind]["training"]["setup"]
        cached = (
            yes[setup.get("cached_text_features")]
            if setup["language_guidance"]
            else "-"
        )
        lines.append(
            f"| {MODEL_NAMES[kind]} | `{setup['preset']}` | "
            f"{setup['backbone']} | {setup['codebook_size']} | "
            f"{setup['code_grid']}x{setup['code_grid']} | "
            f"{yes[setup['cvq_reinit']]} | {yes[setup['discriminator']]} | "
            f"{yes[setup['lpips']]} (weight {setup['perceptual_weight']:g}) "
            f"| {setup['optimizer']} | {yes[setup['language_guidance']]} | "
            f"{yes[setup.get('mtp_leak_free')]} | "
            f"{cached} |"
        )
    return lines


def _summary_section(summary, settings, kinds):
    """The one-page summary at the top of the report: per LG-vs-baseline
    pair, the verdict per metric with its interval."""
    significance = summary["significance"]
    seeds = settings["seeds"]
    lines = ["## Summary", ""]
    if not significance:
        lines += [
            "No guided model ran with its baseline, so nothing is tested "
            "(run LG-VQ with VQGAN, CVQ+LG with CVQ, VQCT+LG with VQCT, or "
            "LQAE with VQAE).",
            "",
        ]
    for entry in significance.values():
        a, b = entry["models"]
        name_a, name_b = MODEL_NAMES[a], MODEL_NAMES[b]
        metrics = entry["metrics"]
        by_verdict = {}
        for key, metric in metrics.items():
            by_verdict.setdefault(metric["verdict"], []).append(metric)

        def listed(verdict_name):
            items = by_verdict.get(verdict_name, [])
            return ", ".join(
                f"{m['label']} ({_fmt(m['a'])} vs {_fmt(m['b'])})"
                for m in items
            ) or "none"

        if len(seeds) > 1:
            rule_text = (
                "beyond its 95% interval in every one of the "
                f"{len(seeds)} seeds, or by the across-seed test"
            )
            unclear_text = "not in every seed"
        else:
            rule_text = "95% interval of the difference excludes 0"
            unclear_text = "interval contains 0"
        lines += [
            f"### {name_a} vs {name_b}",
            "",
            f"- **{name_a} better** ({rule_text}): {listed('better')}.",
            f"- **{name_a} worse**: {listed('worse')}.",
            f"- **No clear difference** ({unclear_text}): "
            f"{len(by_verdict.get('no clear difference', []))} metric(s).",
        ]
        if len(seeds) > 1:
            lines.append(
                "- The first seed's values and interval are in the first "
                "columns below; the mean ± sd, the seed-paired test and the "
                "per-seed count follow."
            )
        untested = [
            m for v, ms in by_verdict.items() if v.startswith("untested")
            for m in ms
        ]
        if untested:
            lines.append(
                f"- **Untested** ({len(untested)}: dataset-level metrics "
                "with no per-item values; `--seeds N` gives their spread "
                "and, from 6 seeds, a test): "
                + ", ".join(m["label"] for m in untested) + "."
            )
        lines += [""]
        header = f"| Metric | {name_a} | {name_b} | Δ [95% CI] over items | "
        rule = "|---|---:|---:|---|"
        if len(seeds) > 1:
            header += (
                f"{name_a} mean ± sd | {name_b} mean ± sd | Δ over seeds | "
                "sign-flip p | Beyond its interval, per seed | "
            )
            rule += "---:|---:|---:|---:|---|"
        header += "Verdict |"
        rule += "---|"
        lines += [header, rule]
        for key, metric in metrics.items():
            arrow = {True: " ↑", False: " ↓", None: ""}[
                metric["higher_is_better"]
            ]
            ci = _ci_text(metric["per_item"]) if metric["per_item"] else "-"
            row = (
                f"| {metric['label']}{arrow} | {_fmt(metric['a'])} | "
                f"{_fmt(metric['b'])} | {ci} | "
            )
            if len(seeds) > 1:
                stats = metric["seed_statistics"]
                test = metric["across_seeds"]
                row += (
                    f"{_fmt(stats[a]['mean'])} ± {_fmt(stats[a]['std'])} | "
                    f"{_fmt(stats[b]['mean'])} ± {_fmt(stats[b]['std'])} | "
                    f"{test['difference']:+.3g} | {test['p_value']:.3g} | "
                    f"{_per_seed_text(metric.get('per_item_by_seed'))} | "
                )
            row += f"{metric['verdict']} |"
            lines.append(row)
        lines.append("")
    lines += [
        "How to read it: Δ is "
        + (
            "the guided model minus its baseline"
        )
        + f". The interval is a paired bootstrap over the test items "
        f"(seed {seeds[0]}, {settings['bootstrap_resamples']} resamples): "
        "it says how sure the ranking is on *these* test images for "
        "*this* training run, not across training runs. "
        + (
            f"Across the {len(seeds)} seeds, the exact sign-flip test "
            "pairs the runs by seed; with fewer than 6 seeds it cannot "
            "reach p < 0.05, so read the mean ± sd. "
            if len(seeds) > 1 else
            "Training-seed variation is not measured in this run "
            "(`--seeds N` adds it). "
        )
        + (
            "'Beyond its interval, per seed' runs the same paired bootstrap "
            "within every seed (its own items) and counts the seeds in "
            "which the difference is beyond the interval. "
            if len(seeds) > 1 else ""
        )
        + (
            "With several seeds a verdict of 'better' needs the "
            "difference beyond its interval in every seed (or a "
            "significant sign-flip test); metrics "
            if len(seeds) > 1 else
            "A verdict of 'better' needs the interval to exclude 0; metrics "
        )
        + "without per-item values (codebook usage/perplexity, masked-word "
        "recall, relation MSE, attribute probes) are tested across seeds "
        "only.",
        "",
    ]
    figures = summary["comparison"]["figures"]
    if "significance.png" in figures:
        lines += [
            f"![Differences with intervals]({figures['significance.png']})",
            "",
        ]
    lines += [_budget_sentence(settings, summary, kinds), ""]
    lines += _setup_table(summary, kinds)
    lines.append("")
    return lines


def report_notes(settings, summary, kinds):
    """The notes of the report (one string per bullet).

    Args:
        settings: dict from `resolve_settings`.
        summary: the summary dict being written (per-system entries,
            `comparison`).
        kinds: the systems that ran, in table order.

    Examples:

    ```python
    summary["notes"] = report_notes(settings, summary, kinds)
    ```
    """
    notes = []
    for kind in kinds:
        spec = MODELS[kind]
        if spec.baseline in kinds:
            twin = MODELS[spec.baseline]
            same = spec.family == "vqgan"
            notes.append(
                f"{spec.label} and {twin.label}: "
                + (
                    f"the `{spec.preset}` preset backbone (identical "
                    "initial weights, see "
                    "training.initial_backbone_abs_sum); only the language "
                    "guidance differs."
                    if same else
                    f"the `{spec.preset}` / `{twin.preset}` ViT; only the "
                    "codebook differs (frozen language-model vocabulary vs "
                    "learned codes)."
                )
            )
    if len(kinds) > 1:
        notes.append(
            f"{'Both' if len(kinds) == 2 else 'All'} models: the same "
            "batches, steps and seed; the VQGAN-family rows the same "
            "learning rate and betas, the same GAN setting (no "
            "discriminator before disc_start) and no LPIPS term (the "
            "`scenes` presets set perceptual_weight 0), see the table "
            "above."
        )
    for kind, reason in summary["comparison"]["skipped"].items():
        notes.append(f"{MODEL_NAMES[kind]} not run: {reason}.")
    notes += list(
        dict.fromkeys(MODELS[k].note for k in kinds if MODELS[k].note)
    )
    own = {
        MODEL_NAMES[k]: summary[k]["training"]["setup"].get("mtp_leak_free")
        for k in kinds if MODELS[k].guided
    }
    leak_free = [n for n, v in own.items() if v]
    faithful = [n for n, v in own.items() if v is False]
    mtp_note = (
        "Probes are trained on each model's frozen codes with the same "
        "budget and seed. The masked-word probe is leak-free (it reads the "
        "text features of the caption with [MASK] in place of the hidden "
        "tokens)."
    )
    if leak_free:
        mtp_note += (
            f" Own MTP head of {', '.join(leak_free)}: leak-free (trained "
            "so), comparable with the probe."
        )
    if faithful:
        mtp_note += (
            f" Own MTP head of {', '.join(faithful)}: faithful (it reads "
            "features of the unmasked caption, which leak the answer), not "
            "comparable with the probe."
        )
    notes += [
        mtp_note,
        "PSNR/SSIM on reconstructions clipped to [-1, 1] (data range 2). "
        "Codebook usage and perplexity over the whole evaluation split.",
        "Attribute linear probes (bag of codes + 2x2-pooled code vectors) "
        "use single-object images for shape/colour/size/fill; the object "
        "count uses all images. The test split contains attribute "
        "combinations held out of training.",
    ]
    if not settings["discriminator"] and settings["disc_start"] is not None:
        notes.append(
            f"No discriminator: the run has {settings['total_steps']} steps, "
            f"fewer than the preset's disc_start={settings['disc_start']}, "
            "so the GAN terms would be multiplied by 0 (pass "
            "--with-discriminator to keep it anyway)."
        )
    notes += downstream_notes(summary, kinds, settings)
    notes += captioning_notes(summary, kinds, settings)
    notes += vqa_notes(summary, kinds, settings)
    notes += text_to_image_notes(summary, kinds, settings)
    reused = summary["comparison"].get("reused", [])
    if reused:
        notes.append(
            "Resumed run: " + ", ".join(reused) + " came from results "
            "stored in this folder by an earlier run with the same "
            "settings (not retrained; their timings are those of that run)."
        )
    from keras_lgvq import visualization

    notes += visualization.unavailable_notes(summary.get(kinds[0], {}))
    if settings["smoke"]:
        notes.append("SMOKE (CI) configuration: the numbers are meaningless.")
    return notes


def write_report(summary, rows, header, artifacts_by_model, settings):
    """The Markdown of `report.md`.

    Args:
        summary: the complete summary dict (as `summary.json`).
        rows: table rows from `keras_lgvq.visualization.comparison_rows`.
        header: the table header (metric, one column per system, chance,
            better).
        artifacts_by_model: dict kind -> artifacts of its first seed
            (`figures.unit_artifacts`), for the retrieval examples.
        settings: dict from `resolve_settings`.

    Returns:
        str: the report.

    Examples:

    ```python
    text = write_report(summary, rows, header, artifacts, settings)
    ```
    """
    from keras_lgvq import visualization

    timing = summary["timing"]
    comparison_figures = summary["comparison"]["figures"]
    kinds = summary["comparison"]["models"]
    best_counts = {k: summary["comparison"][f"{k}_better"] for k in kinds}
    lines = [
        "# " + " vs ".join(MODEL_NAMES[k] for k in kinds)
        + " on the scenes set",
        "",
    ]
    lines += _summary_section(summary, settings, kinds)
    lines += [
        "## All metrics",
        "",
        visualization.markdown_table(rows, header),
        "",
        best_sentence(best_counts)
        + " (higher/lower is better as marked; 'Better' is the larger "
        "number only — see the summary for which differences the test "
        "supports).",
        "",
        "The same metrics as bars (dashed line: chance level or baseline):",
        f"![Metrics]({comparison_figures['metrics.png']})",
        "",
    ]
    if "metrics_seeds.png" in comparison_figures:
        lines += [
            "Mean over seeds with ± sd error bars:",
            f"![Metrics over seeds]({comparison_figures['metrics_seeds.png']})",
            "",
        ]
    lines += downstream_section(summary, kinds, settings)
    lines += captioning_section(summary, kinds)
    lines += vqa_section(summary, kinds)
    if "stage2_examples.png" in comparison_figures:
        lines += [
            "The first test images with their true caption, each system's "
            "caption and, when the VQA task ran, each system's answer to "
            "one question:",
            "",
            f"![Captions and answers]"
            f"({comparison_figures['stage2_examples.png']})",
            "",
        ]
    lines += text_to_image_section(summary, kinds)
    lines += ["## Notes", ""]
    lines += [f"- {n}" if not n.startswith("- ") else n for n in summary[
        "notes"
    ]]
    lines += ["", "## Figures", ""]
    lines += [
        "Training losses per step (Keras's running means, which restart "
        "each epoch):",
        f"![Training curves]({comparison_figures['training_curves.png']})",
        "",
        "Codebook usage of each model (count per code on a log scale, red "
        "ticks = unused codes; one panel per sub-codebook for VQCT; last "
        "panel: counts sorted by rank):",
        f"![Codebook usage]({comparison_figures['codebook_usage.png']})",
        "",
    ]
    for kind, artifacts in artifacts_by_model.items():
        name = MODEL_NAMES[kind]
        figs = summary[kind]["figures"]
        lines.append(f"### {name}")
        lines.append("")
        lines.append(
            f"Reconstructions (odd rows: input, even rows: reconstruction):\n"
            f"![{name} reconstructions]({figs['reconstructions.png']})"
        )
        lines.append("")
        for key, tag, title in visualization.report.RETRIEVAL_SOURCES:
            fig = figs.get(f"retrieval_{tag}.png")
            if fig:
                lines.append(
                    f"{title} (per row: the caption's own image, black frame, "
                    "then the top-5 images; green = correct):\n"
                    f"![{name} {title}]({fig})"
                )
                lines.append("")
                lines.append(
                    visualization.retrieval_markdown(artifacts, key, title)
                )
    lines += ["", "## Timing", "", "| Phase | Wall (s) | CPU (s) |",
              "|---|---:|---:|"]
    for phase, entry in timing.items():
        if isinstance(entry, dict):
            lines.append(f"| {phase} | {entry['wall_s']} | {entry['cpu_s']} |")
    lines += [
        "",
        f"Peak RSS {timing['peak_rss_mb']} MiB. Machine: "
        f"{summary['machine']['cpu_count']} CPUs, load average "
        f"{summary['machine']['load_average']} at start and "
        f"{summary['machine']['load_average_at_end']} at the end (a load "
        "above the CPU count means the machine was shared and wall times "
        "are pessimistic; CPU seconds are the machine-independent cost).",
        "",
    ]
    return "\n".join(lines)




def _percent(entry):
    if not isinstance(entry, dict) or "accuracy" not in entry:
        return "-"
    return f"{entry['accuracy']:.1f}"


def downstream_section(summary, kinds, settings):
    """The LQAE downstream table: per attribute, each LQAE-family row's
    linear-probe accuracy and the LQAE few-shot accuracy, chance beside.

    Args:
        summary: the summary dict (`summary[kind]["downstream"]`).
        kinds: the systems that ran.
        settings: dict from `resolve_settings` (`downstream` protocol).

    Returns:
        list of Markdown lines (empty when no LQAE-family row ran).

    Examples:

    ```python
    lines += downstream_section(summary, ["lqae", "vqae"], settings)
    ```
    """
    from keras_lgvq.comparison.downstream import ATTRIBUTE_LABELS

    rows = [k for k in kinds if "downstream" in summary.get(k, {})]
    if not rows:
        return []
    results = {k: summary[k]["downstream"] for k in rows}
    readers = [k for k in rows if isinstance(results[k]["few_shot"], dict)
               and "skipped" not in results[k]["few_shot"]]
    protocol = settings["downstream"]
    header = ["Attribute"]
    header += [f"{MODEL_NAMES[k]} probe (%)" for k in rows]
    header += ["Probe chance (%)"]
    header += [f"{MODEL_NAMES[k]} few-shot (%)" for k in readers]
    header += ["Few-shot chance (%)"] if readers else []
    lines = [
        "## LQAE downstream",
        "",
        "Linear probe per scene attribute on mean-pooled layer features "
        "(LQAE: every ViT encoder block and every hidden state of the "
        "frozen LM; VQAE: its encoder blocks), trained on the "
        f"{settings['probe_size']} probe-training images for "
        f"{settings['linear_epochs']} epochs and scored on the test images; "
        f"chance is the majority class. Few-shot: {protocol['num_ways']}-way "
        f"{protocol['num_shots']}-shot prompting, {protocol['num_queries']} "
        f"query per class, {protocol['num_episodes']} episode(s) per "
        "attribute, images written as the LM's word pieces; chance is "
        "1 / ways. Shape, colour, size and fill use single-object images, "
        "the object count all images.",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for attribute, label in ATTRIBUTE_LABELS.items():
        probes = [results[k]["linear_probe"].get(attribute) for k in rows]
        shots = [results[k]["few_shot"].get(attribute) for k in readers]
        if all(_percent(p) == "-" for p in probes + shots):
            continue
        chance = next(
            (f"{p['chance']:.1f}" for p in probes if _percent(p) != "-"), "-"
        )
        cells = [label] + [_percent(p) for p in probes] + [chance]
        if readers:
            shot_chance = next(
                (f"{s['chance']:.1f}" for s in shots if _percent(s) != "-"),
                "-",
            )
            cells += [
                _percent(s) if _percent(s) != "-" else (
                    "n/a" if isinstance(s, dict) and "skipped" in s else "-"
                )
                for s in shots
            ] + [shot_chance]
        lines.append("| " + " | ".join(cells) + " |")
    for kind in readers:
        example = results[kind].get("example_text")
        if example:
            lines += [
                "",
                f"{MODEL_NAMES[kind]}'s first test image as text: "
                f"`{example[:300]}`",
            ]
        lm = next(
            (s.get("causal_lm") for s in results[kind]["few_shot"].values()
             if isinstance(s, dict) and s.get("causal_lm")),
            None,
        )
        if lm:
            lines += ["", f"Few-shot language model: {lm}."]
    lines.append("")
    return lines


def downstream_notes(summary, kinds, settings):
    """Notes of the LQAE downstream rows: why a column is missing (no
    SmolLM2, VQAE's codes are not words, too few test images per class).

    Args:
        summary: the summary dict.
        kinds: the systems that ran.
        settings: dict from `resolve_settings`.

    Examples:

    ```python
    notes += downstream_notes(summary, kinds, settings)
    ```
    """
    notes = []
    for kind in kinds:
        result = summary.get(kind, {}).get("downstream")
        if not result:
            continue
        for note in result.get("notes", []):
            notes.append(f"{MODEL_NAMES[kind]} downstream: {note}.")
        # Whole-column skips are in the notes above; these are single
        # attributes without enough test images per class.
        for group in ("linear_probe", "few_shot"):
            entries = result.get(group) or {}
            for attribute, entry in entries.items():
                if isinstance(entry, dict) and "skipped" in entry:
                    notes.append(
                        f"{MODEL_NAMES[kind]} {group.replace('_', ' ')}, "
                        f"{attribute}: not scored ({entry['skipped']})"
                    )
    return notes

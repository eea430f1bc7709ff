"""The comparison's own figures (matplotlib, `pip install keras-lgvq[viz]`).

- `system_figures`: one system's reconstructions, codebook usage and
  retrieval examples, drawn from its stored result (so a resumed run draws
  them without the model);
- `summary_figures`: `significance.png` (every tested difference with its
  interval, coloured by verdict) and, with several seeds,
  `metrics_seeds.png` (seed means with +- sd bars);
- `stage2_examples_figure`: `stage2_examples.png`, the first test images
  with every system's caption and its answer to one question.

The side-by-side figures (`metrics.png`, `training_curves.png`,
`codebook_usage.png`) come from
`keras_lgvq.visualization.write_comparison_figures`.
"""

import numpy as np

from keras_lgvq.comparison.systems import MODEL_NAMES

_VERDICT_COLORS = {
    "better": "tab:green",
    "worse": "tab:red",
    "no clear difference": "0.45",
}
_ARROWS = {True: " ↑", False: " ↓", None: ""}


def unit_artifacts(unit, eval_split):
    """The `evaluate_model` artifacts the report needs, rebuilt from a
    stored result and the (deterministic) evaluation split.

    Args:
        unit: dict from `run_state.load_unit` (`report_artifacts`,
            `reconstructions`).
        eval_split: the evaluation split it was scored on.

    Returns:
        dict with `images`, `reconstructions`, `eval_images`, `histogram`
        (and `sub_codebook_histograms`), and with text `retrieval_rankings`
        and `captions`: what `write_evaluation_figures`, `usage_counts`
        and `retrieval_markdown` read.

    Examples:

    ```python
    artifacts = unit_artifacts(load_unit(out, "lgvq", 0), eval_split)
    ```
    """
    stored = unit["report_artifacts"]
    artifacts = {
        "images": eval_split["images"][: len(unit["reconstructions"])],
        "reconstructions": unit["reconstructions"],
        "eval_images": eval_split["images"],
        "histogram": stored["histogram"],
    }
    if stored.get("sub_codebook_histograms"):
        artifacts["sub_codebook_histograms"] = stored["sub_codebook_histograms"]
    if stored.get("retrieval_rankings") is not None:
        artifacts["retrieval_rankings"] = stored["retrieval_rankings"]
        artifacts["captions"] = eval_split.get("captions")
    return artifacts


def stored_artifacts(artifacts):
    """The part of `evaluate_model` artifacts kept in a unit's result.

    Code counts and retrieval rankings (small); the images come back from
    the evaluation split and the reconstructions from their own file.

    Args:
        artifacts: dict from `evaluate_model(..., return_artifacts=True)`.

    Examples:

    ```python
    unit["report_artifacts"] = stored_artifacts(artifacts)
    ```
    """
    import numpy as np

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return np.asarray(value).tolist()

    out = {"histogram": plain(artifacts["histogram"])}
    if artifacts.get("sub_codebook_histograms"):
        out["sub_codebook_histograms"] = plain(
            artifacts["sub_codebook_histograms"]
        )
    if artifacts.get("retrieval_rankings") is not None:
        out["retrieval_rankings"] = plain(artifacts["retrieval_rankings"])
    return out


def system_figures(directory, artifacts, name):
    """Reconstructions, codebook usage and retrieval examples of a system.

    Args:
        directory: str. Output folder (e.g. `out/<kind>`).
        artifacts: dict from `unit_artifacts`.
        name: str. Display name.

    Returns:
        dict figure name -> file name (relative to `directory`).

    Examples:

    ```python
    system_figures("runs/scenes/lgvq", artifacts, "LG-VQ")
    ```
    """
    from keras_lgvq.visualization import write_evaluation_figures

    return write_evaluation_figures(directory, artifacts, name=name)


def summary_figures(directory, significance, seed_stats, kinds, specs):
    """`significance.png` and, with several seeds, `metrics_seeds.png`.

    Args:
        directory: str. Output folder.
        significance: dict from `pair_tests.significance_tests`.
        seed_stats: dict from `pair_tests.seed_statistics_by_model`.
        kinds: the systems run, in table order.
        specs: dict key -> `MetricSpec` of every tested metric.

    Returns:
        dict figure name -> file name of the figures written.

    Examples:

    ```python
    summary_figures("runs/scenes", pairs, stats, ["lgvq", "vqgan"], specs)
    ```
    """
    import os

    from keras_lgvq import visualization
    from keras_lgvq.visualization.plotting import new_figure
    from keras_lgvq.visualization.plotting import save_figure

    written = {}
    panels = []
    for entry in significance.values():
        a, b = entry["models"]
        for key, metric in entry["metrics"].items():
            test = metric["per_item"] or metric["across_seeds"]
            if test is None:
                continue
            panels.append((a, b, key, metric, test))
    if panels:
        columns = min(4, len(panels))
        rows = -(-len(panels) // columns)
        figure = new_figure(3.0 * columns, 1.25 * rows + 0.5)
        axes = figure.subplots(rows, columns, squeeze=False).reshape(-1)
        for ax, (a, b, key, metric, test) in zip(axes, panels):
            if "ci_low" in test:
                low, high = test["ci_low"], test["ci_high"]
            else:
                # Across seeds: mean difference +- sd of the differences.
                low = test["difference"] - test["difference_std"]
                high = test["difference"] + test["difference_std"]
            color = _VERDICT_COLORS.get(metric["verdict"], "0.45")
            ax.plot([low, high], [0, 0], color=color, linewidth=4)
            ax.plot([test["difference"]], [0], "o", color="black")
            ax.axvline(0.0, color="0.3", linestyle="--", linewidth=1)
            # A zero-width interval at 0 (e.g. both models at chance) gets
            # a unit axis instead of a 1e-9 one.
            span = max(abs(low), abs(high)) * 1.3 or 1.0
            ax.set_xlim(-span, span)
            ax.set_yticks([])
            title = f"{metric['label']}{_ARROWS[specs[key].higher_is_better]}"
            if len(significance) > 1:
                title = f"{MODEL_NAMES[a]}-{MODEL_NAMES[b]}: " + title
            ax.set_title(title, fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
        for ax in axes[len(panels):]:
            ax.axis("off")
        figure.suptitle(
            "Guided minus baseline: 95% bootstrap interval over test items "
            "(metrics without per-item values: mean +- sd of the per-seed "
            "differences); green: better, red: worse, grey: unclear",
            fontsize=9,
        )
        figure.tight_layout()
        save_figure(figure, os.path.join(directory, "significance.png"))
        written["significance.png"] = "significance.png"
    if any(
        stats.get("n", 1) > 1
        for per_model in seed_stats.values()
        for stats in per_model.values()
    ):
        values, errors, labels = {}, {}, {}
        for key, spec in specs.items():
            per_model = {
                MODEL_NAMES[k]: seed_stats[k][key]["mean"]
                for k in kinds if key in seed_stats[k]
            }
            if not per_model:
                continue
            values[key] = per_model
            errors[key] = {
                MODEL_NAMES[k]: seed_stats[k][key]["std"]
                for k in kinds if key in seed_stats[k]
            }
            labels[key] = spec.label + _ARROWS[spec.higher_is_better]
        visualization.plot_metric_bars(
            values,
            errors=errors,
            labels=labels,
            path=os.path.join(directory, "metrics_seeds.png"),
            title="Mean over seeds, error bars +- sd",
        )
        written["metrics_seeds.png"] = "metrics_seeds.png"
    return written


# Test images drawn in `stage2_examples.png`.
STAGE2_EXAMPLE_IMAGES = 4
STAGE2_EXAMPLES_FILE = "stage2_examples.png"


def stage2_examples_figure(directory, summary, kinds, image_size, seed):
    """`stage2_examples.png`: the first test images of the seed, each with
    its true caption, every system's caption and, when the VQA task ran,
    one question with the true answer and every system's answer.

    Drawn from the stored examples of the captioning and VQA results (the
    test images are regenerated: the scenes generator is deterministic per
    seed and split), so a resumed run draws it without any model.

    Args:
        directory: str. Output folder.
        summary: the summary dict (`summary[kind]["captioning"]` /
            `["vqa"]` with their `examples`).
        kinds: the systems run, in table order.
        image_size: int. Side of the captioning rows' test images.
        seed: int. The seed whose results are stored in `summary`.

    Returns:
        `{STAGE2_EXAMPLES_FILE: file name}`, or `{}` when no system has
        captions to show or the stored examples are not the seed's first
        test images.

    Examples:

    ```python
    stage2_examples_figure("runs/all", summary, ["lgvq", "vqgan"], 64, 0)
    ```
    """
    import os

    from keras_lgvq.datasets import scenes
    from keras_lgvq.visualization.caption_figures import (
        systems_answers_figure,
    )

    def examples(kind, task):
        return ((summary.get(kind) or {}).get(task) or {}).get("examples")

    captioned = [k for k in kinds if examples(k, "captioning")]
    if not captioned:
        return {}
    first = examples(captioned[0], "captioning")[:STAGE2_EXAMPLE_IMAGES]
    ids = [str(e["image_id"]) for e in first]
    drawn = list(scenes.generate(len(ids), seed=seed, image_size=image_size,
                                 split="test", holdout=None))
    if [str(e["image_id"]) for e in drawn] != ids:
        return {}
    captions = {}
    for kind in captioned:
        by_id = {str(e["image_id"]): e["image"]
                 for e in examples(kind, "captioning")}
        if all(i in by_id for i in ids):
            captions[MODEL_NAMES[kind]] = [by_id[i] for i in ids]
    answered = [k for k in kinds if examples(k, "vqa")]
    questions = answers = by_system = None
    if answered:
        # The first stored question of each image, as the first VQA row
        # asked it; every row answered the same questions.
        asked = {}
        for e in examples(answered[0], "vqa"):
            asked.setdefault(str(e["question_id"]).split("#")[0], e)
        if all(i in asked for i in ids):
            picked = [asked[i] for i in ids]
            questions = [e["question"] for e in picked]
            answers = [e["answer"] for e in picked]
            by_system = {}
            for kind in answered:
                by_question = {e["question_id"]: e["image"]
                               for e in examples(kind, "vqa")}
                if all(e["question_id"] in by_question for e in picked):
                    by_system[MODEL_NAMES[kind]] = [
                        by_question[e["question_id"]] for e in picked]
    systems_answers_figure(
        np.stack([e["image"] for e in drawn]),
        [e["captions"][0] for e in drawn], captions, questions, answers,
        by_system, path=os.path.join(directory, STAGE2_EXAMPLES_FILE),
        title=f"Test images (seed {seed}): true caption, each system's "
        "caption and answer (green: right, red: wrong)",
    )
    return {STAGE2_EXAMPLES_FILE: STAGE2_EXAMPLES_FILE}

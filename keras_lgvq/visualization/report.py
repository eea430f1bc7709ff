"""The figures and Markdown pieces of an evaluation report.

`write_evaluation_figures` draws one model's figures from the artifacts of
`keras_lgvq.evaluation.evaluate_model(..., return_artifacts=True)`;
`write_comparison_figures` draws the side-by-side figures of several models
(training curves, codebook usage, metric bars); `retrieval_markdown` and
`unavailable_notes` are the text that goes with them.
"""

import os

from keras_lgvq.evaluation.metric_table import METRIC_SPECS
from keras_lgvq.visualization.codebook_usage import plot_codebook_usage
from keras_lgvq.visualization.image_grids import plot_reconstructions
from keras_lgvq.visualization.image_grids import plot_retrieval
from keras_lgvq.visualization.metric_charts import plot_metric_bars
from keras_lgvq.visualization.tables import metric_spec
from keras_lgvq.visualization.tables import table_keys
from keras_lgvq.visualization.training_curves import plot_training_curves

# (artifact key of the image embeddings, figure tag, title)
RETRIEVAL_SOURCES = (
    ("probe_image_embeddings", "probe", "Retrieval with the probe"),
    ("own_image_embeddings", "own", "Retrieval with the own GSA head"),
)


def write_evaluation_figures(directory, artifacts, prefix="", name=None):
    """Reconstructions, codebook usage and retrieval examples of one model.

    Args:
        directory: str. Output folder (created).
        artifacts: dict from `evaluate_model(..., return_artifacts=True)`.
        prefix: str. Prepended to every file name.
        name: str or None. Model name for the figure titles.

    Returns:
        dict figure name -> file name (relative to `directory`):
        `reconstructions.png`, `codebook_usage.png` and, when the model was
        scored on text, `retrieval_probe.png` / `retrieval_own.png`.

    Examples:

    ```python
    results, artifacts = evaluate_model(..., return_artifacts=True)
    write_evaluation_figures("runs/eval", artifacts, name="LG-VQ")
    ```
    """
    os.makedirs(directory, exist_ok=True)
    written = {}
    label = f"{name}: " if name else ""

    def path(figure_name):
        written[figure_name] = prefix + figure_name
        return os.path.join(directory, prefix + figure_name)

    plot_reconstructions(
        artifacts["images"],
        artifacts["reconstructions"],
        path=path("reconstructions.png"),
        title=f"{label}inputs and reconstructions",
    )
    plot_codebook_usage(
        {name or "": usage_counts(artifacts)},
        path=path("codebook_usage.png"),
        title=f"{label}codebook usage on the evaluation images",
    )
    rankings = artifacts.get("retrieval_rankings") or {}
    images = artifacts.get("eval_images")
    if images is not None:
        for key, tag, title in RETRIEVAL_SOURCES:
            if key in rankings:
                plot_retrieval(
                    images,
                    rankings[key]["text_to_image_top5"],
                    captions=artifacts.get("captions"),
                    path=path(f"retrieval_{tag}.png"),
                    title=f"{label}{title.lower()}, text->image top-5",
                )
    return written


def usage_counts(artifacts):
    """The code counts to draw for one model: `{sub-codebook: counts}` for
    a tokenizer with sub-codebooks (VQCT: adjectives and nouns, each in
    its own index range), else the `(K,)` histogram.

    Args:
        artifacts: dict from `evaluate_model(..., return_artifacts=True)`.

    Examples:

    ```python
    plot_codebook_usage({"VQCT": usage_counts(artifacts)})
    ```
    """
    return artifacts.get("sub_codebook_histograms") or artifacts["histogram"]


def metric_chart_values(flat_by_model, names=None):
    """`plot_metric_bars` inputs from flat metrics: values, references, labels.

    Every table metric (`table_keys`) with a value for some model.

    Args:
        flat_by_model: dict `{model name: flat metrics}`.
        names: dict `{model name: display name}` or None.

    Returns:
        `(values, references, labels)` dicts keyed by metric.

    Examples:

    ```python
    values, refs, labels = metric_chart_values({"LG-VQ": a, "VQGAN": b})
    plot_metric_bars(values, references=refs, labels=labels)
    ```
    """
    names = names or {}
    values, references, labels = {}, {}, {}
    for key in table_keys(flat_by_model):
        per_model = {
            names.get(model, model): flat.get(key)
            for model, flat in flat_by_model.items()
        }
        if all(v is None for v in per_model.values()):
            continue
        spec = metric_spec(key, METRIC_SPECS)
        values[key] = per_model
        arrow = {True: " ↑", False: " ↓", None: ""}[spec.higher_is_better]
        labels[key] = spec.label + arrow
        if spec.reference is not None:
            refs = [
                flat.get(spec.reference)
                for flat in flat_by_model.values()
                if flat.get(spec.reference) is not None
            ]
            if refs:
                references[key] = refs[0]
    return values, references, labels


def write_comparison_figures(
    directory, flat_by_model, histories=None, histograms=None, names=None
):
    """Side-by-side figures of several models.

    Args:
        directory: str. Output folder (created).
        flat_by_model: dict `{model: flat metrics}` (`flatten_metrics`).
        histories: dict `{model: {key: values}}` or None. Training logs
            (`plot_training_curves`).
        histograms: dict `{model: (K,) code counts}` (or, for a
            tokenizer with sub-codebooks, `{model: {sub-codebook:
            counts}}`, see `usage_counts`) or None.
        names: dict `{model: display name}` or None.

    Returns:
        dict figure name -> file name: `metrics.png`, and with the inputs
        `training_curves.png`, `codebook_usage.png`.

    Examples:

    ```python
    write_comparison_figures("runs/scenes", {"lgvq": a, "vqgan": b})
    ```
    """
    os.makedirs(directory, exist_ok=True)
    names = names or {}
    written = {}

    def path(figure_name):
        written[figure_name] = figure_name
        return os.path.join(directory, figure_name)

    values, references, labels = metric_chart_values(flat_by_model, names)
    plot_metric_bars(
        values,
        references=references,
        labels=labels,
        path=path("metrics.png"),
        title="Metrics (dashed: chance level / baseline)",
    )
    if histories:
        plot_training_curves(
            {names.get(m, m): h for m, h in histories.items()},
            path=path("training_curves.png"),
            title="Training losses",
        )
    if histograms:
        plot_codebook_usage(
            {names.get(m, m): h for m, h in histograms.items()},
            path=path("codebook_usage.png"),
            title="Codebook usage on the evaluation images",
        )
    return written


def retrieval_markdown(artifacts, key, title, rows=4):
    """Captions of the text->image queries and image->text top-3 lists.

    Args:
        artifacts: dict from `evaluate_model(..., return_artifacts=True)`.
        key: str. `probe_image_embeddings` or `own_image_embeddings`.
        title: str. Heading of the block.
        rows: int. Queries listed.

    Returns:
        Markdown text, or "" when the artifacts have no such ranking.

    Examples:

    ```python
    retrieval_markdown(artifacts, "probe_image_embeddings", "Probe")
    ```
    """
    rankings = (artifacts.get("retrieval_rankings") or {}).get(key)
    captions = artifacts.get("captions")
    if rankings is None or not captions:
        return ""
    lines = [f"**{title}** — text→image queries (rows of the figure):", ""]
    for q, hits in enumerate(rankings["text_to_image_top5"][:rows]):
        mark = "hit@1" if hits[0] == q else (
            "hit@5" if q in hits else "miss"
        )
        lines.append(f"{q + 1}. “{captions[q]}” ({mark})")
    lines += ["", "Image→text, top-3 captions for the first images:", ""]
    for i, hits in enumerate(rankings["image_to_text_top3"][:rows]):
        listed = "; ".join(
            ("**" if h == i else "") + captions[h] + ("**" if h == i else "")
            for h in hits
        )
        lines.append(f"- image {i + 1}: {listed}")
    return "\n".join(lines) + "\n"


def unavailable_notes(results):
    """Lines explaining metrics recorded as unavailable (LPIPS, rFID).

    Examples:

    ```python
    unavailable_notes({"rfid": {"available": False, "reason": "no file"}})
    ```
    """
    notes = []
    for name in ("lpips", "rfid"):
        entry = results.get(name) or {}
        if entry and not entry.get("available", True):
            notes.append(f"- {name.upper()} not computed: {entry['reason']}")
    return notes

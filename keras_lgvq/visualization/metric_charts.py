"""Bar charts of metrics per model, with optional error bars and references."""

import math

import numpy as np

from keras_lgvq.visualization.plotting import new_figure
from keras_lgvq.visualization.plotting import save_figure

REFERENCE_COLOR = (0.35, 0.35, 0.35)


def _finite(value):
    return value is not None and math.isfinite(float(value))


def plot_metric_bars(
    values,
    errors=None,
    references=None,
    labels=None,
    columns=4,
    path=None,
    title=None,
):
    """One small panel per metric (own scale), one bar per model.

    Args:
        values: dict `{metric: {model name: value}}`. A None (or missing)
            value draws no bar and the model's tick reads "n/a".
        errors: dict like `values` or None. Half-widths of error bars
            (e.g. a standard deviation over seeds); None for no error bars.
        references: dict `{metric: value}` or None. Drawn as a dashed
            grey line labelled "reference" (e.g. chance level); say what it
            is in the `title`.
        labels: dict `{metric: str}` or None. Panel titles (default: the
            metric key).
        columns: int. Panels per row.
        path: str or None. Also write the figure there as PNG.
        title: str or None. Figure title.

    Returns:
        `matplotlib.figure.Figure`; the panel of the i-th metric of
        `values` is `figure.axes[i]`, whose `BarContainer` (in
        `.containers`) has one bar per model and `.errorbar` when errors
        were given.

    Examples:

    ```python
    plot_metric_bars(
        {"psnr": {"LG-VQ": 24.1, "VQGAN": 23.8}},
        errors={"psnr": {"LG-VQ": 0.2, "VQGAN": 0.3}},
        labels={"psnr": "PSNR (dB)"}, path="metrics.png")
    ```
    """
    if not isinstance(values, dict) or not values:
        raise ValueError(
            "`values` must be a non-empty dict {metric: {model: value}}."
        )
    errors, references, labels = errors or {}, references or {}, labels or {}
    models = list(dict.fromkeys(m for v in values.values() for m in v))
    columns = max(1, min(int(columns), len(values)))
    rows = math.ceil(len(values) / columns)
    figure = new_figure(
        2.4 * columns, 2.1 * rows + (0.3 if title else 0)
    )
    panels = figure.subplots(rows, columns, squeeze=False).reshape(-1)
    colors = [f"C{i}" for i in range(len(models))]
    for axes, (metric, per_model) in zip(panels, values.items()):
        present = [_finite(per_model.get(m)) for m in models]
        heights = [
            float(per_model[m]) if ok else 0.0
            for m, ok in zip(models, present)
        ]
        yerr = None
        if metric in errors:
            yerr = [
                float(errors[metric][m])
                if ok and _finite(errors[metric].get(m))
                else 0.0
                for m, ok in zip(models, present)
            ]
        bars = axes.bar(
            np.arange(len(models)),
            heights,
            yerr=yerr,
            capsize=3 if yerr is not None else 0,
            color=colors,
        )
        for bar, ok in zip(bars, present):
            bar.set_visible(ok)
        reference = references.get(metric)
        if _finite(reference):
            axes.axhline(
                float(reference),
                linestyle="--",
                linewidth=1,
                color=REFERENCE_COLOR,
                label="reference",
            )
        axes.set_xticks(
            np.arange(len(models)),
            [m if ok else f"{m}\nn/a" for m, ok in zip(models, present)],
            fontsize=7,
        )
        axes.set_title(labels.get(metric, metric), fontsize=8)
        axes.tick_params(axis="y", labelsize=7)
    for axes in panels[len(values) :]:
        axes.set_visible(False)
    if title:
        figure.suptitle(title, fontsize=9)
    if path is not None:
        save_figure(figure, path)
    return figure

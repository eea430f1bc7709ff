"""Codebook-usage histograms: how often each code is chosen."""

import numpy as np

from keras_lgvq.visualization.plotting import new_figure
from keras_lgvq.visualization.plotting import save_figure

BAR_COLOR = (40 / 255, 70 / 255, 160 / 255)
UNUSED_COLOR = (220 / 255, 40 / 255, 40 / 255)


def _as_counts(name, counts):
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any():
        raise ValueError(
            f"`counts` ({name}) must be a non-empty 1-D array of "
            f"non-negative code counts. Received shape {counts.shape}"
        )
    return counts.astype("float64")


def _panels(counts):
    """`{panel label: (K,) counts}`: one panel per model, or per
    sub-codebook of a model given as `{sub-codebook: counts}`."""
    if not isinstance(counts, dict):
        counts = {"": counts}
    if not counts:
        raise ValueError("`counts` must not be an empty dict.")
    panels = {}
    for name, value in counts.items():
        if isinstance(value, dict):
            if not value:
                raise ValueError(
                    f"`counts` ({name}) is an empty dict; give one array of "
                    "counts per sub-codebook."
                )
            for part, part_counts in value.items():
                label = f"{name} / {part}" if name else str(part)
                panels[label] = _as_counts(label, part_counts)
        else:
            panels[name] = _as_counts(name, value)
    return panels


def plot_codebook_usage(counts, path=None, title=None):
    """Per-code counts (log scale) and the sorted rank-frequency curve.

    For each model: a bar per code index (log count axis, so rare codes stay
    visible) with the unused codes marked by red ticks under the axis. A
    last panel overlays the counts of every model sorted in decreasing
    order, which compares codebook collapse at a glance. A tokenizer with
    sub-codebooks (VQCT: adjectives and nouns, each indexed locally) is
    given as `{sub-codebook name: counts}` and gets one panel per
    sub-codebook, labelled "model / sub-codebook".

    Args:
        counts: 1-D array `(K,)` of code counts, or a dict
            `{model name: (K,) counts or {sub-codebook name: counts}}`.
        path: str or None. Also write the figure there as PNG.
        title: str or None. Figure title.

    Returns:
        `matplotlib.figure.Figure`; `figure.axes[i]` is panel `i`'s
        per-code plot (one bar patch per used code, in index order; one
        panel per model or per sub-codebook) and `figure.axes[-1]` the
        sorted panel (one line per panel).

    Examples:

    ```python
    plot_codebook_usage({"LG-VQ": hist_a, "VQGAN": hist_b}, path="usage.png")
    plot_codebook_usage(
        {"VQCT": {"adjective": adj_counts, "noun": noun_counts}})
    ```
    """
    counts = _panels(counts)
    figure = new_figure(7, 1.8 * (len(counts) + 1) + (0.3 if title else 0))
    panels = figure.subplots(len(counts) + 1, 1, squeeze=False)[:, 0]
    for axes, (name, c) in zip(panels, counts.items()):
        index = np.arange(len(c))
        used = c > 0
        axes.bar(index[used], c[used], width=1.0, color=BAR_COLOR)
        unused = index[~used]
        if len(unused):
            # Ticks just below the axis: unused codes have no bar on a log
            # axis, and must not look like missing data.
            axes.plot(
                unused,
                np.zeros(len(unused)),
                linestyle="none",
                marker="|",
                markersize=6,
                color=UNUSED_COLOR,
                transform=axes.get_xaxis_transform(),
                clip_on=False,
                label=f"unused ({len(unused)})",
            )
            axes.legend(loc="upper right", fontsize=7, frameon=False)
        axes.set_yscale("log")
        axes.set_xlim(-0.5, len(c) - 0.5)
        axes.set_ylabel("count", fontsize=8)
        used_pct = 100.0 * used.mean()
        label = f"{name}: " if name else ""
        axes.set_title(
            f"{label}{int(used.sum())} of {len(c)} codes used "
            f"({used_pct:.1f}%)",
            fontsize=8,
        )
        axes.tick_params(labelsize=7)
    panels[-2].set_xlabel("code index", fontsize=8)
    sorted_axes = panels[-1]
    for name, c in counts.items():
        ranked = np.sort(c)[::-1]
        sorted_axes.plot(
            np.arange(1, len(c) + 1), ranked, label=name or None
        )
    sorted_axes.set_yscale("log")
    sorted_axes.set_xlabel("code rank (most used first)", fontsize=8)
    sorted_axes.set_ylabel("count", fontsize=8)
    sorted_axes.tick_params(labelsize=7)
    if len(counts) > 1:
        sorted_axes.legend(fontsize=7, frameon=False)
    if title:
        figure.suptitle(title, fontsize=9)
    if path is not None:
        save_figure(figure, path)
    return figure

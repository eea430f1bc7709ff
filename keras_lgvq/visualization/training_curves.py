"""Training curves: logged losses against training steps, one line per model."""

import math

import numpy as np

from keras_lgvq.visualization.plotting import new_figure
from keras_lgvq.visualization.plotting import save_figure


def _series(name, key, values):
    """`(steps, values)` from a list of values or a `{"step", key}` log."""
    if isinstance(values, dict):
        if "steps" not in values or "values" not in values:
            raise ValueError(
                f"History `{name}`/`{key}` must be a list of values or a "
                "dict with 'steps' and 'values'."
            )
        steps = np.asarray(values["steps"], "float64")
        values = np.asarray(values["values"], "float64")
    else:
        values = np.asarray(values, "float64")
        steps = np.arange(1, len(values) + 1, dtype="float64")
    if values.ndim != 1 or steps.shape != values.shape:
        raise ValueError(
            f"History `{name}`/`{key}`: steps and values must be 1-D and of "
            f"equal length. Received {steps.shape} and {values.shape}"
        )
    return steps, values


def plot_training_curves(
    histories, keys=None, columns=3, x_label="step", path=None, title=None
):
    """One panel per logged quantity, one line per model.

    Args:
        histories: dict `{model name: {key: values}}`, where `values` is a
            list (one value per epoch or step; x = 1, 2, ...) or a dict
            `{"steps": [...], "values": [...]}`, e.g. a Keras
            `History.history` or a per-step log.
        keys: list of str or None. Quantities to draw (default: every key
            of any model, in first-seen order).
        columns: int. Panels per row.
        x_label: str. Label of the x axis.
        path: str or None. Also write the figure there as PNG.
        title: str or None. Figure title.

    Returns:
        `matplotlib.figure.Figure`; the panel of key `keys[i]` is
        `figure.axes[i]`, titled with the key, with one line per model
        that logged it (label = model name).

    Examples:

    ```python
    plot_training_curves(
        {"LG-VQ": lgvq_history.history, "VQGAN": vqgan_history.history},
        keys=["loss", "rec_loss"], path="training_curves.png")
    ```
    """
    if not isinstance(histories, dict) or not histories:
        raise ValueError(
            "`histories` must be a non-empty dict {model name: {key: "
            f"values}}. Received: {type(histories).__name__}"
        )
    if keys is None:
        keys = list(
            dict.fromkeys(k for history in histories.values() for k in history)
        )
    keys = list(keys)
    if not keys:
        raise ValueError("`histories` logged nothing to plot.")
    columns = max(1, min(int(columns), len(keys)))
    rows = math.ceil(len(keys) / columns)
    figure = new_figure(3.2 * columns, 2.4 * rows + (0.3 if title else 0))
    panels = figure.subplots(rows, columns, squeeze=False).reshape(-1)
    for axes, key in zip(panels, keys):
        for name, history in histories.items():
            if key not in history:
                continue
            steps, values = _series(name, key, history[key])
            axes.plot(
                steps,
                values,
                marker="o" if len(values) < 20 else None,
                markersize=3,
                label=name,
            )
        axes.set_title(key, fontsize=8)
        axes.set_xlabel(x_label, fontsize=8)
        axes.tick_params(labelsize=7)
        if axes.lines:
            axes.legend(fontsize=7, frameon=False)
    for axes in panels[len(keys) :]:
        axes.set_visible(False)
    if title:
        figure.suptitle(title, fontsize=9)
    if path is not None:
        save_figure(figure, path)
    return figure

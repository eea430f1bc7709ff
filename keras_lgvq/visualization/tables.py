"""Metric tables (plain text and Markdown) driven by the flat metric keys.

`comparison_rows` makes one row per metric key found in the models' flat
metrics (`keras_lgvq.evaluation.flatten_metrics`), in their order. Labels,
the better direction and the reference column come from
`keras_lgvq.evaluation.METRIC_SPECS`; a key without a spec still gets a row
(labelled with the key, not ranked), so no metric vanishes from a report
because its name changed.
"""

import math

from keras_lgvq.evaluation.metric_table import METRIC_SPECS
from keras_lgvq.evaluation.metric_table import REFERENCE_KEYS
from keras_lgvq.evaluation.metric_table import MetricSpec


def format_value(value):
    """A metric value as table text: "n/a" for None, else 3-4 digits.

    Examples:

    ```python
    format_value(23.456)  # "23.46"
    ```
    """
    if value is None:
        return "n/a"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100 or value == int(value):
        return f"{value:.1f}"
    if abs(value) < 0.1:
        return f"{value:.4f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def metric_spec(key, specs=None):
    """The `MetricSpec` of a flat key; unknown keys get a plain spec.

    Args:
        key: str. A flat metric key.
        specs: dict or None. Defaults to `METRIC_SPECS`.

    Returns:
        `MetricSpec` (label = the key and not ranked when unknown).

    Examples:

    ```python
    metric_spec("psnr").label  # "PSNR (dB)"
    ```
    """
    specs = METRIC_SPECS if specs is None else specs
    return specs.get(key) or MetricSpec(key, None, None)


def table_keys(flat_by_model, references=REFERENCE_KEYS):
    """The metric keys of the table: every key any model has, in order.

    Reference keys (chance levels, baselines) are columns, not rows.

    Examples:

    ```python
    table_keys({"lgvq": flat_a, "vqgan": flat_b})
    ```
    """
    references = set(references)
    keys = dict.fromkeys(k for flat in flat_by_model.values() for k in flat)
    return [k for k in keys if k not in references]


def comparison_rows(flat_by_model, names=None, specs=None):
    """Rows `(label, value per model..., reference, better)` of the table.

    One row per metric key of the flat dicts (`table_keys`), skipping a
    metric no model has a value for. `reference` is what an uninformed
    model scores (retrieval chance `K / N`, the majority-token baseline of
    the masked-word protocol, the majority class of an attribute), or ""
    when none applies. `better` names the model with the better value,
    "tie" when equal as displayed, or "-" when only one model has the
    metric or the metric is not ranked.

    Args:
        flat_by_model: dict `{model name: flat metrics}`.
        names: tuple of model names (columns), default all in order.
        specs: dict or None. Defaults to `METRIC_SPECS`.

    Returns:
        list of tuples of str.

    Examples:

    ```python
    rows = comparison_rows({"lgvq": flat_a, "vqgan": flat_b})
    print(text_table(rows, ("Metric", "LG-VQ", "VQGAN", "Chance", "Better")))
    ```
    """
    names = tuple(flat_by_model) if names is None else tuple(names)
    rows = []
    for key in table_keys({n: flat_by_model[n] for n in names}):
        spec = metric_spec(key, specs)
        values = [flat_by_model[n].get(key) for n in names]
        if all(v is None for v in values):
            continue
        reference = ""
        if spec.reference is not None:
            refs = [flat_by_model[n].get(spec.reference) for n in names]
            refs = [r for r in refs if r is not None]
            reference = format_value(refs[0]) if refs else ""
        better = "-"
        present = [(v, n) for v, n in zip(values, names) if v is not None]
        higher = spec.higher_is_better
        if higher is not None and len(present) == len(names) > 1:
            best = max(present) if higher else min(present)
            # Equal as displayed counts as a tie (no false precision).
            ties = [
                n for v, n in present
                if format_value(v) == format_value(best[0])
            ]
            better = "tie" if len(ties) > 1 else best[1]
        arrow = {True: " ↑", False: " ↓", None: ""}[higher]
        rows.append(
            (f"{spec.label}{arrow}",)
            + tuple(map(format_value, values))
            + (reference, better)
        )
    return rows


def text_table(rows, header):
    """A fixed-width text table (first column left-aligned).

    Examples:

    ```python
    print(text_table([("PSNR", "24.1")], ("Metric", "LG-VQ")))
    ```
    """
    widths = [
        max(len(str(r[i])) for r in [header] + list(rows))
        for i in range(len(header))
    ]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row):
        return "| " + " | ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths))
        ) + " |"

    body = [fmt(r) for r in rows]
    return "\n".join([line, fmt(header), line] + body + [line])


def markdown_table(rows, header):
    """A Markdown table: numbers right-aligned, the last column centred.

    Examples:

    ```python
    markdown_table([("PSNR", "24.1", "lgvq")], ("Metric", "LG-VQ", "Better"))
    ```
    """
    out = ["| " + " | ".join(header) + " |"]
    out.append(
        "|"
        + "|".join(["---"] + ["---:"] * (len(header) - 2) + [":---:"])
        + "|"
    )
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)

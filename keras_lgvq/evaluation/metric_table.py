"""The headline metrics of an evaluation as a flat table, and how to show them.

`flatten_metrics` turns the nested dict of `evaluate_model` into one flat
`{key: value}` row per model. `METRIC_SPECS` says, for every key it emits,
the label a report prints, whether higher is better, and which key holds the
matching chance level or baseline. The report's rows are driven by the keys
of the flat dict (`keras_lgvq.visualization.comparison_rows`), so a metric
renamed here still appears in the report (with its raw key when it has no
spec) instead of silently vanishing.
"""

import collections

from keras_lgvq.datasets.scenes import ATTRIBUTES

MetricSpec = collections.namedtuple(
    "MetricSpec", ["label", "higher_is_better", "reference"]
)
MetricSpec.__doc__ = """How a report shows one flat metric.

Fields:
    label: str. Row label (without the direction arrow).
    higher_is_better: bool or None. None: not ranked.
    reference: str or None. Flat key of what an uninformed model scores.
"""

_RETRIEVAL_DIRECTIONS = (("i2t", "Image->text"), ("t2i", "Text->image"))
_SOURCES = (
    ("probe", "probe", "probe"),
    ("own", "own GSA head", "own MTP head"),
)
# Sub-codebooks with labelled rows (VQCT's). A tokenizer with other
# sub-codebooks still gets rows for them, labelled with the raw key.
SUB_CODEBOOK_LABELS = {"adjective": "adjectives", "noun": "nouns"}
_ATTRIBUTE_LABELS = {
    "shape": "shape",
    "color": "color",
    "size": "size",
    "fill": "fill",
    "num_objects": "object count",
}


def _metric_specs():
    specs = {
        "psnr": MetricSpec("PSNR (dB)", True, None),
        "ssim": MetricSpec("SSIM", True, None),
        "lpips": MetricSpec("LPIPS", False, None),
        "rfid": MetricSpec("rFID", False, None),
        "codebook_usage_pct": MetricSpec("Codebook usage (%)", True, None),
        "codebook_perplexity": MetricSpec("Codebook perplexity", True, None),
    }
    for part, label in SUB_CODEBOOK_LABELS.items():
        specs[f"codebook_usage_pct_{part}"] = MetricSpec(
            f"Codebook usage, {label} (%)", True, None
        )
        specs[f"codebook_perplexity_{part}"] = MetricSpec(
            f"Codebook perplexity, {label}", True, None
        )
    for source, gsa_name, _ in _SOURCES:
        for tag, direction in _RETRIEVAL_DIRECTIONS:
            for k in (1, 5, 10):
                specs[f"retrieval_{tag}_R@{k}_{source}"] = MetricSpec(
                    f"{direction} R@{k} ({gsa_name})",
                    True,
                    f"chance_retrieval_R@{k}"
                    if tag == "i2t"
                    else f"chance_retrieval_t2i_R@{k}",
                )
    for source, _, mtp_name in _SOURCES:
        for k in (1, 3):
            specs[f"mask{k}_recall_{source}"] = MetricSpec(
                f"Masked-word R@1, Mask-{k} ({mtp_name})",
                True,
                f"baseline_mask{k}",
            )
    specs["relation_mse_probe"] = MetricSpec(
        "Code-word relation MSE (probe match)", False, None
    )
    specs["relation_mse_own"] = MetricSpec(
        "Code-word relation MSE (own RAS head)", False, None
    )
    for name in ATTRIBUTES + ("num_objects",):
        specs[f"attr_{name}_acc"] = MetricSpec(
            f"Linear probe: {_ATTRIBUTE_LABELS[name]} acc (%)",
            True,
            f"chance_attr_{name}",
        )
    return specs


# Every metric key `flatten_metrics` emits, in table order.
METRIC_SPECS = _metric_specs()
# Keys holding chance levels / baselines: a column of the table, not rows.
REFERENCE_KEYS = tuple(
    dict.fromkeys(
        spec.reference for spec in METRIC_SPECS.values() if spec.reference
    )
)


def flatten_metrics(results):
    """The headline numbers of `evaluate_model` as a flat `{name: value}`.

    Emits every key of `METRIC_SPECS` (in that order) and then every key of
    `REFERENCE_KEYS`; a metric that does not apply to the model is None
    (e.g. the per-sub-codebook usage of a tokenizer with one codebook). A
    sub-codebook other than VQCT's adjective / noun adds its own
    `codebook_usage_pct_<name>` and `codebook_perplexity_<name>` keys.

    Args:
        results: dict from `evaluate_model`.

    Returns:
        An ordered dict of floats (or None when not applicable), used by
        the side-by-side tables of the recipes.

    Examples:

    ```python
    keras_lgvq.evaluation.flatten_metrics(results)["psnr"]
    ```
    """
    flat = {
        "psnr": results.get("psnr"),
        "ssim": results.get("ssim"),
    }
    for name in ("lpips", "rfid"):
        entry = results.get(name) or {}
        flat[name] = entry.get("value") if entry.get("available") else None
    flat["codebook_usage_pct"] = (
        100.0 * results["codebook_usage"]
        if results.get("codebook_usage") is not None
        else None
    )
    flat["codebook_perplexity"] = results.get("codebook_perplexity")
    # Per sub-codebook (VQCT): None for a tokenizer with one codebook.
    parts = results.get("sub_codebooks") or {}
    for part in list(SUB_CODEBOOK_LABELS) + [
        p for p in parts if p not in SUB_CODEBOOK_LABELS
    ]:
        entry = parts.get(part)
        flat[f"codebook_usage_pct_{part}"] = (
            100.0 * entry["usage"] if entry else None
        )
        flat[f"codebook_perplexity_{part}"] = (
            entry["perplexity"] if entry else None
        )
    own_heads = results.get("own_heads") or {}
    for source, prefix in (
        (results.get("retrieval_probe"), "probe"),
        (own_heads.get("retrieval"), "own"),
    ):
        for direction, tag in (
            ("image_to_text", "i2t"),
            ("text_to_image", "t2i"),
        ):
            for k in (1, 5, 10):
                value = None
                if source:
                    value = source[direction][f"R@{k}"]
                flat[f"retrieval_{tag}_R@{k}_{prefix}"] = value
    for source, prefix in (
        (results.get("masked_word_probe"), "probe"),
        (own_heads.get("masked_word"), "own"),
    ):
        for k in (1, 3):
            entry = (source or {}).get(f"mask{k}")
            flat[f"mask{k}_recall_{prefix}"] = (
                entry["recall_at_1"] if entry else None
            )
    flat["relation_mse_probe"] = (results.get("relation_mse_probe") or {}).get(
        "all"
    )
    flat["relation_mse_own"] = (own_heads.get("relation_mse") or {}).get("all")
    probes = results.get("attribute_probe") or {}
    for name in ATTRIBUTES + ("num_objects",):
        flat[f"attr_{name}_acc"] = probes.get(name)
    # References: what a model with no information scores.
    # Image->text under `chance_retrieval_R@K`, text->image beside it:
    # they differ once repeated captions are one target.
    n = results.get("num_eval_images")
    exact = results.get("retrieval_chance") or {}
    for key, tag in (("", "i2t"), ("t2i_", "t2i")):
        for k in (1, 5, 10):
            plain = min(100.0, 100.0 * k / n) if n else None
            value = (exact.get(tag) or {}).get(k)
            if value is None:  # a JSON round trip makes the keys strings
                value = (exact.get(tag) or {}).get(str(k), plain)
            flat[f"chance_retrieval_{key}R@{k}"] = value
    for k in (1, 3):
        entry = (results.get("masked_word_probe") or {}).get(f"mask{k}")
        flat[f"baseline_mask{k}"] = (
            entry.get("majority_token_baseline") if entry else None
        )
    chance = probes.get("chance_majority") or {}
    for name in ATTRIBUTES + ("num_objects",):
        flat[f"chance_attr_{name}"] = chance.get(name)
    return flat

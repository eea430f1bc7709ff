"""The LQAE rows' own downstream numbers (lqae-spec §3, issue 14).

For the LQAE row,
`keras_lgvq.evaluation.lqae_downstream.lqae_downstream_scenes`: a linear
probe per scene attribute over the mean-pooled encoder blocks and frozen-LM
hidden states (trained on the probe-training images, tested on the
evaluation images), and N-way K-shot classification by prompting the
local SmolLM2 with (image-as-text, label) pairs drawn from the evaluation
images. For the VQAE row (the same ViT with a learned codebook and no
LM) the same linear probe over its encoder blocks; few-shot prompting does
not apply (its codes are not word pieces a language model can read).

Every number is an accuracy in percent with its chance level beside it
(the majority class of the test labels for the probe, 1 / ways for
few-shot), flattened by `downstream_metrics` into keys of
`DOWNSTREAM_SPECS` (`lqae_probe_<attribute>`, `few_shot_<attribute>`)
that the report and the seed / pair tests read like the other metrics.

Without the SmolLM2 asset the few-shot columns are left out with a
`UserWarning` naming the fetch command
(`python -m keras_lgvq.language_models.smollm2_assets`), and the row gets
a note saying so; nothing crashes. Without probe-training images
(`--probe-size 0`) both parts are left out with that reason.
"""

import warnings

import numpy as np

from keras_lgvq.evaluation.metric_table import MetricSpec

# Attribute -> label in the report (as the attribute probes of the table).
ATTRIBUTE_LABELS = {
    "shape": "shape",
    "color": "color",
    "size": "size",
    "fill": "fill",
    "num_objects": "object count",
}


def _specs():
    specs = {}
    for attribute, label in ATTRIBUTE_LABELS.items():
        specs[f"lqae_probe_{attribute}"] = MetricSpec(
            f"Layer-feature probe (LQAE protocol): {label} acc (%)",
            True,
            f"lqae_probe_{attribute}_chance",
        )
    for attribute, label in ATTRIBUTE_LABELS.items():
        specs[f"few_shot_{attribute}"] = MetricSpec(
            f"Few-shot prompting (images as text): {label} acc (%)",
            True,
            f"few_shot_{attribute}_chance",
        )
    return specs


# Flat downstream keys -> how the report shows them (their `reference` is
# the chance key stored beside each value).
DOWNSTREAM_SPECS = _specs()

SMOLLM2_MISSING = (
    "SmolLM2, the local causal LM of the LQAE few-shot evaluation, is not "
    "fetched, so the few-shot columns are left out; run `{command}` to add "
    "them"
)
NOT_WORDS = (
    "few-shot prompting does not apply: VQAE's learned codes are not word "
    "pieces a language model can read"
)


def has_downstream(kind):
    """Whether row `kind` gets the LQAE downstream evaluations.

    Args:
        kind: str. A `MODELS` key.

    Examples:

    ```python
    has_downstream("lqae"), has_downstream("lgvq")   # True, False
    ```
    """
    from keras_lgvq.comparison.systems import MODELS

    return MODELS[kind].family == "lqae"


def few_shot_language_model(source="smollm2"):
    """The causal LM of the few-shot column, or `(None, reason)`.

    Args:
        source: str. A `load_causal_lm` source; for the built-in
            "smollm2" a missing asset gives a `UserWarning` (with the fetch
            command) and no LM instead of an error.

    Returns:
        `(causal_lm, None)` or `(None, reason)`.

    Examples:

    ```python
    lm, reason = few_shot_language_model()
    ```
    """
    from keras_lgvq.language_models import load_causal_lm
    from keras_lgvq.language_models import smollm2_assets

    if source == "smollm2" and not smollm2_assets.is_available():
        reason = SMOLLM2_MISSING.format(command=smollm2_assets.fetch_command())
        warnings.warn(reason + ".", UserWarning, stacklevel=2)
        return None, reason
    return load_causal_lm(source), None


def _rows(split, attribute):
    """Images of `split` that carry `attribute` (single-object scenes for
    shape / colour / size / fill, every scene for the count), as
    `scene_classes` selects them."""
    count = np.asarray(split["num_objects"])
    if attribute == "num_objects":
        return np.ones(len(count), bool)
    return count == 1


def _encoder_probe(backbone, train_split, test_split, attributes, epochs,
                   seed):
    """The linear probe of `lqae_downstream_scenes` for a tokenizer without
    a language model (VQAE): its encoder blocks only."""
    from keras_lgvq.evaluation.few_shot_prompting import scene_classes
    from keras_lgvq.evaluation.lqae_linear_probe import lqae_probe_features
    from keras_lgvq.metrics.linear_probe import linear_probe_accuracy

    train = lqae_probe_features(backbone, train_split["images"], "encoder")
    test = lqae_probe_features(backbone, test_split["images"], "encoder")
    probe = {
        "layers": train["layer_names"],
        "feature_dim": int(train["features"].shape[1]),
    }
    for attribute in attributes:
        _, train_labels, names = scene_classes(train_split, attribute)
        _, test_labels, _ = scene_classes(test_split, attribute)
        accuracy = linear_probe_accuracy(
            train["features"][_rows(train_split, attribute)],
            train_labels,
            test["features"][_rows(test_split, attribute)],
            test_labels,
            len(names),
            epochs=epochs,
            seed=seed,
        )
        chance = 100.0 * np.bincount(test_labels).max() / len(test_labels)
        probe[attribute] = {"accuracy": float(accuracy),
                            "chance": float(chance)}
    return probe


def run_downstream(model, probe_split, eval_split, settings, seed,
                   causal_lm=None, lm_reason=None):
    """LQAE downstream evaluations of one trained LQAE-family row.

    Args:
        model: the trained `LQAE` trainer (LQAE or VQAE preset).
        probe_split: the probe-training split (with attributes) or None.
        eval_split: the evaluation split (with attributes).
        settings: dict from `resolve_settings` (`downstream`,
            `linear_epochs`).
        seed: int. Seed of the probes and the episodes.
        causal_lm: the few-shot `CausalLM` or None.
        lm_reason: str or None. Why `causal_lm` is None (recorded).

    Returns:
        JSON-ready dict: `linear_probe` (per attribute `accuracy` and
        `chance` in %, `layers`, `feature_dim`; or `skipped`), `few_shot`
        (per attribute the `few_shot_classification` result or
        `skipped`; or `skipped` for the whole column), `protocol`,
        `example_text` (LQAE) and `notes`.

    Examples:

    ```python
    lm, reason = few_shot_language_model()
    result = run_downstream(model, probe_split, eval_split, settings, 0,
                            causal_lm=lm, lm_reason=reason)
    ```
    """
    from keras_lgvq.evaluation.lqae_downstream import lqae_downstream_scenes

    budget = settings["downstream"]
    attributes = tuple(budget["attributes"])
    protocol = {
        k: budget[k]
        for k in ("num_ways", "num_shots", "num_queries", "num_episodes")
    }
    backbone = model.backbone
    has_lm = getattr(backbone, "language_model", None) is not None
    result = {"protocol": dict(protocol), "notes": []}
    if probe_split is None:
        # Both parts are left out together: the probe has nothing to train
        # on, and few-shot alone would be a different column set per run.
        reason = (
            "needs probe-training images with attributes (--probe-size > 0)"
        )
        result["linear_probe"] = {"skipped": reason}
        result["few_shot"] = {"skipped": reason}
        result["notes"].append(f"not evaluated: {reason}")
        return result
    if not has_lm:
        result["linear_probe"] = _encoder_probe(
            backbone, probe_split, eval_split, attributes,
            settings["linear_epochs"], seed,
        )
        result["few_shot"] = {"skipped": NOT_WORDS}
        result["notes"].append(NOT_WORDS)
        return result
    if causal_lm is None:
        result["notes"].append(lm_reason or "no causal LM given")
    out = lqae_downstream_scenes(
        backbone,
        probe_split,
        eval_split,
        attributes=attributes,
        probe_layers="all",
        probe_epochs=settings["linear_epochs"],
        causal_lm=causal_lm,
        few_shot=protocol,
        seed=seed,
    )
    result["linear_probe"] = out["linear_probe"]
    result["few_shot"] = (
        out["few_shot"] if causal_lm is not None else {"skipped": lm_reason}
    )
    result["example_text"] = out["example_text"]
    return result


def downstream_metrics(result):
    """Flat `{key: value}` of a `run_downstream` result.

    Args:
        result: dict from `run_downstream`.

    Returns:
        dict with, per attribute that has a number, `lqae_probe_<a>` and
        `lqae_probe_<a>_chance`, `few_shot_<a>` and `few_shot_<a>_chance`
        (all in %).

    Examples:

    ```python
    downstream_metrics(result)["lqae_probe_shape"]   # e.g. 41.7
    ```
    """
    flat = {}
    for group, prefix in (("linear_probe", "lqae_probe"),
                          ("few_shot", "few_shot")):
        entries = result.get(group) or {}
        for attribute in ATTRIBUTE_LABELS:
            entry = entries.get(attribute)
            if isinstance(entry, dict) and "accuracy" in entry:
                flat[f"{prefix}_{attribute}"] = float(entry["accuracy"])
                flat[f"{prefix}_{attribute}_chance"] = float(entry["chance"])
    return flat

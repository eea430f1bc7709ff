"""LQAE's downstream evaluations on the scenes set, in one call.

The parts live in their own modules:

- `lqae_linear_probe`: mean-pooled encoder / LM layer features and the
  linear probe (lqae-spec §3, without the official dropped token);
- `images_as_text`: token ids -> word-piece strings of the LM vocabulary;
- `few_shot_prompting`: N-way K-shot classification by prompting a causal
  LM with (image-as-text, label) pairs.

`lqae_downstream_scenes` runs both evaluations on scenes splits for the
attributes recorded with each image and returns a JSON-ready dict (the row
of the comparison). Few-shot prompting uses a local causal LM (SmolLM2 by
default), a stand-in for the paper's GPT-3, and says so in the result.
"""

import numpy as np

from keras_lgvq.evaluation.few_shot_prompting import episodes_feasible
from keras_lgvq.evaluation.few_shot_prompting import few_shot_classification
from keras_lgvq.evaluation.few_shot_prompting import scene_classes
from keras_lgvq.evaluation.images_as_text import token_ids_to_text
from keras_lgvq.evaluation.lqae_linear_probe import lqae_probe_features
from keras_lgvq.metrics.linear_probe import linear_probe_accuracy


def _single_object_rows(split, attribute):
    count = np.asarray(split["num_objects"])
    if attribute == "num_objects":
        return np.ones(len(count), bool)
    return count == 1


def lqae_downstream_scenes(
    backbone,
    train_split,
    test_split,
    attributes=("shape", "color", "size", "fill", "num_objects"),
    probe_layers="all",
    probe_epochs=200,
    causal_lm="smollm2",
    few_shot=None,
    text_mode="tokens",
    batch_size=32,
    seed=0,
):
    """Linear probes and few-shot prompting of an LQAE tokenizer on scenes.

    Args:
        backbone: an LQAE tokenizer (`keras_lgvq.models.LQAEBackbone`)
            with its language model.
        train_split, test_split: dicts from `prepare_split` on scenes
            datasets made with `include_attributes=True`. The probe trains
            on `train_split`; few-shot episodes are drawn from
            `test_split`.
        attributes: scene attributes to classify (see
            `few_shot_prompting.SCENE_ATTRIBUTES`).
        probe_layers: layer selection of the probe features (see
            `lqae_linear_probe.select_layers`).
        probe_epochs: int. Full-batch epochs of each linear probe.
        causal_lm: a `CausalLM`, a `load_causal_lm` source, or None to skip
            few-shot prompting.
        few_shot: dict or None. Arguments of `few_shot_classification`
            (`num_ways`, `num_shots`, `num_queries`, `num_episodes`,
            `repeats`, `task_induction`, ...); defaults to 2-way 1-shot,
            1 query per class, 20 episodes.
        text_mode: `"tokens"` or `"decode"` (how images become text).
        batch_size: int. Images per forward pass.
        seed: int. Seed of the probes and the episodes.

    Returns:
        A dict with `linear_probe` (per attribute: `accuracy`, `chance`;
        plus `layers`, `feature_dim`), `few_shot` (per attribute: the
        result of `few_shot_classification`, or the reason it was skipped)
        and `example_text` (the first test image as text).

    Examples:

    ```python
    result = lqae_downstream_scenes(backbone, train_split, test_split,
                                    attributes=("shape", "color"))
    ```
    """
    few_shot = dict(
        {"num_ways": 2, "num_shots": 1, "num_queries": 1, "num_episodes": 20},
        **(few_shot or {}),
    )
    train = lqae_probe_features(
        backbone, train_split["images"], probe_layers, batch_size
    )
    test = lqae_probe_features(
        backbone, test_split["images"], probe_layers, batch_size
    )
    probe = {
        "layers": train["layer_names"],
        "feature_dim": int(train["features"].shape[1]),
    }
    texts = token_ids_to_text(
        test["token_ids"], backbone.language_model, mode=text_mode
    )
    lm = None
    if causal_lm is not None:
        from keras_lgvq.evaluation.few_shot_prompting import resolve_causal_lm

        lm = resolve_causal_lm(causal_lm)
    shots = {}
    for attribute in attributes:
        _, train_labels, names = scene_classes(train_split, attribute)
        _, test_labels, _ = scene_classes(test_split, attribute)
        train_rows = _single_object_rows(train_split, attribute)
        test_rows = _single_object_rows(test_split, attribute)
        accuracy = linear_probe_accuracy(
            train["features"][train_rows],
            train_labels,
            test["features"][test_rows],
            test_labels,
            len(names),
            epochs=probe_epochs,
            seed=seed,
        )
        chance = 100.0 * np.bincount(test_labels).max() / len(test_labels)
        probe[attribute] = {"accuracy": accuracy, "chance": float(chance)}
        if lm is None:
            continue
        reason = episodes_feasible(
            test_labels,
            few_shot["num_ways"],
            few_shot["num_shots"],
            few_shot["num_queries"],
        )
        if reason:
            # Too few classes / examples in this split for the protocol:
            # record why instead of dropping the attribute silently.
            shots[attribute] = {"skipped": reason}
            continue
        test_texts = [t for t, keep in zip(texts, test_rows) if keep]
        shots[attribute] = few_shot_classification(
            test_texts, test_labels, names, causal_lm=lm, seed=seed,
            **few_shot,
        )
    return {
        "linear_probe": probe,
        "few_shot": shots,
        "text_mode": text_mode,
        "example_text": texts[0] if texts else "",
    }

"""Linear probes of the scenes' object attributes on frozen codes.

Shape, colour, size and fill are read from single-object images (with
several objects "the" attribute is undefined); the object count from every
image. Each accuracy comes with the majority-class accuracy of the test
labels, what a probe that learned nothing scores.
"""

import numpy as np

from keras_lgvq.datasets import scenes
from keras_lgvq.evaluation.probe_training import DEFAULT_PROBE_CONFIG
from keras_lgvq.metrics import code_features
from keras_lgvq.metrics import linear_probe_accuracy
from keras_lgvq.utils.code_layout import flatten_code_ids


def attribute_probes(train_codes, train_split, test_codes, test_split,
                     num_embeddings, config=None, seed=0,
                     sub_codebooks=None):
    """Linear-probe accuracy (%) of scene attributes from frozen codes.

    Features: `keras_lgvq.metrics.code_features` (bag of codes plus code
    vectors mean-pooled on a `linear_grid` x `linear_grid` partition).
    Shape, colour, size and fill are probed on single-object images (with
    several objects the attribute of "the" object is undefined); the object
    count on every image.

    Args:
        train_codes: dict from `run_tokenizer` for the probe-training split.
        train_split: dict from `prepare_split` with attributes.
        test_codes: dict from `run_tokenizer` for the evaluation split.
        test_split: dict from `prepare_split` with attributes.
        num_embeddings: int. Codebook size K (all sub-codebooks together
            when there are several).
        config: dict or None. Overrides of `DEFAULT_PROBE_CONFIG`.
        seed: int. Seed of the probes.
        sub_codebooks: None, or the tokenizer's `sub_codebooks` (VQCT):
            the indices then carry a trailing slot axis, and the bag of
            codes counts every slot under its flattened id
            (`keras_lgvq.utils.code_layout`).

    Returns:
        dict attribute -> accuracy in %, plus `chance` and image counts.

    Examples:

    ```python
    keras_lgvq.evaluation.attribute_probes(tr, tr_split, te, te_split, 256)
    ```
    """
    config = {**DEFAULT_PROBE_CONFIG, **(config or {})}
    if "num_objects" not in train_split or "num_objects" not in test_split:
        raise ValueError(
            "Attribute probes need `num_objects` and the attribute arrays "
            "(`make_dataset(..., include_attributes=True)`)."
        )

    def features(codes):
        indices = codes["indices"]
        if sub_codebooks is not None:
            indices = flatten_code_ids(indices, sub_codebooks)
        return code_features(
            indices=indices,
            num_embeddings=num_embeddings,
            codes=codes["quantized"],
            grid=min(config["linear_grid"], codes["indices"].shape[1]),
        )

    f_train, f_test = features(train_codes), features(test_codes)
    single_train = train_split["num_objects"] == 1
    single_test = test_split["num_objects"] == 1
    classes = {
        "shape": len(scenes.SHAPES),
        "color": len(scenes.COLORS),
        "size": len(scenes.SIZES),
        "fill": len(scenes.FILLS),
    }
    kwargs = dict(
        epochs=int(config["linear_epochs"]),
        learning_rate=float(config["linear_learning_rate"]),
        seed=seed,
        jit_compile=config["jit_compile"],
    )
    results, chance = {}, {}
    for name, k in classes.items():
        if single_train.sum() < 2 or single_test.sum() < 1:
            results[name] = None
            continue
        results[name] = linear_probe_accuracy(
            f_train[single_train],
            train_split[name][single_train, 0],
            f_test[single_test],
            test_split[name][single_test, 0],
            num_classes=k,
            **kwargs,
        )
        labels = test_split[name][single_test, 0]
        chance[name] = float(100.0 * np.bincount(labels).max() / len(labels))
    count_train = train_split["num_objects"] - 1
    count_test = test_split["num_objects"] - 1
    results["num_objects"] = linear_probe_accuracy(
        f_train, count_train, f_test, count_test,
        num_classes=scenes.MAX_OBJECTS, **kwargs,
    )
    chance["num_objects"] = float(
        100.0 * np.bincount(count_test).max() / len(count_test)
    )
    results["chance_majority"] = chance
    results["train_images_single_object"] = int(single_train.sum())
    results["test_images_single_object"] = int(single_test.sum())
    results["feature_dim"] = int(f_train.shape[1])
    return results

"""LQAE's linear probe over mean-pooled encoder and language-model layers.

As the official `linear_main.py` (lqae-spec §3): the features of an image
are the outputs of the ViT encoder's blocks and the frozen LM's hidden
states (embedding output + every layer), each mean-pooled over the tokens,
concatenated over the selected layers; a linear classifier is trained on
them. Two differences, both deliberate:

- the mean is over **all** tokens: the official code pools `x[:, 1:]`,
  dropping token 0 although this ViT has no CLS token;
- the probe is the package's `keras_lgvq.metrics.linear_probe_accuracy`
  (standardised features, one Dense layer, Adam), not LayerNorm + Dense
  with LARS (whose weight decay also shrank the "frozen" backbone).
"""

import numpy as np

from keras_lgvq.metrics.linear_probe import linear_probe_accuracy
from keras_lgvq.utils.tensors import to_numpy
from keras_lgvq.utils.validation import check_int

LAYER_GROUPS = ("encoder", "lm")
_GROUP_KEYS = {"encoder": "encoder_layer_outputs", "lm": "lm_layer_outputs"}


def _parse_layer(spec):
    """`"lm:-1"` / `("lm", -1)` -> ("lm", -1)."""
    if isinstance(spec, str):
        group, sep, index = spec.partition(":")
        if not sep:
            raise ValueError(
                f"Layer {spec!r} must be written 'group:index' (e.g. "
                "'encoder:-1', 'lm:0')."
            )
        try:
            index = int(index)
        except ValueError:
            raise ValueError(
                f"Layer {spec!r}: the index after ':' must be an integer."
            ) from None
    elif isinstance(spec, (tuple, list)) and len(spec) == 2:
        group, index = spec
    else:
        raise ValueError(
            f"Each layer must be 'group:index' or (group, index); received "
            f"{spec!r}."
        )
    if group not in LAYER_GROUPS:
        raise ValueError(
            f"Layer group {group!r} must be one of {LAYER_GROUPS}."
        )
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"Layer index {index!r} must be an integer.")
    return group, int(index)


def select_layers(num_encoder_layers, num_lm_layers, layers="all"):
    """Resolve a layer selection into `("encoder" | "lm", index)` pairs.

    Args:
        num_encoder_layers: int >= 0. Encoder block outputs available.
        num_lm_layers: int >= 0. LM hidden states available (embedding
            output + one per layer; 0 without an LM).
        layers: `"all"` (every encoder block, then every LM hidden state:
            the official `all`), `"encoder"` (`all_encoder`), `"lm"`
            (`all_bert`), or a list of `"group:index"` strings /
            `(group, index)` pairs, indices counted from the end when
            negative (`"lm:-1"` is the LM's last layer, `"lm:0"` its
            embedding output).

    Returns:
        A list of `(group, non-negative index)` pairs, in order.

    Examples:

    ```python
    select_layers(12, 13, ["encoder:-1", "lm:-1"])
    # [("encoder", 11), ("lm", 12)]
    ```
    """
    counts = {
        "encoder": check_int("num_encoder_layers", num_encoder_layers, low=0),
        "lm": check_int("num_lm_layers", num_lm_layers, low=0),
    }
    if isinstance(layers, str):
        if layers == "all":
            groups = LAYER_GROUPS
        elif layers in LAYER_GROUPS:
            groups = (layers,)
        else:
            raise ValueError(
                "`layers` must be 'all', 'encoder', 'lm' or a list of "
                f"'group:index' entries; received {layers!r}."
            )
        out = [(g, i) for g in groups for i in range(counts[g])]
    else:
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ValueError(
                "`layers` must be 'all', 'encoder', 'lm' or a non-empty list"
                f" of 'group:index' entries; received {layers!r}."
            )
        out = []
        for spec in layers:
            group, index = _parse_layer(spec)
            count = counts[group]
            resolved = index + count if index < 0 else index
            if not 0 <= resolved < count:
                raise ValueError(
                    f"Layer {spec!r} is out of range: the {group} has "
                    f"{count} layer outputs (indices -{count}..{count - 1})."
                )
            out.append((group, resolved))
        if len(set(out)) != len(out):
            raise ValueError(f"`layers` selects a layer twice: {layers!r}.")
    if not out:
        raise ValueError(
            f"`layers`={layers!r} selects nothing: {counts['encoder']} "
            f"encoder and {counts['lm']} LM layer outputs are available."
        )
    return out


def layer_names(selection):
    """Names of selected layers, e.g. `["encoder_11", "lm_0"]`."""
    return [f"{group}_{index}" for group, index in selection]


def pooled_layer_features(representations, layers="all"):
    """Mean-pool the selected layer outputs over all tokens and concatenate.

    Args:
        representations: dict with `"encoder_layer_outputs"` and / or
            `"lm_layer_outputs"`: lists of `(B, L, D)` or `(B, h, w, D)`
            arrays (e.g. `LQAEBackbone.image_representations(images)`).
        layers: see `select_layers`.

    Returns:
        `(features, names)`: float32 numpy `(B, sum of D)` and the layer
        names in concatenation order.

    Examples:

    ```python
    reps = backbone.image_representations(images)
    feats, names = pooled_layer_features(reps, ["encoder:-1", "lm:-1"])
    ```
    """
    if not isinstance(representations, dict):
        raise ValueError(
            "`representations` must be a dict with 'encoder_layer_outputs' "
            "and / or 'lm_layer_outputs' lists; received "
            f"{type(representations).__name__}."
        )
    lists = {
        g: list(representations.get(key) or [])
        for g, key in _GROUP_KEYS.items()
    }
    selection = select_layers(len(lists["encoder"]), len(lists["lm"]), layers)
    blocks = []
    for group, index in selection:
        x = to_numpy(lists[group][index])
        if x.ndim < 3:
            raise ValueError(
                f"{_GROUP_KEYS[group]}[{index}] must be (B, tokens..., D); "
                f"received shape {x.shape}."
            )
        # Every token counts: no CLS token to drop (unlike the official
        # `x[:, 1:]`).
        axes = tuple(range(1, x.ndim - 1))
        blocks.append(x.astype("float64").mean(axis=axes))
    return np.concatenate(blocks, axis=1).astype("float32"), layer_names(
        selection
    )


def _check_images(images):
    images = np.asarray(to_numpy(images), dtype="float32")
    if images.ndim != 4 or not len(images):
        raise ValueError(
            "`images` must be a non-empty (N, H, W, C) batch; received "
            f"shape {images.shape}."
        )
    return images


def lqae_probe_features(backbone, images, layers="all", batch_size=32):
    """Probe features of images from an LQAE tokenizer (no masking).

    Args:
        backbone: exposes `image_representations(images)` returning
            `encoder_layer_outputs` and (with an LM) `lm_layer_outputs`
            (`keras_lgvq.models.LQAEBackbone`).
        images: float `(N, H, W, C)` in the backbone's input range.
        layers: see `select_layers`.
        batch_size: int. Images per forward pass.

    Returns:
        dict with `features` (float32 `(N, F)`), `layer_names` and
        `token_ids` (int32 `(N, g, g)`).

    Examples:

    ```python
    out = lqae_probe_features(backbone, images, layers="lm")
    ```
    """
    if not hasattr(backbone, "image_representations"):
        raise ValueError(
            "`backbone` must expose `image_representations(images)` (e.g. "
            "keras_lgvq.models.LQAEBackbone); received "
            f"{type(backbone).__name__}."
        )
    check_int("batch_size", batch_size, low=1)
    images = _check_images(images)
    features, ids, names = [], [], None
    for start in range(0, len(images), batch_size):
        reps = backbone.image_representations(images[start : start + batch_size])
        block, names = pooled_layer_features(reps, layers)
        features.append(block)
        if "indices" in reps:
            ids.append(to_numpy(reps["indices"]).astype("int32"))
    out = {"features": np.concatenate(features), "layer_names": names}
    if ids:
        out["token_ids"] = np.concatenate(ids)
    return out


def lm_probe_features(language_model, token_ids, layers="lm", batch_size=32):
    """LM-layer probe features of token ids (any tokenizer in its vocabulary).

    Runs the frozen `MaskedLanguageModel` on the raw word-piece embeddings of
    `token_ids` (what LQAE's quantizer forwards), unmasked, and mean-pools
    the selected hidden states over all tokens.

    Args:
        language_model: a `MaskedLanguageModel`.
        token_ids: int array `(N, L)` or `(N, h, w)` (read row-major).
        layers: `"lm"` or `"all"` (the same here), or a list of `"lm:i"`.
        batch_size: int. Rows per forward pass.

    Returns:
        `(features, names)` as `pooled_layer_features`.

    Examples:

    ```python
    feats, names = lm_probe_features(lm, backbone.encode(images), ["lm:-1"])
    ```
    """
    check_int("batch_size", batch_size, low=1)
    ids = to_numpy(token_ids)
    if ids.ndim not in (2, 3) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            "`token_ids` must be an int (N, L) or (N, h, w) array; received "
            f"shape {ids.shape}, dtype {ids.dtype}."
        )
    ids = ids.reshape(len(ids), -1).astype("int32")
    if ids.size and (ids.min() < 0 or ids.max() >= language_model.vocabulary_size):
        raise ValueError(
            f"`token_ids` must lie in [0, {language_model.vocabulary_size}); "
            f"received [{ids.min()}, {ids.max()}]."
        )
    features, names = [], None
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        out = language_model(language_model.embed_tokens(chunk))
        block, names = pooled_layer_features(
            {"lm_layer_outputs": out["layer_outputs"]},
            "lm" if layers == "all" else layers,
        )
        features.append(block)
    return np.concatenate(features), names


def lqae_linear_probe(
    backbone,
    train_images,
    train_labels,
    test_images,
    test_labels,
    num_classes=None,
    layers="all",
    batch_size=32,
    epochs=200,
    learning_rate=1e-2,
    weight_decay=0.0,
    seed=0,
):
    """Linear-probe accuracy (%) on LQAE's pooled encoder / LM features.

    Args:
        backbone: an LQAE tokenizer (see `lqae_probe_features`).
        train_images, test_images: float `(N, H, W, C)` in its input range.
        train_labels, test_labels: int `(N,)` class ids (-1 = unlabelled,
            dropped).
        num_classes: int or None. Classes; `max(label) + 1` if None.
        layers: see `select_layers`.
        batch_size: int. Images per forward pass.
        epochs, learning_rate, weight_decay, seed: the probe's settings
            (`keras_lgvq.metrics.linear_probe_accuracy`, full batch).

    Returns:
        dict: `accuracy` (%), `chance` (majority-class accuracy on the test
        labels, %), `layers` (names), `feature_dim`, `num_train`,
        `num_test`.

    Examples:

    ```python
    result = lqae_linear_probe(backbone, x_tr, y_tr, x_te, y_te,
                               layers=["encoder:-1", "lm:-1"])
    ```
    """
    train_labels = np.asarray(to_numpy(train_labels)).astype("int64")
    test_labels = np.asarray(to_numpy(test_labels)).astype("int64")
    for name, labels, images in (
        ("train", train_labels, train_images),
        ("test", test_labels, test_images),
    ):
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"`{name}_labels` must be (N,) with one label per image "
                f"({len(images)}); received shape {labels.shape}."
            )
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    check_int("num_classes", num_classes, low=2)
    train = lqae_probe_features(backbone, train_images, layers, batch_size)
    test = lqae_probe_features(backbone, test_images, layers, batch_size)
    accuracy = linear_probe_accuracy(
        train["features"],
        train_labels,
        test["features"],
        test_labels,
        num_classes,
        epochs=epochs,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        seed=seed,
    )
    labelled = test_labels[test_labels >= 0]
    chance = (
        100.0 * np.bincount(labelled).max() / len(labelled)
        if len(labelled)
        else float("nan")
    )
    return {
        "accuracy": float(accuracy),
        "chance": float(chance),
        "layers": train["layer_names"],
        "feature_dim": int(train["features"].shape[1]),
        "num_train": int((train_labels >= 0).sum()),
        "num_test": int(len(labelled)),
    }

"""Evaluation for class-style captions: repeated captions, classes, zero-shot.

When many images share one caption ("a photo of a cat"), the plain
retrieval protocol (image `i` owns caption row `i`) is meaningless: the
identical rows of other images tie with the right one, ties count against
the model, and image->text R@1 is 0 for every model. Here:

- `caption_groups`: one id per distinct caption (identical token rows, or
  identical strings), shared by the images that repeat it;
- `grouped_retrieval`: image->text ranks the *distinct* captions (a hit when
  the image's own caption is in the top K), text->image queries each
  distinct caption once (a hit when any image carrying it is in the top K);
  with `labels`, `class_level` also counts a hit on any caption / image of
  the image's class. Ties still count against the model (pessimistic), so
  a collapsed embedding never scores above chance;
- `zero_shot_classify`: images against one text embedding per class (the
  mean of several templates' normalised embeddings when given, as CLIP
  does), accuracy against the labels;
- `class_prompt_features`: the prior's sentence features of per-class
  prompts, each distinct prompt encoded once.

`keras_lgvq.evaluation.evaluate_model` uses them for the model's own head
(LG-VQ's GSA embedding) and for the equal-budget alignment probe.
"""

import warnings

import numpy as np

from keras_lgvq.utils.tensors import to_numpy

DEFAULT_TEMPLATES = ("a photo of a {}.",)


def _normalise(name, emb):
    emb = np.asarray(to_numpy(emb), np.float64)
    if emb.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (N, E). Received shape {emb.shape}."
        )
    if not np.all(np.isfinite(emb)):
        raise ValueError(f"`{name}` contains NaN or inf values.")
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def caption_groups(token_ids=None, padding_mask=None, captions=None):
    """One int id per distinct caption; images repeating it share the id.

    Identity is by token row (`token_ids` with `padding_mask`: what the
    model and the text prior see) when given, else by caption string.

    Args:
        token_ids: int array `(N, L)` or None.
        padding_mask: bool array `(N, L)` or None.
        captions: list of N str or None.

    Returns:
        `(groups, first)`: int64 `(N,)` ids in `[0, U)` numbered by first
        appearance, and int64 `(U,)` the first row of each distinct caption.

    Examples:

    ```python
    caption_groups(captions=["a cat", "a dog", "a cat"])
    # (array([0, 1, 0]), array([0, 1]))
    ```
    """
    if token_ids is not None:
        keys = np.asarray(token_ids).astype("int64")
        if keys.ndim != 2:
            raise ValueError(
                f"`token_ids` must be (N, L). Received {keys.shape}."
            )
        if padding_mask is not None:
            keys = np.concatenate(
                [keys, np.asarray(padding_mask).astype("int64")], axis=1
            )
        _, first, inverse = np.unique(
            keys, axis=0, return_index=True, return_inverse=True
        )
    elif captions is not None:
        values = np.asarray([str(c) for c in captions], dtype=object)
        _, first, inverse = np.unique(
            values.astype(str), return_index=True, return_inverse=True
        )
    else:
        raise ValueError("Pass `token_ids` (and `padding_mask`) or `captions`.")
    inverse = np.reshape(inverse, (-1,))
    # Renumber by first appearance so ids follow the split's order.
    order = np.argsort(first, kind="stable")
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    return renumber[inverse].astype(np.int64), first[order].astype(np.int64)


def retrieval_chance(groups, ks=(1, 5, 10)):
    """Expected recall (%) of a model that ranks at random, per direction.

    Image->text ranks the distinct captions, so a random ranking finds the
    own caption in the top K with probability `K / D` (D distinct
    captions). Text->image queries each distinct caption once and counts a
    hit when any of its `c` images is in the top K of N, probability
    `1 - C(N - c, K) / C(N, K)`, averaged over the distinct captions. With
    no repeated caption both are `K / N`.

    Args:
        groups: int array `(N,)`, one caption-group id per image
            (`caption_groups`).
        ks: iterable of int. Cut-offs.

    Returns:
        Dict `{"i2t": {K: %}, "t2i": {K: %}}`.

    Examples:

    ```python
    retrieval_chance(np.array([0, 0, 1, 2]), ks=(1,))
    # {"i2t": {1: 33.3...}, "t2i": {1: 33.3...}}
    ```
    """
    groups = np.asarray(groups).reshape(-1)
    n = groups.size
    if n == 0:
        raise ValueError("`groups` must hold at least one image id.")
    _, sizes = np.unique(groups, return_counts=True)
    chance = {"i2t": {}, "t2i": {}}
    for k in ks:
        k = int(k)
        chance["i2t"][k] = 100.0 * min(1.0, k / sizes.size)
        # P(no image of the group among K random draws without replacement).
        steps = np.arange(min(k, n))
        miss = np.array(
            [np.prod(np.clip((n - c - steps) / (n - steps), 0.0, 1.0))
             for c in sizes]
        )
        chance["t2i"][k] = 100.0 * float(np.mean(1.0 - miss))
    return chance


def _ranks(queries, candidates, relevant_fn, chunk_size=1024):
    """Rank of the best relevant candidate per query, ties pessimistic."""
    ranks = []
    for start in range(0, len(queries), chunk_size):
        rows = np.arange(start, min(start + chunk_size, len(queries)))
        scores = queries[rows] @ candidates.T
        relevant = relevant_fn(rows)
        has = relevant.any(axis=1)
        best = np.where(relevant, scores, -np.inf).max(axis=1)
        ahead = np.sum((~relevant) & (scores >= best[:, None]), axis=1)
        ranks.append((ahead + 1)[has])
    return np.concatenate(ranks) if ranks else np.zeros((0,), np.int64)


def _recalls(ranks, ks):
    if ranks.size == 0:
        raise ValueError("No query has a relevant target: no recall.")
    return {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}


def grouped_retrieval(
    image_emb, text_emb, groups, labels=None, ks=(1, 5, 10), warn=True
):
    """Recall@K (%) both ways with identical captions as one target.

    Args:
        image_emb: float array `(N, E)`, image `i` described by caption `i`.
        text_emb: float array `(N, E)`, the sentence feature of caption `i`.
        groups: int array `(N,)` from `caption_groups`.
        labels: int array `(N,)` of class labels, or None.
        ks: tuple of ints.
        warn: bool. Warn when captions repeat.

    Returns:
        `{"image_to_text": {"R@1": ..}, "text_to_image": {..},
        "captions": {"total", "distinct", "repeated", "targets"}}` plus
        `class_level` (same two blocks, a hit on any caption / image of the
        same class) with `labels`.

    Examples:

    ```python
    groups, _ = caption_groups(captions=split["captions"])
    grouped_retrieval(emb, split["sentence_feature"], groups)
    ```
    """
    images = _normalise("image_emb", image_emb)
    texts = _normalise("text_emb", text_emb)
    groups = np.asarray(groups).astype(np.int64).reshape(-1)
    n = len(images)
    if texts.shape != images.shape or groups.shape != (n,):
        raise ValueError(
            "`image_emb`, `text_emb` and `groups` must describe the same N "
            f"images. Received {images.shape}, {texts.shape}, {groups.shape}."
        )
    ks = tuple(int(k) for k in ks)
    distinct = int(groups.max()) + 1 if n else 0
    first = np.full(distinct, -1, np.int64)
    first[groups[::-1]] = np.arange(n)[::-1]
    if (first < 0).any():
        raise ValueError("`groups` must number the captions 0..U-1.")
    targets = texts[first]
    repeated = n - distinct
    if repeated and warn:
        warnings.warn(
            f"{repeated} of {n} evaluation captions repeat another image's "
            f"caption ({distinct} distinct): retrieval scores each distinct "
            "caption once (a hit is the image's own caption string; "
            "text->image queries each distinct caption, and any image "
            "carrying it is right). Plain per-row retrieval would count the "
            "identical rows against every model.",
            stacklevel=2,
        )
    out = {
        "image_to_text": _recalls(
            _ranks(
                images, targets,
                lambda r: groups[r][:, None] == np.arange(distinct)[None, :],
            ),
            ks,
        ),
        "text_to_image": _recalls(
            _ranks(
                targets, images,
                lambda r: r[:, None] == groups[None, :],
            ),
            ks,
        ),
        "captions": {
            "total": n,
            "distinct": distinct,
            "repeated": repeated,
            "targets": "distinct captions" if repeated else "one per image",
        },
    }
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"`labels` must be {n} int class labels. Received "
                f"{labels.dtype} {labels.shape}."
            )
        classes, label_ids = np.unique(labels, return_inverse=True)
        label_ids = label_ids.reshape(-1)
        # A caption belongs to every class of the images that carry it.
        has_class = np.zeros((distinct, len(classes)), bool)
        has_class[groups, label_ids] = True
        out["class_level"] = {
            "image_to_text": _recalls(
                _ranks(images, targets, lambda r: has_class[:, label_ids[r]].T),
                ks,
            ),
            "text_to_image": _recalls(
                _ranks(targets, images, lambda r: has_class[r][:, label_ids]),
                ks,
            ),
            "num_classes": int(len(classes)),
        }
    return out


def zero_shot_classify(image_emb, class_text_emb, labels=None):
    """Classify images by their most similar class text embedding.

    Args:
        image_emb: float array `(N, E)`.
        class_text_emb: float array `(C, E)`, or `(C, T, E)` for T templates
            per class: each template's embedding is L2-normalised and the
            class embedding is their mean, normalised again (CLIP's prompt
            ensembling).
        labels: int array `(N,)` in `[0, C)` or None.

    Returns:
        `{"predictions": (N,) int64, "scores": (N, C)}` plus, with labels,
        `accuracy` (%), `per_class_accuracy` (% per class, None for a class
        with no image), `chance` (% of the majority class) and
        `num_classes`.

    Examples:

    ```python
    out = zero_shot_classify(image_emb, prompt_features, labels)
    out["accuracy"]
    ```
    """
    classes = np.asarray(to_numpy(class_text_emb), np.float64)
    if classes.ndim == 3:
        flat = _normalise("class_text_emb", classes.reshape(-1, classes.shape[-1]))
        classes = flat.reshape(classes.shape).mean(axis=1)
    elif classes.ndim != 2:
        raise ValueError(
            "`class_text_emb` must be (C, E) or (C, T, E). Received "
            f"{classes.shape}."
        )
    classes = _normalise("class_text_emb", classes)
    images = _normalise("image_emb", image_emb)
    if images.shape[1] != classes.shape[1]:
        raise ValueError(
            "`image_emb` and `class_text_emb` must share the embedding size. "
            f"Received {images.shape} and {classes.shape}."
        )
    scores = images @ classes.T
    predictions = np.argmax(scores, axis=1).astype(np.int64)
    out = {"predictions": predictions, "scores": scores}
    if labels is None:
        return out
    labels = np.asarray(labels).reshape(-1)
    count = classes.shape[0]
    if (
        labels.shape != (len(images),)
        or not np.issubdtype(labels.dtype, np.integer)
        or labels.min() < 0
        or labels.max() >= count
    ):
        raise ValueError(
            f"`labels` must be {len(images)} ints in [0, {count}) (one class "
            f"text per label). Received {labels.dtype} {labels.shape}."
        )
    correct = predictions == labels
    out["accuracy"] = float(100.0 * correct.mean())
    out["per_class_accuracy"] = [
        float(100.0 * correct[labels == c].mean()) if (labels == c).any()
        else None
        for c in range(count)
    ]
    out["chance"] = float(100.0 * np.bincount(labels, minlength=count).max()
                          / len(labels))
    out["num_classes"] = int(count)
    return out


def class_prompts(class_names, templates=DEFAULT_TEMPLATES):
    """Prompts `(C, T)` from class names and `{}` templates.

    Args:
        class_names: list of str, index = class label.
        templates: sequence of str, each with one `{}`.

    Examples:

    ```python
    class_prompts(["cat", "dog"], ["a photo of a {}.", "a {}."])
    ```
    """
    if isinstance(class_names, str) or not class_names:
        raise ValueError(
            "`class_names` must be a non-empty list of str (index = label)."
        )
    if isinstance(templates, str) or not templates:
        raise ValueError(
            "`templates` must be a non-empty list of str with one '{}'."
        )
    for template in templates:
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(
                f"Each template must be a str with one '{{}}'. Received "
                f"{template!r}."
            )
    for index, name in enumerate(class_names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(
                f"`class_names`[{index}] must be a non-empty str. Received "
                f"{name!r}."
            )
    return [[t.format(name) for t in templates] for name in class_names]


def class_prompt_features(text_prior, prompts, caption_cache=None):
    """Sentence features `(C, T, E)` of per-class prompts, each encoded once.

    Args:
        text_prior: the text prior of the split's sentence features.
        prompts: list of C lists of T str (`class_prompts`).
        caption_cache: `CaptionFeatureCache` or None (a new one is used).

    Examples:

    ```python
    feats = class_prompt_features(prior, class_prompts(["cat", "dog"]))
    ```
    """
    from keras_lgvq.text_priors.caption_feature_cache import (
        CaptionFeatureCache,
    )

    if not prompts or any(
        isinstance(p, str) or not p or len(p) != len(prompts[0])
        for p in prompts
    ):
        raise ValueError(
            "`prompts` must be a list of C lists of T str (the same T per "
            "class); see `class_prompts`."
        )
    cache = caption_cache or CaptionFeatureCache(text_prior)
    flat = [p for row in prompts for p in row]
    sentence = cache.features(flat)["sentence_feature"]
    return sentence.reshape(len(prompts), len(prompts[0]), -1)

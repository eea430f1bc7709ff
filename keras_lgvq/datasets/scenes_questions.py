"""CLEVR-style questions with exact answers for the procedural scenes.

Questions are built from the attributes `keras_lgvq.datasets.scenes`
records for every image (colour, shape, size, count, existence, spatial
relation); every reference is unambiguous in its image. Everything is
deterministic per `(seed, split)`: images come from `scenes.generate` and
question choices from `numpy.random.Generator(PCG64)` seeded by
`(seed, crc32(split), index)`.

Question types and answers:

- `color`:    "what color is the <shape>?" (the only object of that shape)
  -> a colour;
- `shape`:    "what shape is the <color> object?" (the only one of that
  colour) -> a shape;
- `size`:     "what size is the <color> <shape>?" -> small / medium / large;
- `count`:    "how many objects are there?" or "how many <color> objects
  are there?" -> zero / one / two / three;
- `exist`:    "is there a(n) <color> <shape>?" -> yes / no (half each);
- `relation`: "what shape is <relation> the <color> <shape>?" (exactly one
  object stands in that relation) -> a shape.

Balance (`balance=True`): within each type every answer is kept equally
often (as often as the type's rarest answer; yes / no by construction), so
a blind model that always answers the most frequent answer of a type gets
chance accuracy for that type.

Held-out split: `split="holdout"` draws test images without restriction and
keeps only the questions about an object that matches a held-out
combination (`scenes.DEFAULT_HOLDOUT` by default); the training split is
drawn with those combinations excluded. This module imports numpy only.
"""

import zlib

import numpy as np

from keras_lgvq.datasets import scenes

QUESTION_TYPES = ("color", "shape", "size", "count", "exist", "relation")
NUMBER_WORDS = ("zero", "one", "two", "three")


def _rng(seed, split, index):
    return np.random.Generator(
        np.random.PCG64([int(seed), zlib.crc32(split.encode()), int(index)])
    )


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _relation_of(objects, relations, a, b):
    """Recorded relation of object `a` with respect to object `b`."""
    for rel in relations:
        if rel["subject"] == a and rel["object"] == b:
            return rel["relation"]
        if rel["subject"] == b and rel["object"] == a:
            return scenes.INVERSE_RELATION[rel["relation"]]
    raise ValueError(f"no recorded relation between objects {a} and {b}")


def _candidates(example, rng):
    """All unambiguous questions about one scene: dicts with `question`,
    `answer`, `type` and `objects` (indices of the objects referred to)."""
    objects, relations = example["objects"], example["relations"]
    out = []

    def add(kind, question, answer, refs):
        out.append({"type": kind, "question": question, "answer": answer,
                    "objects": tuple(refs)})

    shapes = [o["shape"] for o in objects]
    colors = [o["color"] for o in objects]
    for i, obj in enumerate(objects):
        if shapes.count(obj["shape"]) == 1:
            add("color", f"what color is the {obj['shape']}?", obj["color"],
                [i])
        if colors.count(obj["color"]) == 1:
            add("shape", f"what shape is the {obj['color']} object?",
                obj["shape"], [i])
        add("size", f"what size is the {obj['color']} {obj['shape']}?",
            obj["size"], [i])
    add("count", "how many objects are there?", NUMBER_WORDS[len(objects)],
        range(len(objects)))
    color = scenes.COLORS[rng.integers(len(scenes.COLORS))]
    add("count", f"how many {color} objects are there?",
        NUMBER_WORDS[colors.count(color)],
        [i for i, c in enumerate(colors) if c == color])
    # Existence: a present object or an absent (colour, shape) pair, with
    # equal probability.
    if rng.random() < 0.5:
        i = int(rng.integers(len(objects)))
        add("exist", f"is there {_a(colors[i])} {shapes[i]}?", "yes", [i])
    else:
        present = set(zip(colors, shapes))
        while True:
            pair = (scenes.COLORS[rng.integers(len(scenes.COLORS))],
                    scenes.SHAPES[rng.integers(len(scenes.SHAPES))])
            if pair not in present:
                break
        add("exist", f"is there {_a(pair[0])} {pair[1]}?", "no", [])
    for b, anchor in enumerate(objects):
        for relation in scenes.RELATIONS:
            matches = [
                a for a in range(len(objects))
                if a != b and _relation_of(objects, relations, a, b)
                == relation
            ]
            if len(matches) == 1:
                a = matches[0]
                add("relation",
                    f"what shape is {relation} the {anchor['color']} "
                    f"{anchor['shape']}?", objects[a]["shape"], [a, b])
    return out


def _balance(questions, seed, split):
    """Keeps, per type, every answer as often as the type's rarest one."""
    rng = _rng(seed, split + "/balance", 0)
    keep = []
    for kind in QUESTION_TYPES:
        by_answer = {}
        for q in questions:
            if q["type"] == kind:
                by_answer.setdefault(q["answer"], []).append(q)
        if not by_answer:
            continue
        quota = min(len(v) for v in by_answer.values())
        for answer in sorted(by_answer):
            group = by_answer[answer]
            picked = rng.permutation(len(group))[:quota]
            keep.extend(group[i] for i in sorted(picked))
    keep.sort(key=lambda q: (q["image_index"], q["order"]))
    return keep


def generate_questions(num_images, seed=0, split="train", image_size=64,
                       holdout=scenes.DEFAULT_HOLDOUT, questions_per_image=3,
                       balance=True, include_images=True):
    """Questions and answers for `num_images` procedural scenes.

    Args:
        num_images: int >= 1. Scenes to draw.
        seed: int. Dataset seed (scenes and questions).
        split: str. `"train"` draws scenes without the `holdout`
            combinations; `"holdout"` draws test scenes freely and keeps
            only questions about held-out objects; any other name (e.g.
            `"test"`) draws scenes freely and keeps every question.
        image_size: int in [32, 256].
        holdout: sequence of attribute dicts (see
            `scenes.normalize_holdout`); `scenes.DEFAULT_HOLDOUT` by
            default.
        questions_per_image: int >= 1. Questions drawn per scene (before
            balancing; all candidates when the scene has fewer).
        balance: bool. Equalise answers within each type (see the module
            docstring).
        include_images: bool. Put the uint8 image in each record.

    Returns:
        A list of dicts: `question`, `answer`, `type`, `image_index`,
        `image_id`, `objects` (indices of the objects referred to), the
        scene's `scene` (its `objects` and `relations`) and, with
        `include_images`, `image`.

    Examples:

    ```python
    from keras_lgvq.datasets import scenes_questions

    qa = scenes_questions.generate_questions(100, seed=0)
    qa[0]["question"], qa[0]["answer"]
    ```
    """
    if isinstance(num_images, bool) or not isinstance(num_images, int) or (
        num_images < 1
    ):
        raise ValueError(
            f"`num_images` must be an int >= 1; received {num_images!r}."
        )
    if isinstance(questions_per_image, bool) or not isinstance(
        questions_per_image, int
    ) or questions_per_image < 1:
        raise ValueError(
            "`questions_per_image` must be an int >= 1; received "
            f"{questions_per_image!r}."
        )
    if not isinstance(split, str) or not split:
        raise ValueError(f"`split` must be a non-empty str; got {split!r}.")
    holdout = scenes.normalize_holdout(holdout)
    scene_split = "test" if split == "holdout" else split
    excluded = holdout if split == "train" else ()
    questions = []
    for example in scenes.generate(num_images, seed=seed,
                                   image_size=image_size, split=scene_split,
                                   holdout=excluded):
        rng = _rng(seed, split, example["index"])
        candidates = _candidates(example, rng)
        if split == "holdout":
            candidates = [
                q for q in candidates
                if any(scenes._matches(example["objects"][i], holdout)
                       for i in q["objects"])
            ]
        order = rng.permutation(len(candidates))[:questions_per_image]
        for rank, i in enumerate(sorted(order)):
            q = dict(candidates[i])
            q.update(
                image_index=example["index"],
                image_id=example["image_id"],
                order=rank,
                scene={"objects": example["objects"],
                       "relations": example["relations"]},
            )
            if include_images:
                q["image"] = example["image"]
            questions.append(q)
    if balance:
        questions = _balance(questions, seed, split)
    for q in questions:
        q.pop("order")
    return questions


def answer_vocabulary(questions):
    """Sorted list of the distinct answers of a question list.

    Examples:

    ```python
    vocab = answer_vocabulary(generate_questions(200, split="train"))
    ```
    """
    return sorted({q["answer"] for q in questions})

"""Conditioning accuracy on the procedural scenes: does a generated image
have what its caption asked for?

An offline, objective text-to-image metric (no CLIP needed). A small
fully-convolutional classifier is trained on real scenes images, whose
ground truth the generator records: for every cell of a coarse grid it
predicts the shape, colour, size and fill of the object covering that cell
(or "none"), and globally the background pattern and tone. Objects are read
off the maps as connected regions, each with its attributes and position.

A caption is parsed with the scenes vocabulary into what it asks for
(`parse_scene_caption`): objects with their mentioned attributes and
regions, object counts, pairwise relations, background. Each requirement
is one check against the objects found in the image; accuracies are
reported per attribute and overall. Object attributes are bound (a colour
counts only on an object of the asked shape); the *presence* checks also
report whether each asked attribute is on any found object, which tells a
generator that draws the right colours as unrecognisable blobs from one
that ignores the caption. The chance level of a given set of images is the
same images judged against other images' captions
(`keras_lgvq.metrics.caption_mismatch`). The same classifier on real images
with their own captions gives the ceiling; on real images with shuffled
captions, the chance level. Objects whose mentioned attributes form a
held-out combination of the scenes set (never drawn in training, e.g. a
blue star) are reported separately (compositional generalisation).

```python
classifier, report = train_scene_attribute_classifier(num_images=4000)
result = scenes_conditioning_accuracy(classifier, generated_images, captions)
result["overall"], result["attributes"]["color"]["accuracy"]
```
"""

import re

import keras
import numpy as np

from keras_lgvq.datasets import scenes
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number

# Checks, in report order.
ATTRIBUTES = (
    "shape",
    "color",
    "size",
    "fill",
    "region",
    "count",
    "relation",
    "background",
    "tone",
)
# Presence checks (`judge_caption`): an object attribute the caption asks
# for is on some found object, whatever its shape. The checks above bind
# every attribute to an object of the asked shape, so a generator that
# draws the right colour as an unrecognisable blob fails all of them; the
# presence checks separate "the attribute is in the image" from binding.
PRESENCE_ATTRIBUTES = ("shape", "color", "size", "fill", "region")
_OBJECT_HEADS = {
    "shape": scenes.SHAPES,
    "color": scenes.COLORS,
    "size": scenes.SIZES,
    "fill": scenes.FILLS,
}
_GLOBAL_HEADS = {"background": scenes.BACKGROUNDS, "tone": scenes.TONES}
# Cells closer to an object's centre than this many radii are its centre
# region (label 1); the rest of the object, up to `_IGNORE_RADII`, is not
# trained. Tight centre regions keep neighbouring objects apart.
_LABEL_RADII = 0.4
_IGNORE_RADII = 1.0
_OBJECT_NOUNS = ("shape", "object", "figure")
_OBJECT_PLURALS = tuple(scenes.OBJECT_NOUNS)


def _invert(words):
    out = {}
    for value, options in words.items():
        for option in options:
            out[option] = value
    return out


_SHAPE_OF = _invert(scenes.SHAPE_WORDS)
_PLURAL_OF = {
    plural: _SHAPE_OF[singular] for singular, plural in scenes.PLURALS.items()
}
_COLOR_OF = _invert(scenes.COLOR_WORDS)
_SIZE_OF = _invert(scenes.SIZE_WORDS)
_FILL_OF = _invert(scenes.FILL_WORDS)
_BACKGROUND_OF = _invert(scenes.BACKGROUND_WORDS)
_TONE_OF = _invert(scenes.TONE_WORDS)
_NUMBER_OF = {w: i for i, w in enumerate(scenes.NUMBER_WORDS)}
# Multi-word phrases, matched longest first.
_PHRASES = []
for _value, _options in scenes.RELATION_WORDS.items():
    _PHRASES += [(tuple(o.split()), "relation", _value) for o in _options]
for _value, _options in scenes.REGION_WORDS.items():
    _PHRASES += [(tuple(o.split()), "region", _value) for o in _options]
for _value, _options in scenes.FILL_SUFFIXES.items():
    _PHRASES += [(tuple(o.split()), "fill_suffix", _value) for o in _options]
_PHRASES.sort(key=lambda p: -len(p[0]))


def _tokens(caption):
    return re.findall(r"[a-z]+(?:-[a-z]+)*|[,:]", caption.lower())


def _resolve_reference(objects, shape, pending):
    """The earlier object `the [colour] <shape>` refers to, or None.

    An earlier object of that shape whose colour matches wins; else the one
    object of that shape whose colour was not mentioned (it gets the
    colour); an ambiguous reference stays a separate requirement.
    """
    color = pending.get("color")
    same = [k for k, o in enumerate(objects) if o["shape"] == shape]
    if color is None:
        return same[0] if len(same) == 1 else None
    exact = [k for k in same if objects[k].get("color") == color]
    if exact:
        return exact[0]
    open_ = [k for k in same if "color" not in objects[k]]
    if len(open_) == 1:
        objects[open_[0]]["color"] = color
        return open_[0]
    return None


def parse_scene_caption(caption):
    """What a scenes caption asks for, read with the scenes vocabulary.

    Understands every template of `keras_lgvq.datasets.scenes`: noun
    phrases (`a small red striped star`, `a blue box drawn in outline`),
    definite references to earlier objects (`the star`, `the red star`),
    regions (`in the top left corner`), relations (`X sits to the left of
    Y`), counts (`three objects: ...`, `only one shape: ...`,
    `two circles`) and the background (`on a pale checkered background`).

    Args:
        caption: str.

    Returns:
        dict with `objects` (list of dicts with `shape` and, when
        mentioned, `color`, `size`, `fill`, `region`), `relations` (list of
        `(subject, relation, object)` indices into `objects`), `count` (int
        or None: the total number of objects), `shape_counts` (dict shape
        -> int, from plurals), `background` and `tone` (or None).

    Examples:

    ```python
    parse_scene_caption("a big red star is left of the blue circle")
    # {"objects": [{"shape": "star", "size": "large", "color": "red"},
    #              {"shape": "circle", "color": "blue"}],
    #  "relations": [(0, "left of", 1)], "count": None, ...}
    ```
    """
    if not isinstance(caption, str):
        raise ValueError(
            f"`caption` must be a str; received {type(caption).__name__}."
        )
    tokens = _tokens(caption)
    objects, relations, shape_counts = [], [], {}
    count = background = tone = None
    pending, determiner = {}, None
    last, relation = None, None
    i, n = 0, len(tokens)
    while i < n:
        phrase = next(
            (
                p
                for p in _PHRASES
                if tuple(tokens[i : i + len(p[0])]) == p[0]
            ),
            None,
        )
        if phrase is not None:
            words, kind, value = phrase
            if kind == "relation":
                relation = (last, value)
            elif last is not None:
                objects[last]["region" if kind == "region" else "fill"] = value
            pending, determiner = {}, None
            i += len(words)
            continue
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < n else None
        if token in _NUMBER_OF and following in _OBJECT_PLURALS:
            count = _NUMBER_OF[token]
            i += 2
            continue
        if token in _NUMBER_OF and following in _PLURAL_OF:
            shape_counts[_PLURAL_OF[following]] = _NUMBER_OF[token]
            i += 2
            continue
        if (
            token == "only"
            and following == "one"
            and i + 2 < n
            and tokens[i + 2] in _OBJECT_NOUNS
        ):
            count = 1
            i += 3
            continue
        if token == "background":
            j = i - 1
            if j >= 0 and tokens[j] in _BACKGROUND_OF:
                background = _BACKGROUND_OF[tokens[j]]
                j -= 1
            if j >= 0 and tokens[j] in _TONE_OF:
                tone = _TONE_OF[tokens[j]]
            pending, determiner = {}, None
            i += 1
            continue
        if token in _SHAPE_OF:
            shape = _SHAPE_OF[token]
            index = None
            if determiner == "the":
                index = _resolve_reference(objects, shape, pending)
            if index is None:
                objects.append({"shape": shape, **pending})
                index = len(objects) - 1
            if relation is not None and relation[0] is not None:
                relations.append((relation[0], relation[1], index))
            relation = None
            last = index
            pending, determiner = {}, None
            i += 1
            continue
        for table, key in (
            (_SIZE_OF, "size"),
            (_COLOR_OF, "color"),
            (_FILL_OF, "fill"),
        ):
            if token in table:
                pending[key] = table[token]
                break
        else:
            if token in ("a", "an", "the"):
                determiner, pending = token, {}
            elif token not in _BACKGROUND_OF and token not in _TONE_OF:
                # Any other word ends a noun phrase under construction.
                determiner, pending = None, {}
        i += 1
    return {
        "objects": objects,
        "relations": relations,
        "count": count,
        "shape_counts": shape_counts,
        "background": background,
        "tone": tone,
    }


def held_out_combinations(obj, holdout=scenes.DEFAULT_HOLDOUT):
    """The held-out combinations a parsed object's attributes spell out.

    Args:
        obj: dict from `parse_scene_caption(...)["objects"]`.
        holdout: sequence of attribute dicts (`scenes.DEFAULT_HOLDOUT`).

    Returns:
        list of the matching combination dicts.
    """
    return [
        combo
        for combo in scenes.normalize_holdout(holdout)
        if all(obj.get(k) == v for k, v in combo.items())
    ]


# === Ground truth for the classifier ===


def scene_targets(example, grid_size):
    """Per-cell objectness and global labels of one scene.

    Args:
        example: dict from `keras_lgvq.datasets.scenes.generate_example`
            (needs `objects` with `x`, `y`, `radius`, and `background`,
            `tone`).
        grid_size: int. Side of the label grid.

    Returns:
        dict: `object` int32 `(G, G)`: 1 for cells within `0.4` radii of an
        object's centre (always the centre's own cell), 0 for empty cells
        and -1 for the untrained border ring; `background`, `tone` ints.
    """
    g = check_int("grid_size", grid_size)
    centers = (np.arange(g) + 0.5) / g
    xs, ys = np.meshgrid(centers, centers)
    label = np.zeros((g, g), "int32")
    for obj in example["objects"]:
        dist = np.hypot(xs - obj["x"], ys - obj["y"]) / obj["radius"]
        inside = dist < _LABEL_RADII
        inside[min(g - 1, int(obj["y"] * g)), min(g - 1, int(obj["x"] * g))] = (
            True
        )
        label[(dist < _IGNORE_RADII) & ~inside & (label == 0)] = -1
        label[inside] = 1
    return {
        "object": label,
        "background": scenes.BACKGROUNDS.index(example["background"]),
        "tone": scenes.TONES.index(example["tone"]),
    }


def object_crops(images, centers, window):
    """Square windows of `window` pixels centred on objects.

    Args:
        images: float `(N, S, S, 3)`.
        centers: `(M, 3)`: image index, x and y in pixels.
        window: int. Crop side in pixels.

    Returns:
        float32 `(M, window, window, 3)`; outside the image is 0 (grey).
    """
    images = np.asarray(images, "float32")
    half = window // 2
    padded = np.pad(images, ((0, 0), (half, half), (half, half), (0, 0)))
    crops = np.empty((len(centers), window, window, 3), "float32")
    size = images.shape[1]
    for k, (index, x, y) in enumerate(centers):
        col = int(np.clip(round(x), 0, size - 1))
        row = int(np.clip(round(y), 0, size - 1))
        crops[k] = padded[int(index), row : row + window, col : col + window]
    return crops


def _relation(a, b):
    """The scenes rule: relation of `a` with respect to `b` (dicts x, y)."""
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _region(x, y):
    col = 0 if x < 1.0 / 3.0 else (1 if x < 2.0 / 3.0 else 2)
    row = 0 if y < 1.0 / 3.0 else (1 if y < 2.0 / 3.0 else 2)
    return scenes.REGIONS[row * 3 + col]


def _conv(x, filters, name, stride=1, dilation=1):
    x = keras.layers.Conv2D(
        filters,
        3,
        strides=stride,
        dilation_rate=dilation,
        padding="same",
        use_bias=False,
        name=name,
    )(x)
    # Short training runs: fast-moving statistics for inference.
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _detector(image_size, width):
    images = keras.Input((image_size, image_size, 3), name="images")
    x = _conv(images, width // 2, "conv1")
    x = _conv(x, width // 2, "conv2", stride=2)
    x = _conv(x, width // 2, "conv3")
    x = _conv(x, width, "conv4", stride=2)
    x = _conv(x, width, "conv5")
    x = _conv(x, width, "conv6", dilation=2)
    x = _conv(x, width, "conv7", dilation=4)
    outputs = {"object": keras.layers.Conv2D(2, 1, name="object_logits")(x)}
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    # Tone is a brightness level: the mean colour of the input helps.
    mean_colour = keras.layers.GlobalAveragePooling2D(name="mean_colour")(
        images
    )
    pooled = keras.layers.Concatenate(name="global_features")(
        [pooled, mean_colour]
    )
    for key, values in _GLOBAL_HEADS.items():
        outputs[key] = keras.layers.Dense(len(values), name=f"{key}_logits")(
            pooled
        )
    return keras.Model(images, outputs, name="detector")


def _recognizer(window, width):
    crops = keras.Input((window, window, 3), name="crops")
    x = _conv(crops, width // 2, "conv1")
    x = _conv(x, width, "conv2", stride=2)
    x = _conv(x, width, "conv3")
    x = _conv(x, 2 * width, "conv4", stride=2)
    x = _conv(x, 2 * width, "conv5")
    # The object sits at the centre of the crop: pool the centre only, so a
    # neighbour at the window's edge does not vote.
    side = window // 4
    centre = keras.layers.Cropping2D(side // 4, name="centre")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(centre)
    outputs = {
        key: keras.layers.Dense(len(values), name=f"{key}_logits")(pooled)
        for key, values in _OBJECT_HEADS.items()
    }
    return keras.Model(crops, outputs, name="recognizer")


def _softmax(value):
    value = np.asarray(value, "float64")
    value = np.exp(value - value.max(axis=-1, keepdims=True))
    return (value / value.sum(axis=-1, keepdims=True)).astype("float32")


@keras.saving.register_keras_serializable(package="keras_lgvq")
class SceneAttributeClassifier(keras.Model):
    """The conditioning judge of scenes images: find objects, then name them.

    Two small convolutional networks trained on real scenes images:

    - `detector` (stride 4, dilated convolutions): per grid cell, is it the
      centre region of an object; globally, the background pattern and
      tone. Objects are the 4-connected regions of object cells.
    - `recognizer`: a `image_size // 2` window centred on a found object
      (native pixels, so the object's absolute size is visible) ->
      its shape, colour, size and fill.

    Args:
        image_size: int. Image size the judge works at (other sizes are
            resized); 64 is the scenes tokenizer's resolution.
        width: int. Channels of the wider layers.
        **kwargs: `keras.Model` arguments.

    Examples:

    ```python
    classifier, report = train_scene_attribute_classifier(num_images=3000)
    objects = classifier.detect(images)[0]  # [{"shape": "star", ...}, ...]
    ```
    """

    def __init__(self, image_size=64, width=64, **kwargs):
        super().__init__(**kwargs)
        image_size = check_int("image_size", image_size, low=32)
        width = check_int("width", width, low=8)
        if image_size % 8:
            raise ValueError(
                f"`image_size` must be a multiple of 8; received {image_size}."
            )
        self.image_size = image_size
        self.width = width
        self.detector = _detector(image_size, width)
        self.recognizer = _recognizer(self.window, max(8, 3 * width // 4))
        self.built = True

    @property
    def grid_size(self):
        return self.image_size // 4

    @property
    def window(self):
        """Side of the recognizer's crop in pixels."""
        return self.image_size // 2

    def call(self, images, training=False):
        return self.detector(images, training=training)

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": self.image_size, "width": self.width})
        return config

    def _prepare(self, images):
        images = np.asarray(images, "float32")
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                "`images` must be (B, H, W, 3) floats in [-1, 1]; received "
                f"shape {images.shape}."
            )
        if images.shape[1:3] != (self.image_size, self.image_size):
            images = np.asarray(
                keras.ops.convert_to_numpy(
                    keras.ops.image.resize(
                        images,
                        (self.image_size, self.image_size),
                        interpolation="bilinear",
                        antialias=True,
                    )
                ),
                "float32",
            )
        return images

    def detect(self, images, threshold=0.5, min_mass=0.5, batch_size=64):
        """Objects and background of each image.

        Args:
            images: float `(B, H, W, 3)` in [-1, 1].
            threshold: float. Objectness threshold of a cell.
            min_mass: float. Smallest summed objectness of an object.
            batch_size: int.

        Returns:
            list (one per image) of dicts: `objects` (list of dicts
            `shape`, `color`, `size`, `fill`, `x`, `y` (fractions of the
            image), `region`, `confidence`), `background`, `tone`.
        """
        images = self._prepare(images)
        out = self.detector.predict(images, batch_size=batch_size, verbose=0)
        objectness = _softmax(out["object"])[..., 1]
        results, centers = [], []
        for i in range(len(images)):
            found = _components(objectness[i], threshold, min_mass)
            for obj in found:
                centers.append(
                    (i, obj["x"] * self.image_size, obj["y"] * self.image_size)
                )
            results.append(
                {
                    "objects": found,
                    "background": scenes.BACKGROUNDS[
                        int(np.argmax(out["background"][i]))
                    ],
                    "tone": scenes.TONES[int(np.argmax(out["tone"][i]))],
                }
            )
        if centers:
            crops = object_crops(images, centers, self.window)
            named = self.recognizer.predict(
                crops, batch_size=4 * batch_size, verbose=0
            )
            flat = [obj for r in results for obj in r["objects"]]
            for key, values in _OBJECT_HEADS.items():
                picks = np.argmax(named[key], axis=-1)
                for obj, pick in zip(flat, picks):
                    obj[key] = values[int(pick)]
        return results


def _components(objectness, threshold, min_mass):
    """4-connected regions of cells above `threshold` -> centroids."""
    g = objectness.shape[0]
    seen = np.zeros((g, g), bool)
    found = []
    for r0 in range(g):
        for c0 in range(g):
            if seen[r0, c0] or objectness[r0, c0] <= threshold:
                continue
            stack, cells = [(r0, c0)], []
            seen[r0, c0] = True
            while stack:
                r, c = stack.pop()
                cells.append((r, c))
                for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                    if (
                        0 <= rr < g
                        and 0 <= cc < g
                        and not seen[rr, cc]
                        and objectness[rr, cc] > threshold
                    ):
                        seen[rr, cc] = True
                        stack.append((rr, cc))
            rows = np.array([p[0] for p in cells])
            cols = np.array([p[1] for p in cells])
            weights = objectness[rows, cols]
            if weights.sum() < min_mass:
                continue
            x = float(((cols + 0.5) / g * weights).sum() / weights.sum())
            y = float(((rows + 0.5) / g * weights).sum() / weights.sum())
            found.append(
                {
                    "x": x,
                    "y": y,
                    "region": _region(x, y),
                    "confidence": float(weights.max()),
                }
            )
    return found


def judge_caption(parsed, detected, background=None, tone=None, holdout=()):
    """Checks one parsed caption against the objects found in one image.

    Args:
        parsed: dict from `parse_scene_caption`.
        detected: list of object dicts (`SceneAttributeClassifier.detect`).
        background: str or None. The predicted background pattern.
        tone: str or None. The predicted background tone.
        holdout: held-out combinations (see `held_out_combinations`).

    Returns:
        dict: `checks` (attribute -> list of bools, one per requirement;
        object attributes are bound: they count only on an object of the
        asked shape), `presence` (`PRESENCE_ATTRIBUTES` -> list of bools,
        one per mentioned attribute of a caption object: True when any
        found object has it, whatever its shape) and `held_out` (list of
        `(combination name, bool)`, one per object that spells a held-out
        combination: True when an object with the whole combination was
        found).
    """
    checks = {key: [] for key in ATTRIBUTES}
    presence = {key: [] for key in PRESENCE_ATTRIBUTES}

    def candidates(obj):
        same_shape = [d for d in detected if d["shape"] == obj["shape"]]
        if "color" in obj:
            both = [d for d in same_shape if d["color"] == obj["color"]]
            if both:
                return both
        return same_shape

    def locate(obj):
        found = candidates(obj)
        if not found:
            return None
        # Prefer an object that also has the other mentioned attributes.
        return max(
            found,
            key=lambda d: (
                sum(d[k] == obj[k] for k in ("size", "fill") if k in obj),
                d["confidence"],
            ),
        )

    located = [locate(obj) for obj in parsed["objects"]]
    held = []
    for obj, where in zip(parsed["objects"], located):
        for key in PRESENCE_ATTRIBUTES:
            if key in obj:
                presence[key].append(
                    any(d[key] == obj[key] for d in detected)
                )
        checks["shape"].append(
            any(d["shape"] == obj["shape"] for d in detected)
        )
        if "color" in obj:
            checks["color"].append(
                any(
                    d["shape"] == obj["shape"] and d["color"] == obj["color"]
                    for d in detected
                )
            )
        for key in ("size", "fill", "region"):
            if key in obj:
                checks[key].append(where is not None and where[key] == obj[key])
        for combo in held_out_combinations(obj, holdout):
            name = " ".join(
                combo[k] for k in ("size", "color", "fill", "shape")
                if k in combo
            )
            held.append(
                (
                    name,
                    any(
                        all(d[k] == v for k, v in combo.items())
                        for d in detected
                    ),
                )
            )
    if parsed["count"] is not None:
        checks["count"].append(len(detected) == parsed["count"])
    for shape, number in parsed["shape_counts"].items():
        checks["count"].append(
            sum(d["shape"] == shape for d in detected) == number
        )
    for subject, relation, target in parsed["relations"]:
        a, b = located[subject], located[target]
        checks["relation"].append(
            a is not None
            and b is not None
            and a is not b
            and _relation(a, b) == relation
        )
    if parsed["background"] is not None:
        checks["background"].append(background == parsed["background"])
    if parsed["tone"] is not None:
        checks["tone"].append(tone == parsed["tone"])
    return {"checks": checks, "presence": presence, "held_out": held}


def _pooled(judged, field, keys):
    """Per-key accuracy and the pooled share of `judged[i][field]`."""
    attributes = {}
    total = passed = 0
    for key in keys:
        values = [v for j in judged for v in j[field][key]]
        attributes[key] = {
            "accuracy": float(np.mean(values)) if values else None,
            "checks": len(values),
        }
        total += len(values)
        passed += int(np.sum(values)) if values else 0
    return attributes, (passed / total if total else None), total


def summarise_judged(judged):
    """Pooled accuracies of `judge_caption` results.

    Args:
        judged: list of `judge_caption` dicts.

    Returns:
        dict: `attributes` (attribute -> `{"accuracy", "checks"}`),
        `overall` (all checks pooled), `checks`,
        `captions_fully_satisfied`, `captions`, `presence`
        (`PRESENCE_ATTRIBUTES` -> `{"accuracy", "checks"}`),
        `presence_overall` and `presence_checks`.

    Examples:

    ```python
    summarise_judged(judge_each(detections, captions))["presence_overall"]
    ```
    """
    attributes, overall, total = _pooled(judged, "checks", ATTRIBUTES)
    presence, presence_overall, presence_total = _pooled(
        judged, "presence", PRESENCE_ATTRIBUTES
    )
    fully = [
        all(all(v) for v in j["checks"].values()) for j in judged if any(
            j["checks"].values()
        )
    ]
    return {
        "attributes": attributes,
        "overall": overall,
        "checks": total,
        "captions_fully_satisfied": float(np.mean(fully)) if fully else None,
        "captions": len(judged),
        "presence": presence,
        "presence_overall": presence_overall,
        "presence_checks": presence_total,
    }


def scenes_conditioning_accuracy(
    classifier,
    images,
    captions,
    holdout=scenes.DEFAULT_HOLDOUT,
    batch_size=64,
    threshold=0.5,
):
    """How often images have what their captions ask for.

    Args:
        classifier: a trained `SceneAttributeClassifier`.
        images: float `(B, H, W, 3)` in [-1, 1], image i generated (or
            drawn) for caption i.
        captions: list of B str (scenes captions).
        holdout: held-out attribute combinations to report separately.
        batch_size: int. Classifier batch size.
        threshold: float. Objectness threshold of a grid cell.

    Returns:
        dict: `attributes` (attribute -> `{"accuracy", "checks"}`),
        `overall` (all checks pooled), `checks`, `captions_fully_satisfied`
        (fraction of captions with every check passed), `captions`,
        `held_out` (`{"accuracy", "objects", "per_combination"}`: objects
        whose mentioned attributes form a held-out combination, correct
        when an object with the whole combination is found; accuracy None
        when no caption mentions one), `held_out_captions` (the summary
        restricted to captions that mention a held-out combination),
        `presence` / `presence_overall` / `presence_checks` (the presence
        checks: an asked object attribute on any found object) and
        `per_caption` (per caption: `caption`, `passed` / `checks` and
        `presence_passed` / `presence_checks`).

    Examples:

    ```python
    result = scenes_conditioning_accuracy(classifier, images, captions)
    print(result["overall"], result["attributes"]["relation"])
    ```
    """
    if not isinstance(classifier, SceneAttributeClassifier):
        raise ValueError(
            "`classifier` must be a SceneAttributeClassifier (see "
            "`train_scene_attribute_classifier`); received "
            f"{type(classifier).__name__}."
        )
    if isinstance(captions, str) or not isinstance(captions, (list, tuple)):
        raise ValueError(
            "`captions` must be a list of str, one per image; received "
            f"{type(captions).__name__}."
        )
    images = np.asarray(images, "float32")
    if len(images) != len(captions):
        raise ValueError(
            f"{len(images)} images for {len(captions)} captions; pass one "
            "caption per image."
        )
    threshold = check_number("threshold", threshold, 0.0, 1.0, True, True)
    detections = classifier.detect(images, threshold, batch_size=batch_size)
    return judge_detections(detections, captions, holdout)


def judge_detections(detections, captions, holdout=scenes.DEFAULT_HOLDOUT):
    """`scenes_conditioning_accuracy` from detections already made.

    Args:
        detections: list from `SceneAttributeClassifier.detect`, one per
            caption.
        captions: list of str.
        holdout: held-out attribute combinations.

    Returns:
        The dict described in `scenes_conditioning_accuracy`.
    """
    judged = judge_each(detections, captions, holdout)
    result = summarise_judged(judged)
    held = [h for j in judged for h in j["held_out"]]
    per_combination = {}
    for name, ok in held:
        entry = per_combination.setdefault(name, {"correct": 0, "objects": 0})
        entry["objects"] += 1
        entry["correct"] += int(ok)
    for entry in per_combination.values():
        entry["accuracy"] = entry["correct"] / entry["objects"]
    result["held_out"] = {
        "accuracy": float(np.mean([ok for _, ok in held])) if held else None,
        "objects": len(held),
        "per_combination": per_combination,
    }
    with_held = [j for j in judged if j["held_out"]]
    result["held_out_captions"] = (
        summarise_judged(with_held) if with_held else None
    )
    result["per_caption"] = [
        {"caption": caption, **caption_counts(j)}
        for caption, j in zip(captions, judged)
    ]
    return result


def caption_counts(judged):
    """Checks passed and made for one `judge_caption` result.

    Args:
        judged: dict from `judge_caption`.

    Returns:
        dict of int: `passed`, `checks` (bound checks),
        `presence_passed`, `presence_checks` (all presence checks) and, per
        attribute of `PRESENCE_ATTRIBUTES`, `presence_<attribute>_passed`
        and `presence_<attribute>_checks`.

    Examples:

    ```python
    caption_counts(judge_caption(parsed, objects))["passed"]
    ```
    """
    counts = {
        "passed": int(sum(sum(v) for v in judged["checks"].values())),
        "checks": int(sum(len(v) for v in judged["checks"].values())),
        "presence_passed": int(
            sum(sum(v) for v in judged["presence"].values())),
        "presence_checks": int(
            sum(len(v) for v in judged["presence"].values())),
    }
    for key, values in judged["presence"].items():
        counts[f"presence_{key}_passed"] = int(sum(values))
        counts[f"presence_{key}_checks"] = len(values)
    return counts


def judge_each(detections, captions, holdout=scenes.DEFAULT_HOLDOUT):
    """The `judge_caption` result of each (detection, caption) pair.

    Args:
        detections: list from `SceneAttributeClassifier.detect`.
        captions: list of str, one per detection.
        holdout: held-out attribute combinations.

    Returns:
        list of `judge_caption` dicts (pool them with `summarise_judged`).

    Examples:

    ```python
    judged = judge_each(classifier.detect(images), captions)
    summarise_judged(judged)["overall"]
    ```
    """
    holdout = scenes.normalize_holdout(holdout)
    return [
        judge_caption(
            parse_scene_caption(caption),
            d["objects"],
            d["background"],
            d["tone"],
            holdout,
        )
        for caption, d in zip(captions, detections)
    ]


# === Training ===


def scenes_attribute_data(
    num_images, image_size=64, seed=0, split="conditioning_classifier"
):
    """Real scenes images in [-1, 1] with their generator records.

    The scenes are drawn with no held-out combination, so the judge sees
    every combination (it is the judge, not the model under test).

    Args:
        num_images: int. Images.
        image_size: int. Pixels.
        seed: int. Dataset seed.
        split: str. Split name (its own random stream).

    Returns:
        `(images, examples)`: float32 `(N, S, S, 3)` and the generator's
        examples (objects, captions, background, tone).
    """
    num_images = check_int("num_images", num_images)
    examples = list(
        scenes.generate(
            num_images, seed=seed, image_size=image_size, split=split
        )
    )
    images = np.stack([e["image"] for e in examples]).astype("float32")
    return images / 127.5 - 1.0, examples


def _gaussian_blur(images, sigma):
    """Separable Gaussian blur of `(S, S, 3)` with edge padding."""
    radius = max(1, int(np.ceil(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(images, ((radius, radius), (radius, radius), (0, 0)),
                    mode="edge")
    size = images.shape[0]
    rows = sum(
        w * padded[k : k + size] for k, w in enumerate(taps)
    )
    return sum(w * rows[:, k : k + size] for k, w in enumerate(taps))


def degrade_images(images, seed=0, fraction=0.5, max_blur=2.0,
                   min_saturation=0.4, min_contrast=0.6, max_noise=0.04):
    """Generic photometric degradations of a random part of the images.

    What any image tokenizer's reconstruction tends to lose, drawn
    independently of any tokenizer: a chosen `fraction` of the images gets
    a Gaussian blur (sigma uniform in `[0.5, max_blur]` pixels), half of
    those first a down-up sampling by 2 or 4 (box mean, nearest
    up-sampling, then the blur smooths it), a saturation scale toward the
    grey value (uniform in `[min_saturation, 1]`), a contrast scale toward
    the image mean (uniform in `[min_contrast, 1]`) and Gaussian noise
    (sigma uniform in `[0, max_noise]`). Hue and object positions are kept,
    so every label stays true. Training the judge on a mix of clean and
    degraded scenes makes it read what is there in a blurred or washed-out
    generated image instead of failing on the blur itself.

    Args:
        images: float `(N, S, S, 3)` in [-1, 1].
        seed: int. Which images and which degradations (deterministic).
        fraction: float in [0, 1]. Share of the images degraded; 0 returns
            the images unchanged.
        max_blur: float >= 0.5. Largest blur sigma in pixels.
        min_saturation: float in [0, 1]. Lowest saturation scale.
        min_contrast: float in (0, 1]. Lowest contrast scale.
        max_noise: float >= 0. Largest noise sigma (images in [-1, 1]).

    Returns:
        `(degraded, mask)`: float32 `(N, S, S, 3)` in [-1, 1] and the bool
        `(N,)` mask of the degraded images.

    Examples:

    ```python
    images, _ = scenes_attribute_data(16)
    degraded, mask = degrade_images(images, seed=0, fraction=0.5)
    ```
    """
    images = np.asarray(images, "float32")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            "`images` must be (N, S, S, 3) floats in [-1, 1]; received "
            f"shape {images.shape}."
        )
    fraction = check_number("fraction", fraction, 0.0, 1.0)
    max_blur = check_number("max_blur", max_blur, 0.5)
    min_saturation = check_number("min_saturation", min_saturation, 0.0, 1.0)
    min_contrast = check_number(
        "min_contrast", min_contrast, 0.0, 1.0, low_open=True
    )
    max_noise = check_number("max_noise", max_noise, 0.0)
    rng = np.random.default_rng(seed)
    mask = rng.random(len(images)) < fraction
    out = images.copy()
    size = images.shape[1]
    for i in np.flatnonzero(mask):
        x = images[i].astype("float64")
        factor = int(rng.choice((1, 1, 2, 4)))
        if factor > 1 and size % factor == 0:
            small = x.reshape(
                size // factor, factor, size // factor, factor, 3
            ).mean(axis=(1, 3))
            x = small.repeat(factor, axis=0).repeat(factor, axis=1)
        x = _gaussian_blur(x, rng.uniform(0.5, max_blur))
        grey = x.mean(axis=-1, keepdims=True)
        x = grey + rng.uniform(min_saturation, 1.0) * (x - grey)
        mean = x.mean(axis=(0, 1), keepdims=True)
        x = mean + rng.uniform(min_contrast, 1.0) * (x - mean)
        x = x + rng.normal(0.0, rng.uniform(0.0, max_noise), x.shape)
        out[i] = np.clip(x, -1.0, 1.0)
    return out, mask


def _recognizer_data(images, examples, jitter, copies, rng):
    """Crops at the objects' centres (jittered) and their attributes."""
    size = images.shape[1]
    centers, labels = [], {key: [] for key in _OBJECT_HEADS}
    for _ in range(copies):
        for i, example in enumerate(examples):
            for obj in example["objects"]:
                dx, dy = rng.uniform(-jitter, jitter, 2)
                centers.append((i, obj["x"] * size + dx, obj["y"] * size + dy))
                for key, values in _OBJECT_HEADS.items():
                    labels[key].append(values.index(obj[key]))
    crops = object_crops(images, centers, size // 2)
    return crops, {k: np.asarray(v, "int32") for k, v in labels.items()}


def judge_training_data(
    num_images,
    image_size,
    grid_size,
    seed=0,
    degradation_fraction=0.5,
    object_weight=4.0,
):
    """The judge's training sets: detector scenes and recognizer crops.

    Args:
        num_images: int. Scenes (drawn from the judge's own split).
        image_size: int. Pixels.
        grid_size: int. The detector's label grid.
        seed: int. Scenes, degradations (`seed + 1`) and crop jitter.
        degradation_fraction: float in [0, 1]. Share of the scenes seen
            through `degrade_images`; 0: clean scenes only.
        object_weight: float. Loss weight of object cells.

    Returns:
        dict: `images` (the detector's scenes, degraded where drawn),
        `labels` and `weights` (per head), `crops` and `crop_labels` (two
        jittered crops per object: with degradation one from the clean
        scene and one from the degraded one, else two from the clean
        scene), `degraded` (bool mask of the degraded scenes).
    """
    clean, examples = scenes_attribute_data(num_images, image_size, seed=seed)
    images, degraded = clean, np.zeros(len(clean), bool)
    if degradation_fraction > 0:
        images, degraded = degrade_images(
            clean, seed=seed + 1, fraction=degradation_fraction
        )
    targets = [scene_targets(e, grid_size) for e in examples]
    labels = {
        key: np.stack([np.asarray(t[key]) for t in targets]).astype("int32")
        for key in ("object", "background", "tone")
    }
    weights = {
        "object": np.where(labels["object"] > 0, object_weight, 1.0).astype(
            "float32"
        ),
        "background": np.ones(len(images), "float32"),
        "tone": np.ones(len(images), "float32"),
    }
    rng = np.random.default_rng(seed)
    if degradation_fraction > 0:
        parts = [
            _recognizer_data(source, examples, jitter=1.5, copies=1, rng=rng)
            for source in (clean, images)
        ]
        crops = np.concatenate([p[0] for p in parts])
        crop_labels = {
            key: np.concatenate([p[1][key] for p in parts])
            for key in _OBJECT_HEADS
        }
    else:
        crops, crop_labels = _recognizer_data(
            images, examples, jitter=1.5, copies=2, rng=rng
        )
    return {
        "images": images,
        "labels": labels,
        "weights": weights,
        "crops": crops,
        "crop_labels": crop_labels,
        "degraded": degraded,
    }


def train_scene_attribute_classifier(
    num_images=3000,
    image_size=64,
    detector_epochs=8,
    recognizer_epochs=8,
    batch_size=32,
    learning_rate=2e-3,
    width=48,
    object_weight=4.0,
    seed=0,
    validation_images=256,
    verbose=1,
    degradation_fraction=0.5,
):
    """Trains the conditioning judge on real scenes images.

    Args:
        num_images: int. Training scenes (drawn from their own split).
        image_size: int. Pixels (the generator's image size).
        detector_epochs: int. Epochs of the object detector.
        recognizer_epochs: int. Epochs of the crop recognizer (two jittered
            crops per object and epoch).
        batch_size: int.
        learning_rate: float. Adam with cosine decay.
        width: int. Classifier width.
        object_weight: float. Loss weight of object cells relative to empty
            ones (objects cover a few percent of the grid).
        seed: int. Data, jitter and initialisation seed.
        validation_images: int. Fresh real scenes for the report (0: none).
        verbose: int. Keras progress output.
        degradation_fraction: float in [0, 1]. Share of the training
            scenes the detector sees through `degrade_images` (blur, down-up
            sampling, desaturation, lower contrast, noise: generic, drawn
            without any tokenizer); the recognizer's second crop of every
            object is cut from the same degraded scenes. A generated image
            is decoded by a tokenizer, and a judge trained on clean scenes
            only misses blurred or washed-out objects that are there.
            0 trains on clean scenes only (the judge before this option).

    Returns:
        `(classifier, report)`: the trained `SceneAttributeClassifier` and a
        dict with training time and `validation` (see
        `evaluate_classifier`: the judge's accuracy on real images with
        their own captions, the ceiling of the metric).

    Examples:

    ```python
    classifier, report = train_scene_attribute_classifier(num_images=3000)
    report["validation"]["overall"]
    ```
    """
    import time

    detector_epochs = check_int("detector_epochs", detector_epochs)
    recognizer_epochs = check_int("recognizer_epochs", recognizer_epochs)
    batch_size = check_int("batch_size", batch_size)
    validation_images = check_int(
        "validation_images", validation_images, low=0
    )
    object_weight = check_number(
        "object_weight", object_weight, 0.0, low_open=True
    )
    degradation_fraction = check_number(
        "degradation_fraction", degradation_fraction, 0.0, 1.0
    )
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    classifier = SceneAttributeClassifier(image_size=image_size, width=width)
    data = judge_training_data(
        num_images,
        image_size,
        classifier.grid_size,
        seed=seed,
        degradation_fraction=degradation_fraction,
        object_weight=object_weight,
    )
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=-1
    )

    def adam(epochs, examples_per_epoch):
        steps = epochs * max(1, examples_per_epoch // batch_size)
        return keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(learning_rate, steps)
        )

    images, labels = data["images"], data["labels"]
    detector = classifier.detector
    detector.compile(
        optimizer=adam(detector_epochs, len(images)),
        loss={key: loss for key in labels},
    )
    detector_history = detector.fit(
        images,
        labels,
        sample_weight=data["weights"],
        batch_size=batch_size,
        epochs=detector_epochs,
        shuffle=True,
        verbose=verbose,
    )
    crops, crop_labels = data["crops"], data["crop_labels"]
    recognizer = classifier.recognizer
    recognizer.compile(
        optimizer=adam(recognizer_epochs, len(crops)),
        loss={key: loss for key in crop_labels},
    )
    recognizer_history = recognizer.fit(
        crops,
        crop_labels,
        batch_size=batch_size,
        epochs=recognizer_epochs,
        shuffle=True,
        verbose=verbose,
    )
    report = {
        "train_images": num_images,
        "train_crops": int(len(crops)),
        "image_size": image_size,
        "detector_epochs": detector_epochs,
        "recognizer_epochs": recognizer_epochs,
        "degradation_fraction": degradation_fraction,
        "detector_loss": float(detector_history.history["loss"][-1]),
        "recognizer_loss": float(recognizer_history.history["loss"][-1]),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    if validation_images:
        report["validation"] = evaluate_classifier(
            classifier, validation_images, seed=seed
        )
    return classifier, report


def evaluate_classifier(
    classifier, num_images=256, seed=0, split="conditioning_classifier_val"
):
    """Accuracy of the judge on fresh real scenes.

    Args:
        classifier: `SceneAttributeClassifier`.
        num_images: int. Real scenes drawn from `split`.
        seed: int.
        split: str.

    Returns:
        dict: `objects` (per attribute, accuracy of the recognizer on
        ground-truth object crops), `count` (exact object-count accuracy
        of the detector), `background` / `tone` accuracy, and the
        `scenes_conditioning_accuracy` summary of the images judged against all
        ten of their own captions (`overall`, `attributes`, `held_out`,
        ...).
    """
    images, examples = scenes_attribute_data(
        num_images, classifier.image_size, seed=seed, split=split
    )
    crops, labels = _recognizer_data(
        images, examples, 0.0, 1, np.random.default_rng(seed)
    )
    named = classifier.recognizer.predict(crops, verbose=0)
    objects = {
        key: float(np.mean(np.argmax(named[key], axis=-1) == labels[key]))
        for key in _OBJECT_HEADS
    }
    detections = classifier.detect(images)
    report = {
        "objects": objects,
        "count": float(
            np.mean(
                [
                    len(d["objects"]) == len(e["objects"])
                    for d, e in zip(detections, examples)
                ]
            )
        ),
        "background": float(
            np.mean(
                [
                    d["background"] == e["background"]
                    for d, e in zip(detections, examples)
                ]
            )
        ),
        "tone": float(
            np.mean(
                [d["tone"] == e["tone"] for d, e in zip(detections, examples)]
            )
        ),
    }
    repeated = [d for d in detections for _ in range(scenes.NUM_CAPTIONS)]
    captions = [c for e in examples for c in e["captions"]]
    summary = judge_detections(repeated, captions)
    summary.pop("per_caption")
    report.update(summary)
    return report

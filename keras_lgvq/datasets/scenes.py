"""Procedural captioned scenes: a small captioned image set built in numpy.

Each image holds 1-3 objects, each with a shape, a colour, a size, a fill,
a position and pairwise spatial relations, drawn anti-aliased on a varied
background. Every image gets 10 captions from varied templates that only
mention what is in the image, and the ground-truth attributes are kept for
probes and evaluation.

Determinism: every image is drawn from its own `numpy.random.Generator`
(`PCG64`) seeded by `(seed, crc32(split), index)`. Rendering uses only
IEEE-exact float operations (+, -, *, /, comparisons; no libm calls on
arrays) and integer arithmetic for compositing and downsampling, so the same
seed gives identical bytes on every machine. This module imports numpy only.
"""

import math
import struct
import zlib

import numpy as np

SHAPES = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "star",
    "hexagon",
    "cross",
    "heart",
)
COLORS = (
    "red",
    "orange",
    "yellow",
    "green",
    "cyan",
    "blue",
    "purple",
    "pink",
    "white",
    "black",
)
SIZES = ("small", "medium", "large")
FILLS = ("solid", "striped", "outlined")
RELATIONS = ("left of", "right of", "above", "below")
REGIONS = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
BACKGROUNDS = ("plain", "gradient", "speckled", "checkered")
TONES = ("dark", "medium", "light")
# Per-object attribute arrays of an example (`(MAX_OBJECTS,)` class ids).
ATTRIBUTES = ("shape", "color", "size", "fill")

MAX_OBJECTS = 3
NUM_CAPTIONS = 10
MAX_CAPTION_WORDS = 27
MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 256

# Held out of the training split by default (compositional generalisation):
# each appears in validation / test images only.
DEFAULT_HOLDOUT = (
    {"color": "blue", "shape": "star"},
    {"color": "yellow", "shape": "heart"},
    {"color": "green", "shape": "triangle"},
    {"fill": "striped", "shape": "hexagon"},
)

COLOR_RGB = {
    "red": (220, 35, 35),
    "orange": (245, 140, 25),
    "yellow": (240, 220, 35),
    "green": (40, 170, 55),
    "cyan": (35, 205, 220),
    "blue": (35, 70, 215),
    "purple": (140, 50, 190),
    "pink": (245, 125, 195),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}

# Caption vocabulary: canonical value -> the words that may express it.
SHAPE_WORDS = {
    "circle": ("circle", "disc"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "star": ("star",),
    "hexagon": ("hexagon",),
    "cross": ("cross",),
    "heart": ("heart",),
}
PLURALS = {
    "circle": "circles",
    "disc": "discs",
    "square": "squares",
    "box": "boxes",
    "triangle": "triangles",
    "diamond": "diamonds",
    "rhombus": "rhombuses",
    "star": "stars",
    "hexagon": "hexagons",
    "cross": "crosses",
    "heart": "hearts",
}
COLOR_WORDS = {
    "red": ("red",),
    "orange": ("orange",),
    "yellow": ("yellow",),
    "green": ("green",),
    "cyan": ("cyan", "turquoise"),
    "blue": ("blue",),
    "purple": ("purple", "violet"),
    "pink": ("pink",),
    "white": ("white",),
    "black": ("black",),
}
SIZE_WORDS = {
    "small": ("small", "little", "tiny"),
    "medium": ("medium", "medium-sized", "mid-sized"),
    "large": ("large", "big", "huge"),
}
FILL_WORDS = {
    "solid": ("solid", "filled"),
    "striped": ("striped", "stripy"),
    "outlined": ("outlined", "hollow"),
}
FILL_SUFFIXES = {
    "solid": (),
    "striped": ("with stripes",),
    "outlined": ("drawn in outline",),
}
RELATION_WORDS = {
    "left of": ("left of", "to the left of", "on the left of"),
    "right of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over", "higher than"),
    "below": ("below", "under", "beneath", "lower than"),
}
INVERSE_RELATION = {
    "left of": "right of",
    "right of": "left of",
    "above": "below",
    "below": "above",
}
REGION_WORDS = {
    "top left": (
        "in the top left corner",
        "in the top left",
        "at the top left",
    ),
    "top": ("at the top", "near the top"),
    "top right": (
        "in the top right corner",
        "in the top right",
        "at the top right",
    ),
    "left": ("on the left", "on the left side", "at the left"),
    "center": ("in the center", "in the middle", "in the centre"),
    "right": ("on the right", "on the right side", "at the right"),
    "bottom left": (
        "in the bottom left corner",
        "in the bottom left",
        "at the bottom left",
    ),
    "bottom": ("at the bottom", "near the bottom"),
    "bottom right": (
        "in the bottom right corner",
        "in the bottom right",
        "at the bottom right",
    ),
}
BACKGROUND_WORDS = {
    "plain": ("plain", "flat", "uniform"),
    "gradient": ("gradient", "shaded", "fading"),
    "speckled": ("speckled", "noisy", "grainy"),
    "checkered": ("checkered", "checked", "tiled"),
}
TONE_WORDS = {
    "dark": ("dark",),
    "medium": ("gray", "grey"),
    "light": ("light", "pale"),
}
NUMBER_WORDS = ("zero", "one", "two", "three")
OBJECT_NOUNS = ("shapes", "objects", "figures")

_SIZE_RADIUS = {"small": 0.085, "medium": 0.13, "large": 0.185}
# Every shape fits in this many radii from its centre, whatever the rotation.
_EXTENT = 1.1


def _polygon_edges(vertices):
    """Half-planes `a*u + b*v <= d` of a convex polygon (oriented inward)."""
    gu = sum(p[0] for p in vertices) / len(vertices)
    gv = sum(p[1] for p in vertices) / len(vertices)
    edges = []
    for k, (pu, pv) in enumerate(vertices):
        qu, qv = vertices[(k + 1) % len(vertices)]
        a, b = qv - pv, pu - qu
        d = a * pu + b * pv
        if a * gu + b * gv > d:
            a, b, d = -a, -b, -d
        edges.append((a, b, d))
    return tuple(edges)


def _unit_geometry():
    # Trigonometric constants from square roots only (IEEE correctly rounded,
    # hence identical everywhere), in local coordinates with v pointing down.
    r5 = math.sqrt(5.0)
    c36, s36 = (1.0 + r5) / 4.0, math.sqrt(10.0 - 2.0 * r5) / 4.0
    c72, s72 = (r5 - 1.0) / 4.0, math.sqrt(10.0 + 2.0 * r5) / 4.0
    cos_t = (1.0, c36, c72, -c72, -c36, -1.0, -c36, -c72, c72, c36)
    sin_t = (0.0, s36, s72, s72, s36, 0.0, -s36, -s72, -s72, -s36)
    r3 = math.sqrt(3.0)

    def polar(radius, k):  # angle k * 36 degrees clockwise from "up"
        return (radius * sin_t[k % 10], -radius * cos_t[k % 10])

    geometry = {}
    q = 0.75
    geometry["square"] = (_polygon_edges(((-q, -q), (q, -q), (q, q), (-q, q))),)
    geometry["diamond"] = (
        _polygon_edges(((0.0, -1.02), (1.02, 0.0), (0.0, 1.02), (-1.02, 0.0))),
    )
    t = 1.05
    geometry["triangle"] = (
        _polygon_edges(
            ((0.0, -t), (t * r3 / 2.0, t / 2.0), (-t * r3 / 2.0, t / 2.0))
        ),
    )
    h = 0.95
    geometry["hexagon"] = (
        _polygon_edges(
            (
                (h, 0.0),
                (h / 2.0, h * r3 / 2.0),
                (-h / 2.0, h * r3 / 2.0),
                (-h, 0.0),
                (-h / 2.0, -h * r3 / 2.0),
                (h / 2.0, -h * r3 / 2.0),
            )
        ),
    )
    outer, inner = 1.05, 0.47
    geometry["star"] = tuple(
        _polygon_edges(
            (
                (0.0, 0.0),
                polar(inner, 2 * k - 1),
                polar(outer, 2 * k),
                polar(inner, 2 * k + 1),
            )
        )
        for k in range(5)
    )
    a, b = 0.3, 0.95
    geometry["cross"] = (
        _polygon_edges(((-b, -a), (b, -a), (b, a), (-b, a))),
        _polygon_edges(((-a, -b), (a, -b), (a, b), (-a, b))),
    )
    return geometry


_GEOMETRY = _unit_geometry()


def _check_choice(value, allowed, name):
    if value not in allowed:
        raise ValueError(
            f"`{name}` must be one of {allowed}. Received: {value!r}"
        )


def normalize_holdout(holdout):
    """Validate held-out attribute combinations.

    Args:
        holdout: None or a sequence of dicts mapping attribute names
            (`"shape"`, `"color"`, `"size"`, `"fill"`) to values. An object
            matches a combination when all its listed attributes are equal.

    Returns:
        A tuple of dicts (possibly empty).
    """
    if holdout is None:
        return ()
    if isinstance(holdout, dict):
        holdout = (holdout,)
    vocab = {"shape": SHAPES, "color": COLORS, "size": SIZES, "fill": FILLS}
    out = []
    for combo in holdout:
        if isinstance(combo, (list, tuple)):
            combo = dict(combo)
        if not isinstance(combo, dict) or not combo:
            raise ValueError(
                "`holdout` must be a sequence of non-empty dicts such as "
                f"{{'color': 'blue', 'shape': 'star'}}. Received: {combo!r}"
            )
        for key, value in combo.items():
            if key not in vocab:
                raise ValueError(
                    f"`holdout` keys must be among {tuple(vocab)}. "
                    f"Received: {key!r}"
                )
            _check_choice(value, vocab[key], f"holdout[{key!r}]")
        out.append(dict(sorted(combo.items())))
    return tuple(out)


def _matches(obj, holdout):
    return any(all(obj[k] == v for k, v in combo.items()) for combo in holdout)


class _Stream:
    """Buffered uniform draws from a PCG64 generator.

    Scalar calls into `numpy.random.Generator` cost microseconds each; the
    scene sampler makes hundreds per image, so doubles are drawn in blocks.
    Every derived value uses IEEE-exact arithmetic (one multiply, floor).
    """

    def __init__(self, generator, block=128):
        self._generator = generator
        self._block = block
        self._values = []
        self._pos = 0

    def random(self):
        if self._pos >= len(self._values):
            self._values = self._generator.random(self._block).tolist()
            self._pos = 0
        value = self._values[self._pos]
        self._pos += 1
        return value

    def integers(self, low, high=None):
        if high is None:
            low, high = 0, low
        return low + min(int(self.random() * (high - low)), high - low - 1)

    def uniform(self, low, high):
        return low + (high - low) * self.random()

    def permutation(self, n):
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.integers(i + 1)
            order[i], order[j] = order[j], order[i]
        return order


def _rng(seed, split, index, stream):
    seq = np.random.SeedSequence(
        [
            int(seed) & 0xFFFFFFFF,
            zlib.crc32(split.encode("utf-8")),
            int(index),
            stream,
        ]
    )
    return _Stream(np.random.Generator(np.random.PCG64(seq)))


def _as_stream(rng):
    if isinstance(rng, _Stream):
        return rng
    if isinstance(rng, np.random.Generator):
        return _Stream(rng)
    raise ValueError(
        "`rng` must be a numpy.random.Generator. Received: "
        f"{type(rng).__name__}."
    )


def _pick(rng, options):
    return options[rng.integers(len(options))]


def _relation(a, b):
    """Spatial relation of object `a` with respect to object `b`."""
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _region(x, y):
    col = 0 if x < 1.0 / 3.0 else (1 if x < 2.0 / 3.0 else 2)
    row = 0 if y < 1.0 / 3.0 else (1 if y < 2.0 / 3.0 else 2)
    return REGIONS[row * 3 + col]


def sample_scene(rng, holdout=(), min_objects=1, max_objects=MAX_OBJECTS):
    """Draw the layout and attributes of one scene.

    Args:
        rng: `numpy.random.Generator`.
        holdout: tuple of dicts from `normalize_holdout`; matching objects
            are never drawn.
        min_objects: int. Fewest objects.
        max_objects: int. Most objects (at most 3).

    Returns:
        A dict with `objects` (list of dicts), `relations` (list of dicts
        with `subject`, `relation`, `object` indices), `background`,
        `tone` and the background colour parameters.
    """
    rng = _as_stream(rng)
    u = rng.random()
    span = max_objects - min_objects + 1
    num = min_objects + min(int(u * span), span - 1)
    draws = 0
    while True:
        objects = []
        seen = set()
        while len(objects) < num:
            draws += 1
            if draws > 10000:
                raise ValueError(
                    "`holdout` excludes (nearly) every object; received "
                    f"{list(holdout)}."
                )
            obj = {
                "shape": _pick(rng, SHAPES),
                "color": _pick(rng, COLORS),
                "size": _pick(rng, SIZES),
                "fill": _pick(rng, FILLS),
            }
            # Distinct (shape, colour) pairs keep every caption's references
            # unambiguous.
            if (obj["shape"], obj["color"]) in seen or _matches(obj, holdout):
                continue
            seen.add((obj["shape"], obj["color"]))
            objects.append(obj)
        if _place(rng, objects):
            break
    relations = []
    for i in range(len(objects)):
        for j in range(i + 1, len(objects)):
            relations.append(
                {
                    "subject": i,
                    "relation": _relation(objects[i], objects[j]),
                    "object": j,
                }
            )
    background = _pick(rng, BACKGROUNDS)
    level = rng.integers(78, 173)
    tone = "dark" if level < 110 else ("medium" if level < 142 else "light")
    return {
        "objects": objects,
        "relations": relations,
        "background": background,
        "tone": tone,
        "level": level,
        "tint": [rng.integers(-18, 19) for _ in range(3)],
        "second_delta": rng.integers(-45, 46),
        "direction": rng.integers(4),
        "noise_seed": rng.integers(2**31),
    }


def _place(rng, objects):
    """Place objects without overlap and with a clear relation per pair."""
    for _ in range(40):
        placed = []
        for obj in objects:
            radius = _SIZE_RADIUS[obj["size"]] * rng.uniform(0.93, 1.07)
            margin = _EXTENT * radius + 0.02
            ok = False
            for _ in range(30):
                x = rng.uniform(margin, 1.0 - margin)
                y = rng.uniform(margin, 1.0 - margin)
                ok = True
                for other in placed:
                    dx, dy = abs(x - other["x"]), abs(y - other["y"])
                    gap = _EXTENT * (radius + other["radius"]) + 0.03
                    # Far enough apart, and one axis clearly dominates so the
                    # relation word is unambiguous.
                    if dx * dx + dy * dy < gap * gap or max(dx, dy) < 1.6 * min(
                        dx, dy
                    ):
                        ok = False
                        break
                if ok:
                    break
            if not ok:
                break
            placed.append({"x": x, "y": y, "radius": radius})
        if len(placed) == len(objects):
            for obj, pos in zip(objects, placed):
                obj.update(pos)
                obj["region"] = _region(pos["x"], pos["y"])
                obj["rotation"] = rng.uniform(-0.1, 0.1)
                obj["rgb"] = [
                    min(255, max(0, c + rng.integers(-14, 15)))
                    for c in COLOR_RGB[obj["color"]]
                ]
                obj["stripe_direction"] = rng.integers(4)
            return True
    return False


# === Rendering ===


def _background(scene, size):
    level = scene["level"]
    c0 = np.array([level + t for t in scene["tint"]], dtype=np.int32)
    kind = scene["background"]
    if kind == "gradient":
        c1 = np.clip(c0 + scene["second_delta"], 0, 255)
        ramp_len = size - 1
        idx = np.arange(size, dtype=np.int32)
        direction = scene["direction"]
        if direction == 0:
            t = np.broadcast_to(idx[None, :], (size, size))
        elif direction == 1:
            t = np.broadcast_to(idx[:, None], (size, size))
        elif direction == 2:
            t = idx[None, :] + idx[:, None]
            ramp_len = 2 * (size - 1)
        else:
            t = idx[None, :] + (size - 1 - idx[:, None])
            ramp_len = 2 * (size - 1)
        t = t[..., None]
        img = (c0 * (ramp_len - t) + c1 * t + ramp_len // 2) // ramp_len
    else:
        img = np.broadcast_to(c0, (size, size, 3)).copy()
        if kind == "speckled":
            noise = np.random.Generator(np.random.PCG64(scene["noise_seed"]))
            img = img + noise.integers(
                -12, 13, size=(size, size, 1), dtype=np.int32
            )
        elif kind == "checkered":
            cell = max(2, size // 8)
            idx = np.arange(size, dtype=np.int32) // cell
            parity = ((idx[None, :] + idx[:, None]) % 2)[..., None]
            img = img + (parity * 2 - 1) * 9
    return np.clip(img, 0, 255).astype(np.int32)


def _erode(mask, k):
    """Erosion by a (2k+1)^2 square, via an integer summed-area table."""
    h, w = mask.shape
    padded = np.zeros((h + 2 * k + 1, w + 2 * k + 1), dtype=np.int32)
    padded[k + 1 : k + 1 + h, k + 1 : k + 1 + w] = mask
    table = padded.cumsum(axis=0).cumsum(axis=1)
    n = 2 * k + 1
    window = table[n:, n:] - table[:-n, n:] - table[n:, :-n] + table[:-n, :-n]
    return window == n * n


def _shape_mask(shape, dx, dy, radius, cos_r, sin_r, inset=0.0):
    """Inside test on the subsample grid.

    Args:
        shape: str. One of `SHAPES`.
        dx, dy: float32 (W,) and (H,) subsample offsets from the centre (px).
        radius: float. Object radius (px).
        cos_r, sin_r: floats. Rotation.
        inset: float. Shrink the shape by this many pixels (the inside of an
            outline). Polygon edges move inward by exactly `inset`; edges
            through the centre are internal (star kites) and stay put.

    Returns:
        bool (H, W) mask, or None when `inset` is not supported analytically
        (the caller erodes instead).
    """
    f32 = np.float32
    if shape == "circle":
        rr = 0.92 * radius - inset
        return np.add.outer(dy * dy, dx * dx) <= f32(rr * rr)
    if shape == "heart":
        if inset:
            return None
        u = np.add.outer(f32(sin_r / radius) * dy, f32(cos_r / radius) * dx)
        v = np.add.outer(f32(cos_r / radius) * dy, f32(-sin_r / radius) * dx)
        # Implicit heart (x^2 + y^2 - 1)^3 <= x^2 y^3 (y up), fitted in the
        # unit disc.
        x = u * f32(1.08)
        y = v * f32(-1.08) + f32(0.13)
        x2 = x * x
        q = x2 + y * y - f32(1.0)
        return q * q * q <= x2 * (y * y * y)
    mask = None
    shift = inset / radius
    for polygon in _GEOMETRY[shape]:
        part = None
        for a, b, d in polygon:
            if d > 1e-9:
                d = d - shift * math.sqrt(a * a + b * b)
            # a*u + b*v with u, v the rotated, radius-scaled coordinates.
            ca = f32((a * cos_r - b * sin_r) / radius)
            cb = f32((a * sin_r + b * cos_r) / radius)
            half = np.add.outer(cb * dy, ca * dx) <= f32(d)
            if part is None:
                part = half
            else:
                part &= half
        if mask is None:
            mask = part
        else:
            mask |= part
    return mask


def _coverage(mask, h, w, factor):
    """Count covered subsamples per pixel (exact integers)."""
    if factor == 4:
        # Four bool bytes in one uint32 word: multiplying by 0x01010101
        # sums them into the top byte (each is 0/1, so nothing carries).
        words = (mask.view(np.uint32) * np.uint32(0x01010101)) >> np.uint32(24)
        rows = words.reshape(h, 4, w)
        return (rows[:, 0] + rows[:, 1] + rows[:, 2] + rows[:, 3]).astype(
            np.int32
        )
    if factor == 2:
        words = (mask.view(np.uint16) * np.uint16(0x0101)) >> np.uint16(8)
        rows = words.reshape(h, 2, w)
        return (rows[:, 0] + rows[:, 1]).astype(np.int32)
    return mask.reshape(h, factor, w, factor).sum(axis=(1, 3), dtype=np.int32)


def _render_object(img, obj, size, factor):
    cx, cy = obj["x"] * size, obj["y"] * size
    radius = obj["radius"] * size
    ext = _EXTENT * radius + 1.5
    x0, x1 = max(0, math.floor(cx - ext)), min(size, math.ceil(cx + ext))
    y0, y1 = max(0, math.floor(cy - ext)), min(size, math.ceil(cy + ext))
    w, h = x1 - x0, y1 - y0
    jx = np.arange(w * factor, dtype=np.int32)
    jy = np.arange(h * factor, dtype=np.int32)
    # Subsample centres relative to the object centre, in pixels. float32
    # elementwise arithmetic is IEEE-exact, hence the same everywhere.
    dx = (
        (jx.astype(np.float32) + np.float32(0.5)) / np.float32(factor)
    ) + np.float32(x0 - cx)
    dy = (
        (jy.astype(np.float32) + np.float32(0.5)) / np.float32(factor)
    ) + np.float32(y0 - cy)
    t = obj["rotation"]
    cos_r, sin_r = (1.0 - t * t) / (1.0 + t * t), (2.0 * t) / (1.0 + t * t)
    shape = obj["shape"]
    mask = _shape_mask(shape, dx, dy, radius, cos_r, sin_r)
    if obj["fill"] != "solid":
        band = max(1.0, 0.16 * radius)
        inner = _shape_mask(shape, dx, dy, radius, cos_r, sin_r, inset=band)
        if inner is None:
            inner = _erode(mask, max(1, int(round(band * factor))))
        if obj["fill"] == "outlined":
            mask &= ~inner
        else:
            period = max(2, int(round(max(1.5, 0.27 * radius) * factor)))
            ix = (jx + x0 * factor)[None, :]
            iy = (jy + y0 * factor)[:, None]
            direction = obj["stripe_direction"]
            if direction == 0:
                coord = np.broadcast_to(iy, mask.shape)
            elif direction == 1:
                coord = np.broadcast_to(ix, mask.shape)
            elif direction == 2:
                coord = ix + iy
            else:
                coord = ix - iy + 4 * size * factor
            off = ((coord // period) & 1).astype(bool)
            mask &= ~(inner & off)
    counts = _coverage(mask, h, w, factor)
    area = factor * factor
    color = np.array(obj["rgb"], dtype=np.int32)
    c = counts[..., None]
    patch = img[y0:y1, x0:x1]
    img[y0:y1, x0:x1] = (patch * (area - c) + color * c + area // 2) // area


def render_scene(scene, image_size=64, supersample=None):
    """Draw a scene from `sample_scene` as a uint8 (H, W, 3) array.

    Args:
        scene: dict from `sample_scene`.
        image_size: int. Output height and width.
        supersample: int or None. Anti-aliasing factor per axis (coverage is
            counted on a `supersample`-times finer grid). None picks 4 up to
            128 px and 2 above.

    Returns:
        uint8 numpy array of shape (image_size, image_size, 3).
    """
    factor = supersample or (4 if image_size <= 128 else 2)
    img = _background(scene, image_size)
    for obj in scene["objects"]:
        _render_object(img, obj, image_size, factor)
    return img.astype(np.uint8)


# === Captions ===


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(rng, obj, article="a"):
    """E.g. 'a small red striped star' or 'a big blue circle with stripes'."""
    adjectives = []
    if rng.random() < 0.8:
        adjectives.append(_pick(rng, SIZE_WORDS[obj["size"]]))
    color = (
        _pick(rng, COLOR_WORDS[obj["color"]]) if rng.random() < 0.93 else None
    )
    fill = None
    suffix = None
    u = rng.random()
    if u < 0.6:
        fill = _pick(rng, FILL_WORDS[obj["fill"]])
    elif u < 0.8 and FILL_SUFFIXES[obj["fill"]]:
        suffix = _pick(rng, FILL_SUFFIXES[obj["fill"]])
    middle = [w for w in (color, fill) if w is not None]
    if len(middle) == 2 and rng.random() < 0.3:
        middle.reverse()
    words = adjectives + middle + [_pick(rng, SHAPE_WORDS[obj["shape"]])]
    if suffix:
        words.append(suffix)
    phrase = " ".join(words)
    if article == "a":
        return f"{_article(phrase)} {phrase}"
    if article:
        return f"{article} {phrase}"
    return phrase


def _reference(rng, obj, objects):
    """A short definite reference ('the star' or 'the red star')."""
    noun = _pick(rng, SHAPE_WORDS[obj["shape"]])
    unique = sum(o["shape"] == obj["shape"] for o in objects) == 1
    if unique and rng.random() < 0.6:
        return f"the {noun}"
    return f"the {_pick(rng, COLOR_WORDS[obj['color']])} {noun}"


def _join(phrases):
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _background_phrase(rng, scene):
    words = []
    if rng.random() < 0.5:
        words.append(_pick(rng, TONE_WORDS[scene["tone"]]))
    words.append(_pick(rng, BACKGROUND_WORDS[scene["background"]]))
    phrase = " ".join(words)
    return f"on {_article(phrase)} {phrase} background"


_LEADS = (
    "a picture of",
    "an image of",
    "the image shows",
    "this picture contains",
    "we can see",
    "a drawing of",
    "there is",
)
_LIST_LEADS = (
    "",
    "there are",
    "the image shows",
    "a picture with",
    "we can see",
    "a drawing of",
)
_VERBS = ("is", "sits", "appears", "lies", "")


def _count_phrase(rng, objects):
    """E.g. 'two circles and a small green star' (counts per shape)."""
    groups = {}
    for obj in objects:
        groups.setdefault(obj["shape"], []).append(obj)
    parts = []
    for shape, members in groups.items():
        if len(members) == 1:
            parts.append(_noun_phrase(rng, members[0]))
        else:
            noun = PLURALS[_pick(rng, SHAPE_WORDS[shape])]
            parts.append(f"{NUMBER_WORDS[len(members)]} {noun}")
    order = rng.permutation(len(parts))
    return _join([parts[i] for i in order])


def _caption_single(rng, scene):
    obj = scene["objects"][0]
    kind = rng.integers(7)
    region = _pick(rng, REGION_WORDS[obj["region"]])
    if kind == 0:
        return _noun_phrase(rng, obj)
    if kind == 1:
        return f"{_noun_phrase(rng, obj)} {region}"
    if kind == 2:
        return f"there is {_noun_phrase(rng, obj)} {region}"
    if kind == 3:
        return f"{_pick(rng, _LEADS)} {_noun_phrase(rng, obj)}"
    if kind == 4:
        return f"{_noun_phrase(rng, obj)} {_background_phrase(rng, scene)}"
    if kind == 5:
        return (
            f"{_pick(rng, _LEADS)} {_noun_phrase(rng, obj)} "
            f"{_background_phrase(rng, scene)}"
        )
    noun = _pick(rng, ("shape", "object", "figure"))
    return f"only one {noun}: {_noun_phrase(rng, obj)} {region}"


def _relation_clause(rng, scene, pair, mentioned):
    objects = scene["objects"]
    i, rel, j = pair["subject"], pair["relation"], pair["object"]
    if rng.random() < 0.5:
        i, j, rel = j, i, INVERSE_RELATION[rel]

    def mention(k):
        if k in mentioned:
            return _reference(rng, objects[k], objects)
        mentioned.add(k)
        return _noun_phrase(rng, objects[k])

    left = mention(i)
    right = mention(j)
    verb = _pick(rng, _VERBS)
    rel_words = _pick(rng, RELATION_WORDS[rel])
    middle = f"{verb} {rel_words}" if verb else rel_words
    return f"{left} {middle} {right}"


def _caption_multi(rng, scene):
    objects = scene["objects"]
    n = len(objects)
    kind = rng.integers(6)
    if kind == 0:  # plain list
        order = rng.permutation(n)
        lead = _pick(rng, _LIST_LEADS)
        body = _join([_noun_phrase(rng, objects[i]) for i in order])
        return f"{lead} {body}".strip()
    if kind == 1:  # list with background
        order = rng.permutation(n)
        body = _join([_noun_phrase(rng, objects[i]) for i in order])
        return f"{body} {_background_phrase(rng, scene)}"
    if kind in (2, 3):  # relations
        pairs = scene["relations"]
        first = pairs[rng.integers(len(pairs))]
        mentioned = set()
        text = _relation_clause(rng, scene, first, mentioned)
        if n == 3 and kind == 3:
            rest = [p for p in pairs if p is not first]
            second = rest[rng.integers(len(rest))]
            text += ", and " + _relation_clause(rng, scene, second, mentioned)
        elif n == 3:
            k = [m for m in range(n) if m not in mentioned][0]
            region = _pick(rng, REGION_WORDS[objects[k]["region"]])
            text += f", with {_noun_phrase(rng, objects[k])} {region}"
        return text
    if kind == 4:  # counts
        noun = _pick(rng, OBJECT_NOUNS)
        number = NUMBER_WORDS[n]
        if rng.random() < 0.5:
            return f"{number} {noun}: {_count_phrase(rng, objects)}"
        return f"there are {number} {noun}, {_count_phrase(rng, objects)}"
    # regions
    order = rng.permutation(n)
    parts = [
        f"{_noun_phrase(rng, objects[i])} "
        f"{_pick(rng, REGION_WORDS[objects[i]['region']])}"
        for i in order
    ]
    return _join(parts)


def make_captions(
    rng, scene, num_captions=NUM_CAPTIONS, max_words=MAX_CAPTION_WORDS
):
    """Write `num_captions` distinct captions of at most `max_words` words.

    Args:
        rng: `numpy.random.Generator`.
        scene: dict from `sample_scene`.
        num_captions: int. How many captions.
        max_words: int. Most whitespace-separated words per caption.

    Returns:
        A list of `num_captions` lower-case strings.
    """
    rng = _as_stream(rng)
    single = len(scene["objects"]) == 1
    captions = []
    for _ in range(num_captions * 6):
        text = (
            _caption_single(rng, scene)
            if single
            else _caption_multi(rng, scene)
        )
        if len(text.split()) <= max_words and text not in captions:
            captions.append(text)
            if len(captions) == num_captions:
                return captions
    # Rare: few distinct short captions exist; fill with short lists.
    while len(captions) < num_captions:
        text = _join([_noun_phrase(rng, o) for o in scene["objects"]])
        if len(text.split()) <= max_words:
            captions.append(text)
    return captions


# === Public generator ===


def _check_image_size(image_size):
    if (
        not isinstance(image_size, (int, np.integer))
        or isinstance(image_size, bool)
        or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise ValueError(
            "`image_size` must be an int in "
            f"[{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}]. "
            f"Received: {image_size!r}"
        )


def generate_example(
    index,
    seed=0,
    image_size=64,
    split="train",
    holdout=None,
    supersample=None,
    min_objects=1,
    max_objects=MAX_OBJECTS,
):
    """Generate the scene at position `index` of a split.

    Args:
        index: int >= 0. Position in the split.
        seed: int. Dataset seed.
        image_size: int in [32, 256]. Height and width.
        split: str. Split name; part of the per-image seed and `image_id`.
        holdout: None or sequence of attribute dicts never drawn here (see
            `normalize_holdout`).
        supersample: int or None. Anti-aliasing factor (see `render_scene`).
        min_objects: int in [1, 3].
        max_objects: int in [min_objects, 3].

    Returns:
        A dict: `image_id` (`f"{split}_{index:06d}"`), `index`, `image`
        (uint8 (H, W, 3)), `captions` (list of 10 str), `objects` (list of
        dicts with `shape`, `color`, `size`, `fill`, `x`, `y`, `radius`
        (fractions of the image size), `region`, `rotation`, `rgb`),
        `relations` (list of dicts `subject`, `relation`, `object`, one per
        pair, the relation of `subject` with respect to `object`),
        `background` and `tone`.
    """
    holdout = normalize_holdout(holdout)
    scene = sample_scene(
        _rng(seed, split, index, 0),
        holdout=holdout,
        min_objects=min_objects,
        max_objects=max_objects,
    )
    image = render_scene(scene, image_size, supersample)
    captions = make_captions(_rng(seed, split, index, 1), scene)
    objects = [
        {
            k: o[k]
            for k in (
                "shape",
                "color",
                "size",
                "fill",
                "x",
                "y",
                "radius",
                "region",
                "rotation",
                "rgb",
            )
        }
        for o in scene["objects"]
    ]
    return {
        "image_id": f"{split}_{index:06d}",
        "index": int(index),
        "image": image,
        "captions": captions,
        "objects": objects,
        "relations": scene["relations"],
        "background": scene["background"],
        "tone": scene["tone"],
    }


def generate(
    num_images,
    seed=0,
    image_size=64,
    split="train",
    start=0,
    holdout=None,
    supersample=None,
    min_objects=1,
    max_objects=MAX_OBJECTS,
):
    """Yield procedurally drawn captioned scenes.

    Each image holds 1-3 objects (shape, colour, size, fill, position,
    pairwise relations) on a varied background, with 10 captions that mention
    only what is in the image. Image `index` depends only on
    `(seed, split, index)`, so any slice can be generated on its own and the
    same seed gives identical bytes on every machine.

    Args:
        num_images: int >= 0. How many images.
        seed: int. Dataset seed.
        image_size: int in [32, 256]. Height and width in pixels.
        split: str. Split name (seeds the stream, prefixes `image_id`).
        start: int >= 0. Index of the first image.
        holdout: None or sequence of dicts of attribute combinations never
            drawn (pass them for the training split only), e.g.
            `DEFAULT_HOLDOUT`.
        supersample: int or None. Anti-aliasing factor per axis.
        min_objects: int in [1, 3]. Fewest objects per image.
        max_objects: int in [min_objects, 3]. Most objects per image.

    Yields:
        dicts as described in `generate_example`.

    Examples:

    ```python
    from keras_lgvq.datasets import scenes

    for example in scenes.generate(4, seed=0, image_size=64):
        print(example["image"].shape, example["captions"][0])
    ```
    """
    for name, value in (("num_images", num_images), ("start", start)):
        if (
            not isinstance(value, (int, np.integer))
            or isinstance(value, bool)
            or value < 0
        ):
            raise ValueError(
                f"`{name}` must be an int >= 0. Received: {value!r}"
            )
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"`seed` must be an int. Received: {seed!r}")
    _check_image_size(image_size)
    if not isinstance(split, str) or not split:
        raise ValueError(
            f"`split` must be a non-empty str. Received: {split!r}"
        )
    if supersample is not None and (
        not isinstance(supersample, (int, np.integer))
        or not 1 <= supersample <= 8
    ):
        raise ValueError(
            "`supersample` must be None or an int in [1, 8]. Received: "
            f"{supersample!r}"
        )
    if not (
        isinstance(min_objects, int)
        and isinstance(max_objects, int)
        and 1 <= min_objects <= max_objects <= MAX_OBJECTS
    ):
        raise ValueError(
            "`min_objects` and `max_objects` must be ints with "
            f"1 <= min_objects <= max_objects <= {MAX_OBJECTS}. Received: "
            f"{min_objects!r}, {max_objects!r}"
        )
    holdout = normalize_holdout(holdout)
    for index in range(start, start + num_images):
        yield generate_example(
            index,
            seed=seed,
            image_size=image_size,
            split=split,
            holdout=holdout,
            supersample=supersample,
            min_objects=min_objects,
            max_objects=max_objects,
        )


def encode_png(image):
    """Encode a uint8 (H, W, 3) array as PNG bytes (numpy + zlib only).

    Every row uses the PNG "Up" filter, which suits smooth backgrounds.

    Args:
        image: uint8 numpy array of shape (H, W, 3).

    Returns:
        bytes of a valid 8-bit RGB PNG file.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            "`image` must be a uint8 array of shape (H, W, 3). Received "
            f"dtype {image.dtype} and shape {image.shape}."
        )
    h, w, _ = image.shape
    rows = image.reshape(h, w * 3)
    filtered = np.empty((h, w * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = 2
    filtered[0, 1:] = rows[0]
    # uint8 arithmetic wraps modulo 256, as the Up filter requires.
    filtered[1:, 1:] = rows[1:] - rows[:-1]

    def chunk(tag, data):
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def encode_range(args):
    """Generate and encode images [start, stop) of a split as TFDS records.

    Module-level (and numpy-only) so that worker processes can run it.

    Args:
        args: tuple `(start, stop, seed, image_size, split, holdout)`.

    Returns:
        A list of feature dicts from `to_record`.
    """
    start, stop, seed, image_size, split, holdout = args
    records = []
    for example in generate(
        stop - start,
        seed=seed,
        image_size=image_size,
        split=split,
        start=start,
        holdout=holdout,
    ):
        records.append(to_record(example))
    return records


def to_record(example):
    """Turn a `generate` example into a TFDS feature dict (PNG image bytes).

    Args:
        example: dict from `generate_example`.

    Returns:
        A dict matching the `lgvq_scenes` TFDS features.
    """
    objects = example["objects"]
    return {
        "image": encode_png(example["image"]),
        "image_id": example["image_id"],
        "captions": list(example["captions"]),
        "objects": {
            "shape": [o["shape"] for o in objects],
            "color": [o["color"] for o in objects],
            "size": [o["size"] for o in objects],
            "fill": [o["fill"] for o in objects],
            "x": [o["x"] for o in objects],
            "y": [o["y"] for o in objects],
            "radius": [o["radius"] for o in objects],
            "region": [o["region"] for o in objects],
        },
        "relations": {
            "subject": [r["subject"] for r in example["relations"]],
            "relation": [r["relation"] for r in example["relations"]],
            "object": [r["object"] for r in example["relations"]],
        },
        "num_objects": len(objects),
        "background": example["background"],
    }

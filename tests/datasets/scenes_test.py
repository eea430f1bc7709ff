"""Tests of the procedural captioned scenes generator (numpy only)."""

import hashlib
import io
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

from keras_lgvq.datasets import scenes

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only

# sha256 over the first 4 images (raw bytes) and their captions, seed 0,
# 64 px, split "train", no holdout. Recorded once; any change to sampling,
# rendering or captions changes it.
EXPECTED_SHA256 = (
    "3365ace23c4ab7502c7de6778424ff7f3af1b53615401d68cc78b1b669f9dd1f"
)
# Same for 16 images of the "test" split at 32 px.
EXPECTED_SHA256_TEST_32 = (
    "1572bdaa9deb8050d1d1b5da0790d4ad710d7b74b2a99f4e791639985c27b223"
)


def _digest(examples):
    h = hashlib.sha256()
    for ex in examples:
        h.update(ex["image"].tobytes())
        h.update("\n".join(ex["captions"]).encode("utf-8"))
    return h.hexdigest()


@pytest.fixture(scope="module")
def examples():
    return list(scenes.generate(48, seed=0, image_size=64))


def test_vocabularies():
    assert len(scenes.SHAPES) >= 6 and len(set(scenes.SHAPES)) == len(
        scenes.SHAPES
    )
    assert len(scenes.COLORS) >= 8 and len(set(scenes.COLORS)) == len(
        scenes.COLORS
    )
    assert scenes.SIZES == ("small", "medium", "large")
    assert scenes.FILLS == ("solid", "striped", "outlined")
    assert set(scenes.RELATIONS) == {"left of", "right of", "above", "below"}
    for table, vocab in (
        (scenes.SHAPE_WORDS, scenes.SHAPES),
        (scenes.COLOR_WORDS, scenes.COLORS),
        (scenes.SIZE_WORDS, scenes.SIZES),
        (scenes.FILL_WORDS, scenes.FILLS),
    ):
        assert set(table) == set(vocab)
        words = [w for ws in table.values() for w in ws]
        assert len(words) == len(set(words)), "a word must name one value only"


def test_determinism_hash():
    first = list(scenes.generate(4, seed=0, image_size=64))
    again = list(scenes.generate(4, seed=0, image_size=64))
    assert _digest(first) == _digest(again)
    assert _digest(first) == EXPECTED_SHA256
    small = list(scenes.generate(16, seed=0, image_size=32, split="test"))
    assert _digest(small) == EXPECTED_SHA256_TEST_32


def test_index_addressable_and_seed_dependent():
    full = list(scenes.generate(4, seed=3, image_size=32))
    tail = list(scenes.generate(2, seed=3, image_size=32, start=2))
    assert _digest(full[2:]) == _digest(tail)
    assert [e["image_id"] for e in tail] == ["train_000002", "train_000003"]
    other_seed = list(scenes.generate(4, seed=4, image_size=32))
    other_split = list(scenes.generate(4, seed=3, image_size=32, split="test"))
    assert _digest(other_seed) != _digest(full)
    assert _digest(other_split) != _digest(full)
    assert other_split[0]["image_id"] == "test_000000"


def test_example_structure(examples):
    counts = set()
    for i, ex in enumerate(examples):
        assert ex["image_id"] == f"train_{i:06d}"
        assert ex["image"].dtype == np.uint8 and ex["image"].shape == (
            64,
            64,
            3,
        )
        assert len(ex["captions"]) == 10
        assert all(
            isinstance(c, str) and c == c.lower() for c in ex["captions"]
        )
        assert all(1 <= len(c.split()) <= 27 for c in ex["captions"])
        assert len(set(ex["captions"])) >= 8
        n = len(ex["objects"])
        counts.add(n)
        assert 1 <= n <= 3
        assert len(ex["relations"]) == n * (n - 1) // 2
        pairs = set()
        for obj in ex["objects"]:
            assert obj["shape"] in scenes.SHAPES
            assert obj["color"] in scenes.COLORS
            assert obj["size"] in scenes.SIZES
            assert obj["fill"] in scenes.FILLS
            assert 0.0 < obj["x"] < 1.0 and 0.0 < obj["y"] < 1.0
            pairs.add((obj["shape"], obj["color"]))
        assert (
            len(pairs) == n
        ), "(shape, colour) pairs are distinct within an image"
        assert ex["background"] in scenes.BACKGROUNDS
    assert counts == {1, 2, 3}
    # Every attribute value occurs somewhere in 48 images.
    objects = [o for ex in examples for o in ex["objects"]]
    assert {o["size"] for o in objects} == set(scenes.SIZES)
    assert {o["fill"] for o in objects} == set(scenes.FILLS)
    assert len({o["shape"] for o in objects}) == len(scenes.SHAPES)
    assert len({o["color"] for o in objects}) == len(scenes.COLORS)


def test_geometry_and_relations(examples):
    for ex in examples:
        objs = ex["objects"]
        for obj in objs:
            margin = obj["radius"]
            assert (
                margin <= obj["x"] <= 1 - margin
                and margin <= obj["y"] <= 1 - margin
            )
            col = min(int(obj["x"] * 3), 2)
            row = min(int(obj["y"] * 3), 2)
            assert obj["region"] == scenes.REGIONS[row * 3 + col]
        for rel in ex["relations"]:
            a, b = objs[rel["subject"]], objs[rel["object"]]
            dx, dy = a["x"] - b["x"], a["y"] - b["y"]
            # Non-overlapping, and one axis clearly dominates.
            assert np.hypot(dx, dy) > a["radius"] + b["radius"]
            assert max(abs(dx), abs(dy)) >= 1.5 * min(abs(dx), abs(dy))
            expected = (
                ("left of" if dx < 0 else "right of")
                if abs(dx) > abs(dy)
                else ("above" if dy < 0 else "below")
            )
            assert rel["relation"] == expected


# === Caption faithfulness: an independent parser ===


def _alternation(words):
    return "|".join(
        sorted((re.escape(w) for w in words), key=len, reverse=True)
    )


def _inverse(table):
    return {w: value for value, words in table.items() for w in words}


SHAPE_OF = _inverse(scenes.SHAPE_WORDS)
COLOR_OF = _inverse(scenes.COLOR_WORDS)
SIZE_OF = _inverse(scenes.SIZE_WORDS)
FILL_OF = _inverse(scenes.FILL_WORDS)
SUFFIX_OF = _inverse(scenes.FILL_SUFFIXES)
PLURAL_OF = {p: SHAPE_OF[s] for s, p in scenes.PLURALS.items()}
RELATION_OF = _inverse(scenes.RELATION_WORDS)
REGION_OF = _inverse(scenes.REGION_WORDS)
ADJ = _alternation(list(COLOR_OF) + list(SIZE_OF) + list(FILL_OF))
NP = (
    rf"(?:a|an|the)\s+((?:(?:{ADJ})\s+)*)({_alternation(SHAPE_OF)})"
    rf"(?:\s+({_alternation(SUFFIX_OF)}))?\b"
)
NP_RE = re.compile(rf"\b{NP}")
REL_RE = re.compile(
    rf"\b({NP})\s+(?:(?:is|sits|appears|lies)\s+)?"
    rf"({_alternation(RELATION_OF)})\s+({NP})"
)
REGION_RE = re.compile(rf"\b({NP})\s+({_alternation(REGION_OF)})\b(?!\s+of)")
COUNT_RE = re.compile(
    rf"\b(one|two|three)\s+({_alternation(PLURAL_OF)}|shapes|objects|figures)\b"
)


def _np_attributes(text):
    match = re.fullmatch(NP, text)
    assert match, text
    attrs = {"shape": SHAPE_OF[match.group(2)]}
    for word in match.group(1).split():
        for key, table in (
            ("color", COLOR_OF),
            ("size", SIZE_OF),
            ("fill", FILL_OF),
        ):
            if word in table:
                assert key not in attrs, f"two {key} words in {text!r}"
                attrs[key] = table[word]
    if match.group(3):
        assert "fill" not in attrs
        attrs["fill"] = SUFFIX_OF[match.group(3)]
    return attrs


def _matching(objects, attrs):
    return [
        i
        for i, o in enumerate(objects)
        if all(o[k] == v for k, v in attrs.items())
    ]


def _relation(a, b):
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _check_caption(caption, objects):
    words = caption.replace(",", " ").replace(":", " ").split()
    present = {
        k: {o[k] for o in objects} for k in ("shape", "color", "size", "fill")
    }
    # Every attribute word anywhere names something present.
    for word in words:
        for key, table in (
            ("shape", SHAPE_OF),
            ("color", COLOR_OF),
            ("size", SIZE_OF),
            ("fill", FILL_OF),
        ):
            if word in table:
                assert table[word] in present[key], (caption, word)
        if word in PLURAL_OF:
            assert PLURAL_OF[word] in present["shape"], (caption, word)
    # Every noun phrase describes some object.
    nps = list(NP_RE.finditer(caption))
    assert nps or COUNT_RE.search(caption), caption
    for m in nps:
        assert _matching(objects, _np_attributes(m.group(0))), (
            caption,
            m.group(0),
        )
    # Relations hold between some pair matching the two phrases.
    for m in REL_RE.finditer(caption):
        left = _matching(objects, _np_attributes(m.group(1)))
        right = _matching(objects, _np_attributes(m.group(6)))
        relation = RELATION_OF[m.group(5)]
        assert any(
            i != j and _relation(objects[i], objects[j]) == relation
            for i in left
            for j in right
        ), (caption, m.group(0))
    for m in REGION_RE.finditer(caption):
        found = _matching(objects, _np_attributes(m.group(1)))
        region = REGION_OF[m.group(5)]
        assert any(objects[i]["region"] == region for i in found), (
            caption,
            m.group(0),
        )
    for m in COUNT_RE.finditer(caption):
        n = ["one", "two", "three"].index(m.group(1)) + 1
        noun = m.group(2)
        if noun in ("shapes", "objects", "figures"):
            assert n == len(objects), caption
        else:
            assert n == sum(
                o["shape"] == PLURAL_OF[noun] for o in objects
            ), caption
    return len(list(REL_RE.finditer(caption))), len(
        list(COUNT_RE.finditer(caption))
    )


def test_captions_mention_only_what_is_present(examples):
    relations = counts = 0
    for ex in examples:
        for caption in ex["captions"]:
            r, c = _check_caption(caption, ex["objects"])
            relations += r
            counts += c
    # The templates really use relations and counts.
    assert relations > 50 and counts > 20


def test_parser_rejects_wrong_captions(examples):
    ex = next(e for e in examples if len(e["objects"]) == 2)
    a, b = ex["objects"]
    absent_color = next(
        c for c in scenes.COLORS if c not in (a["color"], b["color"])
    )
    with pytest.raises(AssertionError):
        _check_caption(f"a {absent_color} {a['shape']}", ex["objects"])
    wrong = scenes.INVERSE_RELATION[_relation(a, b)]
    with pytest.raises(AssertionError):
        _check_caption(
            f"a {a['color']} {a['shape']} is {wrong} "
            f"a {b['color']} {b['shape']}",
            ex["objects"],
        )


def test_holdout_combinations_absent_from_train():
    holdout = [{"shape": "circle"}, {"color": "blue", "fill": "solid"}]
    train = list(scenes.generate(48, seed=1, image_size=32, holdout=holdout))
    for ex in train:
        for o in ex["objects"]:
            assert o["shape"] != "circle"
            assert not (o["color"] == "blue" and o["fill"] == "solid")
    val = list(scenes.generate(48, seed=1, image_size=32, split="validation"))
    assert any(o["shape"] == "circle" for ex in val for o in ex["objects"])
    with pytest.raises(ValueError, match="holdout"):
        list(scenes.generate(1, holdout=[{"shape": "blob"}]))
    with pytest.raises(ValueError, match="holdout"):
        list(scenes.generate(1, holdout=[{"hue": "red"}]))
    with pytest.raises(ValueError, match="excludes"):
        list(scenes.generate(1, holdout=[{"size": s} for s in scenes.SIZES]))


def test_pixels_follow_attributes(examples):
    checked = 0
    for ex in examples:
        image = ex["image"].astype(int)
        for o in ex["objects"]:
            cx, cy = int(o["x"] * 64), int(o["y"] * 64)
            centre = image[cy, cx]
            dist = np.abs(centre - np.array(o["rgb"])).max()
            if o["fill"] == "solid":
                assert dist <= 2, (ex["image_id"], o)
                checked += 1
            elif o["fill"] == "outlined" and o["size"] != "small":
                # The inside of an outline shows the background.
                assert (
                    dist > 10 or np.abs(np.array(o["rgb"]) - centre).sum() > 20
                )
                checked += 1
    assert checked > 20


def test_antialiased_edges():
    ex = next(
        scenes.generate(1, seed=5, image_size=64, min_objects=1, max_objects=1)
    )
    obj = ex["objects"][0]
    image = ex["image"].astype(np.int64)
    y, x = int(obj["y"] * 64), int(obj["x"] * 64)
    r = int(obj["radius"] * 64) + 3
    patch = image[max(0, y - r) : y + r, max(0, x - r) : x + r].reshape(-1, 3)
    color = np.array(obj["rgb"])
    # Partially covered pixels blend object and background colours.
    distances = np.abs(patch - color).max(axis=1)
    levels = len(np.unique(distances))
    assert levels > 10


@pytest.mark.parametrize("size", [32, 256])
def test_image_sizes(size):
    ex = next(scenes.generate(1, seed=2, image_size=size))
    assert ex["image"].shape == (size, size, 3)
    # Same scene whatever the size: attributes and captions do not depend on it.
    ref = next(scenes.generate(1, seed=2, image_size=64))
    assert ex["captions"] == ref["captions"]
    assert [o["shape"] for o in ex["objects"]] == [
        o["shape"] for o in ref["objects"]
    ]


def test_invalid_arguments():
    for kwargs in (
        {"image_size": 16},
        {"image_size": 300},
        {"image_size": 64.0},
        {"seed": "a"},
        {"split": ""},
        {"min_objects": 0},
        {"min_objects": 3, "max_objects": 2},
        {"supersample": 0},
    ):
        with pytest.raises(ValueError):
            list(scenes.generate(1, **kwargs))
    with pytest.raises(ValueError, match="num_images"):
        list(scenes.generate(-1))


def test_encode_png_round_trip(examples):
    from PIL import Image

    for ex in examples[:4]:
        data = scenes.encode_png(ex["image"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_array_equal(decoded, ex["image"])
        # The IDAT payload is the Up-filtered rows (independent reference).
        raw = ex["image"].reshape(64, -1).astype(np.int64)
        up = np.concatenate([raw[:1], (raw[1:] - raw[:-1]) % 256])
        expected = (
            np.concatenate([np.full((64, 1), 2), up], axis=1)
            .astype(np.uint8)
            .tobytes()
        )
        start = data.index(b"IDAT") + 4
        length = int.from_bytes(data[start - 8 : start - 4], "big")
        assert zlib.decompress(data[start : start + length]) == expected
    with pytest.raises(ValueError, match="uint8"):
        scenes.encode_png(np.zeros((4, 4, 3), np.float32))


def test_encode_range_records():
    records = scenes.encode_range((3, 5, 0, 32, "test", ()))
    assert [r["image_id"] for r in records] == ["test_000003", "test_000004"]
    ref = list(scenes.generate(2, seed=0, image_size=32, split="test", start=3))
    for rec, ex in zip(records, ref):
        assert rec["captions"] == ex["captions"]
        assert rec["num_objects"] == len(ex["objects"])
        assert rec["objects"]["shape"] == [o["shape"] for o in ex["objects"]]


def test_scenes_module_is_numpy_only():
    # Worker processes of the TFDS builder import only this module.
    code = (
        "import sys, keras_lgvq.datasets.scenes\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_building_blocks_accept_numpy_generators():
    rng = np.random.default_rng(0)
    scene = scenes.sample_scene(rng)
    image = scenes.render_scene(scene, image_size=48)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    captions = scenes.make_captions(rng, scene, num_captions=5)
    assert len(captions) == 5
    for caption in captions:
        _check_caption(caption, scene["objects"])
    with pytest.raises(ValueError, match="Generator"):
        scenes.sample_scene(0)

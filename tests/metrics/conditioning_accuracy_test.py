import keras
import numpy as np
import pytest

from keras_lgvq.datasets import scenes
from keras_lgvq.metrics import conditioning_accuracy as lib


def _object(shape, color, size="medium", fill="solid", x=0.5, y=0.5,
            confidence=1.0):
    return {
        "shape": shape, "color": color, "size": size, "fill": fill, "x": x,
        "y": y, "region": lib._region(x, y), "confidence": confidence,
    }


# === Caption parsing ===


def test_parse_noun_phrases_relations_and_references():
    parsed = lib.parse_scene_caption(
        "a tiny yellow star is to the right of a little blue circle drawn "
        "in outline, and a blue box appears right of the blue disc"
    )
    assert parsed["objects"] == [
        {"shape": "star", "size": "small", "color": "yellow"},
        {"shape": "circle", "size": "small", "color": "blue",
         "fill": "outlined"},
        {"shape": "square", "color": "blue"},
    ]
    assert parsed["relations"] == [(0, "right of", 1), (2, "right of", 1)]
    assert parsed["count"] is None and parsed["background"] is None


def test_parse_counts_regions_and_background():
    parsed = lib.parse_scene_caption(
        "three objects: two hexagons and a big striped red star in the top "
        "left corner on a pale checkered background"
    )
    assert parsed["count"] == 3
    assert parsed["shape_counts"] == {"hexagon": 2}
    assert parsed["objects"] == [
        {"shape": "star", "size": "large", "fill": "striped", "color": "red",
         "region": "top left"},
    ]
    assert parsed["background"] == "checkered" and parsed["tone"] == "light"
    single = lib.parse_scene_caption(
        "only one figure: a medium-sized violet diamond with stripes on the "
        "left side"
    )
    assert single["count"] == 1
    assert single["objects"] == [
        {"shape": "diamond", "size": "medium", "color": "purple",
         "fill": "striped", "region": "left"},
    ]
    # "on the left of" is a relation, "on the left" a region.
    rel = lib.parse_scene_caption("a red cross on the left of a green heart")
    assert rel["relations"] == [(0, "left of", 1)]
    assert "region" not in rel["objects"][0]


def test_parsed_requirements_hold_in_the_described_scenes():
    # Soundness against the generator's ground truth: every parsed
    # attribute, count and relation is true of the scene.
    checked = 0
    for example in scenes.generate(150, seed=5, split="test"):
        objects = example["objects"]
        for caption in example["captions"]:
            parsed = lib.parse_scene_caption(caption)
            matches = []
            for obj in parsed["objects"]:
                candidates = [
                    k for k, o in enumerate(objects)
                    if all(o[key] == value for key, value in obj.items())
                ]
                assert candidates, (caption, obj)
                matches.append(candidates)
                checked += len(obj)
            if parsed["count"] is not None:
                assert parsed["count"] == len(objects), caption
            for shape, number in parsed["shape_counts"].items():
                assert sum(o["shape"] == shape for o in objects) == number
            for subject, relation, target in parsed["relations"]:
                assert any(
                    lib._relation(objects[i], objects[j]) == relation
                    for i in matches[subject] for j in matches[target]
                    if i != j
                ), caption
            if parsed["background"] is not None:
                assert parsed["background"] == example["background"]
            if parsed["tone"] is not None:
                assert parsed["tone"] == example["tone"]
    assert checked > 3000


def test_held_out_combinations_of_a_parsed_object():
    obj = lib.parse_scene_caption("a small blue striped star")["objects"][0]
    assert lib.held_out_combinations(obj) == [
        {"color": "blue", "shape": "star"}
    ]
    hexagon = lib.parse_scene_caption("a stripy hexagon")["objects"][0]
    assert lib.held_out_combinations(hexagon) == [
        {"fill": "striped", "shape": "hexagon"}
    ]
    assert lib.held_out_combinations({"shape": "star"}) == []


def test_parse_rejects_non_strings():
    with pytest.raises(ValueError, match="caption"):
        lib.parse_scene_caption(3)


# === Ground truth and judging ===


def test_scene_targets_label_centres_and_ignore_borders():
    example = {
        "objects": [{"x": 0.5, "y": 0.25, "radius": 0.185}],
        "background": "plain",
        "tone": "dark",
    }
    labels = lib.scene_targets(example, 16)
    grid = labels["object"]
    assert grid[4, 8] == 1 and grid[3, 7] == 1  # near the centre
    assert grid[4, 10] == -1  # inside the object, outside its centre
    assert grid[12, 2] == 0  # empty
    assert labels["background"] == 0 and labels["tone"] == 0
    # A tiny object still labels the cell holding its centre.
    tiny = dict(example, objects=[{"x": 0.1, "y": 0.9, "radius": 0.01}])
    assert lib.scene_targets(tiny, 16)["object"][14, 1] == 1


def test_object_crops_are_centred_windows():
    images = np.arange(2 * 8 * 8 * 3, dtype="float32").reshape(2, 8, 8, 3)
    crops = lib.object_crops(images, [(1, 4.2, 3.0), (0, 0.0, 0.0)], 4)
    np.testing.assert_array_equal(crops[0], images[1, 1:5, 2:6])
    # Outside the image is zero.
    np.testing.assert_array_equal(crops[1][:2], 0)
    np.testing.assert_array_equal(crops[1][2:, 2:], images[0, :2, :2])


def test_judge_caption_checks_each_requirement():
    parsed = lib.parse_scene_caption(
        "a big red striped star is left of a small blue circle on a plain "
        "background"
    )
    star = _object("star", "red", "large", "striped", x=0.2, y=0.5)
    circle = _object("circle", "blue", "small", "solid", x=0.8, y=0.5)
    good = lib.judge_caption(parsed, [star, circle], "plain", "dark")
    assert all(all(v) for v in good["checks"].values())
    assert good["checks"]["relation"] == [True]
    swapped = lib.judge_caption(
        parsed, [dict(star, x=0.9), dict(circle, x=0.1)], "plain", "dark"
    )
    assert swapped["checks"]["relation"] == [False]
    wrong = lib.judge_caption(
        parsed, [dict(star, color="green"), circle], "gradient", "dark"
    )
    assert wrong["checks"]["shape"] == [True, True]
    assert wrong["checks"]["color"] == [False, True]
    assert wrong["checks"]["background"] == [False]
    # Size and fill are read from the star found by shape when the colour
    # is wrong, so one error is not counted three times.
    assert wrong["checks"]["size"] == [True, True]
    empty = lib.judge_caption(parsed, [], "plain", "dark")
    assert not any(any(v) for k, v in empty["checks"].items()
                   if k != "background")
    count = lib.judge_caption(
        lib.parse_scene_caption("two shapes: a red star and a blue circle"),
        [star], None, None,
    )
    assert count["checks"]["count"] == [False]


def test_judge_reports_held_out_combinations():
    parsed = lib.parse_scene_caption("a blue star above a striped hexagon")
    found = lib.judge_caption(
        parsed,
        [_object("star", "blue", y=0.2),
         _object("hexagon", "red", fill="solid", y=0.8)],
        holdout=scenes.DEFAULT_HOLDOUT,
    )
    assert sorted(found["held_out"]) == [
        ("blue star", True), ("striped hexagon", False)
    ]


# === Degradations of the judge's training scenes ===


def _blur_reference(image, sigma):
    """Direct 2-D Gaussian filter with edge padding (independent of the
    separable implementation)."""
    radius = max(1, int(np.ceil(2.5 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets[:, None] ** 2 + offsets[None] ** 2)
                    / sigma**2)
    kernel /= kernel.sum()
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)),
                    mode="edge")
    size = image.shape[0]
    out = np.zeros_like(image, dtype="float64")
    for r in range(size):
        for c in range(size):
            window = padded[r : r + 2 * radius + 1, c : c + 2 * radius + 1]
            out[r, c] = np.tensordot(kernel, window, axes=([0, 1], [0, 1]))
    return out


def test_gaussian_blur_matches_a_direct_filter():
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (12, 12, 3))
    for sigma in (0.5, 1.3):
        np.testing.assert_allclose(
            lib._gaussian_blur(image, sigma), _blur_reference(image, sigma),
            atol=1e-10,
        )


def test_degradations_are_seeded_partial_and_keep_the_labels():
    images, examples = lib.scenes_attribute_data(24, image_size=32, seed=2)
    first, mask = lib.degrade_images(images, seed=4, fraction=0.5)
    again, mask_again = lib.degrade_images(images, seed=4, fraction=0.5)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(mask, mask_again)
    other, other_mask = lib.degrade_images(images, seed=5, fraction=0.5)
    assert not np.array_equal(first, other)
    assert 0 < mask.sum() < len(images)
    # Only the chosen images change; they stay in range.
    np.testing.assert_array_equal(first[~mask], images[~mask])
    assert all(not np.allclose(first[i], images[i]) for i in np.flatnonzero(mask))
    assert first.min() >= -1.0 and first.max() <= 1.0
    # Off: the images come back unchanged.
    off, off_mask = lib.degrade_images(images, seed=4, fraction=0.0)
    np.testing.assert_array_equal(off, images)
    assert not off_mask.any()
    # The degradations keep what the labels say: a degraded object is
    # still darker or lighter than its background where it was, and the
    # background tone ordering holds on average.
    everything, _ = lib.degrade_images(images, seed=4, fraction=1.0)
    for image, degraded, example in zip(images, everything, examples):
        obj = example["objects"][0]
        r = min(31, int(obj["y"] * 32))
        c = min(31, int(obj["x"] * 32))
        before = image[r, c] - image.mean(axis=(0, 1))
        after = degraded[r, c] - degraded.mean(axis=(0, 1))
        # The object's colour direction survives (desaturation and lower
        # contrast only scale it toward grey / the mean).
        if np.linalg.norm(before) > 0.5 and obj["fill"] == "solid":
            assert np.dot(before, after) > 0


def test_degradation_arguments_are_checked():
    images = np.zeros((2, 16, 16, 3), "float32")
    with pytest.raises(ValueError, match="fraction"):
        lib.degrade_images(images, fraction=1.5)
    with pytest.raises(ValueError, match="min_contrast"):
        lib.degrade_images(images, min_contrast=0.0)
    with pytest.raises(ValueError, match="images"):
        lib.degrade_images(np.zeros((2, 16, 16), "float32"))
    with pytest.raises(ValueError, match="degradation_fraction"):
        lib.train_scene_attribute_classifier(
            num_images=4, degradation_fraction=-0.1, verbose=0
        )


def test_training_data_degrades_the_scenes_only_when_asked():
    kwargs = dict(num_images=12, image_size=32, grid_size=8, seed=3)
    clean, examples = lib.scenes_attribute_data(12, 32, seed=3)
    objects = sum(len(e["objects"]) for e in examples)
    # Off: the clean scenes and two clean jittered crops per object, as
    # before the option existed.
    off = lib.judge_training_data(degradation_fraction=0.0, **kwargs)
    np.testing.assert_array_equal(off["images"], clean)
    assert not off["degraded"].any()
    old_crops, old_labels = lib._recognizer_data(
        clean, examples, 1.5, 2, np.random.default_rng(3)
    )
    np.testing.assert_array_equal(off["crops"], old_crops)
    # On (the default): the detector sees the seeded degradation of the
    # scenes; each object gives one clean and one degraded-scene crop.
    on = lib.judge_training_data(**kwargs)
    expected, mask = lib.degrade_images(clean, seed=4, fraction=0.5)
    np.testing.assert_array_equal(on["images"], expected)
    np.testing.assert_array_equal(on["degraded"], mask)
    assert len(on["crops"]) == 2 * objects == len(off["crops"])
    rng = np.random.default_rng(3)
    first, _ = lib._recognizer_data(clean, examples, 1.5, 1, rng)
    second, _ = lib._recognizer_data(expected, examples, 1.5, 1, rng)
    np.testing.assert_array_equal(on["crops"][:objects], first)
    np.testing.assert_array_equal(on["crops"][objects:], second)
    for key in on["crop_labels"]:
        np.testing.assert_array_equal(
            on["crop_labels"][key], old_labels[key]
        )
    for key in ("object", "background", "tone"):
        np.testing.assert_array_equal(on["labels"][key], off["labels"][key])


# === The trained judge ===


@pytest.fixture(scope="module")
def judge():
    # A short training run (the recipe's judge sees ~2.5k scenes for 6
    # epochs and scores ~0.96 overall on real images).
    return lib.train_scene_attribute_classifier(
        num_images=1200,
        detector_epochs=4,
        recognizer_epochs=4,
        batch_size=32,
        width=32,
        learning_rate=4e-3,
        validation_images=64,
        verbose=0,
        # Clean scenes: at this tiny budget the degraded half costs the
        # detector too much (shape 0.57, colour checks 0.34 measured); the
        # degradation itself is covered by the training-data tests above
        # and the full-size robust judge in
        # benchmarks/results/text_to_image_measurements.md.
        degradation_fraction=0.0,
    )


def test_judge_reaches_high_accuracy_on_real_images(judge):
    _, report = judge
    assert report["degradation_fraction"] == 0.0
    validation = report["validation"]
    objects = validation["objects"]
    assert objects["color"] >= 0.95
    assert objects["size"] >= 0.9
    assert objects["fill"] >= 0.85
    assert objects["shape"] >= 0.6
    assert validation["count"] >= 0.6
    assert validation["tone"] >= 0.7
    assert validation["overall"] >= 0.45


def test_real_images_beat_shuffled_captions(judge, tmp_path):
    classifier, _ = judge
    images, examples = lib.scenes_attribute_data(
        48, seed=3, split="conditioning_test"
    )
    captions = [e["captions"][i % 10] for i, e in enumerate(examples)]
    own = lib.scenes_conditioning_accuracy(classifier, images, captions)
    shuffled = lib.scenes_conditioning_accuracy(
        classifier, images, captions[1:] + captions[:1]
    )
    assert own["overall"] > 2.5 * shuffled["overall"]
    assert own["attributes"]["color"]["accuracy"] > 0.5
    assert shuffled["attributes"]["color"]["accuracy"] < 0.2
    assert len(own["per_caption"]) == 48
    # Saved and reloaded (safe mode), the judge finds the same objects.
    path = str(tmp_path / "judge.keras")
    classifier.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.detect(images[:8]) == classifier.detect(images[:8])


def test_bad_inputs_name_the_argument(judge):
    classifier, _ = judge
    images = np.zeros((2, 64, 64, 3), "float32")
    with pytest.raises(ValueError, match="captions"):
        lib.scenes_conditioning_accuracy(classifier, images, "a red star")
    with pytest.raises(ValueError, match="one caption per image"):
        lib.scenes_conditioning_accuracy(classifier, images, ["a red star"])
    with pytest.raises(ValueError, match="classifier"):
        lib.scenes_conditioning_accuracy(object(), images, ["a", "b"])
    with pytest.raises(ValueError, match="images"):
        classifier.detect(np.zeros((2, 64, 64), "float32"))
    with pytest.raises(ValueError, match="image_size"):
        lib.SceneAttributeClassifier(image_size=60)

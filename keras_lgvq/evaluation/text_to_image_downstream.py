"""Text-to-image and image completion over a frozen tokenizer's codes on the
scenes set, in one call.

`text_to_image_downstream_scenes` trains the masked-token generator
(`keras_lgvq.models.TextToImage`) on the codes of procedural scenes (a code
cache and a MiniLM caption-feature cache, so training runs neither the
image nor the text encoder), then judges what it draws with an attribute
classifier trained on real scenes images (`keras_lgvq.metrics.
conditioning_accuracy`): conditioning accuracy of the generated images on
test captions, of the unconditional sampler (the generator's own chance)
and of captions asking for held-out attribute combinations; completion of
the bottom half of test images (top half of the code grid known, with and
without the caption: PSNR / SSIM of the completed half, conditioning
accuracy); the real images with their own captions (ceiling) and with
shuffled ones (chance). Besides the recipe's summaries it returns the
per-caption judged checks aligned with caption ids, and the per-image
completion PSNR / SSIM, so two tokenizers run with the same seed and sizes
(same captions, same images) pair up for paired tests.

`recipes/text_to_image.py` calls it with its checkpointing `fit` and draws
its figures from the returned arrays; the scenes comparison
(`keras_lgvq.comparison.text_to_image`) calls it per row.

`T2I_SIZES` / `T2I_DEFAULTS` / `JUDGE_DEFAULTS` are the recipe's default
budget (about 15 minutes per tokenizer on a 2-core CPU, plus a few minutes
once for the judge).
"""

import contextlib
import json
import os
import tempfile
import time

import numpy as np

from keras_lgvq.utils.validation import check_int

T2I_SIZES = {
    "train_images": 3000,
    "captions_per_image": 2,
    "validation_images": 128,
    "eval_images": 192,
    "held_out_images": 48,
    "completion_images": 48,
    "figure_captions": 6,
    "samples_per_caption": 4,
}
# None: the preset's value (`text_to_image_scenes`: training and sampling).
T2I_DEFAULTS = {
    "preset": "text_to_image_scenes",
    "train_steps": 1000,
    "batch_size": 32,
    "learning_rate": None,
    "weight_decay": None,
    # None: the preset's, at most a fifth of the steps.
    "warmup_steps": None,
    "sampling_steps": None,
    "guidance_scale": None,
    "temperature": None,
    "top_k": None,
    "remask_temperature": None,
    # Overrides of the generator's architecture (e.g. a tiny one for CI).
    "generator": None,
    "jit_compile": "auto",
}
# The judge's training: real scenes images, epochs per stage, and the share
# of them seen blurred / desaturated / noisy (a judge trained on clean
# scenes only found 0.6 of the 2.0 objects per image in the shipped
# tokenizers' reconstructions; benchmarks/results/
# text_to_image_measurements.md).
JUDGE_DEFAULTS = {"images": 2500, "epochs": 6, "degradation": 0.5}
# Code grids encoded per tokenizer call when building the code caches.
ENCODE_BATCH = 64
# Test images scanned per requested held-out caption (few test captions
# ask for a held-out combination).
HELD_OUT_SCAN = 40


def check_t2i_settings(settings=None):
    """`T2I_DEFAULTS` updated with `settings`, the preset's values filled in.

    Args:
        settings: dict or None. Keys of `T2I_DEFAULTS` to override.

    Returns:
        dict: every key of `T2I_DEFAULTS` with a value (None only for
        `generator` and the sampler's `top_k` when the preset has none).

    Raises:
        ValueError: an unknown key, a step count or batch size below 1, or
            a negative guidance scale.

    Examples:

    ```python
    check_t2i_settings({"train_steps": 10})["warmup_steps"]   # 2
    ```
    """
    from keras_lgvq.models.presets import get_preset

    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(T2I_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown text-to-image setting(s) {unknown}; the settings are "
            f"{sorted(T2I_DEFAULTS)}."
        )
    out = {**T2I_DEFAULTS, **settings}
    preset = get_preset(out["preset"], "TextToImage")
    for key in ("learning_rate", "weight_decay"):
        if out[key] is None:
            out[key] = preset["training"][key]
    for key in ("train_steps", "batch_size"):
        out[key] = check_int(key, out[key], low=1)
    if out["warmup_steps"] is None:
        out["warmup_steps"] = min(
            preset["training"]["warmup_steps"], out["train_steps"] // 5
        )
    sampling = {"sampling_steps": "steps", "guidance_scale": "guidance_scale",
                "temperature": "temperature", "top_k": "top_k",
                "remask_temperature": "remask_temperature"}
    for key, name in sampling.items():
        if out[key] is None:
            out[key] = preset["sampling"].get(name)
    out["sampling_steps"] = check_int("sampling_steps", out["sampling_steps"],
                                      low=1)
    if out["guidance_scale"] < 0:
        raise ValueError(
            "`guidance_scale` must be >= 0 (0: no guidance); received "
            f"{out['guidance_scale']}."
        )
    if out["generator"] is not None and not isinstance(out["generator"],
                                                       dict):
        raise ValueError(
            "`generator` must be a dict of TextToImage backbone overrides "
            f"or None; received {type(out['generator']).__name__}."
        )
    return out


# === Data ===


def scenes_examples(num_images, image_size, split, seed=0, holdout=None):
    """Scenes images in [-1, 1] and their examples (captions, attributes).

    The same images as the tfds `lgvq_scenes` split of this seed and size:
    every image depends only on `(seed, split, index)`.

    Args:
        num_images: int. Images.
        image_size: int. Pixels.
        split: str. Split name ("train", "validation", "test").
        seed: int. Dataset seed.
        holdout: held-out combinations left out of the split, or None.

    Examples:

    ```python
    images, examples = scenes_examples(8, 32, "test")
    ```
    """
    from keras_lgvq.datasets import scenes

    examples = list(
        scenes.generate(num_images, seed=seed, image_size=image_size,
                        split=split, holdout=holdout)
    )
    images = np.stack([e["image"] for e in examples]).astype("float32")
    return images / 127.5 - 1.0, examples


def held_out_captions(examples, count):
    """Test captions that ask for a held-out combination (one per image).

    Args:
        examples: scenes examples (with `captions`).
        count: int. Captions wanted (fewer when the examples lack them).

    Returns:
        list of `(image index, caption)`.

    Examples:

    ```python
    held_out_captions(examples, 4)
    ```
    """
    from keras_lgvq.metrics.conditioning_accuracy import held_out_combinations
    from keras_lgvq.metrics.conditioning_accuracy import parse_scene_caption

    picked = []
    if count < 1:
        return picked
    for index, example in enumerate(examples):
        for caption in example["captions"]:
            parsed = parse_scene_caption(caption)
            if any(held_out_combinations(o) for o in parsed["objects"]):
                picked.append((index, caption))
                break
        if len(picked) == count:
            break
    return picked


def prepare_code_data(tokenizer, prior, num_images, captions_per_image,
                      cache_root, split="train", seed=0, verbose=0):
    """Code cache and caption-feature cache of a scenes split (drawn
    without the held-out combinations), built once and found again.

    Args:
        tokenizer: the frozen tokenizer backbone.
        prior: the `TextPrior` of the generator.
        num_images: int. Scenes.
        captions_per_image: int. Captions encoded per scene.
        cache_root: str. Folder of the caches (`codes/`, `text/`).
        split: str. "train" or "validation".
        seed: int. Dataset seed (0 keeps the recipe's cache names).
        verbose: int.

    Returns:
        `(CodeCache, FeatureCache)`.

    Examples:

    ```python
    codes, text = prepare_code_data(tokenizer, prior, 64, 1, "cache")
    ```
    """
    from keras_lgvq.datasets import code_cache as codes_lib
    from keras_lgvq.datasets import scenes
    from keras_lgvq.text_priors import feature_cache as text_lib

    n, c = int(num_images), int(captions_per_image)
    size = int(tokenizer.resolution)
    images, examples = scenes_examples(
        n, size, split, seed=seed, holdout=scenes.DEFAULT_HOLDOUT
    )
    # Seed 0 keeps the names of caches made before the seed was an input.
    tag = f"_seed{seed}" if seed else ""
    code_dir = codes_lib.code_cache_path(
        os.path.join(cache_root, "codes"), "scenes",
        f"{split}_{size}px_n{n}{tag}",
        codes_lib.tokenizer_fingerprint(tokenizer),
    )
    if os.path.exists(os.path.join(code_dir, codes_lib.MANIFEST)):
        code_cache = codes_lib.CodeCache(code_dir, tokenizer=tokenizer)
    else:
        batches = (
            {
                "images": images[i : i + ENCODE_BATCH],
                "image_id": [e["image_id"]
                             for e in examples[i : i + ENCODE_BATCH]],
            }
            for i in range(0, n, ENCODE_BATCH)
        )
        code_cache = codes_lib.build_code_cache(
            tokenizer, batches, code_dir, "scenes", split, verbose=verbose
        )
    text_dir = os.path.join(
        text_lib.cache_path(os.path.join(cache_root, "text"), "scenes", split,
                            prior, prior.sequence_length),
        f"n{n}_c{c}{tag}",
    )
    if os.path.exists(os.path.join(text_dir, text_lib.MANIFEST)):
        feature_cache = text_lib.FeatureCache(text_dir, prior=prior)
    else:
        if verbose:
            print(f"Encoding {n * c} captions with {prior.name_or_path} ...")
        feature_cache = text_lib.build_feature_cache(
            prior, [(e["image_id"], e["captions"][:c]) for e in examples],
            text_dir, dataset="scenes", split=split, captions_per_image=c,
        )
    return code_cache, feature_cache


# === The judge ===


def _write_json(path, data):
    def default(value):
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.ndarray):
            return value.tolist()
        return str(value)

    temporary = f"{path}.partial"
    with open(temporary, "w") as f:
        json.dump(data, f, indent=2, default=default)
    os.replace(temporary, path)


def judge_path(cache_root, image_size, images, epochs, degradation, seed):
    """Where `load_or_train_scenes_judge` keeps a judge (without suffix).

    Args:
        cache_root: str. Cache folder (`judges/` below it).
        image_size, images, epochs, degradation, seed: the judge's
            training (`load_or_train_scenes_judge`).

    Examples:

    ```python
    judge_path("cache", 64, 2500, 6, 0.5, 0)
    # "cache/judges/scenes_64px_n2500_e6_b32_seed0_deg50"
    ```
    """
    # A judge trained on clean scenes only keeps its old cache name.
    suffix = f"_deg{round(100 * degradation)}" if degradation > 0 else ""
    return os.path.join(
        cache_root, "judges",
        f"scenes_{image_size}px_n{images}_e{epochs}_b32_seed{seed}" + suffix,
    )


def load_or_train_scenes_judge(cache_root, image_size, images=None,
                               epochs=None, degradation=None, seed=0,
                               verbose=0):
    """The conditioning judge: loaded from `cache_root` or trained on real
    scenes images and saved there (`<stem>.keras` + `<stem>.json`).

    Args:
        cache_root: str. Cache folder (`judges/` below it).
        image_size: int. Pixels of the images judged.
        images: int or None. Real training scenes (None:
            `JUDGE_DEFAULTS`).
        epochs: int or None. Epochs per stage (detector, recognizer).
        degradation: float in [0, 1] or None. Share of the training scenes
            seen degraded.
        seed: int. Training seed.
        verbose: int.

    Returns:
        `(judge, report)`: the `SceneAttributeClassifier` and its training
        report with `source` (the `.keras` path).

    Examples:

    ```python
    judge, report = load_or_train_scenes_judge("runs/x/judge", 64)
    ```
    """
    import keras

    from keras_lgvq.metrics import conditioning_accuracy as judge_lib

    images = JUDGE_DEFAULTS["images"] if images is None else images
    epochs = JUDGE_DEFAULTS["epochs"] if epochs is None else epochs
    degradation = (JUDGE_DEFAULTS["degradation"] if degradation is None
                   else degradation)
    images = check_int("images", images, low=1)
    epochs = check_int("epochs", epochs, low=1)
    if not 0.0 <= degradation <= 1.0:
        raise ValueError(
            "`degradation` must be in [0, 1] (a share of the judge's "
            f"training scenes); received {degradation}."
        )
    path = judge_path(cache_root, image_size, images, epochs, degradation,
                      seed)
    model_path = path + ".keras"
    if os.path.exists(model_path) and os.path.exists(path + ".json"):
        with open(path + ".json") as f:
            report = json.load(f)
        report["source"] = model_path
        return keras.saving.load_model(model_path, safe_mode=True), report
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(
        f"\n== Training the conditioning judge on {images} real scenes "
        f"({epochs} epochs per stage; cached at {model_path})"
    )
    judge, report = judge_lib.train_scene_attribute_classifier(
        num_images=images,
        image_size=image_size,
        detector_epochs=epochs,
        recognizer_epochs=epochs,
        seed=seed,
        validation_images=min(256, images),
        verbose=2 if verbose else 0,
        degradation_fraction=degradation,
    )
    # The model first: the report marks a complete cache entry.
    judge.save(model_path)
    _write_json(path + ".json", report)
    report["source"] = model_path
    return judge, report


def judge_images(judge, images, captions):
    """`scenes_conditioning_accuracy` of images against captions, its
    per-caption list split into `passed` / `checks` lists.

    Args:
        judge: a trained `SceneAttributeClassifier`.
        images: float `(B, H, W, 3)` in [-1, 1].
        captions: list of B str.

    Returns:
        `(summary, per_caption)`: the summary dict without `per_caption`,
        and `{"passed": [...], "checks": [...]}` aligned with `captions`.

    Examples:

    ```python
    summary, per_caption = judge_images(judge, images, captions)
    ```
    """
    from keras_lgvq.metrics import scenes_conditioning_accuracy

    return _split_per_caption(
        scenes_conditioning_accuracy(judge, images, list(captions)))


def _split_per_caption(result):
    rows = result.pop("per_caption")
    # Every count of `caption_counts` (the caption text is in `captions`).
    keys = [k for k in rows[0] if k != "caption"] if rows else []
    return result, {key: [r[key] for r in rows] for key in keys}


def judge_images_and_mismatched(judge, images, captions, rolls):
    """`judge_images`, and the same images judged against other images'
    captions (`keras_lgvq.metrics.caption_mismatch`): the chance level of
    these very images. The judge reads each image once.

    Args:
        judge: a trained `SceneAttributeClassifier`.
        images: float `(B, H, W, 3)` in [-1, 1], image i made for
            caption i.
        captions: list of B str (B >= 2).
        rolls: int >= 1. Caption shifts pooled for the chance level.

    Returns:
        `((summary, per_caption), (mismatched, mismatched_per_caption))`:
        the first pair as `judge_images`; the second from
        `mismatched_caption_accuracy` (per-image means over the shifts).

    Examples:

    ```python
    (own, items), (chance, chance_items) = judge_images_and_mismatched(
        judge, generated, captions, rolls=16)
    ```
    """
    from keras_lgvq.metrics import mismatched_caption_accuracy
    from keras_lgvq.metrics.conditioning_accuracy import judge_detections

    images = np.asarray(images, "float32")
    captions = list(captions)
    if len(images) != len(captions):
        raise ValueError(
            f"{len(images)} images for {len(captions)} captions; pass one "
            "caption per image."
        )
    detections = judge.detect(images, 0.5, batch_size=64)
    own = _split_per_caption(judge_detections(detections, captions))
    return own, mismatched_caption_accuracy(detections, captions, rolls)


def scaled_passes(per_caption, presence=False, attribute=None):
    """Passed checks per caption divided by the mean checks per caption:
    their mean is the pooled share of checks passed, so two lists over the
    same captions can go into a paired bootstrap of that share.

    Args:
        per_caption: dict with `passed` and `checks` lists (and
            `presence_passed` / `presence_checks` for `presence=True`).
        presence: bool. Scale the presence checks instead of the bound
            ones.
        attribute: str or None. With `presence`, one attribute's presence
            checks (`presence_<attribute>_passed` / `_checks`).

    Returns:
        list of float, or None when there is no check.

    Examples:

    ```python
    scaled_passes({"passed": [1, 2], "checks": [2, 2]})   # [0.5, 1.0]
    ```
    """
    prefix = "presence_" if presence else ""
    if presence and attribute:
        prefix += f"{attribute}_"
    passed = per_caption[prefix + "passed"]
    checks = per_caption[prefix + "checks"]
    if len(passed) != len(checks):
        raise ValueError(
            f"`per_caption` has {len(passed)} `{prefix}passed` values for "
            f"{len(checks)} `{prefix}checks`; they must be aligned."
        )
    total = sum(checks)
    if not total:
        return None
    mean = total / len(checks)
    return [p / mean for p in passed]


# Conditioning tests within one generator, over the same test captions:
# name -> (per-caption list, reference list, presence checks, attribute).
# The mismatched list holds the same generated images judged against other
# captions (their chance level), so the difference is conditioning alone;
# the unconditional images are other images, drawn without the caption.
CONDITIONING_TESTS = {
    "generated_vs_mismatched": (
        "generated", "generated_mismatched", False, None),
    "presence_generated_vs_mismatched": (
        "generated", "generated_mismatched", True, None),
    "generated_vs_unconditional": (
        "generated", "unconditional", False, None),
    "presence_generated_vs_unconditional": (
        "generated", "unconditional", True, None),
    # Which attributes the caption puts into the images (the metrics'
    # PRESENCE_ATTRIBUTES, written out: this module imports no Keras code
    # at import time).
    **{
        f"presence_{attribute}_generated_vs_mismatched": (
            "generated", "generated_mismatched", True, attribute)
        for attribute in ("shape", "color", "size", "fill", "region")
    },
}


def conditioning_test_lists(per_caption):
    """The paired per-caption lists of `CONDITIONING_TESTS`.

    Args:
        per_caption: the `per_caption` dict of a
            `text_to_image_downstream_scenes` result.

    Returns:
        dict name -> `(values, reference_values)` for each test whose two
        lists are present and have checks.

    Examples:

    ```python
    values, chance = conditioning_test_lists(result["per_caption"])[
        "generated_vs_mismatched"]
    ```
    """
    lists = {}
    for name, (own, reference, presence, attribute) in (
            CONDITIONING_TESTS.items()):
        if own not in per_caption or reference not in per_caption:
            continue
        key = "presence_" + (f"{attribute}_" if attribute else "") + "passed"
        if presence and not all(key in per_caption[part]
                                for part in (own, reference)):
            continue
        a = scaled_passes(per_caption[own], presence, attribute)
        b = scaled_passes(per_caption[reference], presence, attribute)
        if a is not None and b is not None:
            lists[name] = (a, b)
    return lists


def conditioning_tests(per_caption, num_resamples=2000, seed=0):
    """Paired bootstrap over the test captions of each `CONDITIONING_TESTS`
    pair: is the generator's conditioning accuracy above its own chance
    level (and above its unconditional samples)?

    Args:
        per_caption: the `per_caption` dict of a
            `text_to_image_downstream_scenes` result.
        num_resamples: int. Bootstrap resamples.
        seed: int. Resampling seed.

    Returns:
        dict name -> `keras_lgvq.evaluation.significance.paired_bootstrap`
        result (shares in [0, 1]).

    Examples:

    ```python
    tests = conditioning_tests(result["per_caption"])
    tests["generated_vs_mismatched"]["ci_low"] > 0
    ```
    """
    from keras_lgvq.evaluation.significance import paired_bootstrap

    return {
        name: paired_bootstrap(a, b, num_resamples=num_resamples, seed=seed)
        for name, (a, b) in conditioning_test_lists(per_caption).items()
    }


def bottom_half_quality(originals, images):
    """PSNR / SSIM of the bottom half of `images` against `originals`.

    Args:
        originals: float `(B, H, W, 3)` in [-1, 1].
        images: float `(B, H, W, 3)` in [-1, 1].

    Returns:
        `(means, per_image)`: `{"psnr", "ssim"}` means and lists.

    Examples:

    ```python
    means, per_image = bottom_half_quality(originals, completed)
    ```
    """
    from keras_lgvq.metrics import psnr
    from keras_lgvq.metrics import ssim

    half = originals.shape[1] // 2
    a, b = originals[:, half:], images[:, half:]
    per_image = {
        "psnr": [float(v) for v in np.asarray(psnr(a, b)).reshape(-1)],
        "ssim": [float(v) for v in np.asarray(ssim(a, b)).reshape(-1)],
    }
    means = {k: float(np.mean(v)) for k, v in per_image.items()}
    return means, per_image


def _fid(weights, real, fake):
    from keras_lgvq.metrics import FrechetInceptionDistance

    try:
        metric = FrechetInceptionDistance(weights=weights)
    except (FileNotFoundError, ValueError) as error:
        return {
            "available": False,
            "reason": str(error).splitlines()[0],
            "num_generated": int(len(fake)),
        }
    for start in range(0, len(fake), 32):
        metric.update_state(real[start : start + 32], fake[start : start + 32])
    return {
        "available": True,
        "value": float(metric.result()),
        "num_generated": int(len(fake)),
        "num_real": int(len(real)),
        "note": "few-sample FID is biased upward; compare runs only at the "
        "same sample count",
    }


# === The generator ===


def build_generator(tokenizer, prior, settings, seed=0):
    """A compiled `TextToImage` over `tokenizer` (AdamW, warm-up then
    cosine decay, clipped gradients).

    Args:
        tokenizer: the frozen tokenizer backbone.
        prior: the `TextPrior`.
        settings: dict from `check_t2i_settings`.
        seed: int. Weight seed.

    Examples:

    ```python
    model = build_generator(tokenizer, prior, check_t2i_settings())
    ```
    """
    import keras

    from keras_lgvq.models.text_to_image import TextToImage

    model = TextToImage.from_preset(
        settings["preset"], tokenizer=tokenizer, text_prior=prior, seed=seed,
        **(settings["generator"] or {}),
    )
    steps, warmup = settings["train_steps"], settings["warmup_steps"]
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=settings["learning_rate"] * 0.01,
        decay_steps=max(1, steps - warmup),
        warmup_target=settings["learning_rate"],
        warmup_steps=warmup,
        alpha=0.05,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            schedule, weight_decay=settings["weight_decay"], beta_2=0.99,
            global_clipnorm=1.0,
        ),
        jit_compile=settings["jit_compile"],
    )
    return model


def _default_fit(model, epoch_data, validation_data, epochs,
                 steps_per_epoch):
    """Plain `model.fit`, one call per epoch on that epoch's data."""
    history = {}
    for epoch in range(epochs):
        out = model.fit(
            epoch_data(epoch), validation_data=validation_data(),
            initial_epoch=epoch, epochs=epoch + 1,
            steps_per_epoch=steps_per_epoch, verbose=0,
        )
        for key, values in out.history.items():
            history.setdefault(key, []).extend(values)
    return history


def _no_phase(name):
    return contextlib.nullcontext()


def _check_sizes(sizes):
    unknown = sorted(set(sizes) - set(T2I_SIZES))
    if unknown:
        raise ValueError(
            f"Unknown text-to-image size(s) {unknown}; the sizes are "
            f"{sorted(T2I_SIZES)}."
        )
    out = {**T2I_SIZES, **sizes}
    for key, value in out.items():
        low = 0 if key in ("held_out_images", "figure_captions") else 1
        # Chance levels judge each test image against another's caption.
        low = 2 if key == "eval_images" else low
        out[key] = check_int(key, value, low=low)
    return out


def text_to_image_downstream_scenes(
    tokenizer,
    seed=0,
    judge=None,
    settings=None,
    prior=None,
    cache_dir=None,
    data_seed=None,
    fit=None,
    phase=None,
    fid_weights=None,
    fid=False,
    verbose=0,
    return_arrays=False,
    mismatched_rolls=None,
    **sizes,
):
    """Trains the text-to-image generator over a tokenizer's codes and
    judges its generations and completions.

    Data: `train_images` training and `validation_images` validation
    scenes (without the held-out combinations; `captions_per_image`
    captions each, cached as codes and MiniLM features); test scenes of
    the `data_seed`: the first `eval_images` with one caption each
    (caption `i % 10` of image i) for generation, the first
    `completion_images` of them for completion, and `held_out_images`
    captions of later test scenes that ask for a held-out combination.
    Every test image and caption depends only on `data_seed` and the sizes,
    so tokenizers of one image size run with the same arguments are
    judged on the same captions (`caption_ids` etc. say which).

    Args:
        tokenizer: a single-codebook tokenizer (model or backbone, `.keras`
            file, preset directory or shipped preset name).
        seed: int. Generator weights, training order and sampling seed.
        judge: a trained `SceneAttributeClassifier` at the tokenizer's
            image size, or None: `load_or_train_scenes_judge` in
            `cache_dir` (`JUDGE_DEFAULTS`, trained with `seed`).
        settings: dict or None. Keys of `T2I_DEFAULTS` to override.
        prior: the generator's `TextPrior`, or None: the preset's (MiniLM).
        cache_dir: str or None. Code / feature (/ judge) caches; None: a
            temporary folder removed at the end.
        data_seed: int or None. Scenes seed (None: `seed`).
        fit: None, or `fit(model, epoch_data, validation_data, epochs,
            steps_per_epoch)` returning the history dict (metric -> list per
            epoch); `epoch_data(epoch)` and `validation_data()` build the
            datasets. None: `model.fit` per epoch.
        phase: None or `phase(name)` returning a context manager (timing
            of "data", "train", "sample", "complete").
        fid_weights: str or None. Inception-v3 weights for FID.
        fid: bool. Compute FID (or say why it is missing).
        verbose: int.
        return_arrays: bool. Also return `arrays` (images: test,
            generated, completions, figure samples) and `model` (not
            JSON-ready).
        mismatched_rolls: int >= 1 or None. Caption shifts of the
            generated images' own chance level (`generated_mismatched`);
            None: `keras_lgvq.metrics.caption_mismatch.DEFAULT_ROLLS` (16).
        **sizes: keys of `T2I_SIZES` to override.

    Returns:
        A JSON-ready dict: `tokenizer_class`, `grid_size`, `num_codes`,
        `codebook_usage_train`, `generator_parameters`, `history`,
        `train_seconds`, `train_tokens_per_s`; judged summaries
        (`scenes_conditioning_accuracy` without `per_caption`):
        `tokenizer_reconstruction`, `tokenizer_reconstruction_chance`,
        `generated`, `generated_mismatched` (the generated images judged
        against other test images' captions, pooled over
        `mismatched_rolls` shifts: their chance level), `unconditional`,
        `held_out_generated` (when there are held-out captions),
        `references` (`ceiling`, `chance` and `held_out_ceiling`: real
        images); `sampling`,
        `codebook_usage_generated`, `completion` (`no_caption` /
        `caption`: mean `psnr`, `ssim` and `conditioning`;
        `tokenizer_reconstruction`), `fid` (with `fid=True`); paired
        lists: `captions` / `caption_ids`, `held_out_captions` /
        `held_out_ids`, `completion_ids`, `per_caption` (`generated`,
        `generated_mismatched` (per-image means over the shifts),
        `unconditional`, `held_out_generated`, `completion_caption`,
        `completion_no_caption`, `chance`, `ceiling`: `passed`, `checks`,
        `presence_passed` and `presence_checks` lists),
        `completion_per_image` (`caption` / `no_caption`: `psnr`, `ssim`
        lists); `sizes`, `settings`, `seed`,
        `data_seed`, `judge` (its report) and `seconds`.

    Examples:

    ```python
    result = text_to_image_downstream_scenes(
        "scenes_lgvq_trained", seed=0, train_images=400, eval_images=32)
    result["generated"]["overall"], result["references"]["chance"]["overall"]
    ```
    """
    import keras

    from keras_lgvq import text_priors
    from keras_lgvq.callbacks import epoch_seed
    from keras_lgvq.datasets.code_cache import make_code_dataset
    from keras_lgvq.models.presets import get_preset
    from keras_lgvq.models.text_to_image import load_tokenizer
    from keras_lgvq.models.text_to_image.text_to_image import check_single_id_codes

    start_all = time.time()
    seed = check_int("seed", seed, low=0)
    data_seed = seed if data_seed is None else check_int(
        "data_seed", data_seed, low=0)
    settings = check_t2i_settings(settings)
    sizes = _check_sizes(sizes)
    if mismatched_rolls is None:
        from keras_lgvq.metrics.caption_mismatch import DEFAULT_ROLLS

        mismatched_rolls = DEFAULT_ROLLS
    mismatched_rolls = check_int("mismatched_rolls", mismatched_rolls)
    if sizes["completion_images"] > sizes["eval_images"]:
        raise ValueError(
            f"`completion_images` ({sizes['completion_images']}) must be "
            f"at most `eval_images` ({sizes['eval_images']}): completion "
            "uses the first test images; lower it or raise eval_images."
        )
    phase = phase or _no_phase
    fit = fit or _default_fit
    temporary = None
    if cache_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="lgvq_t2i_")
        cache_dir = temporary.name
    try:
        keras.utils.set_random_seed(seed)
        with phase("data"):
            tokenizer = load_tokenizer(tokenizer)
            check_single_id_codes(tokenizer)
            image_size = int(tokenizer.resolution)
            if prior is None:
                text = get_preset(settings["preset"], "TextToImage")["text"]
                prior = text_priors.get(
                    text["text_prior"],
                    sequence_length=text["sequence_length"])
            if judge is None:
                judge, judge_report = load_or_train_scenes_judge(
                    cache_dir, image_size, seed=seed, verbose=verbose)
            else:
                judge_report = {"source": "given"}
            caches = prepare_code_data(
                tokenizer, prior, sizes["train_images"],
                sizes["captions_per_image"], cache_dir, "train",
                seed=data_seed, verbose=verbose)
            validation_caches = prepare_code_data(
                tokenizer, prior, sizes["validation_images"],
                sizes["captions_per_image"], cache_dir, "validation",
                seed=data_seed, verbose=verbose)
            test_count = max(sizes["eval_images"],
                             sizes["completion_images"],
                             sizes["figure_captions"])
            scan = max(test_count, HELD_OUT_SCAN * sizes["held_out_images"])
            all_images, all_examples = scenes_examples(
                scan, image_size, "test", seed=data_seed)
            held = held_out_captions(all_examples, sizes["held_out_images"])
        model = build_generator(tokenizer, prior, settings, seed=seed)
        if verbose:
            print(
                f"\n== Training {model.backbone.num_layers} x "
                f"{model.backbone.hidden_dim} generator "
                f"({model.backbone.count_params():,} parameters) for "
                f"{settings['train_steps']} steps of "
                f"{settings['batch_size']}"
            )

        def epoch_data(epoch):
            # Seeded per epoch (shuffle, caption draw): a resumed run
            # rebuilds its epoch and skips the batches it had trained.
            return make_code_dataset(
                *caches, batch_size=settings["batch_size"], training=True,
                seed=epoch_seed(seed, epoch),
            ).repeat()

        def validation_data():
            return make_code_dataset(
                *validation_caches, batch_size=settings["batch_size"],
                training=False, seed=seed,
            )

        steps = settings["train_steps"]
        epochs = min(5, steps)
        with phase("train"):
            start = time.perf_counter()
            history = fit(model, epoch_data, validation_data, epochs,
                          steps // epochs)
            train_seconds = time.perf_counter() - start
        tokens = steps * settings["batch_size"] * model.grid_size**2
        result = {
            "tokenizer_class": type(tokenizer).__name__,
            "grid_size": model.grid_size,
            "num_codes": model.num_codes,
            "codebook_usage_train": int(
                len(set(caches[0].codes.reshape(-1)))),
            "generator_parameters": int(model.backbone.count_params()),
            "history": {k: [float(v) for v in vals]
                        for k, vals in history.items()},
            "train_seconds": round(train_seconds, 1),
            "train_tokens_per_s": round(tokens / train_seconds, 1),
        }
        per_caption = {}
        n = sizes["eval_images"]
        images = all_images[:test_count]
        examples = all_examples[:test_count]
        captions = [e["captions"][i % len(e["captions"])]
                    for i, e in enumerate(examples[:n])]
        caption_index = [i % len(e["captions"])
                         for i, e in enumerate(examples[:n])]
        result["captions"] = captions
        result["caption_ids"] = [
            f"{e['image_id']}:{k}" for e, k in zip(examples[:n],
                                                    caption_index)]
        # Image i judged against the caption of image i + 1.
        shuffled = captions[1:] + captions[:1]
        references = {}
        references["ceiling"], per_caption["ceiling"] = judge_images(
            judge, images[:n], captions)
        references["chance"], per_caption["chance"] = judge_images(
            judge, images[:n], shuffled)
        if held:
            references["held_out_ceiling"], _ = judge_images(
                judge, all_images[[i for i, _ in held]],
                [c for _, c in held])
        result["references"] = references
        with phase("sample"):
            reconstruction = model.decode_codes(
                model.encode_images(images[:n]))
        result["tokenizer_reconstruction"], _ = judge_images(
            judge, reconstruction, captions)
        # The chance level of images that went through this tokenizer: its
        # reconstructions against the next image's caption (the real-image
        # chance counts crisp objects a blurry decoder cannot draw).
        result["tokenizer_reconstruction_chance"], _ = judge_images(
            judge, reconstruction, shuffled)
        sampling = dict(
            steps=settings["sampling_steps"],
            temperature=settings["temperature"],
            top_k=settings["top_k"],
            remask_temperature=settings["remask_temperature"],
        )
        scale = settings["guidance_scale"]
        if verbose:
            print(f"\n== Sampling {n} test captions (guidance {scale})")
        with phase("sample"):
            start = time.perf_counter()
            codes = model.generate_codes(
                captions, guidance_scale=scale, seed=seed, verbose=verbose,
                **sampling)
            seconds = time.perf_counter() - start
            generated = model.decode_codes(codes)
        result["sampling"] = {
            "images": n,
            "seconds": round(seconds, 2),
            "images_per_s": round(n / seconds, 3),
            **sampling,
            "guidance_scale": scale,
        }
        ((result["generated"], per_caption["generated"]),
         (result["generated_mismatched"],
          per_caption["generated_mismatched"])) = judge_images_and_mismatched(
            judge, generated, captions, mismatched_rolls)
        result["codebook_usage_generated"] = int(len(np.unique(codes)))
        with phase("sample"):
            unconditional = model.decode_codes(model.generate_codes(
                num_samples=n, seed=seed, verbose=verbose, **sampling))
        result["unconditional"], per_caption["unconditional"] = judge_images(
            judge, unconditional, captions)
        if fid:
            result["fid"] = _fid(fid_weights, images[:n], generated)
        result["held_out_captions"] = [c for _, c in held]
        result["held_out_ids"] = [
            f"{all_examples[i]['image_id']}:"
            f"{all_examples[i]['captions'].index(c)}" for i, c in held]
        if held:
            with phase("sample"):
                held_images = model.decode_codes(model.generate_codes(
                    result["held_out_captions"], guidance_scale=scale,
                    seed=seed + 1, verbose=verbose, **sampling))
            (result["held_out_generated"],
             per_caption["held_out_generated"]) = judge_images(
                judge, held_images, result["held_out_captions"])
        # Completion: the top half of the code grid is known.
        m = sizes["completion_images"]
        originals = images[:m]
        completion_captions = captions[:m]
        grid = model.grid_size
        known = np.zeros((grid, grid), bool)
        known[: grid // 2] = True
        with phase("complete"):
            given = model.encode_images(originals)
            no_caption = model.decode_codes(model.complete(
                given, known, seed=seed, verbose=verbose, **sampling))
            with_caption = model.decode_codes(model.complete(
                given, known, captions=completion_captions,
                guidance_scale=scale, seed=seed, verbose=verbose,
                **sampling))
            completion_reconstruction = model.decode_codes(given)
        result["completion_ids"] = result["caption_ids"][:m]
        completion = {"images": m, "known": "top half of the code grid"}
        completion_items = {}
        for name, completed in (("no_caption", no_caption),
                                ("caption", with_caption)):
            means, completion_items[name] = bottom_half_quality(
                originals, completed)
            judged, per_caption[f"completion_{name}"] = judge_images(
                judge, completed, completion_captions)
            completion[name] = {**means, "conditioning": judged}
        completion["tokenizer_reconstruction"], _ = bottom_half_quality(
            originals, completion_reconstruction)
        result["completion"] = completion
        result["completion_per_image"] = completion_items
        result["per_caption"] = per_caption
        arrays = {}
        f = min(sizes["figure_captions"], n)
        if f and return_arrays:
            s = sizes["samples_per_caption"]
            with phase("sample"):
                grid_samples = model.decode_codes(model.generate_codes(
                    captions[:f], samples_per_caption=s,
                    guidance_scale=scale, seed=seed + 2, **sampling))
            arrays["figure_captions"] = captions[:f]
            arrays["samples"] = grid_samples.reshape(
                (f, s) + grid_samples.shape[1:])
        result.update(
            sizes=dict(sizes),
            settings={k: v for k, v in settings.items()},
            seed=seed,
            data_seed=data_seed,
            judge=judge_report,
            seconds=round(time.time() - start_all, 1),
        )
        if return_arrays:
            arrays.update(
                images=images, generated=generated, known=known,
                completion_originals=originals,
                completion_no_caption=no_caption,
                completion_caption=with_caption,
                completion_reconstruction=completion_reconstruction,
            )
            result["arrays"] = arrays
            result["model"] = model
        return result
    finally:
        if temporary is not None:
            temporary.cleanup()

"""Text-to-image generation and completion over a frozen tokenizer's codes.

Trains the masked-token generator (`keras_lgvq.models.TextToImage`) on the
codes of a trained tokenizer of the package (VQGAN, LG-VQ, CVQ, ...) over
the captioned scenes, evaluates it and writes a report:

1. the scenes set (procedural, no download) at the tokenizer's resolution;
   the training images are encoded once into a code cache and their
   captions once into a MiniLM feature cache (`--cache-dir`), so training
   runs neither the image nor the text encoder;
2. training: cosine masking schedule, cross-entropy on masked positions,
   10 % caption dropout (classifier-free guidance);
3. evaluation on test captions: conditioning accuracy of the generated
   images judged by attribute classifiers trained on real scenes images,
   half of them seen blurred / desaturated / noisy so that a tokenizer's
   soft decoding is read rather than missed (`--judge-degradation`;
   `keras_lgvq.metrics.conditioning_accuracy`; per attribute and overall,
   with the chance level (real images, shuffled captions), the
   unconditional sampler, the tokenizer's own reconstructions (with their
   own captions, and with shuffled ones: the chance level of images this
   tokenizer can draw) and the real images as references), held-out attribute combinations separately,
   image completion (top half known, with and without the caption: PSNR /
   SSIM of the completed half, conditioning accuracy), and FID when
   Inception weights are available;
4. `summary.json`, `report.md`, `samples.png` (captions with several
   samples each) and `completions.png` in `--out`.

Several `--tokenizer` paths train one generator each on the same data,
seeds and judge, and the report puts them side by side:

```
python recipes/text_to_image.py --tokenizer runs/scenes/lgvq/model.keras \
    --tokenizer runs/scenes/vqgan/model.keras --name lgvq --name vqgan \
    --out runs/text_to_image
```

`--tokenizer` also takes the name of a preset that ships trained weights in
the package, e.g. the side-by-side run on the shipped scenes tokenizers:

```
python recipes/text_to_image.py --tokenizer scenes_lgvq_trained \
    --tokenizer scenes_vqgan_trained --name lgvq --name vqgan
```

Budgets: the default is sized for <= 15 minutes per tokenizer on a 2-core
CPU (plus a few minutes, once, to train the judge, which is cached);
`--quick` for a few minutes; `--smoke` runs the whole code path in seconds
for CI (the numbers mean nothing).

Training keeps what the tokenizer recipes keep (`recipes/common.py`), per
tokenizer in `OUT/NAME/`: a resumable backup every `--checkpoint-every`
steps (rerun the same command after a kill; a generator that had finished
is trained again, to the same weights), `best.keras` (lowest validation
loss) and `last.keras`, TensorBoard scalars in `logs/`, `history.csv`,
validation each epoch on `--validation-size` held-out scenes (the
validation split, cached like the training codes), and the NaN/Inf guard
(`--nan-policy stop|skip|off`).
"""

import argparse
import json
import os
import sys
import time

try:
    from recipes import common
except ImportError:  # Run as `python recipes/text_to_image.py`.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes import common

BUDGETS = {
    "default": dict(
        train_size=3000,
        captions_per_image=2,
        train_steps=1000,
        batch_size=32,
        eval_size=192,
        held_out_size=48,
        completion_size=48,
        figure_captions=6,
        samples_per_caption=4,
        judge_images=2500,
        judge_epochs=6,
        validation_size=128,
    ),
    "quick": dict(
        train_size=1024,
        captions_per_image=1,
        train_steps=150,
        batch_size=32,
        eval_size=64,
        held_out_size=16,
        completion_size=16,
        figure_captions=4,
        samples_per_caption=3,
        judge_images=1200,
        judge_epochs=4,
        validation_size=64,
    ),
    # CI: the whole code path in seconds; the numbers mean nothing.
    "smoke": dict(
        train_size=48,
        captions_per_image=1,
        train_steps=4,
        batch_size=8,
        eval_size=8,
        held_out_size=2,
        completion_size=4,
        figure_captions=2,
        samples_per_caption=2,
        judge_images=64,
        judge_epochs=1,
        validation_size=8,
    ),
}
# Share of the judge's training scenes seen through generic degradations
# (`conditioning_accuracy.degrade_images`): a judge trained on clean scenes
# only found 0.6 of the 2.0 objects per image in the shipped tokenizers'
# reconstructions (benchmarks/results/text_to_image_measurements.md).
JUDGE_DEGRADATION = 0.5
SMOKE_GENERATOR = dict(hidden_dim=16, num_layers=1, num_heads=2,
                      intermediate_dim=32)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=(
            "Train the text-to-image generator on a frozen tokenizer's "
            "codes of the scenes set, evaluate conditioning accuracy and "
            "completion, and write a report."
        )
    )
    parser.add_argument(
        "--tokenizer",
        action="append",
        required=True,
        help="A tokenizer of the package: .keras file, preset directory, "
        "or a preset name with shipped weights (scenes_lgvq_trained, "
        "scenes_vqgan_trained); repeat to compare several.",
    )
    parser.add_argument(
        "--name", action="append", help="A label per --tokenizer."
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true")
    size.add_argument(
        "--smoke", action="store_true",
        help="CI-sized run of the whole code path (numbers mean nothing).",
    )
    parser.add_argument("--out", default="runs/text_to_image")
    parser.add_argument("--preset", default="text_to_image_scenes")
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--captions-per-image", type=int)
    parser.add_argument("--train-steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--eval-size", type=int)
    parser.add_argument(
        "--validation-size", type=int,
        help="Held-out scenes (validation split) scored each epoch.",
    )
    parser.add_argument("--held-out-size", type=int)
    parser.add_argument("--completion-size", type=int)
    parser.add_argument("--samples-per-caption", type=int)
    parser.add_argument("--sampling-steps", type=int)
    parser.add_argument("--guidance-scale", type=float)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--judge", help="A saved conditioning judge (.keras).")
    parser.add_argument("--judge-images", type=int)
    parser.add_argument("--judge-epochs", type=int)
    parser.add_argument(
        "--judge-degradation", type=float,
        help="Share of the judge's training scenes seen blurred / "
        "desaturated / noisy (generic, no tokenizer involved; default 0.5; "
        "0: clean scenes only).",
    )
    parser.add_argument(
        "--inception-weights",
        help="Inception-v3 weights for FID (default: the usual places).",
    )
    parser.add_argument(
        "--cache-dir",
        help="Code / text-feature / judge caches (default: the keras_lgvq "
        "cache, text_to_image/).",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jit-compile", choices=("auto", "on", "off"), default="auto"
    )
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    common.add_training_arguments(
        parser, strategy=False, verbose=False
    )
    args = parser.parse_args(argv)
    common.check_training_arguments(args)
    return args


def resolve_settings(args):
    """The budget of the chosen size, the preset and command-line overrides."""
    from keras_lgvq.models.presets import get_preset

    mode = "smoke" if args.smoke else ("quick" if args.quick else "default")
    preset = get_preset(args.preset, "TextToImage")
    settings = dict(
        BUDGETS[mode], mode=mode, seed=args.seed,
        judge_degradation=JUDGE_DEGRADATION,
    )
    settings["learning_rate"] = preset["training"]["learning_rate"]
    settings["weight_decay"] = preset["training"]["weight_decay"]
    settings["warmup_steps"] = preset["training"]["warmup_steps"]
    settings.update(
        {f"sampling_{k}": v for k, v in preset["sampling"].items()}
    )
    if mode != "default":
        settings["sampling_steps"] = 4 if mode == "smoke" else 8
    for key, target in (
        ("train_size", "train_size"),
        ("captions_per_image", "captions_per_image"),
        ("train_steps", "train_steps"),
        ("batch_size", "batch_size"),
        ("learning_rate", "learning_rate"),
        ("eval_size", "eval_size"),
        ("validation_size", "validation_size"),
        ("held_out_size", "held_out_size"),
        ("completion_size", "completion_size"),
        ("samples_per_caption", "samples_per_caption"),
        ("sampling_steps", "sampling_steps"),
        ("guidance_scale", "sampling_guidance_scale"),
        ("temperature", "sampling_temperature"),
        ("top_k", "sampling_top_k"),
        ("judge_images", "judge_images"),
        ("judge_epochs", "judge_epochs"),
        ("judge_degradation", "judge_degradation"),
    ):
        value = getattr(args, key)
        if value is not None:
            settings[target] = value
    for key in ("train_size", "train_steps", "batch_size", "eval_size",
                "captions_per_image", "sampling_steps", "judge_images",
                "validation_size"):
        if settings[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1.")
    if settings["sampling_guidance_scale"] < 0:
        raise ValueError("--guidance-scale must be >= 0.")
    if not 0.0 <= settings["judge_degradation"] <= 1.0:
        raise ValueError(
            "--judge-degradation must be in [0, 1] (a share of the judge's "
            f"training scenes); received {settings['judge_degradation']}."
        )
    settings["warmup_steps"] = min(
        settings["warmup_steps"], settings["train_steps"] // 5
    )
    settings["jit_compile"] = {"auto": "auto", "on": True, "off": False}[
        args.jit_compile
    ]
    names = args.name or []
    if names and len(names) != len(args.tokenizer):
        raise ValueError(
            f"{len(names)} --name values for {len(args.tokenizer)} "
            "--tokenizer paths; give one name per tokenizer or none."
        )
    settings["names"] = names or [
        _default_name(path, i) for i, path in enumerate(args.tokenizer)
    ]
    if len(set(settings["names"])) != len(settings["names"]):
        raise ValueError(f"Duplicate names {settings['names']}; pass --name.")
    return settings


def _default_name(path, index):
    path = os.path.normpath(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    parent = os.path.basename(os.path.dirname(path))
    name = parent if stem in ("model", "preset") and parent else stem
    return name or f"tokenizer{index}"


# === Data ===


def scenes_examples(num_images, image_size, split, seed=0, holdout=None):
    """Scenes images in [-1, 1] and their examples (captions, attributes).

    The same images as the tfds `lgvq_scenes` split of this seed and size:
    every image depends only on `(seed, split, index)`.
    """
    import numpy as np

    from keras_lgvq.datasets import scenes

    examples = list(
        scenes.generate(
            num_images,
            seed=seed,
            image_size=image_size,
            split=split,
            holdout=holdout,
        )
    )
    images = np.stack([e["image"] for e in examples]).astype("float32")
    return images / 127.5 - 1.0, examples


def prepare_training_data(tokenizer, prior, settings, cache_root, verbose,
                          split="train"):
    """Code cache and text-feature cache of the training (or validation)
    split; both draw scenes without the held-out combinations."""
    from keras_lgvq.datasets import code_cache as codes_lib
    from keras_lgvq.datasets import scenes
    from keras_lgvq.text_priors import feature_cache as text_lib

    n = settings["train_size" if split == "train" else "validation_size"]
    c = settings["captions_per_image"]
    size = int(tokenizer.resolution)
    images, examples = scenes_examples(
        n, size, split, holdout=scenes.DEFAULT_HOLDOUT
    )
    fingerprint = codes_lib.tokenizer_fingerprint(tokenizer)
    code_dir = codes_lib.code_cache_path(
        os.path.join(cache_root, "codes"),
        "scenes",
        f"{split}_{size}px_n{n}",
        fingerprint,
    )
    if os.path.exists(os.path.join(code_dir, codes_lib.MANIFEST)):
        code_cache = codes_lib.CodeCache(code_dir, tokenizer=tokenizer)
    else:
        batches = (
            {
                "images": images[i : i + 64],
                "image_id": [e["image_id"] for e in examples[i : i + 64]],
            }
            for i in range(0, n, 64)
        )
        code_cache = codes_lib.build_code_cache(
            tokenizer, batches, code_dir, "scenes", split, verbose=verbose
        )
    text_dir = os.path.join(
        text_lib.cache_path(
            os.path.join(cache_root, "text"),
            "scenes",
            split,
            prior,
            prior.sequence_length,
        ),
        f"n{n}_c{c}",
    )
    if os.path.exists(os.path.join(text_dir, text_lib.MANIFEST)):
        feature_cache = text_lib.FeatureCache(text_dir, prior=prior)
    else:
        if verbose:
            print(f"Encoding {n * c} captions with {prior.name_or_path} ...")
        feature_cache = text_lib.build_feature_cache(
            prior,
            [(e["image_id"], e["captions"][:c]) for e in examples],
            text_dir,
            dataset="scenes",
            split=split,
            captions_per_image=c,
        )
    return code_cache, feature_cache


def held_out_captions(examples, count):
    """Test captions that ask for a held-out combination (one per image)."""
    from keras_lgvq.metrics.conditioning_accuracy import held_out_combinations
    from keras_lgvq.metrics.conditioning_accuracy import parse_scene_caption

    picked = []
    for index, example in enumerate(examples):
        for caption in example["captions"]:
            parsed = parse_scene_caption(caption)
            if any(held_out_combinations(o) for o in parsed["objects"]):
                picked.append((index, caption))
                break
        if len(picked) == count:
            break
    return picked


# === The judge ===


def load_or_train_judge(args, settings, image_size, cache_root, verbose):
    import keras

    from keras_lgvq.metrics import conditioning_accuracy as judge_lib

    if args.judge:
        judge = keras.saving.load_model(args.judge, safe_mode=True)
        return judge, {"source": args.judge}
    n, epochs = settings["judge_images"], settings["judge_epochs"]
    degradation = settings["judge_degradation"]
    # A judge trained on clean scenes only keeps its old cache name.
    suffix = f"_deg{round(100 * degradation)}" if degradation > 0 else ""
    path = os.path.join(
        cache_root,
        "judges",
        f"scenes_{image_size}px_n{n}_e{epochs}_b32_seed{settings['seed']}"
        + suffix,
    )
    model_path = path + ".keras"
    if os.path.exists(model_path) and os.path.exists(path + ".json"):
        with open(path + ".json") as f:
            report = json.load(f)
        report["source"] = model_path
        return keras.saving.load_model(model_path, safe_mode=True), report
    os.makedirs(os.path.dirname(path), exist_ok=True)
    print(
        f"\n== Training the conditioning judge on {n} real scenes "
        f"({epochs} epochs per stage; cached at {model_path})"
    )
    judge, report = judge_lib.train_scene_attribute_classifier(
        num_images=n,
        image_size=image_size,
        detector_epochs=epochs,
        recognizer_epochs=epochs,
        seed=settings["seed"],
        validation_images=min(256, n),
        verbose=2 if verbose else 0,
        degradation_fraction=degradation,
    )
    judge.save(model_path)
    common.write_json(path + ".json", report)
    report["source"] = model_path
    return judge, report


# === One generator ===


def build_generator(tokenizer, prior, settings, args):
    import keras

    from keras_lgvq.models.text_to_image import TextToImage

    overrides = SMOKE_GENERATOR if settings["mode"] == "smoke" else {}
    model = TextToImage.from_preset(
        args.preset,
        tokenizer=tokenizer,
        text_prior=prior,
        seed=settings["seed"],
        **overrides,
    )
    steps = settings["train_steps"]
    warmup = settings["warmup_steps"]
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=settings["learning_rate"] * 0.01,
        decay_steps=max(1, steps - warmup),
        warmup_target=settings["learning_rate"],
        warmup_steps=warmup,
        alpha=0.05,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            schedule,
            weight_decay=settings["weight_decay"],
            beta_2=0.99,
            global_clipnorm=1.0,
        ),
        jit_compile=settings["jit_compile"],
    )
    return model


def train_generator(model, caches, validation_caches, settings, args,
                    out_dir, name):
    """Trains through `common.train` (backups, best / last, logs, guard).

    Args:
        caches: `(code_cache, feature_cache)` of the training split.
        validation_caches: the same of the validation split.
        name: the tokenizer's label (its backup sub-folder).
    """
    from keras_lgvq.callbacks import epoch_seed
    from keras_lgvq.datasets.code_cache import make_code_dataset

    seed = settings["seed"]

    def epoch_data(epoch):
        # Seeded per epoch (shuffle, caption draw): a resumed run rebuilds
        # its epoch and skips the batches it had trained.
        return make_code_dataset(
            *caches,
            batch_size=settings["batch_size"],
            training=True,
            seed=epoch_seed(seed, epoch),
        ).repeat()

    def validation_data():
        ds = make_code_dataset(
            *validation_caches,
            batch_size=settings["batch_size"],
            training=False,
            seed=seed,
        )
        return ds.take(args.validation_steps) if args.validation_steps else ds

    steps = settings["train_steps"]
    epochs = min(5, steps)
    history = common.train(
        model,
        epoch_data,
        validation_data,
        common.model_arguments(args, name),
        out_dir,
        epochs=epochs,
        steps_per_epoch=steps // epochs,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _judge(judge, images, captions):
    from keras_lgvq.metrics import scenes_conditioning_accuracy

    result = scenes_conditioning_accuracy(judge, images, captions)
    result.pop("per_caption")
    return result


def _bottom_half_quality(originals, images):
    import numpy as np

    from keras_lgvq.metrics import psnr
    from keras_lgvq.metrics import ssim

    half = originals.shape[1] // 2
    a, b = originals[:, half:], images[:, half:]
    return {
        "psnr": float(np.mean(np.asarray(psnr(a, b)))),
        "ssim": float(np.mean(np.asarray(ssim(a, b)))),
    }


def _fid(args, real, fake):
    from keras_lgvq.metrics import FrechetInceptionDistance

    try:
        metric = FrechetInceptionDistance(weights=args.inception_weights)
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


def evaluate_generator(model, judge, test, held, settings, args, out_dir,
                       watch, name, verbose):
    """Samples, judges and draws one generator; returns its results."""
    import numpy as np

    from keras_lgvq.visualization import generation_figures as figures

    images, examples = test
    seed = settings["seed"]
    sampling = dict(
        steps=settings["sampling_steps"],
        temperature=settings["sampling_temperature"],
        top_k=settings["sampling_top_k"],
        remask_temperature=settings["sampling_remask_temperature"],
    )
    scale = settings["sampling_guidance_scale"]
    n = settings["eval_size"]
    captions = [e["captions"][i % len(e["captions"])]
                for i, e in enumerate(examples[:n])]
    results = {}

    print(f"\n== [{name}] Sampling {n} test captions (guidance {scale})")
    with watch.phase(f"{name}_sample"):
        start = time.perf_counter()
        codes = model.generate_codes(
            captions, guidance_scale=scale, seed=seed, verbose=verbose,
            **sampling,
        )
        seconds = time.perf_counter() - start
        generated = model.decode_codes(codes)
    results["sampling"] = {
        "images": n,
        "seconds": round(seconds, 2),
        "images_per_s": round(n / seconds, 3),
        **sampling,
        "guidance_scale": scale,
    }
    results["generated"] = _judge(judge, generated, captions)
    results["codebook_usage_generated"] = int(len(np.unique(codes)))

    print(f"== [{name}] Unconditional samples (the generator's own chance)")
    with watch.phase(f"{name}_sample"):
        unconditional = model.decode_codes(
            model.generate_codes(
                num_samples=n, seed=seed, verbose=verbose, **sampling
            )
        )
    results["unconditional"] = _judge(judge, unconditional, captions)
    results["fid"] = _fid(args, images[:n], generated)

    # Held-out combinations (compositional generalisation).
    if held:
        held_captions = [c for _, c in held]
        print(f"== [{name}] {len(held)} captions with held-out combinations")
        with watch.phase(f"{name}_sample"):
            held_images = model.decode_codes(
                model.generate_codes(
                    held_captions, guidance_scale=scale, seed=seed + 1,
                    verbose=verbose, **sampling,
                )
            )
        results["held_out_generated"] = _judge(
            judge, held_images, held_captions
        )

    # Completion: the top half of the code grid is known.
    m = settings["completion_size"]
    originals = images[:m]
    completion_captions = captions[:m]
    grid = model.grid_size
    known = np.zeros((grid, grid), bool)
    known[: grid // 2] = True
    print(f"== [{name}] Completing {m} test images (top half known)")
    with watch.phase(f"{name}_complete"):
        given = model.encode_images(originals)
        no_caption = model.decode_codes(
            model.complete(given, known, seed=seed, verbose=verbose,
                           **sampling)
        )
        with_caption = model.decode_codes(
            model.complete(
                given, known, captions=completion_captions,
                guidance_scale=scale, seed=seed, verbose=verbose, **sampling,
            )
        )
        reconstruction = model.decode_codes(given)
    results["completion"] = {
        "images": m,
        "known": "top half of the code grid",
        "no_caption": {
            **_bottom_half_quality(originals, no_caption),
            "conditioning": _judge(judge, no_caption, completion_captions),
        },
        "caption": {
            **_bottom_half_quality(originals, with_caption),
            "conditioning": _judge(judge, with_caption, completion_captions),
        },
        "tokenizer_reconstruction": _bottom_half_quality(
            originals, reconstruction
        ),
    }

    # Figures.
    f = settings["figure_captions"]
    s = settings["samples_per_caption"]
    figure_captions = captions[:f]
    with watch.phase(f"{name}_sample"):
        grid_samples = model.decode_codes(
            model.generate_codes(
                figure_captions, samples_per_caption=s,
                guidance_scale=scale, seed=seed + 2, **sampling,
            )
        )
    files = {}
    path = os.path.join(out_dir, "samples.png")
    figures.caption_samples_figure(
        figure_captions,
        grid_samples.reshape((f, s) + grid_samples.shape[1:]),
        path=path,
        references=images[:f],
        title=f"{name}: generated (guidance {scale})",
    )
    files["samples"] = path
    k = min(6, m)
    path = os.path.join(out_dir, "completions.png")
    figures.completion_figure(
        originals[:k],
        known,
        [no_caption[:k], with_caption[:k], reconstruction[:k]],
        path=path,
        captions=completion_captions[:k],
        labels=["no caption", "caption", "tokenizer"],
        title=f"{name}: completion of the bottom half",
    )
    files["completions"] = path
    results["figures"] = files
    return results


def run_one(tokenizer_path, name, prior, judge, test, held, settings, args,
            cache_root, watch):
    import keras

    from keras_lgvq.models.text_to_image import load_tokenizer

    out_dir = os.path.join(args.out, name)
    os.makedirs(out_dir, exist_ok=True)
    verbose = args.verbose
    keras.utils.set_random_seed(settings["seed"])
    with watch.phase(f"{name}_data"):
        tokenizer = load_tokenizer(tokenizer_path)
        code_cache, feature_cache = prepare_training_data(
            tokenizer, prior, settings, cache_root, verbose
        )
        validation_caches = prepare_training_data(
            tokenizer, prior, settings, cache_root, verbose,
            split="validation",
        )
    model = build_generator(tokenizer, prior, settings, args)
    print(
        f"\n== [{name}] Training {model.backbone.num_layers} x "
        f"{model.backbone.hidden_dim} generator "
        f"({model.backbone.count_params():,} parameters) for "
        f"{settings['train_steps']} steps of {settings['batch_size']}"
    )
    with watch.phase(f"{name}_train"):
        start = time.perf_counter()
        history = train_generator(
            model, (code_cache, feature_cache), validation_caches, settings,
            args, out_dir, name,
        )
        train_seconds = time.perf_counter() - start
    tokens = settings["train_steps"] * settings["batch_size"] * (
        model.grid_size**2
    )
    results = {
        "tokenizer": tokenizer_path,
        "tokenizer_class": type(tokenizer).__name__,
        "grid_size": model.grid_size,
        "num_codes": model.num_codes,
        "codebook_usage_train": int(len(set(code_cache.codes.reshape(-1)))),
        "generator_parameters": int(model.backbone.count_params()),
        "history": history,
        "train_seconds": round(train_seconds, 1),
        "train_tokens_per_s": round(tokens / train_seconds, 1),
    }
    images, _ = test
    reconstruction = model.decode_codes(
        model.encode_images(images[: settings["eval_size"]])
    )
    n = settings["eval_size"]
    captions = [e["captions"][i % 10] for i, e in enumerate(test[1][:n])]
    results["tokenizer_reconstruction"] = _judge(
        judge, reconstruction, captions
    )
    # The chance level of images that went through this tokenizer: its
    # reconstructions against the next image's caption (the real-image
    # chance counts crisp objects a blurry decoder cannot draw).
    results["tokenizer_reconstruction_chance"] = _judge(
        judge, reconstruction, captions[1:] + captions[:1]
    )
    results.update(
        evaluate_generator(
            model, judge, test, held, settings, args, out_dir, watch, name,
            verbose,
        )
    )
    model.save(os.path.join(out_dir, "model.keras"))
    model.save_to_preset(os.path.join(out_dir, "preset"))
    return results


# === Report ===


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}"


def report_markdown(summary):
    from keras_lgvq.metrics.conditioning_accuracy import ATTRIBUTES

    names = list(summary["models"])
    refs = summary["references"]
    lines = [
        "# Text-to-image over frozen tokenizer codes (scenes)",
        "",
        f"Budget `{summary['settings']['mode']}`, "
        f"{summary['settings']['train_steps']} training steps of "
        f"{summary['settings']['batch_size']}, "
        f"{summary['settings']['eval_size']} test captions, guidance "
        f"{summary['settings']['sampling_guidance_scale']}, "
        f"{summary['settings']['sampling_steps']} decoding steps. "
        f"Total {summary['timing']['total']['wall_s']} s on "
        f"{summary['machine']['cpu_count']} CPUs "
        f"({summary['machine']['backend']}).",
        "",
        "## Conditioning accuracy (%)",
        "",
        "Each caption is parsed into checks (an object's shape; its colour, "
        "size, fill and region; counts; relations; background); a check "
        "passes when the judge, trained on real scenes images, finds it in "
        "the image. *chance*: real images with shuffled captions. "
        "*ceiling*: real images with their own captions. *recon*: the "
        "tokenizer's reconstruction of the real image (what its codes can "
        "express). *recon chance*: those reconstructions with shuffled "
        "captions (chance for images this tokenizer can draw). *uncond*: "
        "the generator without the caption.",
        "",
    ]
    header = ["check", "chance", "ceiling"]
    for n in names:
        header += [f"{n} recon chance", f"{n} recon", f"{n} uncond",
                   f"{n} generated"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")

    def row(label, getter):
        cells = [label, _pct(getter(refs["chance"])),
                 _pct(getter(refs["ceiling"]))]
        for n in names:
            m = summary["models"][n]
            cells += [
                _pct(getter(m["tokenizer_reconstruction_chance"])),
                _pct(getter(m["tokenizer_reconstruction"])),
                _pct(getter(m["unconditional"])),
                "**" + _pct(getter(m["generated"])) + "**",
            ]
        lines.append("| " + " | ".join(cells) + " |")

    for key in ATTRIBUTES:
        row(key, lambda r, key=key: r["attributes"][key]["accuracy"])
    row("overall", lambda r: r["overall"])
    row("captions fully satisfied", lambda r: r["captions_fully_satisfied"])
    lines += [
        "",
        "## Held-out combinations (compositional generalisation)",
        "",
        "Captions of test images that ask for a combination never drawn in "
        "the training split (e.g. a blue star). Correct when an object with "
        "the whole combination is found.",
        "",
        "| model | held-out objects correct (%) | overall on these captions "
        "(%) | real ceiling (%) |",
        "|---|---:|---:|---:|",
    ]
    held_ref = refs.get("held_out_ceiling")
    for n in names:
        g = summary["models"][n].get("held_out_generated")
        if g is None:
            continue
        lines.append(
            f"| {n} | {_pct(g['held_out']['accuracy'])} | "
            f"{_pct(g['overall'])} | "
            f"{_pct(held_ref['held_out']['accuracy']) if held_ref else 'n/a'}"
            " |"
        )
    lines += [
        "",
        "## Completion (top half of the code grid known)",
        "",
        "PSNR / SSIM of the completed bottom half against the original; "
        "conditioning accuracy of the completed image against the caption.",
        "",
        "| model | PSNR no caption | PSNR caption | PSNR tokenizer | SSIM no "
        "caption | SSIM caption | cond. no caption (%) | cond. caption (%) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        c = summary["models"][n]["completion"]
        lines.append(
            f"| {n} | {c['no_caption']['psnr']:.2f} | "
            f"{c['caption']['psnr']:.2f} | "
            f"{c['tokenizer_reconstruction']['psnr']:.2f} | "
            f"{c['no_caption']['ssim']:.3f} | {c['caption']['ssim']:.3f} | "
            f"{_pct(c['no_caption']['conditioning']['overall'])} | "
            f"{_pct(c['caption']['conditioning']['overall'])} |"
        )
    lines += ["", "## FID", ""]
    for n in names:
        fid = summary["models"][n]["fid"]
        if fid["available"]:
            lines.append(
                f"- {n}: {fid['value']:.2f} ({fid['num_generated']} generated "
                f"vs {fid['num_real']} real images; {fid['note']})"
            )
        else:
            lines.append(f"- {n}: not computed: {fid['reason']}")
    lines += ["", "## Training and sampling", ""]
    for n in names:
        m = summary["models"][n]
        lines.append(
            f"- {n}: {m['generator_parameters']:,} parameters, "
            f"{m['train_seconds']} s training "
            f"({m['train_tokens_per_s']:.0f} code tokens/s), final loss "
            f"{m['history']['loss'][-1]:.3f}, masked accuracy "
            f"{100 * m['history']['masked_accuracy'][-1]:.1f} %; sampling "
            f"{m['sampling']['images_per_s']:.2f} images/s; codes used: "
            f"{m['codebook_usage_train']} in training data, "
            f"{m['codebook_usage_generated']} in samples. Figures: "
            f"`{n}/samples.png`, `{n}/completions.png`."
        )
    judge = summary["judge"]
    lines += [
        "",
        f"Judge: {judge.get('source')}; trained on "
        f"{judge.get('train_images', '?')} real scenes "
        f"({judge.get('train_seconds', '?')} s).",
        "",
    ]
    return "\n".join(lines)


def run(args):
    import keras

    from keras_lgvq import text_priors
    from keras_lgvq.models.presets import get_preset
    from keras_lgvq.models.text_to_image import load_tokenizer
    from keras_lgvq.utils.cache import cache_dir

    watch = common.Stopwatch()
    settings = resolve_settings(args)
    common.quiet_tensorflow()
    os.makedirs(args.out, exist_ok=True)
    cache_root = args.cache_dir or cache_dir("text_to_image")
    machine = common.machine_info()
    print(
        f"keras-lgvq text-to-image ({settings['mode']}): backend "
        f"{machine['backend']}, {machine['cpu_count']} CPUs, load "
        f"{machine['load_average']}; output in {args.out}"
    )
    text = get_preset(args.preset, "TextToImage")["text"]
    with watch.phase("setup"):
        prior = text_priors.get(
            text["text_prior"], sequence_length=text["sequence_length"]
        )
        sizes = {int(load_tokenizer(p).resolution) for p in args.tokenizer}
        if len(sizes) != 1:
            raise ValueError(
                f"The tokenizers work at different resolutions {sizes}; "
                "compare tokenizers of one image size."
            )
        image_size = sizes.pop()
        keras.utils.set_random_seed(settings["seed"])
        judge, judge_report = load_or_train_judge(
            args, settings, image_size, cache_root, args.verbose
        )
        test_count = max(
            settings["eval_size"], settings["completion_size"],
            settings["figure_captions"],
        )
        scan = max(test_count, 40 * settings["held_out_size"])
        images, examples = scenes_examples(scan, image_size, "test")
        held = held_out_captions(examples, settings["held_out_size"])
        test = (images[:test_count], examples[:test_count])
        n = settings["eval_size"]
        captions = [e["captions"][i % 10] for i, e in enumerate(examples[:n])]
        references = {
            "ceiling": _judge(judge, images[:n], captions),
            # Image i judged against the caption of image i + 1.
            "chance": _judge(judge, images[:n], captions[1:] + captions[:1]),
        }
        if held:
            references["held_out_ceiling"] = _judge(
                judge,
                images[[i for i, _ in held]],
                [c for _, c in held],
            )
    models = {}
    for path, name in zip(args.tokenizer, settings["names"]):
        models[name] = run_one(
            path, name, prior, judge, test, held, settings, args,
            cache_root, watch,
        )
    summary = {
        "settings": settings,
        "judge": judge_report,
        "references": references,
        "models": models,
        "timing": watch.as_dict(),
        "machine": machine,
        "peak_rss_mb": common.peak_rss_mb(),
    }
    common.write_json(os.path.join(args.out, "summary.json"), summary)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report_markdown(summary))
    print(f"\nDone in {summary['timing']['total']['wall_s']} s: "
          f"{args.out}/summary.json, report.md")
    for name, m in models.items():
        print(
            f"  {name}: conditioning {_pct(m['generated']['overall'])} % "
            f"(chance {_pct(references['chance']['overall'])}, unconditional "
            f"{_pct(m['unconditional']['overall'])}, reconstruction "
            f"{_pct(m['tokenizer_reconstruction']['overall'])}, "
            "reconstruction chance "
            f"{_pct(m['tokenizer_reconstruction_chance']['overall'])}, "
            "ceiling "
            f"{_pct(references['ceiling']['overall'])})"
        )
    return summary


def main(argv=None):
    return run(parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])

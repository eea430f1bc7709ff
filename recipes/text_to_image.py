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
   tokenizer can draw) and the real images as references; the generated
   images' own chance level, the same images judged against other test
   captions, with a paired bootstrap of generated minus it; bound checks
   (an attribute counts on an object of the asked shape) and presence
   checks (on any found object)), held-out attribute combinations
   separately,
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

`--generator` (one per `--tokenizer`) evaluates a generator that is
already trained, e.g. the shipped ones, with this run's captions, judge
and sampling instead of training one:

```
python recipes/text_to_image.py --tokenizer scenes_lgvq_trained \
    --generator scenes_lgvq_text_to_image --name lgvq
```

Budgets: the default is sized for <= 15 minutes per tokenizer on a 2-core
AVX-512 CPU, where it was measured (plus a few minutes, once, to train the
judge, which is cached); on an AVX2-only 2-core CPU the same training took
~29 minutes (benchmarks/results/text_to_image_measurements.md, section 5);
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
import os
import sys

try:
    from recipes import common
except ImportError:  # Run as `python recipes/text_to_image.py`.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes import common

from keras_lgvq.evaluation import text_to_image_downstream as t2i_lib

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
    parser.add_argument(
        "--generator",
        action="append",
        help="A generator already trained over the --tokenizer's codes, one "
        "per --tokenizer: a .keras file, a preset directory or a shipped "
        "preset name (scenes_lgvq_text_to_image, ...). It is evaluated as "
        "is, with this run's test captions, judge and sampling, instead of "
        "training a new one.",
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
    if settings["eval_size"] < 2:
        # Every chance level judges a test image against another's caption.
        raise ValueError(
            f"--eval-size must be >= 2; received {settings['eval_size']}."
        )
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
    generators = args.generator or []
    if generators and len(generators) != len(args.tokenizer):
        raise ValueError(
            f"{len(generators)} --generator values for "
            f"{len(args.tokenizer)} --tokenizer paths; give one trained "
            "generator per tokenizer or none (to train them)."
        )
    settings["generators"] = generators or None
    if len(set(settings["names"])) != len(settings["names"]):
        raise ValueError(f"Duplicate names {settings['names']}; pass --name.")
    return settings


def _default_name(path, index):
    path = os.path.normpath(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    parent = os.path.basename(os.path.dirname(path))
    name = parent if stem in ("model", "preset") and parent else stem
    return name or f"tokenizer{index}"


# === Data, judge, generator: keras_lgvq.evaluation.text_to_image_downstream

# Re-exported under the names this recipe always had.
scenes_examples = t2i_lib.scenes_examples
held_out_captions = t2i_lib.held_out_captions


def prepare_training_data(tokenizer, prior, settings, cache_root, verbose,
                          split="train"):
    """Code cache and text-feature cache of the training (or validation)
    split; both draw scenes without the held-out combinations."""
    n = settings["train_size" if split == "train" else "validation_size"]
    return t2i_lib.prepare_code_data(
        tokenizer, prior, n, settings["captions_per_image"], cache_root,
        split=split, verbose=verbose,
    )


def load_or_train_judge(args, settings, image_size, cache_root, verbose):
    import keras

    if args.judge:
        judge = keras.saving.load_model(args.judge, safe_mode=True)
        return judge, {"source": args.judge}
    return t2i_lib.load_or_train_scenes_judge(
        cache_root, image_size, images=settings["judge_images"],
        epochs=settings["judge_epochs"],
        degradation=settings["judge_degradation"], seed=settings["seed"],
        verbose=verbose,
    )


def generator_settings(settings, args):
    """The `text_to_image_downstream_scenes` settings of this run."""
    return dict(
        preset=args.preset,
        train_steps=settings["train_steps"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
        warmup_steps=settings["warmup_steps"],
        sampling_steps=settings["sampling_steps"],
        guidance_scale=settings["sampling_guidance_scale"],
        temperature=settings["sampling_temperature"],
        top_k=settings["sampling_top_k"],
        remask_temperature=settings["sampling_remask_temperature"],
        generator=SMOKE_GENERATOR if settings["mode"] == "smoke" else None,
        jit_compile=settings["jit_compile"],
    )


def generator_sizes(settings):
    """The `text_to_image_downstream_scenes` sizes of this run."""
    return dict(
        train_images=settings["train_size"],
        captions_per_image=settings["captions_per_image"],
        validation_images=settings["validation_size"],
        eval_images=settings["eval_size"],
        held_out_images=settings["held_out_size"],
        completion_images=settings["completion_size"],
        figure_captions=settings["figure_captions"],
        samples_per_caption=settings["samples_per_caption"],
    )


# The keys of a tokenizer's entry in `summary.json` (the library's result
# has more: per-caption lists, references, sizes).
RESULT_KEYS = (
    "tokenizer_class", "grid_size", "num_codes", "codebook_usage_train",
    "generator_parameters", "history", "train_seconds", "train_tokens_per_s",
    "tokenizer_reconstruction", "tokenizer_reconstruction_chance",
    "sampling", "generated", "generated_mismatched",
    "codebook_usage_generated", "unconditional", "fid", "held_out_generated",
    "completion",
)


def draw_figures(out, arrays, settings, name, out_dir):
    """`samples.png` and `completions.png` of one tokenizer."""
    from keras_lgvq.visualization import generation_figures as figures

    scale = settings["sampling_guidance_scale"]
    files = {}
    if "samples" in arrays:
        captions = arrays["figure_captions"]
        path = os.path.join(out_dir, "samples.png")
        figures.caption_samples_figure(
            captions, arrays["samples"], path=path,
            references=arrays["images"][: len(captions)],
            title=f"{name}: generated (guidance {scale})",
        )
        files["samples"] = path
    k = min(6, len(arrays["completion_originals"]))
    path = os.path.join(out_dir, "completions.png")
    figures.completion_figure(
        arrays["completion_originals"][:k],
        arrays["known"],
        [arrays["completion_no_caption"][:k],
         arrays["completion_caption"][:k],
         arrays["completion_reconstruction"][:k]],
        path=path,
        captions=out["captions"][:k],
        labels=["no caption", "caption", "tokenizer"],
        title=f"{name}: completion of the bottom half",
    )
    files["completions"] = path
    return files


def load_trained_generator(spec):
    """The trained `TextToImage` of a `--generator` value (a `.keras` file
    loaded in safe mode, a preset directory or a shipped preset name)."""
    import keras

    from keras_lgvq.models.text_to_image import TextToImage

    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(
                f"--generator {spec!r}: no such file. Pass a generator "
                "saved by this recipe (OUT/NAME/model.keras), a preset "
                "directory or a shipped preset name."
            )
        model = keras.saving.load_model(spec, safe_mode=True)
    else:
        model = TextToImage.from_preset(spec, text_prior=None)
    if not isinstance(model, TextToImage):
        raise ValueError(
            f"--generator {spec!r} holds a {type(model).__name__}, not a "
            "text-to-image generator (keras_lgvq.models.TextToImage)."
        )
    return model


def copy_trained_generator(trained, model, spec):
    """Gives `model` (built by the library over `--tokenizer`) the weights
    of the trained generator, after checking that both have the same
    architecture and, when the trained one carries its tokenizer, that it
    is the same tokenizer (a generator is only meaningful over the codes
    it was trained on)."""
    import keras
    import numpy as np

    own, target = _generator_weights(trained), _generator_weights(model)
    shapes = [tuple(w.shape) for w in own]
    wanted = [tuple(w.shape) for w in target]
    if shapes != wanted:
        raise ValueError(
            f"--generator {spec!r} does not fit this run's generator "
            f"architecture over the --tokenizer ({len(shapes)} weights "
            f"{shapes[:3]}... vs {len(wanted)} {wanted[:3]}...); pass the "
            "--tokenizer it was trained on and the same --preset."
        )
    if trained.tokenizer is not None and model.tokenizer is not None:
        same = all(
            np.array_equal(a, b) for a, b in zip(
                trained.tokenizer.get_weights(), model.tokenizer.get_weights())
        ) and len(trained.tokenizer.weights) == len(model.tokenizer.weights)
        if not same:
            raise ValueError(
                f"--generator {spec!r} was trained over another tokenizer "
                "than the --tokenizer given with it (their weights differ); "
                "pass the tokenizer it was trained on."
            )
    for variable, value in zip(target, own):
        variable.assign(keras.ops.convert_to_numpy(value))


def _generator_weights(model):
    """The generator's own weights: the model's without those of its frozen
    tokenizer and text prior (the prior may be attached or not)."""
    frozen = set()
    for part in (model.tokenizer, model.text_prior):
        if part is not None and hasattr(part, "weights"):
            frozen |= {id(w) for w in part.weights}
    return [w for w in model.weights if id(w) not in frozen]


def run_one(tokenizer_path, name, prior, judge, settings, args, cache_root,
            watch, generator=None):
    """Train (or, with `generator`, load) and evaluate one generator
    (`text_to_image_downstream_scenes` with this recipe's checkpointing
    training); returns its summary entry and the library's full result."""
    out_dir = os.path.join(args.out, name)
    os.makedirs(out_dir, exist_ok=True)
    trained = load_trained_generator(generator) if generator else None

    def fit(model, epoch_data, validation_data, epochs, steps_per_epoch):
        if trained is not None:
            copy_trained_generator(trained, model, generator)
            return {}
        # Through `common.train`: backups, best / last, logs, NaN guard.
        def validation():
            ds = validation_data()
            return (ds.take(args.validation_steps) if args.validation_steps
                    else ds)

        history = common.train(
            model, epoch_data, validation,
            common.model_arguments(args, name), out_dir,
            epochs=epochs, steps_per_epoch=steps_per_epoch,
        )
        return history.history

    print(f"\n== [{name}] Text-to-image generator over {tokenizer_path}"
          + (f": {generator}, evaluated without training (the library's "
             "'Training' line below is the architecture)" if generator
             else ""))
    out = t2i_lib.text_to_image_downstream_scenes(
        tokenizer_path,
        seed=settings["seed"],
        judge=judge,
        settings=generator_settings(settings, args),
        prior=prior,
        cache_dir=cache_root,
        # The recipe always drew seed-0 scenes (its caches say so).
        data_seed=0,
        fit=fit,
        phase=lambda part: watch.phase(f"{name}_{part}"),
        fid_weights=args.inception_weights,
        fid=True,
        verbose=args.verbose,
        return_arrays=True,
        **generator_sizes(settings),
    )
    model = out.pop("model")
    arrays = out.pop("arrays")
    results = {"tokenizer": tokenizer_path, "generator": generator}
    results.update({k: out[k] for k in RESULT_KEYS if k in out})
    if generator:
        # Nothing was trained: no training time or speed to report.
        for key in ("history", "train_seconds", "train_tokens_per_s"):
            results[key] = None
    # Is the conditioning above these images' own chance level?
    results["conditioning_tests"] = t2i_lib.conditioning_tests(
        out["per_caption"], seed=settings["seed"])
    results["figures"] = draw_figures(out, arrays, settings, name, out_dir)
    model.save(os.path.join(out_dir, "model.keras"))
    model.save_to_preset(os.path.join(out_dir, "preset"))
    return results, out


# === Report ===


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}"


def conditioning_test_label(name):
    """The report's words for a `conditioning_tests` name."""
    checks, _, rest = name.partition("generated_vs_")
    reference = {"mismatched": "own chance",
                 "unconditional": "unconditional"}[rest]
    what = checks.rstrip("_").replace("_", " of ", 1)
    return (f"{what}: " if what else "") + f"generated − {reference}"


def report_markdown(summary):
    from keras_lgvq.metrics.conditioning_accuracy import ATTRIBUTES
    from keras_lgvq.metrics.conditioning_accuracy import PRESENCE_ATTRIBUTES

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
        + ("Generators loaded, not trained: " + ", ".join(
            f"{n} from `{g}`" for n, g in zip(
                names, summary["settings"]["generators"])) + ". "
           if summary["settings"].get("generators") else "")
        + f"Total {summary['timing']['total']['wall_s']} s on "
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
        "the generator without the caption. *own chance*: the generated "
        "images judged against other test images' captions (the chance "
        "level of these very images; generated minus own chance is "
        "conditioning alone).",
        "",
    ]
    header = ["check", "chance", "ceiling"]
    for n in names:
        header += [f"{n} recon chance", f"{n} recon", f"{n} uncond",
                   f"{n} own chance", f"{n} generated"]
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
                _pct(getter(m["generated_mismatched"])),
                "**" + _pct(getter(m["generated"])) + "**",
            ]
        lines.append("| " + " | ".join(cells) + " |")

    for key in ATTRIBUTES:
        row(key, lambda r, key=key: r["attributes"][key]["accuracy"])
    row("overall", lambda r: r["overall"])
    row("captions fully satisfied", lambda r: r["captions_fully_satisfied"])
    lines += [
        "",
        "Presence: each object attribute the caption asks for, found on "
        "any object of the image whatever its shape (the checks above "
        "count a colour, size, fill or region only on an object of the "
        "asked shape, so a right colour drawn as a blob fails them).",
        "",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for key in PRESENCE_ATTRIBUTES:
        row(f"{key} present",
            lambda r, key=key: r["presence"][key]["accuracy"])
    row("all present", lambda r: r["presence_overall"])
    lines += [
        "",
        "## Is the conditioning above chance?",
        "",
        "Paired bootstrap over the test captions (95% interval, "
        "percentage points): the generated images against their own chance "
        "(the same images, other captions) and against the unconditional "
        "samples.",
        "",
        "| model | test | difference [95% interval] | p |",
        "|---|---|---|---:|",
    ]
    for n in names:
        for name, test in summary["models"][n]["conditioning_tests"].items():
            lines.append(
                f"| {n} | {conditioning_test_label(name)} | "
                f"{100 * test['difference']:+.1f} "
                f"[{100 * test['ci_low']:+.1f}, {100 * test['ci_high']:+.1f}]"
                f" | {test['p_value']:.3f} |"
            )
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
        if m.get("generator"):
            lines.append(
                f"- {n}: {m['generator_parameters']:,} parameters, loaded "
                f"from `{m['generator']}` (not trained in this run); "
                f"sampling {m['sampling']['images_per_s']:.2f} images/s; "
                f"codes used: {m['codebook_usage_generated']} in samples."
            )
            continue
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
    models = {}
    references = None
    generators = settings["generators"] or [None] * len(args.tokenizer)
    for path, name, generator in zip(args.tokenizer, settings["names"],
                                     generators):
        models[name], out = run_one(
            path, name, prior, judge, settings, args, cache_root, watch,
            generator=generator,
        )
        # The same judge, images and captions for every tokenizer.
        references = references or out["references"]
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
        own = m["conditioning_tests"]["generated_vs_mismatched"]
        print(
            f"  {name}: conditioning {_pct(m['generated']['overall'])} % "
            f"(own chance {_pct(m['generated_mismatched']['overall'])}: "
            f"{100 * own['difference']:+.1f} [{100 * own['ci_low']:+.1f}, "
            f"{100 * own['ci_high']:+.1f}]; attributes present "
            f"{_pct(m['generated']['presence_overall'])} vs "
            f"{_pct(m['generated_mismatched']['presence_overall'])}; "
            f"chance {_pct(references['chance']['overall'])}, unconditional "
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

"""Train the scenes stage-2 models that ship inside the package, and record them.

`keras_lgvq.models.Captioner.from_preset("scenes_lgvq_captioner")`,
`keras_lgvq.models.VQAModel.from_preset("scenes_lgvq_vqa")` and
`keras_lgvq.models.TextToImage.from_preset("scenes_lgvq_text_to_image")`
(and the `scenes_vqgan_*`, `scenes_cvq_lg_*`, `scenes_vqct_*` and
`scenes_lqae_*` ones: captioner and VQA for every shipped scenes tokenizer,
the generator for the single-codebook ones, `NOT_SHIPPED` says why not for
the others) load a trained captioner / VQA model /
text-to-image generator with no training and no download: the model's
config and weights (`task.json`, `task.weights.h5`, a few MB: the decoder
is trained from scratch over a compact vocabulary of the training text's
SmolLM2 token ids; the generator is a 0.9 M-weight transformer) live in
`keras_lgvq/models/<captioning|vqa|text_to_image>/trained/<name>/`, the
image tokenizer is the shipped tokenizer preset it was trained on, and
SmolLM2's tokenizer and MiniLM (the generator's text prior) come from
their offline assets. This recipe makes them.

Each model is trained by the task's own recipe with its defaults
(`recipes/captioning.py`: `CAPTIONING_DEFAULTS` + `CAPTIONING_SIZES`;
`recipes/vqa.py`: its scenes defaults; `recipes/text_to_image.py`: its
default budget and the `text_to_image_scenes` preset), image model only (no
blind baseline), so it is resumable the same way: kill it and rerun the
same command (`OUT/train/image/backup`, see `recipes/common.py`);
`OUT/train/image/segments.json` keeps the time of each process so the
record has the whole training time. Arguments after `--` go to that recipe
unchanged (e.g. `-- --train-images 300 --epochs 1` for a short test).

After training, the model (`OUT/train/image/last.keras`) is scored on fixed
procedural test scenes (`scenes.generate(N, seed=SEED, split="test")` /
`scenes_questions.generate_questions(N, seed=SEED, split="test")`, byte-
exact on every machine): `--test-images` (50, the figure the package test
checks on every backend) and `--eval-images` (300, the figure to quote).
Captions are scored with the Python PTB tokenizer (`use_java=False`: no
Java needed to check it; METEOR is then not computed) as BLEU-1..4,
ROUGE-L and CIDEr-D; VQA answers as accuracy and WUPS.

The text-to-image generator (`OUT/train/image/last.keras`) is scored on
the fixed test scenes of `--seed`, caption `i % 10` of scene `i`:
`test` (`--test-images`, the figure the package test re-checks on every
backend) is the masked-token NLL of the test scenes' code grids with half
of the positions masked at a fixed mask (`fixed_test_mask`: positions
ranked by `numpy.random.SeedSequence([seed, i]).generate_state`, byte-exact
on every machine), with and without the caption, and the masked-token
accuracy; `evaluation` (`--eval-images`, the figure to quote) is the
conditioning accuracy of `recipes/text_to_image.py`'s judge (the attribute
classifier trained on real scenes, cached) for the generated images
(the recipe's sampling settings), the unconditional samples, the
tokenizer's reconstructions (the ceiling of these codes) and those
reconstructions with shuffled captions (chance), plus the real images and
the real images with shuffled captions. With `--install`
the model files and `training.json` (command, seed, budget, backend,
package commit, wall / CPU time, the scores, the weights' sha256) are
copied into the package. A model over 10 MB is refused.

    nice -n 5 python recipes/ship_scenes_stage2.py --task captioning \\
        --tokenizer scenes_lgvq_trained --out runs/ship_cap_lgvq --install
    nice -n 5 python recipes/ship_scenes_stage2.py --task vqa \\
        --tokenizer scenes_lgvq_trained --out runs/ship_vqa_lgvq --install
    nice -n 5 python recipes/ship_scenes_stage2.py --task text_to_image \\
        --tokenizer scenes_lgvq_trained --out runs/ship_t2i_lgvq --install
    # the same with scenes_vqgan_trained (runs/ship_cap_vqgan, ...)

The text-to-image run keeps its code / text-feature / judge caches in the
recipe's default place (the keras_lgvq cache, `text_to_image/`; pass
`-- --cache-dir DIR` to move them), so the judge is trained once for both
tokenizers.
"""

import argparse
import json
import os
import shutil
import sys
import time

try:
    from recipes import ship_scenes_tokenizers as tokenizers_recipe
except ImportError:  # Run as `python recipes/ship_scenes_stage2.py`.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes import ship_scenes_tokenizers as tokenizers_recipe

from keras_lgvq.models.captioning import shipped  # noqa: E402

REPO = tokenizers_recipe.REPO
# Tokenizer preset -> the short name in the shipped model names.
TOKENIZERS = {
    preset: short for preset, short, _ in shipped.STAGE2_TOKENIZERS
}
# (task, tokenizer) pairs that ship no model, and why.
NOT_SHIPPED = {
    ("text_to_image", "scenes_vqct_trained"): (
        "VQCT gives 3 ids per grid position (adjectives, noun); the "
        "text-to-image generator predicts one id per position"
    ),
    ("text_to_image", "scenes_lqae_trained"): (
        "LQAE's codes are 30,522 word-piece ids: the generator's tied "
        "code embedding alone (30,523 x 128 float32, 15.6 MB) is over the "
        "10 MB a shipped model may weigh"
    ),
}
# --task -> (family folder, model class, name suffix).
TASKS = {
    "captioning": ("captioning", "Captioner", "captioner"),
    "vqa": ("vqa", "VQAModel", "vqa"),
    "text_to_image": ("text_to_image", "TextToImage", "text_to_image"),
}
# Flags of the task recipe that this recipe sets itself.
OWN_FLAGS = {
    "captioning": ("--tokenizer", "--out", "--seed", "--no-blind"),
    "vqa": ("--tokenizer", "--out", "--seed", "--no-blind"),
    "text_to_image": ("--tokenizer", "--out", "--seed", "--name"),
}
# Share of code positions masked in the text-to-image test NLL.
TEST_MASK_RATIO = 0.5
# Shipped files (keras_lgvq.models.captioning.shipped).
MAX_SHIPPED_BYTES = 10 * 1024 * 1024
# Questions per fixed test scene (VQA).
QUESTIONS_PER_IMAGE = 4


def shipped_name(task, tokenizer):
    """`scenes_<lgvq|vqgan|cvq_lg|vqct|lqae>_<captioner|vqa|text_to_image>`."""
    return f"scenes_{TOKENIZERS[tokenizer]}_{TASKS[task][2]}"


def package_dir(task, name):
    """Where the shipped model `name` lives inside the package."""
    return os.path.join(REPO, "keras_lgvq", "models", TASKS[task][0],
                        "trained", name)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--tokenizer", choices=sorted(TOKENIZERS),
                        required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-images", type=int, default=50)
    parser.add_argument("--eval-images", type=int, default=300)
    parser.add_argument(
        "--install", action="store_true",
        help="Copy the model files and training.json into the package.")
    parser.add_argument(
        "--install-only", action="store_true",
        help="Install the finished run in --out without training or "
        "scoring again.")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` goes to the task's recipe.
    forwarded = []
    if "--" in argv:
        cut = argv.index("--")
        argv, forwarded = argv[:cut], argv[cut + 1:]
    args = parser.parse_args(argv)
    args.forwarded = forwarded
    for name in ("test_images", "eval_images"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"--{name.replace('_', '-')} must be >= 1. Received: "
                f"{getattr(args, name)}")
    reason = NOT_SHIPPED.get((args.task, args.tokenizer))
    if reason:
        raise ValueError(
            f"No {args.task} model ships for --tokenizer {args.tokenizer}: "
            f"{reason}. Train one with recipes/{TASKS[args.task][0]}.py "
            "instead, or pick another tokenizer."
        )
    for flag in OWN_FLAGS[args.task]:
        if flag in forwarded or any(
                a.startswith(flag + "=") for a in forwarded):
            raise ValueError(
                f"{flag} is set by this recipe; pass it before `--` (or "
                "drop it: the shipped model has no blind baseline and one "
                "run name).")
    return args


def task_recipe(task):
    if task == "captioning":
        from recipes import captioning as recipe
    elif task == "vqa":
        from recipes import vqa as recipe
    else:
        from recipes import text_to_image as recipe
    return recipe


def task_argv(args):
    """The task recipe's command line: its defaults, image model only (its
    own 2-scene evaluation is a smoke check; the recorded scores are this
    recipe's, on the fixed test scenes)."""
    if args.task == "text_to_image":
        # Its own evaluation shrunk to a smoke check (6 captions: the
        # figure's default rows), one run named `image`.
        return [
            "--tokenizer", args.tokenizer, "--out",
            os.path.join(args.out, "train"), "--name", "image", "--seed",
            str(args.seed), "--eval-size", "6", "--held-out-size", "1",
            "--completion-size", "2", "--samples-per-caption", "1",
        ] + list(args.forwarded)
    return [
        "--tokenizer", args.tokenizer, "--out",
        os.path.join(args.out, "train"), "--seed", str(args.seed),
        "--no-blind", "--figure-images", "0", "--eval-images", "2",
    ] + list(args.forwarded)


def fixed_test_scenes(tokenizer, count, seed):
    """Codes and examples of the fixed scored scenes (test split, every
    attribute combination)."""
    from keras_lgvq.evaluation.captioning_downstream import encode_scenes

    return encode_scenes(tokenizer, count, "test", seed, None)


def score_captioner(model, count, seed):
    """Greedy captions of the first `count` fixed test scenes, scored with
    the Python PTB tokenizer against their 10 references."""
    from keras_lgvq.evaluation.captioning_downstream import generate_captions
    from keras_lgvq.metrics import evaluate_captions

    codes, examples = fixed_test_scenes(model.tokenizer, count, seed)
    predictions = generate_captions(model, 1, codes=codes)
    references = [list(e["captions"]) for e in examples]
    scores = evaluate_captions(references, predictions, use_java=False)
    return {
        "images": int(count),
        "scores": {k: (float(v) if isinstance(v, (int, float)) else v)
                   for k, v in scores.items() if k != "count"},
        "distinct_captions": len(set(predictions)),
        "samples": predictions[:5],
    }


def vqa_test_questions(image_size, count, seed):
    """The fixed scored questions: `QUESTIONS_PER_IMAGE` balanced questions
    of each of `count` test scenes."""
    from keras_lgvq.datasets import scenes_questions

    return scenes_questions.generate_questions(
        count, seed=seed, split="test", image_size=image_size,
        questions_per_image=QUESTIONS_PER_IMAGE)


def score_vqa(model, count, seed):
    """Accuracy / WUPS of the model's answers to the fixed test questions."""
    import numpy as np

    from keras_lgvq.metrics import evaluate_vqa
    from recipes.vqa import _encode

    questions = vqa_test_questions(int(model.tokenizer.resolution), count,
                                   seed)
    codes = _encode(model.tokenizer,
                    np.stack([q["image"] for q in questions]))
    answers = []
    for start in range(0, len(questions), 64):
        answers += model.answer(
            [q["question"] for q in questions[start:start + 64]],
            codes=codes[start:start + 64])
    scores = evaluate_vqa(answers, [q["answer"] for q in questions],
                          question_types=[q["type"] for q in questions])
    return {
        "images": int(count),
        "questions": len(questions),
        "scores": json.loads(json.dumps(scores, default=float)),
    }


def fixed_test_mask(count, length, seed, ratio=TEST_MASK_RATIO):
    """The fixed masks `(count, length)` bool of the text-to-image test NLL.

    Row `i` masks the `round(ratio * length)` positions with the smallest
    words of `numpy.random.SeedSequence([seed, i]).generate_state(length)`
    (ties broken by position): SeedSequence's output is specified, so the
    masks are byte-exact on every machine and numpy version.
    """
    import numpy as np

    masked = int(round(ratio * length))
    masks = np.zeros((count, length), bool)
    for i in range(count):
        words = np.random.SeedSequence([int(seed), i]).generate_state(
            length, np.uint32)
        masks[i, np.argsort(words, kind="stable")[:masked]] = True
    return masks


def text_to_image_test_data(model, count, seed):
    """Codes, captions, text features and masks of the fixed scored test
    scenes (test split, scene `i` with caption `i % 10`)."""
    images, examples = scenes_images(int(model.tokenizer.resolution), count,
                                     seed)
    captions = [e["captions"][i % len(e["captions"])]
                for i, e in enumerate(examples)]
    codes = model.encode_images(images)
    text = model.encode_captions(captions)
    mask = fixed_test_mask(count, model.backbone.sequence_length, seed)
    return images, captions, codes, text, mask


def scenes_images(image_size, count, seed):
    """The first `count` test scenes of `seed`, images in [-1, 1]."""
    import numpy as np

    from keras_lgvq.datasets import scenes

    examples = list(scenes.generate(count, seed=seed, image_size=image_size,
                                    split="test"))
    images = np.stack([e["image"] for e in examples]).astype("float32")
    return images / 127.5 - 1.0, examples


def masked_nll(model, codes, text, mask, batch_size=25):
    """Mean NLL (nats) and argmax accuracy of the true codes at the masked
    positions, in float64 from the model's float32 logits.

    Args:
        model: a `TextToImage`.
        codes: int `(B, h, w)`.
        text: dict of `token_features` / `padding_mask`, or None (the
            caption hidden: the unconditional model).
        mask: bool `(B, N)`, True where the code is masked and scored.
    """
    import numpy as np
    from keras import ops

    flat = np.asarray(codes, "int32").reshape(len(codes), -1)
    total = correct = 0.0
    for start in range(0, len(flat), batch_size):
        rows = slice(start, start + batch_size)
        batch = len(flat[rows])
        if text is None:
            features = np.zeros((batch, 1, model.backbone.text_dim),
                                "float32")
            text_mask = np.zeros((batch, 1), bool)
        else:
            features = text["token_features"][rows]
            text_mask = text["padding_mask"][rows]
        inputs = np.where(mask[rows], model.mask_id, flat[rows])
        logits = np.asarray(ops.convert_to_numpy(model.code_logits(
            inputs, features, text_mask)), "float64")
        logits -= logits.max(axis=-1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, flat[rows][..., None],
                                    axis=-1)[..., 0]
        total += float(-(picked * mask[rows]).sum())
        correct += float(((logits.argmax(-1) == flat[rows])
                          & mask[rows]).sum())
    positions = float(mask.sum())
    return {"nll": total / positions, "masked_accuracy": correct / positions}


def score_text_to_image_nll(model, count, seed):
    """The package test's figure: masked-token NLL of the fixed test
    scenes' code grids at the fixed mask, with and without the caption."""
    import hashlib

    _, captions, codes, text, mask = text_to_image_test_data(model, count,
                                                             seed)
    conditional = masked_nll(model, codes, text, mask)
    unconditional = masked_nll(model, codes, None, mask)
    return {
        "images": int(count),
        "mask_ratio": TEST_MASK_RATIO,
        "masked_positions": int(mask.sum()),
        "mask_sha256": hashlib.sha256(mask.tobytes()).hexdigest(),
        "codes_sha256": hashlib.sha256(
            codes.astype("<i4").tobytes()).hexdigest(),
        "nll": conditional["nll"],
        "masked_accuracy": conditional["masked_accuracy"],
        "nll_unconditional": unconditional["nll"],
        "masked_accuracy_unconditional": unconditional["masked_accuracy"],
        "captions": captions[:3],
    }


def _judged(judge, images, captions):
    from keras_lgvq.metrics import scenes_conditioning_accuracy

    result = scenes_conditioning_accuracy(judge, images, captions)
    result.pop("per_caption")
    return json.loads(json.dumps(result, default=float))


def score_text_to_image_conditioning(model, judge, count, seed, settings):
    """Conditioning accuracy (the recipe's judge) of generated images for
    the fixed test captions, with its references.

    Args:
        settings: `recipes.text_to_image.resolve_settings` (sampling).
    """
    images, examples = scenes_images(int(model.tokenizer.resolution), count,
                                     seed)
    captions = [e["captions"][i % len(e["captions"])]
                for i, e in enumerate(examples)]
    shuffled = captions[1:] + captions[:1]
    sampling = dict(
        steps=settings["sampling_steps"],
        temperature=settings["sampling_temperature"],
        top_k=settings["sampling_top_k"],
        remask_temperature=settings["sampling_remask_temperature"],
    )
    scale = settings["sampling_guidance_scale"]
    generated = model.decode_codes(model.generate_codes(
        captions, guidance_scale=scale, seed=seed, **sampling))
    unconditional = model.decode_codes(model.generate_codes(
        num_samples=count, seed=seed, **sampling))
    reconstruction = model.decode_codes(model.encode_images(images))
    return {
        "images": int(count),
        "sampling": {**sampling, "guidance_scale": scale, "seed": seed},
        "generated": _judged(judge, generated, captions),
        "unconditional": _judged(judge, unconditional, captions),
        # What these codes can express: the tokenizer's reconstructions.
        "reconstruction_ceiling": _judged(judge, reconstruction, captions),
        # Chance for images this tokenizer can draw.
        "reconstruction_shuffled_chance": _judged(judge, reconstruction,
                                                  shuffled),
        "real_ceiling": _judged(judge, images, captions),
        "real_shuffled_chance": _judged(judge, images, shuffled),
    }


def score_text_to_image(recipe, recipe_args, model, args):
    """`test` (NLL) and `evaluation` (conditioning accuracy) of a trained
    generator; the judge is the recipe's (trained once, cached)."""
    from keras_lgvq.utils.cache import cache_dir

    settings = recipe.resolve_settings(recipe_args)
    cache_root = recipe_args.cache_dir or cache_dir("text_to_image")
    judge, judge_report = recipe.load_or_train_judge(
        recipe_args, settings, int(model.tokenizer.resolution), cache_root,
        recipe_args.verbose)
    test = score_text_to_image_nll(model, args.test_images, args.seed)
    evaluation = score_text_to_image_conditioning(
        model, judge, args.eval_images, args.seed, settings)
    evaluation["judge"] = {k: v for k, v in judge_report.items()
                           if isinstance(v, (int, float, str))}
    # The record ships: the judge's file name, not this machine's path.
    evaluation["judge"]["source"] = os.path.basename(judge_report["source"])
    return test, evaluation


def score(task, model, count, seed):
    if task == "captioning":
        return score_captioner(model, count, seed)
    return score_vqa(model, count, seed)


def main(argv=None):
    args = parse_args(argv)
    name = shipped_name(args.task, args.tokenizer)
    if args.install_only:
        install(args.out, args.task, name)
        return
    import keras

    from keras_lgvq.models.captioning.shipped import save_shipped_model

    recipe = task_recipe(args.task)
    recipe_args = recipe.parse_args(task_argv(args))
    # The task recipe keeps its resumable backup in OUT/train/image/backup;
    # `track_time` keeps the earlier processes' segments while it exists.
    run_dir = os.path.join(args.out, "train", "image")
    os.makedirs(run_dir, exist_ok=True)
    tokenizers_recipe.track_time(run_dir)
    wall0, cpu0 = time.time(), time.process_time()
    print(f"Training {name} with recipes/{args.task}.py "
          f"{' '.join(task_argv(args))}")
    results = recipe.run(recipe_args)
    train_wall, train_cpu = time.time() - wall0, time.process_time() - cpu0
    model_path = os.path.join(args.out, "train", "image", "last.keras")
    model = keras.saving.load_model(model_path, safe_mode=True)
    print("Scoring the fixed test scenes ...")
    if args.task == "text_to_image":
        test, evaluation = score_text_to_image(recipe, recipe_args, model,
                                               args)
    else:
        test = score(args.task, model, args.test_images, args.seed)
        evaluation = score(args.task, model, args.eval_images, args.seed)
    shipped_dir = os.path.join(args.out, "shipped")
    config_path, weights_path = save_shipped_model(model, shipped_dir)
    size = os.path.getsize(config_path) + os.path.getsize(weights_path)
    # The command as run; its CPU priority is recorded as `niceness`.
    command = "python recipes/ship_scenes_stage2.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    settings = {k: v for k, v in vars(recipe_args).items()
                if isinstance(v, (int, float, str, bool, type(None)))}
    if args.task == "text_to_image":
        # The budget the recipe resolved (its size's defaults + flags).
        settings.update({
            k: v for k, v in recipe.resolve_settings(recipe_args).items()
            if isinstance(v, (int, float, str, bool, type(None)))})
    record = {
        "preset": name,
        "niceness": os.nice(0),
        "model_class": TASKS[args.task][1],
        "tokenizer_preset": args.tokenizer,
        "command": command,
        "recipe": "recipes/ship_scenes_stage2.py",
        "task_recipe": f"recipes/{args.task}.py",
        "task_recipe_arguments": task_argv(args),
        "settings": settings,
        "seed": args.seed,
        "decoder_vocabulary_size": results.get("decoder_vocabulary_size"),
        "final_loss": final_loss(args.task, results),
        **tokenizers_recipe.run_environment(),
        # This process (training + loading); `install` sums the segments
        # of a resumed run.
        "wall_s": round(train_wall, 1),
        "cpu_s": round(train_cpu, 1),
        "timings": results.get("timings", results.get("timing")),
        "test_scenes": test_scenes_record(args),
        # The figure the package test checks (first `images` test scenes).
        "test": test,
        "evaluation": evaluation,
        "shipped_bytes": size,
    }
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(record, f, indent=2)
    if args.task == "text_to_image":
        print(f"{name}: masked-token NLL {test['nll']:.4f} (no caption "
              f"{test['nll_unconditional']:.4f}) on {test['images']} test "
              "scenes; conditioning accuracy "
              f"{evaluation['generated']['overall']:.3f} (unconditional "
              f"{evaluation['unconditional']['overall']:.3f}, "
              "reconstruction ceiling "
              f"{evaluation['reconstruction_ceiling']['overall']:.3f}, "
              "shuffled chance "
              f"{evaluation['reconstruction_shuffled_chance']['overall']:.3f})"
              f" on {evaluation['images']}; {size / 1e6:.2f} MB.")
    else:
        headline = ("CIDEr-D", "BLEU-4") if args.task == "captioning" else (
            "accuracy", "WUPS@0.9")
        print(f"{name}: " + ", ".join(
            f"{k} {test['scores'][k]:.4f}" for k in headline)
            + f" on {test['images']} test scenes; {size / 1e6:.2f} MB.")
    if args.install:
        install(args.out, args.task, name)


def final_loss(task, results):
    """The last training loss the task recipe reports."""
    if task == "text_to_image":
        history = results["models"]["image"]["history"]
        return history["loss"][-1] if history.get("loss") else None
    return results["models"]["image"].get("final_loss")


def test_scenes_record(args):
    """How the fixed scored test data is made (for `training.json`)."""
    if args.task == "text_to_image":
        return {
            "generator": "keras_lgvq.datasets.scenes.generate",
            "seed": args.seed,
            "split": "test",
            "caption": "captions[i % 10] of scene i",
            "test_mask": "fixed_test_mask: SeedSequence([seed, i]) ranks, "
            f"{TEST_MASK_RATIO} of the positions masked",
            "judge": "recipes/text_to_image.py load_or_train_judge",
        }
    return {
        "generator": ("keras_lgvq.datasets.scenes.generate"
                      if args.task == "captioning" else
                      "keras_lgvq.datasets.scenes_questions."
                      "generate_questions"),
        "seed": args.seed,
        "split": "test",
        "questions_per_image": None if args.task == "captioning"
        else QUESTIONS_PER_IMAGE,
        "caption_scorer": "evaluate_captions(use_java=False)"
        if args.task == "captioning" else None,
    }


def install(out, task, name):
    """Copies a finished run's shipped files and record into the package,
    refusing a model over `MAX_SHIPPED_BYTES`."""
    from keras_lgvq.models.vqgan.vqgan_presets import file_sha256

    shipped_dir = os.path.join(out, "shipped")
    record_path = os.path.join(out, "training.json")
    files = (shipped.SHIPPED_TASK_CONFIG_FILE,
             shipped.SHIPPED_TASK_WEIGHTS_FILE)
    for path in [record_path] + [os.path.join(shipped_dir, f)
                                 for f in files]:
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path} is missing: {out!r} is not a finished run of this "
                "recipe (train it first, without --install-only).")
    with open(record_path) as f:
        record = json.load(f)
    if record["preset"] != name:
        raise ValueError(
            f"{out!r} holds a run of {record['preset']!r}, not {name!r}: "
            "pass the matching --task / --tokenizer.")
    size = sum(os.path.getsize(os.path.join(shipped_dir, f)) for f in files)
    if size > MAX_SHIPPED_BYTES:
        raise ValueError(
            f"{name} is {size / 2**20:.1f} MiB, over the "
            f"{MAX_SHIPPED_BYTES / 2**20:.0f} MiB a shipped model may have: "
            "train it with the compact decoder vocabulary (the default) or "
            "a smaller decoder / generator.")
    segments_path = os.path.join(out, "train", "image",
                                 tokenizers_recipe.SEGMENTS_FILE)
    if os.path.exists(segments_path) and "segments" not in record:
        with open(segments_path) as f:
            segments = json.load(f)
        record["segments"] = segments
        record["last_process"] = {"wall_s": record.get("wall_s"),
                                  "cpu_s": record.get("cpu_s")}
        record["wall_s"] = round(sum(s["wall_s"] for s in segments), 1)
        record["cpu_s"] = round(sum(s["cpu_s"] for s in segments), 1)
    weights = os.path.join(shipped_dir, shipped.SHIPPED_TASK_WEIGHTS_FILE)
    record["weights_sha256"] = file_sha256(weights)
    record["weights_bytes"] = os.path.getsize(weights)
    target = package_dir(task, name)
    os.makedirs(target, exist_ok=True)
    for filename in files:
        shutil.copyfile(os.path.join(shipped_dir, filename),
                        os.path.join(target, filename))
    with open(os.path.join(target, shipped.SHIPPED_RECORD_FILE), "w") as f:
        json.dump(record, f, indent=2)
    print(f"Installed {target}")
    return target


if __name__ == "__main__":
    main()

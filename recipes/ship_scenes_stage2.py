"""Train the scenes stage-2 models that ship inside the package, and record them.

`keras_lgvq.models.Captioner.from_preset("scenes_lgvq_captioner")` and
`keras_lgvq.models.VQAModel.from_preset("scenes_lgvq_vqa")` (and the
`scenes_vqgan_*` pair) load a trained captioner / VQA model with no
training and no download: the model's config and weights (`task.json`,
`task.weights.h5`, a few MB: the decoder is trained from scratch over a
compact vocabulary of the training text's SmolLM2 token ids) live in
`keras_lgvq/models/<captioning|vqa>/trained/<name>/`, the image tokenizer
is the shipped tokenizer preset it was trained on, and SmolLM2's tokenizer
comes from the offline LM asset. This recipe makes them.

Each model is trained by the task's own recipe with its defaults
(`recipes/captioning.py`: `CAPTIONING_DEFAULTS` + `CAPTIONING_SIZES`;
`recipes/vqa.py`: its scenes defaults), image model only (no blind
baseline), so it is resumable the same way: kill it and rerun the same
command (`OUT/train/image/backup`, see `recipes/common.py`);
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
ROUGE-L and CIDEr-D; VQA answers as accuracy and WUPS. With `--install`
the model files and `training.json` (command, seed, budget, backend,
package commit, wall / CPU time, the scores, the weights' sha256) are
copied into the package. A model over 10 MB is refused.

    nice -n 5 python recipes/ship_scenes_stage2.py --task captioning \\
        --tokenizer scenes_lgvq_trained --out runs/ship_cap_lgvq --install
    nice -n 5 python recipes/ship_scenes_stage2.py --task vqa \\
        --tokenizer scenes_lgvq_trained --out runs/ship_vqa_lgvq --install
    # the same with scenes_vqgan_trained (runs/ship_cap_vqgan, ...)

Text-to-image: the `text_to_image_scenes` generator would fit (0.91 M
weights, ~3.6 MB in float32), but `TextToImage.from_preset` has no
shipped-weights path yet, so this recipe does not ship it.
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

REPO = tokenizers_recipe.REPO
# Tokenizer preset -> the short name in the shipped model names.
TOKENIZERS = {"scenes_lgvq_trained": "lgvq", "scenes_vqgan_trained": "vqgan"}
# --task -> (family folder, model class, name suffix).
TASKS = {
    "captioning": ("captioning", "Captioner", "captioner"),
    "vqa": ("vqa", "VQAModel", "vqa"),
}
# Shipped files (keras_lgvq.models.captioning.shipped).
MAX_SHIPPED_BYTES = 10 * 1024 * 1024
# Questions per fixed test scene (VQA).
QUESTIONS_PER_IMAGE = 4


def shipped_name(task, tokenizer):
    """`scenes_<lgvq|vqgan>_<captioner|vqa>`."""
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
    for flag in ("--tokenizer", "--out", "--seed", "--no-blind"):
        if flag in forwarded:
            raise ValueError(
                f"{flag} is set by this recipe; pass it before `--` (or "
                "drop it: the shipped model has no blind baseline).")
    return args


def task_recipe(task):
    if task == "captioning":
        from recipes import captioning as recipe
    else:
        from recipes import vqa as recipe
    return recipe


def task_argv(args):
    """The task recipe's command line: its defaults, image model only (its
    own 2-scene evaluation is a smoke check; the recorded scores are this
    recipe's, on the fixed test scenes)."""
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
    test = score(args.task, model, args.test_images, args.seed)
    evaluation = score(args.task, model, args.eval_images, args.seed)
    shipped_dir = os.path.join(args.out, "shipped")
    config_path, weights_path = save_shipped_model(model, shipped_dir)
    size = os.path.getsize(config_path) + os.path.getsize(weights_path)
    command = "nice -n 5 python recipes/ship_scenes_stage2.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    settings = {k: v for k, v in vars(recipe_args).items()
                if isinstance(v, (int, float, str, bool, type(None)))}
    record = {
        "preset": name,
        "model_class": TASKS[args.task][1],
        "tokenizer_preset": args.tokenizer,
        "command": command,
        "recipe": "recipes/ship_scenes_stage2.py",
        "task_recipe": f"recipes/{args.task}.py",
        "task_recipe_arguments": task_argv(args),
        "settings": settings,
        "seed": args.seed,
        "decoder_vocabulary_size": results.get("decoder_vocabulary_size"),
        "final_loss": results["models"]["image"].get("final_loss"),
        **tokenizers_recipe.run_environment(),
        # This process (training + loading); `install` sums the segments
        # of a resumed run.
        "wall_s": round(train_wall, 1),
        "cpu_s": round(train_cpu, 1),
        "timings": results.get("timings"),
        "test_scenes": {
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
        },
        # The figure the package test checks (first `images` test scenes).
        "test": test,
        "evaluation": evaluation,
        "shipped_bytes": size,
    }
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(record, f, indent=2)
    headline = ("CIDEr-D", "BLEU-4") if args.task == "captioning" else (
        "accuracy", "WUPS@0.9")
    print(f"{name}: " + ", ".join(
        f"{k} {test['scores'][k]:.4f}" for k in headline)
        + f" on {test['images']} test scenes; {size / 1e6:.2f} MB.")
    if args.install:
        install(args.out, args.task, name)


def install(out, task, name):
    """Copies a finished run's shipped files and record into the package,
    refusing a model over `MAX_SHIPPED_BYTES`."""
    from keras_lgvq.models.captioning import shipped
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
            "a smaller decoder.")
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

"""VQA over a frozen tokenizer's codes on the procedural scenes.

Trains a `VQAModel` ([image prefix ; question] through a frozen causal LM,
answer classifier over the training answers) on CLEVR-style questions of
the scenes' training images (`keras_lgvq.datasets.scenes_questions`),
evaluates accuracy / WUPS@0.9 / WUPS@0.0 per question type on the test
questions and on the held-out-combination questions, and compares with a
blind baseline (the same model trained and evaluated with the image prefix
zeroed). Writes `results.json` and `report.md`.

    python recipes/vqa.py --tokenizer runs/scenes/lgvq/model.keras

Not done here: COCO-QA with user files, and the PNG of answered questions.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recipes.common import write_json


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokenizer", required=True,
                   help="Tokenizer: a .keras file or preset directory.")
    p.add_argument("--lm", default="smollm2",
                   help='LM source: "smollm2", a .gguf or a preset dir.')
    p.add_argument("--prefix-length", type=int, default=10)
    p.add_argument("--mapper-width", type=int, default=512)
    p.add_argument("--train-images", type=int, default=600)
    p.add_argument("--eval-images", type=int, default=150)
    p.add_argument("--questions-per-image", type=int, default=4)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--max-question-length", type=int, default=16)
    p.add_argument("--no-blind", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/vqa")
    return p.parse_args(argv)


def _codes_of(tokenizer, questions):
    from keras import ops

    images = np.stack([q["image"] for q in questions]).astype("float32")
    images = images / 127.5 - 1.0
    return np.concatenate([
        np.asarray(ops.convert_to_numpy(tokenizer.encode(images[i:i + 32])))
        for i in range(0, len(images), 32)
    ]).astype("int32")


def run(args):
    import keras

    from keras_lgvq.datasets import scenes_questions as sq
    from keras_lgvq.language_models import load_causal_lm
    from keras_lgvq.metrics import evaluate_vqa
    from keras_lgvq.models.captioning import build_prefix_mapper
    from keras_lgvq.models.text_to_image import load_tokenizer
    from keras_lgvq.models.vqa import VQAModel

    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    tokenizer = load_tokenizer(args.tokenizer)
    lm = load_causal_lm(args.lm)
    size = int(tokenizer.resolution)
    sets = {
        "train": sq.generate_questions(
            args.train_images, seed=args.seed, split="train",
            image_size=size, questions_per_image=args.questions_per_image),
        "test": sq.generate_questions(
            args.eval_images, seed=args.seed, split="test", image_size=size,
            questions_per_image=args.questions_per_image),
        "holdout": sq.generate_questions(
            args.eval_images, seed=args.seed, split="holdout",
            image_size=size, questions_per_image=args.questions_per_image,
            balance=False),
    }
    codes = {k: _codes_of(tokenizer, v) for k, v in sets.items() if v}
    vocabulary = sq.answer_vocabulary(sets["train"])
    results = {"settings": vars(args), "answer_vocabulary": vocabulary,
               "sizes": {k: len(v) for k, v in sets.items()}, "models": {}}
    for name, blind in (("image", False), ("blind", True)):
        if blind and args.no_blind:
            continue
        keras.utils.set_random_seed(args.seed)
        mapper = build_prefix_mapper(
            "mlp", num_positions=int(tokenizer.grid_size) ** 2,
            code_dim=int(tokenizer.quantizer.embedding_dim),
            prefix_length=args.prefix_length, lm_dim=lm.hidden_dim,
            hidden_dim=args.mapper_width, name="mapper")
        model = VQAModel(mapper, vocabulary, language_model=lm,
                         tokenizer=tokenizer,
                         max_question_length=args.max_question_length)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))

        def image_inputs(split, blind=blind, mapper=mapper):
            if blind:
                # Same model, image prefix input zeroed.
                return {"code_vectors": np.zeros(
                    (len(sets[split]), mapper.num_positions,
                     mapper.code_dim), "float32")}
            return {"codes": codes[split]}

        train = sets["train"]
        data = model.prepare_inputs([q["question"] for q in train],
                                    [q["answer"] for q in train],
                                    **image_inputs("train"))
        history = model.fit(data, epochs=args.epochs,
                            batch_size=args.batch_size, verbose=0)
        entry = {"final_loss": float(history.history["loss"][-1])}
        for split in ("test", "holdout"):
            questions = sets[split]
            if not questions:
                continue
            inputs = image_inputs(split)
            predictions = []
            for i in range(0, len(questions), 64):
                part = {k: v[i:i + 64] for k, v in inputs.items()}
                predictions += model.answer(
                    [q["question"] for q in questions[i:i + 64]], **part)
            entry[split] = evaluate_vqa(
                predictions, [q["answer"] for q in questions],
                question_types=[q["type"] for q in questions])
        results["models"][name] = entry
    results["seconds"] = time.time() - start
    write_json(os.path.join(args.out, "results.json"), results)
    write_report(os.path.join(args.out, "report.md"), results)
    return results


def write_report(path, results):
    lines = ["# VQA on scenes", "",
             f"Tokenizer: `{results['settings']['tokenizer']}`; LM: "
             f"`{results['settings']['lm']}`; questions: "
             f"{results['sizes']}; {len(results['answer_vocabulary'])} "
             "answers.", "",
             "| model | split | accuracy | WUPS@0.9 | WUPS@0.0 |",
             "|---|---|---|---|---|"]
    for model, entry in results["models"].items():
        for split in ("test", "holdout"):
            if split in entry:
                s = entry[split]
                lines.append(
                    f"| {model} | {split} | {100 * s['accuracy']:.2f} | "
                    f"{100 * s['WUPS@0.9']:.2f} | {100 * s['WUPS@0.0']:.2f} |")
    lines += ["", "Per type accuracy (test):", ""]
    for model, entry in results["models"].items():
        per = entry["test"]["per_type"]
        lines.append(f"- {model}: " + ", ".join(
            f"{t} {100 * v['accuracy']:.1f}" for t, v in sorted(per.items())))
    lines += ["", "`blind`: the same model with the image prefix zeroed.",
              f"\n{results['seconds']:.0f} s in total."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    run(parse_args(argv))


if __name__ == "__main__":
    main()

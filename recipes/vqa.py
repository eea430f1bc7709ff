"""VQA over a frozen tokenizer's codes: procedural scenes or COCO-QA.

Trains a `VQAModel` ([image prefix ; question] through a causal LM, frozen
by default, answer classifier) and evaluates accuracy / WUPS@0.9 /
WUPS@0.0 per question type, next to a blind baseline (the same model
trained and evaluated without image information: every image's code grid
replaced by one constant grid, `blind_code_vectors` of
`keras_lgvq.evaluation.captioning_downstream`). Writes `results.json`,
`report.md` and `answers.png` (test images with a question, the model's,
the blind model's and the true answer).

- scenes (default): CLEVR-style questions of the scenes' training images
  (`keras_lgvq.datasets.scenes_questions`), evaluated on the test
  questions and on the held-out-combination questions; the answer
  vocabulary is the `scenes_vqa` preset's (every answer the generator can
  give).
- COCO-QA (`--dataset coco_qa --manual-dir DIR`): the user's COCO-QA
  release and MS-COCO 2014 images (`keras_lgvq.datasets.coco_qa`);
  vocabulary = the training questions' answers (test questions with other
  answers count as wrong). Images are resized to the tokenizer's size.

    python recipes/vqa.py --tokenizer runs/scenes/lgvq/model.keras
    python recipes/vqa.py --tokenizer coco_lgvq/ --dataset coco_qa \\
        --manual-dir ~/data/coco_qa --train-questions 20000

`--decoder scratch` (an addition to the paper's frozen-LM design) replaces
the pretrained LM by a small decoder trained from scratch with the mapper
and classifier (`--decoder-width`, `--decoder-layers`; only the `--lm`'s
tokenizer is used): no 30-block SmolLM2 forward and backward per step, so
many more steps fit a CPU budget. By default (`--decoder-vocabulary
compact`) that decoder's embedding covers only the tokenizer ids of the
training and validation questions (43 on scenes, against SmolLM2's 49,152):
exact for questions inside it, a few MB saved instead of ~50.
`--tokenizer` also takes the name of a
tokenizer preset that ships trained weights (`scenes_lgvq_trained`,
`scenes_vqgan_trained`, `scenes_cvq_lg_trained`, `scenes_vqct_trained`,
`scenes_lqae_trained`).

Questions longer than `--max-question-length` tokens keep their first
tokens; the padded length is the longest (kept) question, so short
question sets cost less. The CPU defaults are sized to finish in 15 minutes
on 2 cores (benchmarks/results/stage2_measurements.md).

Training keeps what the tokenizer recipes keep (`recipes/common.py`), per
model in `OUT/image/` and `OUT/blind/`: a resumable backup every
`--checkpoint-every` steps (rerun the same command after a kill; a model
that had finished is trained again, to the same weights), `best.keras`
(lowest validation loss) and `last.keras`, TensorBoard scalars in `logs/`,
`history.csv`, validation each epoch on held-out questions (scenes: the
validation split, `--validation-images` scenes; COCO-QA: the questions of
the last `--validation-fraction` of the training images, at least one;
the answer vocabulary still spans the whole training split), and the
NaN/Inf guard (`--nan-policy stop|skip|off`).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_lgvq.evaluation.captioning_downstream import resolve_tokenizer
from keras_lgvq.evaluation.vqa_downstream import EVAL_SPLITS
from keras_lgvq.evaluation.vqa_downstream import VQA_DEFAULTS
from keras_lgvq.evaluation.vqa_downstream import check_vqa_settings
from keras_lgvq.evaluation.vqa_downstream import encode_images as _encode
from keras_lgvq.evaluation.vqa_downstream import question_vocabulary
from keras_lgvq.evaluation.vqa_downstream import train_vqa_models
from keras_lgvq.evaluation.vqa_downstream import type_prior_answers
from keras_lgvq.evaluation.vqa_downstream import vqa_downstream_scenes
from keras_lgvq.metrics import evaluate_vqa
from recipes import common
from recipes.common import Stopwatch
from recipes.common import load_average
from recipes.common import machine_info
from recipes.common import write_json


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokenizer", required=True,
                   help="Tokenizer: a .keras file, a preset directory or a "
                   "shipped preset name (scenes_lgvq_trained, "
                   "scenes_vqgan_trained, scenes_cvq_lg_trained, "
                   "scenes_vqct_trained, scenes_lqae_trained).")
    p.add_argument("--lm", default="smollm2",
                   help='LM source: "smollm2", a .gguf or a preset dir.')
    p.add_argument("--dataset", default="scenes",
                   choices=("scenes", "coco_qa"))
    p.add_argument("--manual-dir", default=None,
                   help="COCO-QA: the user's files (first run only).")
    p.add_argument("--data-dir", default=None,
                   help="COCO-QA: TFDS folder (default: keras_lgvq cache).")
    p.add_argument("--images-dir", default=None,
                   help="COCO-QA: folder with train2014/ and val2014/.")
    p.add_argument("--train-questions", type=int, default=None,
                   help="COCO-QA: use the first N training questions.")
    p.add_argument("--eval-questions", type=int, default=None,
                   help="COCO-QA: use the first N test questions.")
    common.add_prefix_mapper_arguments(p)
    # The measured CPU default: a pooled mapper (k = 16 regions) into a
    # scratch decoder (benchmarks/results/stage2_measurements.md).
    p.set_defaults(mapper="pooled", prefix_length=16, mapper_width=256)
    p.add_argument("--mapper-layers", type=int, default=2,
                   help="Blocks of a --mapper transformer.")
    p.add_argument("--train-images", type=int, default=2000,
                   help="Scenes: training images.")
    p.add_argument("--eval-images", type=int, default=300,
                   help="Scenes: test (and held-out) images.")
    p.add_argument("--validation-images", type=int, default=40,
                   help="Scenes: validation-split images whose questions "
                   "are scored at every epoch end.")
    p.add_argument("--validation-fraction", type=float, default=0.1,
                   help="COCO-QA: share of the training images whose "
                   "questions are held out for validation.")
    p.add_argument("--questions-per-image", type=int, default=4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    # 3e-4 (was 1e-3): on the shipped LG-VQ tokenizer the image model's
    # test accuracy rose from 30.1 % (level with its blind model) to
    # 41.8 % (benchmarks/results/stage2_measurements.md).
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--max-question-length", type=int, default=16)
    p.add_argument("--language-model-training", default=None,
                   choices=("frozen", "full", "lora"),
                   help="What of the LM trains (default: frozen for the "
                   "pretrained LM; a scratch decoder always trains fully).")
    p.add_argument("--lora-rank", type=int, default=None)
    p.add_argument("--decoder", default="scratch",
                   choices=("pretrained", "scratch"),
                   help="scratch (default, an addition to the paper): a "
                   "small decoder trained from scratch over the --lm's "
                   "tokenizer; pretrained: the --lm as loaded (the paper's "
                   "frozen-LM design, tens of times the CPU per step).")
    p.add_argument("--decoder-width", type=int, default=256,
                   help="Hidden size of a --decoder scratch model.")
    p.add_argument("--decoder-layers", type=int, default=2)
    p.add_argument("--decoder-vocabulary", default="compact",
                   choices=("compact", "full"),
                   help="compact (default): the scratch decoder's embedding "
                   "covers only the tokenizer ids of the training and "
                   "validation questions (43 ids on scenes; exact for "
                   "questions inside it, a question with another token is "
                   "an error); full: all the --lm tokenizer's ids.")
    p.add_argument("--figure-images", type=int, default=8)
    p.add_argument("--no-blind", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/vqa")
    common.add_training_arguments(p, strategy=False)
    args = p.parse_args(argv)
    common.check_training_arguments(args)
    if args.validation_images < 1:
        raise ValueError("--validation-images must be >= 1. Received: "
                         f"{args.validation_images}")
    if args.decoder == "scratch":
        if args.language_model_training not in (None, "full"):
            raise ValueError(
                "--decoder scratch starts from random weights and trains "
                "fully: drop --language-model-training or pass 'full'; "
                f"received {args.language_model_training!r}.")
        args.language_model_training = "full"
    elif args.language_model_training is None:
        args.language_model_training = "frozen"
    for flag in ("decoder_width", "decoder_layers"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1. "
                             f"Received: {getattr(args, flag)}")
    if not 0.0 < args.validation_fraction < 1.0:
        raise ValueError("--validation-fraction must be in (0, 1). "
                         f"Received: {args.validation_fraction}")
    if args.projection_dim is not None and args.mapper != "mlp":
        raise ValueError("--projection-dim is an option of --mapper mlp; "
                         f"received --mapper {args.mapper}. Drop it or use "
                         "--mapper mlp.")
    return args


def coco_qa_sets(args, tokenizer):
    """Question records and codes of COCO-QA's train and test splits."""
    import tensorflow as tf

    from keras_lgvq.datasets import coco_qa

    size = int(tokenizer.resolution)
    limits = {"train": args.train_questions, "test": args.eval_questions}
    sets, codes = {}, {}
    for split, limit in limits.items():
        ds = coco_qa.load_coco_qa(split, data_dir=args.data_dir,
                                  manual_dir=args.manual_dir,
                                  images_dir=args.images_dir)
        records, images = [], []
        for index, example in enumerate(ds):
            qs = example["questions"]
            image = tf.image.resize(example["image"], (size, size),
                                    antialias=True)
            images.append(np.clip(np.round(image.numpy()), 0, 255)
                          .astype("uint8"))
            for question, answer, kind in zip(
                qs["question"].numpy(), qs["answer"].numpy(),
                qs["question_type"].numpy()
            ):
                records.append({
                    "question": question.decode(),
                    "answer": answer.decode(),
                    "type": coco_qa.QUESTION_TYPES[int(kind)],
                    "image_index": index,
                    "image_id": example["image_id"].numpy().decode(),
                })
            if limit is not None and len(records) >= limit:
                break
        records = records[:limit] if limit is not None else records
        images = np.stack(images)
        image_codes = _encode(tokenizer, images)
        for r in records:
            r["image"] = images[r["image_index"]]
        sets[split] = records
        codes[split] = image_codes[[r["image_index"] for r in records]]
    return sets, codes


def hold_out_images(records, codes, fraction):
    """Splits training questions by image: the questions of the last
    `fraction` of the images (at least one image, and one left to train
    on) become the validation questions.

    Returns:
        `((train_records, train_codes), (val_records, val_codes))`.
    """
    images = sorted({r["image_index"] for r in records})
    if len(images) < 2:
        raise ValueError(
            f"The training split has {len(images)} image(s); holding out "
            "validation questions needs at least 2 (pass more training "
            "questions, --train-questions)."
        )
    count = min(len(images) - 1, max(1, round(fraction * len(images))))
    held = set(images[-count:])
    keep = np.asarray([r["image_index"] not in held for r in records])
    train = [r for r, k in zip(records, keep) if k]
    validation = [r for r, k in zip(records, keep) if not k]
    return (train, codes[keep]), (validation, codes[~keep])


def paired_tests(sets, splits, answers_of):
    """Paired bootstraps of the image model's per-question accuracy against
    the blind model and the type prior, per split.

    Args:
        sets: split -> question records (with `answer`).
        splits: the evaluated splits.
        answers_of: model name -> split -> predicted answers (aligned
            with `sets[split]`); needs `"image"`.

    Returns:
        split -> `"image vs <other>"` -> `paired_bootstrap`'s dict
        (`difference` of accuracies, its 95 % interval, `p_value`).
    """
    from keras_lgvq.evaluation.significance import paired_bootstrap

    if "image" not in answers_of:
        return {}
    out = {}
    for split in splits:
        truth = [q["answer"] for q in sets[split]]

        def correct(name, split=split, truth=truth):
            return np.asarray([a == t for a, t in
                               zip(answers_of[name][split], truth)], float)

        out[split] = {
            f"image vs {other}": paired_bootstrap(correct("image"),
                                                  correct(other))
            for other in ("blind", "type prior") if other in answers_of
        }
    return out


def settings_of(args):
    """The `VQA_DEFAULTS` keys of `vqa_downstream`'s models from the
    command line (`language_model_training` as resolved by `parse_args`).

    Examples:

    ```python
    settings_of(parse_args(["--tokenizer", "t.keras"]))["epochs"]  # 10
    ```
    """
    return {key: getattr(args, key) for key in VQA_DEFAULTS}


def run(args):
    import keras

    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    watch = Stopwatch()
    load_start = load_average()
    settings = settings_of(args)

    def fit(model, name, data, val_data):
        # The recipes' trainer: resumable backups, best / last models,
        # TensorBoard logs and history.csv per model in OUT/<name>/.
        epoch_data, validation_data = common.array_datasets(
            data, val_data, args.batch_size, args.seed,
            validation_steps=args.validation_steps)
        run_dir = os.path.join(args.out, name)
        os.makedirs(run_dir, exist_ok=True)
        return common.train(
            model, epoch_data, validation_data,
            common.model_arguments(args, name), run_dir, epochs=args.epochs)

    blind = not args.no_blind
    if args.dataset == "scenes":
        out = vqa_downstream_scenes(
            args.tokenizer, seed=args.seed, language_model=args.lm,
            blind=blind, settings=settings, train_images=args.train_images,
            validation_images=args.validation_images,
            eval_images=args.eval_images,
            questions_per_image=args.questions_per_image, fit=fit,
            phase=watch.phase, return_sets=True)
        sets = out["sets"]
        vocabulary = out["answer_vocabulary"]
        answers = {name: out[name]["answers"] for name in ("image", "blind")
                   if name in out}
        models = {
            name: {"final_loss": float(out[name]["loss"][-1]),
                   "loss_history": out[name]["loss"],
                   "val_loss_history": out[name]["val_loss"],
                   **out[name]["scores"]}
            for name in answers
        }
        vocabulary_size = out["decoder_vocabulary_size"]
        max_length = out["question_tokens"]
    else:
        from keras_lgvq.datasets.coco_qa import answer_vocabulary

        with watch.phase("load"):
            tokenizer = resolve_tokenizer(args.tokenizer)
        with watch.phase("encode"):
            sets, codes = coco_qa_sets(args, tokenizer)
            # The label space of the whole training split, validation
            # images included (so every validation answer is a class).
            vocabulary = answer_vocabulary(sets["train"])
            (sets["train"], codes["train"]), held = hold_out_images(
                sets["train"], codes["train"], args.validation_fraction)
            sets["validation"], codes["validation"] = held
        vocabulary_ids = question_vocabulary(
            check_vqa_settings(settings), args.lm,
            [q["question"] for split in ("train", "validation")
             for q in sets[split]])
        trained = train_vqa_models(
            tokenizer, sets, codes, vocabulary, settings, seed=args.seed,
            language_model=args.lm, blind=blind,
            vocabulary_ids=vocabulary_ids, fit=fit, phase=watch.phase)
        answers = trained["answers"]
        models = {name: {k: v for k, v in entry.items() if k != "seconds"}
                  for name, entry in trained["models"].items()}
        vocabulary_size = None if vocabulary_ids is None else len(
            vocabulary_ids)
        max_length = trained["question_tokens"]
    eval_splits = [s for s in EVAL_SPLITS if s in sets]
    results = {"settings": vars(args), "answer_vocabulary": vocabulary,
               "decoder_vocabulary_size": vocabulary_size,
               "sizes": {k: len(v) for k, v in sets.items()},
               "question_tokens": max_length, "models": models}
    # Per split, every model's answers (the paired tests below).
    answers_of = {"type prior": {
        split: type_prior_answers(sets["train"], sets[split])
        for split in eval_splits}, **answers}
    results["type_prior"] = {
        split: evaluate_vqa(
            answers_of["type prior"][split],
            [q["answer"] for q in sets[split]],
            question_types=[q["type"] for q in sets[split]])
        for split in eval_splits
    }
    predictions_of = {name: split_answers["test"]
                      for name, split_answers in answers.items()
                      if "test" in split_answers}
    results["paired"] = paired_tests(sets, eval_splits, answers_of)
    shown = min(args.figure_images, len(sets["test"]))
    if shown and "image" in predictions_of:
        from keras_lgvq.visualization.caption_figures import answered_questions_figure

        # One question per image where possible, so the figure shows
        # several images.
        picked, seen = [], set()
        for i, q in enumerate(sets["test"]):
            if q["image_index"] not in seen:
                picked.append(i)
                seen.add(q["image_index"])
            if len(picked) == shown:
                break
        test = sets["test"]
        answered_questions_figure(
            np.stack([test[i]["image"] for i in picked]),
            [test[i]["question"] for i in picked],
            [predictions_of["image"][i] for i in picked],
            [test[i]["answer"] for i in picked],
            baseline=[predictions_of["blind"][i] for i in picked]
            if "blind" in predictions_of else None,
            path=os.path.join(args.out, "answers.png"),
            title=f"{args.dataset} test questions: model / true / blind",
        )
        results["figure"] = "answers.png"
    results["timings"] = watch.as_dict()
    results["seconds"] = results["timings"]["total"]["wall_s"]
    results["load_average"] = {"start": load_start, "end": load_average()}
    results["machine"] = machine_info()
    write_json(os.path.join(args.out, "results.json"), results)
    write_report(os.path.join(args.out, "report.md"), results)
    return results


def write_report(path, results):
    settings = results["settings"]
    if settings.get("decoder", "pretrained") == "scratch":
        lm_text = (f"scratch decoder (width {settings['decoder_width']}, "
                   f"{settings['decoder_layers']} blocks) over "
                   f"`{settings['lm']}`'s tokenizer")
    else:
        lm_text = (f"`{settings['lm']}` "
                   f"({settings['language_model_training']})")
    lines = [f"# VQA on {settings['dataset']}", "",
             f"Tokenizer: `{settings['tokenizer']}`; LM: {lm_text}; "
             "questions: "
             f"{results['sizes']}; {len(results['answer_vocabulary'])} "
             f"answers; {results['question_tokens']} question tokens.", "",
             "| model | split | accuracy | WUPS@0.9 | WUPS@0.0 |",
             "|---|---|---|---|---|"]
    rows = dict(results["models"])
    rows["type prior"] = results.get("type_prior", {})
    for model, entry in rows.items():
        for split in ("test", "holdout"):
            if split in entry:
                s = entry[split]
                lines.append(
                    f"| {model} | {split} | {100 * s['accuracy']:.2f} | "
                    f"{100 * s['WUPS@0.9']:.2f} | {100 * s['WUPS@0.0']:.2f} |")
    paired = results.get("paired") or {}
    if paired:
        lines += ["", "Paired bootstrap over questions (accuracy "
                  "difference x100, 95 % interval, p):", ""]
        for split, tests in paired.items():
            for name, test in tests.items():
                lines.append(
                    f"- {split}, {name}: {100 * test['difference']:+.2f} "
                    f"[{100 * test['ci_low']:+.2f}, "
                    f"{100 * test['ci_high']:+.2f}], p = "
                    f"{test['p_value']:.3f}")
    lines += ["", "Per type accuracy (test):", ""]
    for model, entry in rows.items():
        if "test" not in entry:
            continue
        per = entry["test"]["per_type"]
        lines.append(f"- {model}: " + ", ".join(
            f"{t} {100 * v['accuracy']:.1f}" for t, v in sorted(per.items())))
    lines += ["", "`blind`: the same model without image information "
              "(one constant code grid, the training images' mean, for "
              "every image). `type prior`: no model, each question gets "
              "its type's most frequent training answer (what a blind "
              "model can reach by learning answer priors alone)."]
    if results.get("figure"):
        lines += ["", f"![answers]({results['figure']})"]
    timings = ", ".join(f"{k} {v['wall_s']:.0f} s"
                        for k, v in results["timings"].items())
    lines.append(f"\nWall time: {timings}; load average at start / end: "
                 f"{results['load_average']['start']} / "
                 f"{results['load_average']['end']}.")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    run(parse_args(argv))


if __name__ == "__main__":
    main()

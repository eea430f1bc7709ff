"""Captioning over a frozen tokenizer's codes on the procedural scenes.

Trains a ClipCap-style `Captioner` (prefix mapper into a causal LM, frozen
by default) on the scenes' training images (held-out attribute
combinations excluded), captions the test images, scores them with
BLEU-1..4 / METEOR / ROUGE-L / CIDEr-D (`keras_lgvq.metrics.
evaluate_captions`), and does the same for a blind baseline: the same
model trained and evaluated without image information (every image's code
grid replaced by one constant grid, `blind_code_vectors`). Writes
`results.json`, `report.md` and `captions.png` (test images with the
model's, the blind model's and a true caption).

    python recipes/captioning.py --tokenizer runs/scenes/lgvq/model.keras

Options: `--language-model-training full|lora` fine-tunes the LM (a fresh
copy per model), `--decoder scratch` trains a small decoder from scratch
instead of using the pretrained LM's weights (its tokenizer is kept; by
default, `--decoder-vocabulary compact`, its embedding and output layer
cover only the ~144 tokenizer ids of the training / validation captions:
exact for captions inside it, a few MB saved instead of ~55),
`--mapper pooled` maps every code with one shared MLP and averages them
over `--prefix-length` square regions, `--projection-dim N` projects each
code to N values before the MLP mapper's flatten. `--tokenizer` also takes the
name of a tokenizer preset that ships trained weights
(`scenes_lgvq_trained`, `scenes_vqgan_trained`, `scenes_cvq_lg_trained`,
`scenes_vqct_trained` with its 3 ids per position, `scenes_lqae_trained`
with word-piece codes). The models, data and
metrics are those of `keras_lgvq.evaluation.captioning_downstream` (the
one-call form for other programs), and `results.json` holds per-image
BLEU-4 / METEOR / ROUGE-L / CIDEr-D for paired tests.
The CPU defaults are sized to finish in 15 minutes on 2 cores
(benchmarks/results/stage2_measurements.md). Captions longer than
`--max-caption-length` tokens keep their first tokens, then the stop token.

Training keeps what the tokenizer recipes keep (`recipes/common.py`), per
model in `OUT/image/` and `OUT/blind/`: a resumable backup every
`--checkpoint-every` steps (rerun the same command after a kill; a model
that had finished is trained again, to the same weights), `best.keras`
(lowest validation loss) and `last.keras`, TensorBoard scalars in `logs/`,
`history.csv`, validation on `--validation-images` held-out scenes each
epoch, and the NaN/Inf guard (`--nan-policy stop|skip|off`).

Not done here: CUB-200 with user files.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_lgvq.evaluation.captioning_downstream import CAPTIONING_DEFAULTS as DEFAULTS
from keras_lgvq.evaluation.captioning_downstream import CAPTIONING_SIZES as SIZES
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
    common.add_prefix_mapper_arguments(p)
    # The measured CPU defaults of `captioning_downstream`: a pooled mapper
    # (k = 16 regions) into a scratch decoder, 2,000 scenes x 2 captions,
    # 3 epochs (benchmarks/results/stage2_measurements.md).
    p.set_defaults(mapper=DEFAULTS["mapper"],
                   prefix_length=DEFAULTS["prefix_length"],
                   mapper_width=DEFAULTS["mapper_width"])
    p.add_argument("--train-images", type=int,
                   default=SIZES["train_images"])
    p.add_argument("--validation-images", type=int,
                   default=SIZES["validation_images"],
                   help="Held-out scenes (validation split) scored at "
                   "every epoch end.")
    p.add_argument("--eval-images", type=int, default=SIZES["eval_images"])
    p.add_argument("--captions-per-image", type=int,
                   default=SIZES["captions_per_image"])
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--learning-rate", type=float,
                   default=DEFAULTS["learning_rate"])
    p.add_argument("--max-caption-length", type=int,
                   default=DEFAULTS["max_caption_length"],
                   help="Caption tokens incl. the stop token; longer "
                   "captions keep their first tokens.")
    p.add_argument("--beam-size", type=int, default=1)
    p.add_argument("--language-model-training", default="frozen",
                   choices=("frozen", "full", "lora"))
    p.add_argument("--lora-rank", type=int, default=None,
                   help="LoRA rank (with --language-model-training lora; "
                   "default 8).")
    p.add_argument("--decoder", default=DEFAULTS["decoder"],
                   choices=("pretrained", "scratch"),
                   help="scratch (default): a small decoder trained from "
                   "scratch over the --lm's tokenizer; pretrained: the "
                   "--lm as loaded (the paper's design; ~10x the CPU per "
                   "step).")
    p.add_argument("--decoder-width", type=int,
                   default=DEFAULTS["decoder_width"],
                   help="Hidden size of a --decoder scratch model.")
    p.add_argument("--decoder-layers", type=int,
                   default=DEFAULTS["decoder_layers"])
    p.add_argument("--decoder-vocabulary", default=DEFAULTS[
                       "decoder_vocabulary"], choices=("compact", "full"),
                   help="compact (default): the scratch decoder's embedding "
                   "and output layer cover only the tokenizer ids of the "
                   "training / validation captions (exact for captions "
                   "inside it; a few MB instead of ~55); full: all the "
                   "--lm tokenizer's ids.")
    p.add_argument("--figure-images", type=int, default=8)
    p.add_argument("--no-blind", action="store_true",
                   help="Skip the zero-prefix baseline.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/captioning")
    common.add_training_arguments(p, strategy=False)
    args = p.parse_args(argv)
    common.check_training_arguments(args)
    if args.validation_images < 1:
        raise ValueError("--validation-images must be >= 1. Received: "
                         f"{args.validation_images}")
    if args.projection_dim is not None and args.mapper != "mlp":
        raise ValueError("--projection-dim is an option of --mapper mlp; "
                         f"received --mapper {args.mapper}. Drop it or use "
                         "--mapper mlp.")
    return args


def settings_of(args):
    """The `CAPTIONING_DEFAULTS`-style settings dict of parsed arguments."""
    from keras_lgvq.evaluation.captioning_downstream import check_captioning_settings

    return check_captioning_settings({
        "decoder": args.decoder,
        "decoder_width": args.decoder_width,
        "decoder_layers": args.decoder_layers,
        "decoder_vocabulary": args.decoder_vocabulary,
        "language_model_training": args.language_model_training,
        "lora_rank": args.lora_rank,
        "mapper": args.mapper,
        "mapper_width": args.mapper_width,
        "projection_dim": args.projection_dim,
        "prefix_length": args.prefix_length,
        "max_caption_length": args.max_caption_length,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "beam_size": args.beam_size,
    })


def run(args):
    import keras

    from keras_lgvq.datasets import scenes
    from keras_lgvq.evaluation.captioning_downstream import blind_code_vectors
    from keras_lgvq.evaluation.captioning_downstream import build_captioner
    from keras_lgvq.evaluation.captioning_downstream import decoder_vocabulary
    from keras_lgvq.evaluation.captioning_downstream import encode_scenes
    from keras_lgvq.evaluation.captioning_downstream import generate_captions
    from keras_lgvq.evaluation.captioning_downstream import load_language_model
    from keras_lgvq.evaluation.captioning_downstream import paired_caption_tests
    from keras_lgvq.evaluation.captioning_downstream import per_image_caption_scores
    from keras_lgvq.evaluation.captioning_downstream import resolve_tokenizer
    from keras_lgvq.metrics import evaluate_captions

    settings = settings_of(args)
    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    watch = Stopwatch()
    load_start = load_average()
    with watch.phase("load"):
        tokenizer = resolve_tokenizer(args.tokenizer)
        shared_lm = None
        if args.decoder == "pretrained" and (
            args.language_model_training == "frozen"
        ):
            shared_lm = load_language_model(settings, args.lm)
    with watch.phase("encode"):
        train_codes, train = encode_scenes(
            tokenizer, args.train_images, "train", args.seed,
            scenes.DEFAULT_HOLDOUT)
        val_codes, val = encode_scenes(
            tokenizer, args.validation_images, "validation", args.seed,
            scenes.DEFAULT_HOLDOUT)
        test_codes, test = encode_scenes(tokenizer, args.eval_images, "test",
                                         args.seed, None)
    reps = args.captions_per_image
    codes = np.repeat(train_codes, reps, axis=0)
    captions = [e["captions"][j] for e in train for j in range(reps)]
    val_codes = np.repeat(val_codes, reps, axis=0)
    val_captions = [e["captions"][j] for e in val for j in range(reps)]
    references = {e["image_id"]: e["captions"] for e in test}
    # A compact scratch decoder covers the ids of all the training images'
    # captions and the validation captions (None: whole vocabulary).
    vocabulary_ids = decoder_vocabulary(
        settings, args.lm,
        [c for e in train for c in e["captions"]] + val_captions)
    results = {"settings": vars(args), "models": {},
               "decoder_vocabulary_size": None if vocabulary_ids is None
               else len(vocabulary_ids)}
    predictions_of = {}
    for name, blind in (("image", False), ("blind", True)):
        if blind and args.no_blind:
            continue
        keras.utils.set_random_seed(args.seed)
        with watch.phase("load"):
            lm = load_language_model(settings, args.lm, shared_lm,
                                     vocabulary_ids)
        model = build_captioner(tokenizer, lm, settings)
        data = model.prepare_inputs(captions, codes=codes)
        val_data = model.prepare_inputs(val_captions, codes=val_codes)
        if blind:
            # Same model, no image information: one constant code grid
            # for every image (train, validation and test).
            for rows in (data, val_data):
                count = len(rows.pop("codes"))
                rows["code_vectors"] = blind_code_vectors(
                    tokenizer, train_codes, count)
        epoch_data, validation_data = common.array_datasets(
            data, val_data, args.batch_size, args.seed,
            validation_steps=args.validation_steps)
        run_dir = os.path.join(args.out, name)
        os.makedirs(run_dir, exist_ok=True)
        with watch.phase(f"train_{name}"):
            history = common.train(
                model, epoch_data, validation_data,
                common.model_arguments(args, name), run_dir,
                epochs=args.epochs)
        kwargs = ({"code_vectors": blind_code_vectors(
            tokenizer, train_codes, len(test_codes))} if blind
            else {"codes": test_codes})
        with watch.phase(f"generate_{name}"):
            predictions = generate_captions(model, args.beam_size, **kwargs)
        scores = evaluate_captions(
            references, dict(zip(references, predictions)))
        per_image = per_image_caption_scores(
            list(references.values()), predictions)
        results["models"][name] = {
            "scores": scores,
            "per_image": per_image,
            "final_loss": float(history.history["loss"][-1]),
            "loss_history": [float(x) for x in history.history["loss"]],
            "val_loss_history": [
                float(x) for x in history.history.get("val_loss", [])],
        }
        predictions_of[name] = predictions
    if set(results["models"]) == {"image", "blind"}:
        results["paired"] = paired_caption_tests(
            results["models"]["image"]["per_image"],
            results["models"]["blind"]["per_image"])
    results["samples"] = {
        "references": [e["captions"][0] for e in test[:5]],
        **{k: v[:5] for k, v in predictions_of.items()},
    }
    shown = min(args.figure_images, len(test))
    if shown and "image" in predictions_of:
        from keras_lgvq.visualization.caption_figures import captioned_images_figure

        captioned_images_figure(
            np.stack([e["image"] for e in test[:shown]]),
            predictions_of["image"][:shown],
            references=[e["captions"][0] for e in test[:shown]],
            baseline=predictions_of.get("blind", [])[:shown] or None,
            path=os.path.join(args.out, "captions.png"),
            title="Scenes test images: model / true / blind captions",
        )
        results["figure"] = "captions.png"
    results["timings"] = watch.as_dict()
    results["seconds"] = results["timings"]["total"]["wall_s"]
    results["load_average"] = {"start": load_start, "end": load_average()}
    results["machine"] = machine_info()
    write_json(os.path.join(args.out, "results.json"), results)
    write_report(os.path.join(args.out, "report.md"), results)
    return results


def write_report(path, results):
    names = ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
    settings = results["settings"]
    decoder = settings.get("decoder", "pretrained")
    lm_text = (f"scratch decoder (width {settings.get('decoder_width')}, "
               f"{settings.get('decoder_layers')} blocks) over "
               f"`{settings['lm']}`'s tokenizer"
               + (f" (compact vocabulary of "
                  f"{results['decoder_vocabulary_size']} ids)"
                  if results.get("decoder_vocabulary_size") else "")
               if decoder == "scratch"
               else f"`{settings['lm']}` "
               f"({settings.get('language_model_training', 'frozen')})")
    lines = ["# Captioning on scenes", "",
             f"Tokenizer: `{settings['tokenizer']}`; LM: {lm_text}; mapper: "
             f"{settings['mapper']}.", "",
             "| model | " + " | ".join(names) + " | final loss |",
             "|---" * (len(names) + 2) + "|"]
    for model, entry in results["models"].items():
        cells = []
        for n in names:
            value = entry["scores"].get(n)
            cells.append("n/a" if value is None else f"{100 * value:.2f}")
        lines.append(f"| {model} | " + " | ".join(cells)
                     + f" | {entry['final_loss']:.3f} |")
    unavailable = next(iter(results["models"].values()))["scores"].get(
        "unavailable") or {}
    for metric, reason in unavailable.items():
        lines.append(f"\n{metric} unavailable: {reason}")
    if results.get("paired"):
        lines += ["", "Paired bootstrap over test images, image minus "
                  "blind (x100, 95 % interval, p):", ""]
        for metric, test in results["paired"].items():
            lines.append(
                f"- {metric}: {100 * test['difference']:+.2f} "
                f"[{100 * test['ci_low']:+.2f}, {100 * test['ci_high']:+.2f}]"
                f", p = {test['p_value']:.3f}")
    lines += ["", "Scores x100 (CIDEr-D too). `blind`: the same model "
              "without image information (one constant code grid, the "
              "training images' mean, for every image).", "",
              "## Samples", ""]
    for i, ref in enumerate(results["samples"]["references"]):
        lines.append(f"- reference: {ref}")
        for model in results["models"]:
            lines.append(f"  - {model}: {results['samples'][model][i]}")
    if results.get("figure"):
        lines += ["", f"![captions]({results['figure']})"]
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

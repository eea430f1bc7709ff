"""Captioning over a frozen tokenizer's codes on the procedural scenes.

Trains a ClipCap-style `Captioner` (prefix mapper into a frozen causal LM)
on the scenes' training images (held-out attribute combinations excluded),
captions the test images, scores them with BLEU-1..4 / METEOR / ROUGE-L /
CIDEr-D (`keras_lgvq.metrics.evaluate_captions`), and does the same for a
blind baseline: the same model trained and evaluated with the image prefix
zeroed. Writes `results.json` and `report.md`.

    python recipes/captioning.py --tokenizer runs/scenes/lgvq/model.keras

Not done here: CUB-200 with user files, and the PNG of captioned images.
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
    p.add_argument("--mapper", default="mlp", choices=("mlp", "transformer"))
    p.add_argument("--prefix-length", type=int, default=10)
    p.add_argument("--mapper-width", type=int, default=512)
    p.add_argument("--train-images", type=int, default=400)
    p.add_argument("--eval-images", type=int, default=60)
    p.add_argument("--captions-per-image", type=int, default=2)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--max-caption-length", type=int, default=24)
    p.add_argument("--beam-size", type=int, default=1)
    p.add_argument("--no-blind", action="store_true",
                   help="Skip the zero-prefix baseline.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/captioning")
    return p.parse_args(argv)


def encode_scenes(tokenizer, num_images, split, seed, holdout):
    """Codes, captions and ids of scenes images, at the tokenizer's size."""
    from keras import ops

    from keras_lgvq.datasets import scenes

    examples = list(scenes.generate(
        num_images, seed=seed, image_size=int(tokenizer.resolution),
        split=split, holdout=holdout,
    ))
    images = np.stack([e["image"] for e in examples]).astype("float32")
    images = images / 127.5 - 1.0
    codes = np.concatenate([
        np.asarray(ops.convert_to_numpy(tokenizer.encode(images[i:i + 32])))
        for i in range(0, len(images), 32)
    ]).astype("int32")
    return codes, examples


def build(args, tokenizer, lm):
    import keras

    from keras_lgvq.models.captioning import Captioner
    from keras_lgvq.models.captioning import build_prefix_mapper

    extra = {"hidden_dim": args.mapper_width}
    if args.mapper == "transformer":
        extra.update(num_layers=2, num_heads=4)
    mapper = build_prefix_mapper(
        args.mapper, num_positions=int(tokenizer.grid_size) ** 2,
        code_dim=int(tokenizer.quantizer.embedding_dim),
        prefix_length=args.prefix_length, lm_dim=lm.hidden_dim,
        name="mapper", **extra,
    )
    model = Captioner(mapper, lm, tokenizer=tokenizer,
                      max_caption_length=args.max_caption_length)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    return model


def run(args):
    import keras

    from keras_lgvq.datasets import scenes
    from keras_lgvq.language_models import load_causal_lm
    from keras_lgvq.metrics import evaluate_captions
    from keras_lgvq.models.text_to_image import load_tokenizer

    keras.utils.set_random_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    tokenizer = load_tokenizer(args.tokenizer)
    lm = load_causal_lm(args.lm)
    train_codes, train = encode_scenes(tokenizer, args.train_images, "train",
                                       args.seed, scenes.DEFAULT_HOLDOUT)
    test_codes, test = encode_scenes(tokenizer, args.eval_images, "test",
                                     args.seed, None)
    reps = args.captions_per_image
    codes = np.repeat(train_codes, reps, axis=0)
    captions = [e["captions"][j] for e in train for j in range(reps)]
    references = {e["image_id"]: e["captions"] for e in test}
    results = {"settings": vars(args), "models": {}}
    samples = {}
    for name, blind in (("image", False), ("blind", True)):
        if blind and args.no_blind:
            continue
        keras.utils.set_random_seed(args.seed)
        model = build(args, tokenizer, lm)
        data = model.prepare_inputs(captions, codes=codes)
        if blind:
            # Same model, image prefix input zeroed (train and test).
            data.pop("codes")
            data["code_vectors"] = np.zeros(
                (len(captions), model.mapper.num_positions,
                 model.mapper.code_dim), "float32")
        history = model.fit(data, epochs=args.epochs,
                            batch_size=args.batch_size, verbose=0)
        kwargs = ({"code_vectors": np.zeros(
            (len(test_codes), model.mapper.num_positions,
             model.mapper.code_dim), "float32")} if blind
            else {"codes": test_codes})
        predictions = []
        for i in range(0, len(test_codes), 16):
            part = {k: v[i:i + 16] for k, v in kwargs.items()}
            predictions += model.generate(beam_size=args.beam_size, **part)
        scores = evaluate_captions(
            references, dict(zip(references, predictions)))
        results["models"][name] = {
            "scores": scores,
            "final_loss": float(history.history["loss"][-1]),
        }
        samples[name] = predictions[:5]
    results["samples"] = {
        "references": [e["captions"][0] for e in test[:5]], **samples}
    results["seconds"] = time.time() - start
    write_json(os.path.join(args.out, "results.json"), results)
    write_report(os.path.join(args.out, "report.md"), results)
    return results


def write_report(path, results):
    names = ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
    lines = ["# Captioning on scenes", "",
             f"Tokenizer: `{results['settings']['tokenizer']}`; LM: "
             f"`{results['settings']['lm']}`; mapper: "
             f"{results['settings']['mapper']}.", "",
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
    lines += ["", "Scores x100 (CIDEr-D too). `blind`: the same model with "
              "the image prefix zeroed.", "", "## Samples", ""]
    for i, ref in enumerate(results["samples"]["references"]):
        lines.append(f"- reference: {ref}")
        for model in results["models"]:
            lines.append(f"  - {model}: {results['samples'][model][i]}")
    lines.append(f"\n{results['seconds']:.0f} s in total.")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    run(parse_args(argv))


if __name__ == "__main__":
    main()

"""Train an LG-VQ (or its VQGAN baseline) from a preset on a captioned set.

Used by the per-dataset recipes (`scenes.py`, `cub.py`, `celeba_hq.py`,
`textcaps.py`); run directly for anything else:

    python recipes/train_lgvq.py --preset cub --manual-dir /data/cub \
        --text-prior /models/clip_vit_base_patch32 --vgg-weights vgg16.h5

Per epoch the Keras progress bar prints every loss term, codebook usage and
perplexity; the history goes to `OUT/history.json`, the model to
`OUT/model.keras` and a preset directory `OUT/preset/`.
"""

import argparse
import json
import os
import sys
import time


def parse_args(argv=None, defaults=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="scenes")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="Train the preset's VQGAN without language guidance.",
    )
    parser.add_argument("--out", default="runs/lgvq")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--manual-dir", default=None, help="The dataset's raw files."
    )
    parser.add_argument(
        "--text-prior", default=None, help="Local CLIP/BERT directory."
    )
    parser.add_argument(
        "--vgg-weights",
        default=None,
        help="VGG16 ImageNet notop .h5 for LPIPS (the paper uses LPIPS).",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit-compile", default="auto")
    parser.add_argument(
        "--scenes-train-size",
        type=int,
        default=None,
        help="Scenes only: training images to generate.",
    )
    parser.set_defaults(**(defaults or {}))
    return parser.parse_args(argv)


def build_model(args, spec):
    import keras_lgvq

    overrides = {}
    if args.vgg_weights:
        overrides["perceptual_loss"] = keras_lgvq.losses.LPIPS(
            vgg_weights=args.vgg_weights
        )
    if args.baseline:
        return keras_lgvq.VQGAN.from_preset(args.preset, **overrides)
    if args.text_prior:
        overrides["text_prior"] = args.text_prior
    model = keras_lgvq.LGVQ.from_preset(args.preset, **overrides)
    if model.text_prior is None:
        raise SystemExit(
            f"The {args.preset!r} preset needs its text prior "
            f"({spec['text']['text_prior']}); pass --text-prior DIR with a "
            "local copy (keras-hub preset or Hugging Face CLIP directory)."
        )
    return model


def main(argv=None, defaults=None):
    args = parse_args(argv, defaults)
    import keras

    import keras_lgvq
    from keras_lgvq.models.presets import get_preset

    keras.utils.set_random_seed(args.seed)
    spec = get_preset(args.preset)
    training = spec["training"]
    batch_size = args.batch_size or training["batch_size"]
    learning_rate = args.learning_rate or training["learning_rate"]
    epochs = args.epochs or 1
    model = build_model(args, spec)
    jit = args.jit_compile
    jit = {"true": True, "false": False}.get(str(jit).lower(), jit)
    model.compile(
        learning_rate=learning_rate,
        beta_1=training["beta_1"],
        beta_2=training["beta_2"],
        jit_compile=jit,
    )

    data_kwargs = dict(
        batch_size=batch_size,
        image_size=training["image_size"],
        seed=args.seed,
        max_words=training["max_words"],
        data_dir=args.data_dir,
        text_prior=getattr(model, "text_prior", None),
    )
    if args.manual_dir:
        data_kwargs["manual_dir"] = args.manual_dir
    if training["dataset"] == "scenes" and args.scenes_train_size:
        data_kwargs["train_size"] = args.scenes_train_size
    train = keras_lgvq.datasets.make_dataset(
        training["dataset"], split="train", training=True, **data_kwargs
    )
    if args.steps_per_epoch:
        train = train.repeat()

    os.makedirs(args.out, exist_ok=True)
    print(
        f"Training {type(model).__name__} preset {args.preset!r} on "
        f"{training['dataset']} (batch {batch_size}, lr {learning_rate}, "
        f"{epochs} epochs) -> {args.out}"
    )
    start = time.time()
    history = model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=args.steps_per_epoch,
        verbose=1,
    )
    seconds = time.time() - start
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(
            {"history": history.history, "train_seconds": seconds}, f, indent=2
        )
    model.save(os.path.join(args.out, "model.keras"))
    model.save_to_preset(os.path.join(args.out, "preset"))
    print(f"Done in {seconds:.0f} s. Saved {args.out}/model.keras")
    return model, history


if __name__ == "__main__":
    main(sys.argv[1:])

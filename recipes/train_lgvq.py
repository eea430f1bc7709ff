"""Train an LG-VQ (or its VQGAN baseline) from a preset on a captioned set.

Used by the per-dataset recipes (`scenes.py`, `cub.py`, `celeba_hq.py`,
`textcaps.py`); run directly for anything else:

    python recipes/train_lgvq.py --preset cub --manual-dir /data/cub \
        --text-prior /models/clip_vit_base_patch32 --vgg-weights vgg16.h5

Per epoch the Keras progress bar prints every loss term, codebook usage and
perplexity, and the model is validated on the held-out split. Outputs:

- `OUT/backup/`: the resumable training state, every `--checkpoint-every`
  steps and at every epoch end. Kill the run at any moment and rerun the
  same command: it continues to the model an uninterrupted run ends with
  (`--backup-dir` to put it elsewhere; deleted when training completes).
- `OUT/best.keras` (lowest validation loss) and `OUT/last.keras`.
- `OUT/logs/`: TensorBoard scalars (`train/`, `validation/`) and, each
  epoch, validation images next to their reconstructions (`images/`).
- `OUT/history.csv` (one row per epoch), `OUT/history.json`,
  `OUT/model.keras` and the preset directory `OUT/preset/` at the end.

`--nan-policy stop` (default) stops at the first NaN/Inf loss term with a
message naming the step and the term; `skip` leaves such a step out
without changing any variable. `--strategy mirrored|multiworker` trains
data-parallel (`--batch-size` is the global batch); only worker 0 writes.
"""

import argparse
import json
import os
import sys
import time

try:
    from recipes import common
except ImportError:  # Run as `python recipes/train_lgvq.py`.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes import common


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
        "--text-cache",
        choices=("auto", "on", "off"),
        default="auto",
        help="LG-VQ reads the frozen text prior's features of the captions "
        "it draws from a cache built before training (each distinct "
        "caption encoded once; no image decoded to find them) instead of "
        "running the prior on every caption in the step. auto: unless the "
        "cache would exceed 1 GiB (recipes/common.drawn_text_cache); off: "
        "the prior runs in the step, as the paper's code does.",
    )
    parser.add_argument(
        "--scenes-train-size",
        type=int,
        default=None,
        help="Scenes only: training images to generate.",
    )
    parser.add_argument(
        "--scenes-validation-size",
        type=int,
        default=None,
        help="Scenes only: validation (and test) images to generate.",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="Override the preset's image size (e.g. 32 for a smoke run).",
    )
    common.add_training_arguments(parser)
    parser.set_defaults(**(defaults or {}))
    args = parser.parse_args(argv)
    common.check_training_arguments(args)
    return args


def build_model(args, spec):
    import keras_lgvq

    overrides = {}
    if args.vgg_weights:
        overrides["perceptual_loss"] = keras_lgvq.losses.LPIPS(
            vgg_weights=args.vgg_weights
        )
    if args.resolution:
        overrides["resolution"] = args.resolution
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
    from keras_lgvq.callbacks import epoch_seed
    from keras_lgvq.models.presets import get_preset

    spec = get_preset(args.preset)
    training = spec["training"]
    batch_size = args.batch_size or training["batch_size"]
    learning_rate = args.learning_rate or training["learning_rate"]
    epochs = args.epochs or 1
    jit = args.jit_compile
    jit = {"true": True, "false": False}.get(str(jit).lower(), jit)
    with common.strategy_scope(args.strategy) as info:
        # Same seed in every process: a restarted run builds the same
        # model before its backup is restored.
        keras.utils.set_random_seed(args.seed)
        model = build_model(args, spec)
        model.compile(
            learning_rate=learning_rate,
            beta_1=training["beta_1"],
            beta_2=training["beta_2"],
            jit_compile=jit,
        )
        data_kwargs = dict(
            batch_size=batch_size,
            image_size=args.resolution or training["image_size"],
            max_words=training["max_words"],
            data_dir=args.data_dir,
            text_prior=getattr(model, "text_prior", None),
        )
        if args.manual_dir:
            data_kwargs["manual_dir"] = args.manual_dir
        if training["dataset"] == "scenes":
            if args.scenes_train_size:
                data_kwargs["train_size"] = args.scenes_train_size
            if args.scenes_validation_size:
                data_kwargs["validation_size"] = args.scenes_validation_size
                data_kwargs["test_size"] = args.scenes_validation_size
        make_dataset = keras_lgvq.datasets.make_dataset
        prior = getattr(model, "text_prior", None)
        feature_cache = None
        if prior is not None:
            # Every epoch's draws, replayed with the seeds `epoch_data`
            # uses (a resumed run rebuilds the same epochs).
            cache_kwargs = {
                k: v for k, v in data_kwargs.items() if k != "text_prior"
            }
            feature_cache, note = common.drawn_text_cache(
                args.text_cache,
                prior,
                training["dataset"],
                [
                    dict(
                        split="train",
                        training=True,
                        seed=epoch_seed(args.seed, epoch),
                        **cache_kwargs,
                    )
                    for epoch in range(epochs)
                ],
                steps_per_epoch=args.steps_per_epoch,
            )
            print(note)

        def epoch_data(epoch):
            # Seeded per epoch (shuffle, caption draw, crops): any epoch
            # can be rebuilt alone, so a resumed run skips exactly the
            # batches it had trained.
            ds = make_dataset(
                training["dataset"],
                split="train",
                training=True,
                seed=epoch_seed(args.seed, epoch),
                feature_cache=feature_cache,
                **data_kwargs,
            )
            return ds.repeat() if args.steps_per_epoch else ds

        def validation_data():
            # Built afresh with one seed: the same captions every epoch.
            ds = make_dataset(
                training["dataset"],
                split="validation",
                training=False,
                seed=args.seed,
                **data_kwargs,
            )
            if args.validation_steps:
                ds = ds.take(args.validation_steps)
            return ds

        images = next(iter(validation_data()))["images"]
        write = info.worker_index == 0
        if write:
            os.makedirs(args.out, exist_ok=True)
        print(
            f"Training {type(model).__name__} preset {args.preset!r} on "
            f"{training['dataset']} (batch {batch_size}, lr {learning_rate}, "
            f"{epochs} epochs, {info.num_replicas} replica(s)) -> {args.out}"
        )
        start = time.time()
        history = common.train(
            model,
            epoch_data,
            validation_data,
            args,
            args.out,
            epochs=epochs,
            steps_per_epoch=args.steps_per_epoch,
            validation_images=images[:8],
            write=write,
        )
        seconds = time.time() - start
    if write:
        with open(os.path.join(args.out, "history.json"), "w") as f:
            json.dump(
                {
                    "epoch": history.epoch,
                    "history": history.history,
                    "train_seconds": seconds,
                },
                f,
                indent=2,
            )
        model.save(os.path.join(args.out, "model.keras"))
        model.save_to_preset(os.path.join(args.out, "preset"))
    print(f"Done in {seconds:.0f} s. Saved {args.out}/model.keras")
    return model, history


if __name__ == "__main__":
    main(sys.argv[1:])

"""Train the scenes tokenizers that ship inside the package, and record them.

`keras_lgvq.LGVQ.from_preset("scenes_lgvq_trained")`,
`keras_lgvq.VQGAN.from_preset("scenes_vqgan_trained")`,
`keras_lgvq.LGVQ.from_preset("scenes_cvq_lg_trained")`,
`keras_lgvq.VQCT.from_preset("scenes_vqct_trained")` and
`keras_lgvq.LQAE.from_preset("scenes_lqae_trained")` load trained 64-px
scenes tokenizers with no training and no download: their backbone weights
(`model.weights.h5`, a few MB each) live in the package folder the preset
names (`keras_lgvq/models/<family>/trained/<name>/`). This recipe makes
them.

`--model` is a row of the main job (`keras_lgvq.comparison.MODELS`), built
and compiled by the main job's own code (`build_model`, `compile_system`)
and trained the same way, only for longer (default 4 epochs x 300 steps of
16 = 1200 steps against the main job's 480): its preset and learning rate
(LQAE: its own AdamW schedule over the run's steps),
no discriminator (the scenes presets' GAN starts at step 100000, so before
it the PatchGAN only costs time), no LPIPS. Every shipped tokenizer gets
the same seed (so LG-VQ and its VQGAN share the initial backbone, recorded
as its weight checksum), the same batches (epoch `e` is the scenes set
shuffled with `epoch_seed(seed, e)`) and the same steps; within a pair only
the language guidance differs. The LQAE's file leaves out its frozen
splade-tiny LM and word-piece table (a separate offline asset, re-read when
the preset is built); its record keeps the LM's name and the sha256 of its
table, which loading checks.
Training is resumable: kill it and rerun the same command
(`OUT/backup`, see `recipes/common.py`); `OUT/segments.json` keeps the
time of each process so the record has the whole training time.

After training, the tokenizer is scored on fixed procedural test scenes
(`keras_lgvq.datasets.scenes.generate(N, seed=SEED, split="test")`, byte-
exact on every machine): `--test-images` (16, the figure the package test
checks to 0.05 dB on every backend) and `--eval-images` (512, the figure to
quote). With `--install` the backbone preset (`config.json`,
`model.weights.h5`, `metadata.json`) and `training.json` (command, seed,
budget, backend, package commit, wall / CPU time, PSNR / SSIM) are copied
into the package.

    nice -n 5 python recipes/ship_scenes_tokenizers.py --model lgvq \
        --out runs/ship_lgvq --install
    nice -n 5 python recipes/ship_scenes_tokenizers.py --model vqgan \
        --out runs/ship_vqgan --install
    nice -n 5 python recipes/ship_scenes_tokenizers.py --model cvq_lg \
        --out runs/ship_cvq_lg --install
    nice -n 5 python recipes/ship_scenes_tokenizers.py --model vqct \
        --out runs/ship_vqct --install
    nice -n 5 python recipes/ship_scenes_tokenizers.py --model lqae \
        --out runs/ship_lqae --install

`--from-checkpoint OUT/last.keras --steps-done N` records and installs a
model saved at an epoch end instead of training (e.g. when a run had to be
cut short; the recorded budget is then the steps it had actually done).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

try:
    from recipes import common
except ImportError:  # Run as `python recipes/ship_scenes_tokenizers.py`.
    sys.path.insert(
        0, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    from recipes import common

# --model (a `keras_lgvq.comparison.MODELS` row) -> (trainer class,
# shipped preset name).
SHIPPED = {
    "lgvq": ("LGVQ", "scenes_lgvq_trained"),
    "vqgan": ("VQGAN", "scenes_vqgan_trained"),
    "cvq_lg": ("LGVQ", "scenes_cvq_lg_trained"),
    "vqct": ("VQCT", "scenes_vqct_trained"),
    "lqae": ("LQAE", "scenes_lqae_trained"),
}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SHIPPED), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps-per-epoch", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--train-size",
        type=int,
        default=4800,
        help="Generated training scenes (one epoch of 300 x 16 by default).",
    )
    parser.add_argument("--test-images", type=int, default=16)
    parser.add_argument("--eval-images", type=int, default=512)
    parser.add_argument("--jit-compile", choices=("auto", "on", "off"),
                        default="auto")
    parser.add_argument(
        "--install",
        action="store_true",
        help="Copy the backbone preset and training.json into the package.",
    )
    parser.add_argument(
        "--install-only",
        action="store_true",
        help="Install the finished run in --out (its backbone_preset/ and "
        "training.json) without training or scoring again.",
    )
    parser.add_argument(
        "--from-checkpoint",
        default=None,
        help="A `.keras` trainer saved by this recipe (OUT/last.keras): "
        "score and install it instead of training.",
    )
    parser.add_argument(
        "--steps-done",
        type=int,
        default=None,
        help="With --from-checkpoint: the steps that model was trained for.",
    )
    common.add_training_arguments(parser, strategy=False)
    parser.set_defaults(validation_steps=2)
    args = parser.parse_args(argv)
    common.check_training_arguments(args)
    for name in ("epochs", "steps_per_epoch", "batch_size", "train_size",
                 "test_images", "eval_images"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"--{name.replace('_', '-')} must be >= 1. Received: "
                f"{getattr(args, name)}"
            )
    if (args.from_checkpoint is None) != (args.steps_done is None):
        raise ValueError(
            "--from-checkpoint and --steps-done go together: the recorded "
            "budget of a checkpoint is the steps it was trained for."
        )
    return args


def package_dir(name):
    """Where the shipped preset `name` keeps its weights inside the package
    (its `shipped_weights["directory"]`)."""
    from keras_lgvq.models.presets import get_preset
    from keras_lgvq.models.vqgan.vqgan_presets import shipped_weights_dir

    directory = shipped_weights_dir(get_preset(name))
    if directory is None:
        raise ValueError(
            f"Preset {name!r} has no `shipped_weights` entry: register it "
            "(e.g. keras_lgvq/models/lgvq/lgvq_presets.py `_shipped`) "
            "before installing weights for it."
        )
    return directory


def test_scenes(count, seed, image_size=64):
    """The fixed scored scenes as float32 `(count, H, W, 3)` in [-1, 1]."""
    import numpy as np

    from keras_lgvq.datasets import scenes

    images = np.stack(
        [
            example["image"]
            for example in scenes.generate(
                count, seed=seed, image_size=image_size, split="test"
            )
        ]
    )
    return images.astype("float32") / 127.5 - 1.0


def reconstruction_figures(backbone, images, batch_size=64):
    """Mean PSNR / SSIM (dB, [-1, 1] data range) of clipped reconstructions,
    scored as the main job scores them."""
    import numpy as np

    from keras_lgvq.metrics.image_quality import psnr
    from keras_lgvq.metrics.image_quality import ssim
    from keras_lgvq.utils.tensors import to_numpy

    psnrs, ssims = [], []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        x_hat = np.clip(to_numpy(backbone(x, training=False)), -1.0, 1.0)
        psnrs.append(to_numpy(psnr(x, x_hat, data_range=2.0)))
        ssims.append(to_numpy(ssim(x, x_hat, data_range=2.0)))
    psnrs = np.concatenate(psnrs).astype("float64")
    ssims = np.concatenate(ssims).astype("float64")
    return {
        "images": int(len(images)),
        "psnr_db": float(psnrs.mean()),
        "ssim": float(ssims.mean()),
        "psnr_db_per_image": [round(float(v), 4) for v in psnrs],
    }


def file_sha256(path):
    from keras_lgvq.models.vqgan.vqgan_presets import file_sha256 as sha

    return sha(path)


def _git_commit():
    try:
        result = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def _git_dirty():
    try:
        result = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return bool(result.stdout.strip())


def run_environment():
    """Commit, versions and machine of this process, for a shipped
    model's `training.json` (also used by `ship_scenes_stage2.py`)."""
    import keras

    import keras_lgvq

    return {
        "package_commit": _git_commit(),
        "working_tree_modified": _git_dirty(),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "keras_lgvq": keras_lgvq.__version__,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
            "peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ),
        },
    }

def comparison_settings(args):
    """The main job's settings for this run's budget (`resolve_settings`):
    what `build_model` / `compile_system` read."""
    from keras_lgvq.comparison import resolve_settings

    return resolve_settings(
        {
            "epochs": args.epochs,
            "steps_per_epoch": args.steps_per_epoch,
            "batch_size": args.batch_size,
            "train_size": args.train_size,
            "seed": args.seed,
            "jit_compile": args.jit_compile,
            "models": args.model,
        }
    )


def build(kind, prior, settings):
    """The main job's row `kind`, built: no discriminator, the text prior
    only when it is language-guided."""
    from keras_lgvq.comparison.systems import MODELS
    from keras_lgvq.comparison.training import build_model

    model = build_model(kind, prior, settings)
    if type(model).__name__ != SHIPPED[kind][0] or (
        MODELS[kind].guided != (getattr(model, "guidance", None) is not None)
    ):
        raise RuntimeError(
            f"--model {kind} built a {type(model).__name__}, expected a "
            f"{SHIPPED[kind][0]}: SHIPPED and keras_lgvq.comparison.MODELS "
            "disagree."
        )
    return model


SEGMENTS_FILE = "segments.json"


def track_time(out, every_s=30.0):
    """Records this process's wall / CPU time in OUT/segments.json every
    `every_s` seconds, so a killed-and-resumed run still reports its whole
    training time (the sum of its segments). A fresh run (no backup)
    starts the list anew."""
    import threading

    path = os.path.join(out, SEGMENTS_FILE)
    segments = []
    if os.path.exists(os.path.join(out, "backup")) and os.path.exists(path):
        with open(path) as f:
            segments = json.load(f)
    wall0, cpu0 = time.time(), time.process_time()
    segment = {"pid": os.getpid(), "started": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall0)), "wall_s": 0.0, "cpu_s": 0.0}
    segments.append(segment)

    def write():
        segment["wall_s"] = round(time.time() - wall0, 1)
        segment["cpu_s"] = round(time.process_time() - cpu0, 1)
        with open(path + ".tmp", "w") as f:
            json.dump(segments, f, indent=2)
        os.replace(path + ".tmp", path)

    def loop():
        while True:
            time.sleep(every_s)
            write()

    write()
    threading.Thread(target=loop, daemon=True).start()
    return write


def train(args, prior):
    import keras

    import keras_lgvq
    from keras_lgvq.callbacks import epoch_seed
    from keras_lgvq.comparison.training import backbone_checksum
    from keras_lgvq.comparison.training import compile_system
    from keras_lgvq.models.presets import get_preset

    training = get_preset("scenes")["training"]
    settings = comparison_settings(args)
    keras.utils.set_random_seed(args.seed)
    model = build(args.model, prior, settings)
    checksum = backbone_checksum(model)
    learning_rate = compile_system(args.model, model, settings)
    sizes = common.scenes_sizes(args.train_size, 256)
    # Both systems read the same batches: the pipeline is built with the
    # text prior either way (the VQGAN ignores the captions).
    data_kwargs = dict(
        batch_size=args.batch_size,
        image_size=training["image_size"],
        max_words=training["max_words"],
        text_prior=prior,
        **sizes,
    )

    def epoch_data(epoch):
        return keras_lgvq.datasets.make_dataset(
            "scenes",
            split="train",
            training=True,
            seed=epoch_seed(args.seed, epoch),
            **data_kwargs,
        ).repeat()

    def validation_data():
        ds = keras_lgvq.datasets.make_dataset(
            "scenes",
            split="validation",
            training=False,
            seed=args.seed,
            **data_kwargs,
        )
        return ds.take(args.validation_steps)

    images = next(iter(validation_data()))["images"]
    os.makedirs(args.out, exist_ok=True)
    track_time(args.out)
    print(
        f"Training {type(model).__name__} (scenes preset, seed {args.seed}): "
        f"{args.epochs} x {args.steps_per_epoch} steps of {args.batch_size} "
        f"-> {args.out}"
    )
    common.train(
        model,
        epoch_data,
        validation_data,
        args,
        args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        validation_images=images[:8],
    )
    return model, checksum, learning_rate


def main(argv=None):
    args = parse_args(argv)
    if args.install_only:
        install(args.out, SHIPPED[args.model][1])
        return
    import keras

    from keras_lgvq import text_priors
    from keras_lgvq.comparison.systems import MODELS
    from keras_lgvq.comparison.training import system_setup
    from keras_lgvq.models.presets import get_preset

    text = get_preset("scenes")["text"]
    prior = text_priors.get(
        text["text_prior"], sequence_length=text["sequence_length"]
    )
    # The code that trains: the commit at the start (HEAD may move while a
    # run of an hour goes on).
    started_at = {
        "package_commit": _git_commit(),
        "working_tree_modified": _git_dirty(),
    }
    wall0 = time.time()
    cpu0 = time.process_time()
    if args.from_checkpoint:
        model = keras.saving.load_model(args.from_checkpoint, safe_mode=True)
        checksum = None
        steps = args.steps_done
        learning_rate = comparison_settings(args)["learning_rate"]
    else:
        model, checksum, learning_rate = train(args, prior)
        steps = args.epochs * args.steps_per_epoch
        model.save(os.path.join(args.out, "model.keras"))
    wall = time.time() - wall0
    cpu = time.process_time() - cpu0
    # This process only; `install` sums the segments of a resumed run.
    backbone = model.backbone
    print("Scoring the fixed test scenes ...")
    test = reconstruction_figures(
        backbone, test_scenes(args.test_images, args.seed)
    )
    evaluation = reconstruction_figures(
        backbone, test_scenes(args.eval_images, args.seed)
    )
    class_name, name = SHIPPED[args.model]
    row = MODELS[args.model]
    # The command as run; its CPU priority is recorded as `niceness`.
    command = "python recipes/ship_scenes_tokenizers.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    record = {
        "preset": name,
        "niceness": os.nice(0),
        "model": args.model,
        "trainer": class_name,
        "base_preset": row.preset,
        "language_guidance": row.guided,
        # Tokenizer class, quantizer, CVQ re-initialisation, GAN / LPIPS.
        "system": system_setup(args.model, model),
        "command": command,
        "recipe": "recipes/ship_scenes_tokenizers.py",
        "seed": args.seed,
        "steps": int(steps),
        "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "batch_size": args.batch_size,
        "images_seen": int(steps) * args.batch_size,
        "train_size": args.train_size,
        "learning_rate": learning_rate,
        "discriminator": False,
        "lpips": False,
        "initial_backbone_abs_sum": checksum,
        **run_environment(),
        **started_at,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "test_scenes": {
            "generator": "keras_lgvq.datasets.scenes.generate",
            "seed": args.seed,
            "split": "test",
            "image_size": 64,
        },
        # The figure the package test checks (first `images` test scenes).
        "test": test,
        "evaluation": {
            k: v for k, v in evaluation.items() if k != "psnr_db_per_image"
        },
    }
    history = os.path.join(args.out, "history.csv")
    if os.path.exists(history):
        with open(history) as f:
            record["history_csv"] = f.read().splitlines()
    preset_out = os.path.join(args.out, "backbone_preset")
    backbone.save_to_preset(preset_out)
    record["language_model"] = portable_language_model(backbone, preset_out)
    record["weights_sha256"] = file_sha256(
        os.path.join(preset_out, "model.weights.h5")
    )
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(record, f, indent=2)
    print(
        f"{name}: {steps} steps, PSNR {test['psnr_db']:.3f} dB / SSIM "
        f"{test['ssim']:.4f} on {test['images']} test scenes; "
        f"{evaluation['psnr_db']:.3f} dB / {evaluation['ssim']:.4f} on "
        f"{evaluation['images']}."
    )
    if args.install:
        install(args.out, name)


def portable_language_model(backbone, preset_out):
    """For a backbone with a frozen LM (LQAE): what the record keeps of the
    LM (name, sizes, sha256 of the word-piece table, which loading checks),
    and, if the LM was read from a local directory, its path dropped from
    the saved `config.json` (the package rebuilds the LM from the preset).
    None for a backbone without one."""
    from keras_lgvq.models.vqgan.vqgan_presets import language_model_table_sha256

    lm = getattr(backbone, "language_model", None)
    if lm is None:
        return None
    if lm.name_or_path and os.path.isabs(lm.name_or_path):
        path = os.path.join(preset_out, "config.json")
        with open(path) as f:
            config = json.load(f)
        config["config"]["language_model"] = None
        with open(path, "w") as f:
            json.dump(config, f, indent=4)
    return {
        "name": os.path.basename(os.path.normpath(lm.name_or_path or "random")),
        "vocabulary_size": int(lm.vocabulary_size),
        "hidden_dim": int(lm.hidden_dim),
        "table_sha256": language_model_table_sha256(lm),
    }


def install(out, name):
    """Copies a finished run's backbone preset and record into the package
    (adding the weights' sha256 to a record written without it)."""
    preset_out = os.path.join(out, "backbone_preset")
    record_path = os.path.join(out, "training.json")
    for path in (preset_out, record_path):
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path} is missing: {out!r} is not a finished run of this "
                "recipe (train it first, without --install-only)."
            )
    with open(record_path) as f:
        record = json.load(f)
    if record["preset"] != name:
        raise ValueError(
            f"{out!r} holds a run of {record['preset']!r}, not {name!r}: "
            "pass the matching --model."
        )
    segments_path = os.path.join(out, SEGMENTS_FILE)
    if os.path.exists(segments_path) and "segments" not in record:
        # A resumed run: its training time is the sum over its processes
        # (the last one's `wall_s` / `cpu_s` also include the scoring).
        with open(segments_path) as f:
            segments = json.load(f)
        record["segments"] = segments
        record["last_process"] = {
            "wall_s": record.get("wall_s"), "cpu_s": record.get("cpu_s")
        }
        record["wall_s"] = round(sum(s["wall_s"] for s in segments), 1)
        record["cpu_s"] = round(sum(s["cpu_s"] for s in segments), 1)
    weights = os.path.join(preset_out, "model.weights.h5")
    record["weights_sha256"] = file_sha256(weights)
    record["weights_bytes"] = os.path.getsize(weights)
    target = package_dir(name)
    os.makedirs(target, exist_ok=True)
    for filename in ("config.json", "model.weights.h5", "metadata.json"):
        shutil.copyfile(
            os.path.join(preset_out, filename), os.path.join(target, filename)
        )
    with open(os.path.join(target, "training.json"), "w") as f:
        json.dump(record, f, indent=2)
    print(f"Installed {target}")


if __name__ == "__main__":
    main()

"""Shared helpers of the recipes: timing, machine info, JSON, data splits
(the last three re-exported from the package),
and the one training code path (`add_training_arguments`, `train`):
resumable backups, best / last `.keras`, TensorBoard and CSV logs,
validation every epoch, the NaN guard and the distribution strategy.

Figures and tables are drawn by `keras_lgvq.visualization` (matplotlib,
`pip install keras-lgvq[viz]`).
"""

import json
import os

import numpy as np

# Re-exported: the recipes time phases, record these next to their results
# and build the scenes splits the way the main job does.
from keras_lgvq.comparison.data import comparison_splits as scenes_splits  # noqa: F401,E501
from keras_lgvq.comparison.data import scenes_sizes  # noqa: F401
from keras_lgvq.comparison.progress import Stopwatch  # noqa: F401
from keras_lgvq.comparison.progress import cpu_seconds  # noqa: F401
from keras_lgvq.utils.machine import load_average  # noqa: F401
from keras_lgvq.utils.machine import machine_info  # noqa: F401
from keras_lgvq.utils.machine import peak_rss_mb  # noqa: F401
from keras_lgvq.utils.machine import quiet_tensorflow  # noqa: F401

# === JSON ===


def write_json(path, data):
    def default(value):
        if isinstance(value, (np.integer,)):
            return int(value)
        if isinstance(value, (np.floating,)):
            return float(value)
        if isinstance(value, np.ndarray):
            return value.tolist()
        return str(value)

    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=default)


def add_prefix_mapper_arguments(p):
    """The prefix-mapper flags of the captioning and VQA recipes."""
    p.add_argument("--mapper", default="mlp",
                   choices=("mlp", "transformer", "pooled"),
                   help="mlp: flatten the code grid (ClipCap's MLP); "
                   "pooled: one MLP per code, averaged over prefix_length "
                   "square regions; transformer: ClipCap's transformer.")
    p.add_argument("--projection-dim", type=int, default=None,
                   help="mlp mapper: project each code vector to this "
                   "width (shared over positions) before flattening.")
    p.add_argument("--prefix-length", type=int, default=10)
    p.add_argument("--mapper-width", type=int, default=512)


# === Training: one code path for every training recipe ===

NAN_POLICIES = ("off", "stop", "skip")
STRATEGIES = ("default", "mirrored", "multiworker")


def add_training_arguments(parser, strategy=True, verbose=True, skip=True):
    """Adds the checkpoint, log, validation, NaN and strategy flags.

    Args:
        parser: `argparse.ArgumentParser`.
        strategy: bool. Add `--strategy` (the tokenizer recipes; the
            stage-2 recipes train on one device).
        verbose: bool. Add `--verbose` (False when the recipe has its own).
        skip: bool. Offer `--nan-policy skip`, which needs a model that
            can leave a step out (`skip_nonfinite_steps`: the keras_lgvq
            tokenizer trainers and, through
            `keras_lgvq.backend.nonfinite_skipping`, the stage-2 models).
    """
    group = parser.add_argument_group("checkpoints, logs and distribution")
    group.add_argument(
        "--backup-dir",
        default=None,
        help="Where the resumable training state goes (default "
        "OUT/backup). Rerun the same command after a crash or kill to "
        "continue exactly where the last backup left off.",
    )
    group.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        help="Back up the training state every this many steps (and at "
        "every epoch end); 0: at epoch ends only.",
    )
    group.add_argument(
        "--validation-steps",
        type=int,
        default=None,
        help="Validation batches per epoch (default: the whole held-out "
        "split).",
    )
    group.add_argument(
        "--nan-policy",
        choices=NAN_POLICIES if skip else ("off", "stop"),
        default="stop",
        help="On a NaN/Inf loss term: stop with a message naming the step "
        "and the term, skip the step (no variable changes), or do "
        "nothing.",
    )
    if verbose:
        group.add_argument(
            "--verbose",
            type=int,
            choices=(0, 1, 2),
            default=1,
            help="0: silent, 1: progress bar, 2: one line per epoch.",
        )
    if not strategy:
        return parser
    group.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="Data parallelism: one device, every device of this machine, "
        "or several workers (TensorFlow: TF_CONFIG; JAX: "
        "KERAS_DISTRIBUTION_* variables). --batch-size is the global "
        "batch.",
    )
    return parser


def check_training_arguments(args):
    """Clear errors for bad training flags (argparse checks the choices)."""
    if args.checkpoint_every < 0:
        raise ValueError(
            "--checkpoint-every must be >= 0 (0: at epoch ends only). "
            f"Received: {args.checkpoint_every}"
        )
    if args.validation_steps is not None and args.validation_steps < 1:
        raise ValueError(
            "--validation-steps must be >= 1. Received: "
            f"{args.validation_steps}"
        )


def strategy_scope(name):
    """`keras_lgvq.backend.distribution_scope(name)`: build, compile and
    train inside it. Yields its `DistributionInfo` (`worker_index` 0 is
    the chief, which writes checkpoints and logs)."""
    from keras_lgvq import backend

    return backend.distribution_scope(name)


def training_callbacks(args, out, validation_images=None, write=True):
    """The recipe callbacks, in the order they must run.

    `NonFiniteGuard` first (it raises before anything saves a NaN state),
    then TensorBoard scalars (`OUT/logs`), reconstruction images, the CSV
    history (`OUT/history.csv`) and `best.keras` / `last.keras` in OUT.
    Only the chief (`write=True`) writes files; other workers get the
    guard alone.

    Args:
        args: parsed arguments (see `add_training_arguments`).
        out: string. The run directory.
        validation_images: array (N, H, W, 3) in [-1, 1] or None.
        write: bool. Whether this process writes files.

    Returns:
        A list of callbacks (without the backup, see `train`).
    """
    import keras

    from keras_lgvq import callbacks

    result = []
    if args.nan_policy != "off":
        result.append(callbacks.NonFiniteGuard(policy=args.nan_policy))
    if not write:
        return result
    log_dir = os.path.join(out, "logs")
    result.append(
        keras.callbacks.TensorBoard(
            log_dir=log_dir, write_graph=False, profile_batch=0
        )
    )
    if validation_images is not None:
        result.append(
            callbacks.ReconstructionImages(validation_images, log_dir)
        )
    result.append(
        keras.callbacks.CSVLogger(
            os.path.join(out, "history.csv"), append=True
        )
    )
    result.append(callbacks.BestAndLastCheckpoint(out, monitor="val_loss"))
    return result


def _trim_csv(path, first_epoch):
    """Drops the rows of epochs >= `first_epoch` (they are run again)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.read().splitlines()
    if not lines:
        return
    kept = [lines[0]] + [
        line for line in lines[1:] if int(line.split(",")[0]) < first_epoch
    ]
    with open(path, "w") as f:
        f.write("\n".join(kept) + "\n")


def train(
    model,
    epoch_data,
    validation_data,
    args,
    out,
    epochs,
    steps_per_epoch=None,
    validation_images=None,
    write=True,
):
    """Trains with exact kill-and-resume, checkpoints, logs and the guard.

    The training state is backed up to `args.backup_dir` (default
    `OUT/backup`) every `args.checkpoint_every` steps and at epoch ends;
    when a backup is there, training continues from it (same command).
    Epoch `e` trains on `epoch_data(e)` and validates on
    `validation_data()` (held-out split) at its end.

    Args:
        model: compiled keras_lgvq trainer.
        epoch_data: callable `epoch -> tf.data.Dataset`, reproducible per
            epoch (seed it with `keras_lgvq.callbacks.epoch_seed`).
        validation_data: callable `() -> tf.data.Dataset`.
        args: parsed arguments (see `add_training_arguments`).
        out: string. The run directory.
        epochs: int. Total epochs.
        steps_per_epoch: int or None.
        validation_images: array or None. Batch logged as images.
        write: bool. Whether this process writes files (the chief).

    Returns:
        `keras.callbacks.History` of the epochs run by this process.

    Raises:
        SystemExit: with the guard's message when a loss term became NaN or
            Inf (`--nan-policy stop`).
    """
    from keras_lgvq import callbacks
    from keras_lgvq.callbacks.best_and_last_checkpoint import BEST_RECORD_FILE

    backup = callbacks.ResumableBackup(
        args.backup_dir or os.path.join(out, "backup"),
        save_freq=args.checkpoint_every or "epoch",
        write=write,
    )
    backup.set_model(model)
    first_epoch, first_step = backup.restore()
    csv_path = os.path.join(out, "history.csv")
    if write:
        if first_epoch or first_step:
            print(
                f"Resuming from {backup.backup_dir}: epoch {first_epoch + 1}"
                f", after {first_step} of its batches."
            )
            _trim_csv(csv_path, first_epoch)
        else:
            # A fresh run: no rows of an older one, and its best value
            # (best.json) must not stand against this run's.
            for stale in (csv_path, os.path.join(out, BEST_RECORD_FILE)):
                if os.path.exists(stale):
                    os.remove(stale)
    try:
        return callbacks.fit_resumable(
            model,
            epoch_data,
            epochs=epochs,
            backup=backup,
            callbacks=training_callbacks(args, out, validation_images, write),
            validation_data=validation_data,
            steps_per_epoch=steps_per_epoch,
            verbose=args.verbose,
        )
    except callbacks.NonFiniteLossError as error:
        raise SystemExit(f"Training stopped: {error}") from error


# `--text-cache auto` builds no drawn-caption cache whose features would
# exceed this (the paper presets' CLIP, 77 tokens x 512 float16 over CUB's
# ~88,000 captions, would hold 6.9 GB); `on` builds it whatever its size.
TEXT_CACHE_AUTO_LIMIT_BYTES = 1 << 30


def drawn_text_cache(mode, prior, dataset, epoch_kwargs, steps_per_epoch=None):
    """The frozen text prior's features of the captions a run will draw.

    Replays each epoch's caption draws (`keras_lgvq.datasets.
    drawn_captions`, no image decoded) and encodes each distinct caption
    once into a `keras_lgvq.text_priors.CaptionFeatureCache`, which the
    epochs' pipelines then read instead of running the prior on every
    caption in the step. It never encodes more captions than the steps
    would, in batches of 256 instead of the step's.

    Args:
        mode: "auto" (build it unless its features would exceed
            `TEXT_CACHE_AUTO_LIMIT_BYTES`), "on" or "off" (None returned).
        prior: the model's frozen `TextPrior`.
        dataset: what `make_dataset` takes (e.g. "scenes").
        epoch_kwargs: list of dicts, each epoch's `make_dataset` arguments
            (seed included; no `text_prior` / `feature_cache`).
        steps_per_epoch: int or None. Batches per epoch of a repeated
            epoch dataset (one more is replayed: a model not built yet
            reads a batch to build); None: one pass per epoch.

    Returns:
        `(cache, note)`: the `CaptionFeatureCache` or None, and a line
        saying what was built or why not.

    Examples:

    ```python
    cache, note = drawn_text_cache(
        "auto", model.text_prior, "scenes",
        [dict(split="train", batch_size=16, seed=epoch_seed(0, e))
         for e in range(3)])
    ```
    """
    from keras_lgvq.datasets import drawn_captions
    from keras_lgvq.text_priors import CaptionFeatureCache

    if mode not in ("auto", "on", "off"):
        raise ValueError(
            f"--text-cache must be 'auto', 'on' or 'off'; received {mode!r}."
        )
    if mode == "off":
        return None, "Text prior runs in the step (--text-cache off)."
    steps = None if steps_per_epoch is None else steps_per_epoch + 1
    drawn = []
    for kwargs in epoch_kwargs:
        drawn.extend(drawn_captions(dataset, steps=steps, **kwargs))
    distinct = len(set(drawn))
    length = int(prior.sequence_length)
    nbytes = distinct * length * (
        2 * int(prior.hidden_dim) + 5
    ) + distinct * 4 * int(prior.sentence_dim)
    if mode == "auto" and nbytes > TEXT_CACHE_AUTO_LIMIT_BYTES:
        return None, (
            f"Text prior runs in the step: a cache of the {distinct:,} "
            f"distinct captions drawn would hold {nbytes / 2**30:.1f} GiB "
            f"(> {TEXT_CACHE_AUTO_LIMIT_BYTES / 2**30:.0f} GiB; "
            "--text-cache on builds it anyway)."
        )
    cache = CaptionFeatureCache(prior)
    cache.add(drawn)
    return cache, (
        f"Text features cached: {len(cache):,} distinct captions of "
        f"{len(drawn):,} drawn, {nbytes / 2**20:.0f} MiB (--text-cache)."
    )


def array_datasets(train, validation, batch_size, seed, validation_steps=None):
    """`(epoch_data, validation_data)` for `train` over numpy batch dicts.

    The stage-2 recipes prepare their examples as dicts of equal-length
    numpy arrays (`Captioner.prepare_inputs`, `VQAModel.prepare_inputs`).
    Epoch `e` shuffles the training rows with `epoch_seed(seed, e)`, so
    any epoch can be rebuilt alone and a resumed run skips exactly the
    batches it had trained; the last batch may be partial.

    Args:
        train: dict name -> array, one row per example.
        validation: dict name -> array (the held-out rows).
        batch_size: int >= 1.
        seed: int >= 0.
        validation_steps: int or None. Validation batches per epoch (None:
            every held-out row).

    Returns:
        `(epoch_data, validation_data)`, the callables `train` takes.
    """
    import tensorflow as tf

    from keras_lgvq.callbacks import epoch_seed
    from keras_lgvq.utils.validation import check_int

    check_int("batch_size", batch_size, 1)
    for name, rows in (("training", train), ("validation", validation)):
        count = {len(v) for v in rows.values()}
        if count == {0} or len(count) != 1:
            raise ValueError(
                f"The {name} rows must be non-empty arrays of one length. "
                f"Received lengths {sorted(count)} for {sorted(rows)}."
            )
    size = len(next(iter(train.values())))

    def epoch_data(epoch):
        ds = tf.data.Dataset.from_tensor_slices(train)
        ds = ds.shuffle(
            size, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False
        )
        return ds.batch(batch_size)

    def validation_data():
        ds = tf.data.Dataset.from_tensor_slices(validation).batch(batch_size)
        return ds.take(validation_steps) if validation_steps else ds

    return epoch_data, validation_data


def model_arguments(args, name):
    """`args` for one of several models a recipe trains in turn: each gets
    its own backup folder (`--backup-dir`/NAME when given)."""
    import argparse

    values = dict(vars(args))
    if args.backup_dir:
        values["backup_dir"] = os.path.join(args.backup_dir, name)
    return argparse.Namespace(**values)

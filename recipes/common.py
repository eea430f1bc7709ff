"""Shared helpers of the recipes: timing, machine info, JSON and data splits.

Figures and tables are drawn by `keras_lgvq.visualization` (matplotlib,
`pip install keras-lgvq[viz]`).
"""

import json
import resource
import time

import numpy as np

# Re-exported: recipes record these next to their results.
from keras_lgvq.utils.machine import load_average  # noqa: F401
from keras_lgvq.utils.machine import machine_info  # noqa: F401
from keras_lgvq.utils.machine import peak_rss_mb  # noqa: F401

# === Timing and machine information ===


def cpu_seconds():
    """User + system CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    )


class Stopwatch:
    """Wall-clock and CPU seconds of named phases.

    Examples:

    ```python
    watch = Stopwatch()
    with watch.phase("train"):
        ...
    watch.as_dict()  # {"train": {"wall_s": ..., "cpu_s": ...}, ...}
    ```
    """

    def __init__(self):
        self.start_wall = time.time()
        self.start_cpu = cpu_seconds()
        self.phases = {}

    def phase(self, name):
        watch = self

        class _Phase:
            def __enter__(self):
                self.wall = time.time()
                self.cpu = cpu_seconds()
                return self

            def __exit__(self, *exc):
                entry = watch.phases.setdefault(
                    name, {"wall_s": 0.0, "cpu_s": 0.0}
                )
                entry["wall_s"] += time.time() - self.wall
                entry["cpu_s"] += cpu_seconds() - self.cpu
                return False

        return _Phase()

    def as_dict(self):
        out = {
            k: {kk: round(vv, 1) for kk, vv in v.items()}
            for k, v in self.phases.items()
        }
        out["total"] = {
            "wall_s": round(time.time() - self.start_wall, 1),
            "cpu_s": round(cpu_seconds() - self.start_cpu, 1),
        }
        return out


def quiet_tensorflow():
    """Silence TensorFlow's retracing warnings (probes build many models)."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


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


# === Data ===


def scenes_splits(
    text_prior,
    eval_size,
    probe_size,
    image_size=64,
    train_size=None,
    seed=0,
    data_dir=None,
    verbose=1,
    eval_split_name="test",
):
    """The shared evaluation and probe-training splits of the scenes set.

    Args:
        text_prior: `TextPrior` (MiniLM for the scenes preset).
        eval_size: int. Images of `eval_split_name` scored.
        probe_size: int. Training-split images the probes learn from.
        image_size: int. Scene size in pixels.
        train_size: int or None. Size of the generated training split (at
            least `probe_size`).
        seed: int. Caption sampling and mask seed.
        data_dir: str or None. TFDS folder.
        verbose: int. Progress bars.
        eval_split_name: str. "test" or "validation".

    Returns:
        `(eval_split, probe_split)` dicts from
        `keras_lgvq.evaluation.prepare_split`.
    """
    from keras_lgvq.datasets import make_dataset
    from keras_lgvq.evaluation import prepare_split

    train_size = max(train_size or probe_size, probe_size)
    sizes = scenes_sizes(train_size, eval_size)
    common = dict(
        batch_size=64,
        image_size=image_size,
        training=False,
        seed=seed,
        text_prior=text_prior,
        include_attributes=True,
        data_dir=data_dir,
        **sizes,
    )
    eval_ds = make_dataset("scenes", split=eval_split_name, **common)
    eval_split = prepare_split(
        eval_ds, text_prior, max_images=eval_size, seed=seed, verbose=verbose
    )
    probe_split = None
    if probe_size:
        probe_ds = make_dataset("scenes", split="train", **common)
        probe_split = prepare_split(
            probe_ds,
            text_prior,
            max_images=probe_size,
            seed=seed + 1,
            protocol_mask_counts=(),
            training_masks=True,
            verbose=verbose,
        )
    return eval_split, probe_split


def scenes_sizes(train_size, eval_size):
    """Split sizes of the generated scenes set (validation kept small)."""
    return dict(
        train_size=int(train_size),
        validation_size=min(256, int(eval_size)),
        test_size=int(eval_size),
    )

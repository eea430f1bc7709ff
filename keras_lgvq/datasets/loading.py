"""`load`, `get_builder` and `caption_iterator` over the five datasets."""

import contextlib
import os

import tensorflow_datasets as tfds

from keras_lgvq.datasets.celeba_hq import LgvqCelebaHq
from keras_lgvq.datasets.coco import LgvqCoco
from keras_lgvq.datasets.coco import find_karpathy_json
from keras_lgvq.datasets.cub import LgvqCub
from keras_lgvq.datasets.scenes_builder import SCENES_SPLIT_SIZES
from keras_lgvq.datasets.scenes_builder import LgvqScenes
from keras_lgvq.datasets.scenes_builder import ScenesConfig
from keras_lgvq.datasets.scenes_builder import scenes_config
from keras_lgvq.datasets.textcaps import LgvqTextcaps
from keras_lgvq.utils.cache import cache_dir

DATASET_NAMES = ("scenes", "cub", "celeba_hq", "textcaps", "coco")
# Default split sizes of the procedural scenes (pass smaller ones to `load`).
scenes_split_sizes = dict(SCENES_SPLIT_SIZES)

_BUILDERS = {
    "cub": LgvqCub,
    "celeba_hq": LgvqCelebaHq,
    "textcaps": LgvqTextcaps,
    "coco": LgvqCoco,
}
_NAME_ALIASES = {
    "scene": "scenes",
    "lgvq_scenes": "scenes",
    "cub200": "cub",
    "cub_200": "cub",
    "cub_200_2011": "cub",
    "lgvq_cub": "cub",
    "celebahq": "celeba_hq",
    "celeba-hq": "celeba_hq",
    "mm_celeba_hq": "celeba_hq",
    "lgvq_celeba_hq": "celeba_hq",
    "text_caps": "textcaps",
    "lgvq_textcaps": "textcaps",
    "mscoco": "coco",
    "coco2014": "coco",
    "lgvq_coco": "coco",
}
_SCENES_KEYS = (
    "image_size",
    "train_size",
    "validation_size",
    "test_size",
    "seed",
    "holdout",
)
_SPLIT_ALIASES = {
    "val": "validation",
    "valid": "validation",
    "eval": "validation",
}


def canonical_name(name):
    """Map a dataset name or alias to one of `DATASET_NAMES`."""
    if not isinstance(name, str):
        raise ValueError(
            f"`name` must be a str among {DATASET_NAMES}. Received: {name!r}"
        )
    key = name.strip().lower().replace("-", "_")
    key = _NAME_ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        raise ValueError(
            f"Unknown dataset {name!r}; expected one of {DATASET_NAMES}."
        )
    return key


def default_data_dir():
    """`keras_lgvq.utils.cache.cache_dir("tensorflow_datasets")`."""
    return cache_dir("tensorflow_datasets")


def get_builder(name, data_dir=None, manual_dir=None, **builder_kwargs):
    """Make the TFDS builder of a dataset (nothing is prepared yet).

    Args:
        name: str. `"scenes"`, `"cub"`, `"celeba_hq"`, `"textcaps"` or
            `"coco"` (a few aliases are accepted).
        data_dir: str or None. TFDS data directory; default
            `keras_lgvq.utils.cache.cache_dir("tensorflow_datasets")`.
        manual_dir: str or None. Only used to pick the COCO config.
        **builder_kwargs: for `"scenes"`: `image_size`, `train_size`,
            `validation_size`, `test_size`, `seed`, `holdout` (see
            `scenes_config`), or `config=` a `ScenesConfig`, and
            `num_workers`; for the others: `strict`, `max_words`, and for
            `"coco"` `config` (`"karpathy"` / `"official"`, default: karpathy
            when its json is found) and `karpathy_json`.

    Returns:
        A `tfds.core.GeneratorBasedBuilder`.

    Examples:

    ```python
    builder = get_builder("scenes", train_size=256, validation_size=32,
                          test_size=32)
    ```
    """
    name = canonical_name(name)
    data_dir = (
        os.fspath(data_dir) if data_dir is not None else default_data_dir()
    )
    kwargs = dict(builder_kwargs)
    if name == "scenes":
        config = kwargs.pop("config", None)
        values = {k: kwargs.pop(k) for k in _SCENES_KEYS if k in kwargs}
        num_workers = kwargs.pop("num_workers", None)
        if kwargs:
            raise ValueError(
                f"Unknown arguments for 'scenes': {sorted(kwargs)}. Accepted: "
                f"{list(_SCENES_KEYS) + ['config', 'num_workers']}."
            )
        if config is not None:
            if values or not isinstance(config, ScenesConfig):
                raise ValueError(
                    "Pass either `config` (a ScenesConfig) or the config "
                    f"values {list(_SCENES_KEYS)}, not both. Received "
                    f"config={config!r}."
                )
        else:
            config = scenes_config(**values)
        if config.name in LgvqScenes.builder_configs:
            # TFDS refuses a new object named like a predefined config.
            config = config.name
        return LgvqScenes(
            config=config, data_dir=data_dir, num_workers=num_workers
        )
    allowed = {"strict", "max_words"} | (
        {"config", "karpathy_json"} if name == "coco" else set()
    )
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(
            f"Unknown arguments for {name!r}: {unknown}. Accepted: "
            f"{sorted(allowed)}."
        )
    if name == "coco" and kwargs.get("config") is None:
        kwargs["config"] = _pick_coco_config(
            data_dir, manual_dir, kwargs.get("karpathy_json")
        )
    return _BUILDERS[name](data_dir=data_dir, **kwargs)


def _pick_coco_config(data_dir, manual_dir, karpathy_json):
    if karpathy_json is not None:
        return "karpathy"
    if manual_dir is not None:
        return (
            "karpathy"
            if find_karpathy_json(os.fspath(manual_dir))
            else "official"
        )
    for config in ("karpathy", "official"):
        if os.path.isdir(os.path.join(data_dir, "lgvq_coco", config)):
            return config
    return "karpathy"


def resolve_split(builder, split):
    """Map `split` to a split of `builder` (aliases, slices, val <-> test).

    `"val"` / `"valid"` mean `"validation"`; a dataset without `validation`
    (CUB, CelebA-HQ) serves `test` for it and one without `test` (TextCaps,
    official COCO) serves `validation` for `test`. Slices such as
    `"train[:10%]"` pass through.
    """
    if not isinstance(split, str) or not split:
        raise ValueError(
            f"`split` must be a non-empty str. Received: {split!r}"
        )
    base, bracket, rest = split.partition("[")
    base = _SPLIT_ALIASES.get(base.strip(), base.strip())
    available = list(builder.info.splits.keys())
    if base not in available:
        swap = {"validation": "test", "test": "validation"}.get(base)
        if swap in available:
            base = swap
        else:
            raise ValueError(
                f"Split {split!r} not found in {builder.name}; available: "
                f"{available}."
            )
    return base + bracket + rest


@contextlib.contextmanager
def _prepare_lock(builder):
    """Holds an exclusive lock on the builder's version while it prepares.

    Two processes preparing the same dataset at once (e.g. two recipes
    started together on a fresh machine) would both generate it, and the
    second to finish fails renaming its files onto the first's. With the
    lock the second waits and then reuses the first's files. POSIX only
    (`fcntl`); elsewhere the build is unguarded, as in TFDS itself.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock.
        yield
        return
    root = os.fspath(builder.data_dir_root)
    os.makedirs(root, exist_ok=True)
    config = builder.builder_config.name if builder.builder_config else ""
    path = os.path.join(
        root, f".{builder.name}-{config}-{builder.version}.prepare.lock"
    )
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare(builder, manual_dir=None):
    """Build the dataset files if needed (scenes generate themselves).

    Safe to call from several processes at once on one machine: one builds,
    the others wait and reuse its files.
    """
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual_dir) if manual_dir is not None else None
    )
    if manual_dir is None and builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        short = (
            builder.name[len("lgvq_") :]
            if builder.name.startswith("lgvq_")
            else builder.name
        )
        download_config.manual_dir = os.path.join(
            builder.data_dir_root, "downloads", "manual", short
        )
    with _prepare_lock(builder):
        builder.download_and_prepare(download_config=download_config)
        if not builder.info.splits:
            # Another process built it after this builder was made: TFDS
            # reuses the files but does not read their split metadata.
            builder.info.read_from_directory(builder.data_dir)
    return builder


def load(
    name,
    split="train",
    data_dir=None,
    manual_dir=None,
    decode_images=True,
    **builder_kwargs,
):
    """Load a split as a `tf.data.Dataset` of examples, preparing it if needed.

    Every example has `image` (uint8 (H, W, 3), or the encoded bytes with
    `decode_images=False`), `captions` (tf.string (10,) for scenes and CUB,
    variable elsewhere), `image_id` (tf.string, unique within the split) and,
    for scenes, the attributes (`objects`, `relations`, `num_objects`,
    `background`). Examples come in split order.

    The scenes build themselves into `data_dir` on first use; the other
    datasets are built from the user's files in `manual_dir` (default
    `<data_dir>/downloads/manual/<name>`), laid out as upstream releases them
    (see each builder's `MANUAL_DOWNLOAD_INSTRUCTIONS`).

    Args:
        name: str. `"scenes"`, `"cub"`, `"celeba_hq"`, `"textcaps"` or
            `"coco"`.
        split: str. Split name, alias (`"val"`) or TFDS slice.
        data_dir: str or None. TFDS data directory; default
            `keras_lgvq.utils.cache.cache_dir("tensorflow_datasets")`.
        manual_dir: str or None. Folder of the user's raw files.
        decode_images: bool. False keeps `image` as encoded bytes.
        **builder_kwargs: see `get_builder` (e.g. scenes `image_size`,
            `train_size`; `strict=True` to raise on bad input).

    Returns:
        A `tf.data.Dataset`.

    Examples:

    ```python
    ds = load("scenes", split="validation", train_size=512,
              validation_size=64, test_size=64)
    for example in ds.take(1):
        print(example["image_id"], example["captions"][0])
    ```
    """
    builder = get_builder(
        name, data_dir=data_dir, manual_dir=manual_dir, **builder_kwargs
    )
    prepare(builder, manual_dir)
    decoders = None if decode_images else {"image": tfds.decode.SkipDecoding()}
    return builder.as_dataset(
        split=resolve_split(builder, split),
        shuffle_files=False,
        decoders=decoders,
    )


def caption_iterator(
    name, split="train", data_dir=None, manual_dir=None, **builder_kwargs
):
    """Yield `(image_id, captions)` in split order, without decoding images.

    `captions` lists every stored caption of the image (normalised, in
    stored order). A feature cache built from it holds one row per caption:
    `make_dataset(feature_cache=...)` picks row `i` for stored caption `i`.

    Args:
        name: str. Dataset name (see `load`).
        split: str. Split.
        data_dir: str or None. TFDS data directory.
        manual_dir: str or None. Folder of the user's raw files.
        **builder_kwargs: see `get_builder`.

    Yields:
        `(str, list of str)` pairs.

    Examples:

    ```python
    for image_id, captions in caption_iterator("scenes", "train",
                                               train_size=64):
        print(image_id, len(captions))
    ```
    """
    ds = load(
        name,
        split,
        data_dir=data_dir,
        manual_dir=manual_dir,
        decode_images=False,
        **builder_kwargs,
    )
    ds = ds.map(lambda ex: (ex["image_id"], ex["captions"]))
    for image_id, captions in ds.as_numpy_iterator():
        yield image_id.decode("utf-8"), [c.decode("utf-8") for c in captions]

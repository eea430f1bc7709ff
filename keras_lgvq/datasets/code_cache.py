"""Pre-extracted code grids of a frozen tokenizer, per dataset and split.

Stage-2 models (text-to-image, captioning, VQA) read a frozen tokenizer's
codes, not pixels. Encoding once per split and reading the grids back means
their training never runs the image encoder (the same idea as the
text-feature cache, `keras_lgvq.text_priors.feature_cache`). Layout of one
cache folder, numpy files only (no pickle):

```
<root>/<dataset>/<split>/<tokenizer_name>/
    manifest.json     # format, dataset, split, tokenizer fingerprint, shapes
    codes.npy         # (N, h, w) uint16 (int32 when K > 65535)
    image_ids.npy     # (N,) fixed-width unicode, split order
```

A tokenizer with a trailing index axis (VQCT) stores its codes exactly as
`encode` returns them, `(N, h, w, S)` (VQCT: `top_k` adjective ids, then
the noun id, each local to its sub-codebook), so `tokenizer.decode(codes)`
inverts the cache; the manifest then records `index_depth` (`S`) and the
`sub_codebooks` (`keras_lgvq.utils.code_layout`), and the dtype is chosen
by the largest sub-codebook. A manifest without these fields is a
one-codebook cache.

The manifest records a fingerprint of the tokenizer (SHA-256 of its config
and weights), so a cache is never silently paired with another tokenizer.
`make_code_dataset` zips a code cache with a text-feature cache of the same
split (same image order) into training batches.
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import time

import numpy as np

FORMAT = "keras_lgvq.code_cache"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CODES_FILE = "codes.npy"
IDS_FILE = "image_ids.npy"


def _safe(part, what):
    if not isinstance(part, str) or not part:
        raise ValueError(f"`{what}` must be a non-empty str. Received {part!r}")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


def tokenizer_fingerprint(tokenizer):
    """SHA-256 (hex, 16 chars) of a tokenizer's class, grid and weights.

    Two tokenizers with the same fingerprint give the same codes.

    Args:
        tokenizer: a tokenizer backbone (`encode`, `grid_size`,
            `num_embeddings`, `weights`).

    Examples:

    ```python
    tokenizer_fingerprint(model.backbone)  # '3f9a0c...'
    ```
    """
    from keras import ops

    digest = hashlib.sha256()
    header = {
        "class": type(tokenizer).__name__,
        "grid_size": int(tokenizer.grid_size),
        "num_embeddings": int(tokenizer.num_embeddings),
    }
    digest.update(json.dumps(header, sort_keys=True).encode("utf-8"))
    for weight in tokenizer.weights:
        digest.update(weight.path.encode("utf-8"))
        value = np.ascontiguousarray(ops.convert_to_numpy(weight))
        digest.update(value.astype(value.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()[:16]


def code_cache_path(root, dataset, split, tokenizer_name):
    """The folder of the code cache keyed by dataset, split and tokenizer.

    Args:
        root: str. Root folder of all code caches.
        dataset: str. Dataset name, e.g. `"scenes"`.
        split: str. Split name.
        tokenizer_name: str. A name for the tokenizer (e.g. `"lgvq"`, or
            its fingerprint).

    Examples:

    ```python
    code_cache_path("caches", "scenes", "train", "lgvq")
    # 'caches/scenes/train/lgvq'
    ```
    """
    return os.path.join(
        root,
        _safe(dataset, "dataset"),
        _safe(split, "split"),
        _safe(tokenizer_name, "tokenizer_name"),
    )


def _batches(images):
    """Yields numpy `(images, image_ids)` from a dataset or an iterable."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        tf = None
    if tf is not None and isinstance(images, tf.data.Dataset):
        spec = images.element_spec
        if not isinstance(spec, dict) or not {"images", "image_id"} <= set(
            spec
        ):
            raise ValueError(
                "`images` must yield dicts with batched `images` (B, H, W, 3) "
                "in [-1, 1] and `image_id` (B,), e.g. from "
                "`make_dataset(name, split, training=False)`; received "
                f"element_spec {spec!r}."
            )
        if spec["images"].shape.rank != 4:
            raise ValueError(
                "`images` must be batched (B, H, W, 3); received element "
                f"shape {spec['images'].shape}."
            )
        images = images.as_numpy_iterator()
    for batch in images:
        if not isinstance(batch, dict) or not {"images", "image_id"} <= set(
            batch
        ):
            raise ValueError(
                "Each element of `images` must be a dict with `images` and "
                f"`image_id`; received {type(batch).__name__}."
            )
        ids = [
            i.decode("utf-8") if isinstance(i, bytes) else str(i)
            for i in np.asarray(batch["image_id"]).reshape(-1)
        ]
        yield np.asarray(batch["images"], "float32"), ids


def build_code_cache(
    tokenizer,
    images,
    out_dir,
    dataset,
    split,
    max_images=None,
    overwrite=False,
    verbose=1,
):
    """Encodes a split once with a frozen tokenizer and stores the grids.

    Args:
        tokenizer: a keras_lgvq tokenizer (see
            `keras_lgvq.models.text_to_image.load_tokenizer`: a backbone, a
            VQGAN / LGVQ, or a path).
        images: a batched `tf.data.Dataset` (or an iterable) of dicts with
            `images` float `(B, H, W, 3)` in [-1, 1] and `image_id` `(B,)`,
            in split order and without augmentation (e.g.
            `make_dataset(name, split, training=False)`).
        out_dir: str. The cache folder, usually from `code_cache_path`.
        dataset: str. Dataset name recorded in the manifest.
        split: str. Split name recorded in the manifest.
        max_images: int or None. Encode only the first images.
        overwrite: bool. Replace an existing cache in `out_dir`.
        verbose: int. 1 shows a progress bar.

    Returns:
        A `CodeCache` over the written folder.

    Examples:

    ```python
    ds = keras_lgvq.datasets.make_dataset(
        "scenes", split="train", training=False, batch_size=64)
    cache = build_code_cache(
        "runs/lgvq/model.keras", ds,
        code_cache_path("caches", "scenes", "train", "lgvq"),
        dataset="scenes", split="train")
    cache.codes.shape  # (N, 16, 16)
    ```
    """
    import keras

    from keras_lgvq.models.text_to_image.text_to_image import TokenizerCall
    from keras_lgvq.models.text_to_image.text_to_image import load_tokenizer
    from keras_lgvq.utils.code_layout import check_code_layout
    from keras_lgvq.utils.code_layout import index_depth
    from keras_lgvq.utils.code_layout import sub_codebooks_of
    from keras_lgvq.utils.validation import check_int

    tokenizer = load_tokenizer(tokenizer)
    max_images = check_int("max_images", max_images, allow_none=True)
    _safe(dataset, "dataset")
    _safe(split, "split")
    if os.path.exists(os.path.join(out_dir, MANIFEST)) and not overwrite:
        raise FileExistsError(
            f"A code cache already exists in {out_dir}; pass overwrite=True "
            "to rebuild it."
        )
    start_time = time.perf_counter()
    # A compiled encoder (XLA on TensorFlow and JAX).
    encode = TokenizerCall(tokenizer, "encode")
    encode.compile(jit_compile="auto")
    progress = keras.utils.Progbar(max_images, unit_name="image") if (
        verbose
    ) else None
    codes, ids, image_size = [], [], None
    for batch, batch_ids in _batches(images):
        if max_images is not None:
            room = max_images - len(ids)
            if room <= 0:
                break
            batch, batch_ids = batch[:room], batch_ids[:room]
        if batch.ndim != 4 or batch.shape[-1] != tokenizer.in_channels:
            raise ValueError(
                "`images` batches must be (B, H, W, "
                f"{tokenizer.in_channels}); received {batch.shape}."
            )
        if batch.shape[1] != tokenizer.resolution:
            raise ValueError(
                f"`images` are {batch.shape[1]} px but the tokenizer was "
                f"built for {tokenizer.resolution} px; load the dataset at "
                "the tokenizer's resolution."
            )
        image_size = int(batch.shape[1])
        codes.append(np.asarray(encode.predict_on_batch(batch), "int64"))
        ids.extend(batch_ids)
        if progress is not None:
            progress.update(len(ids))
    if not ids:
        raise ValueError("`images` yielded no images.")
    if len(set(ids)) != len(ids):
        raise ValueError(
            "`images` repeats image ids; pass each image of the split once "
            "(e.g. without `.repeat()`)."
        )
    codes = np.concatenate(codes, axis=0)
    num_codes = int(tokenizer.num_embeddings)
    sub_codebooks = sub_codebooks_of(tokenizer)
    # The largest id stored: local ids with sub-codebooks (VQCT).
    largest = num_codes
    if sub_codebooks is not None:
        check_code_layout(codes, sub_codebooks, "encoded codes")
        largest = max(part.size for part in sub_codebooks)
    dtype = "uint16" if largest <= np.iinfo("uint16").max + 1 else "int32"
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = os.path.abspath(out_dir) + ".partial"
    if os.path.exists(staging):
        shutil.rmtree(staging)
    os.makedirs(staging)
    np.save(os.path.join(staging, CODES_FILE), codes.astype(dtype))
    np.save(os.path.join(staging, IDS_FILE), np.array(ids, dtype=str))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "split": split,
        "tokenizer_class": type(tokenizer).__name__,
        "tokenizer_fingerprint": tokenizer_fingerprint(tokenizer),
        "num_codes": num_codes,
        "grid_size": int(tokenizer.grid_size),
        "index_depth": index_depth(sub_codebooks),
        "sub_codebooks": None
        if sub_codebooks is None
        else [part._asdict() for part in sub_codebooks],
        "image_size": image_size,
        "num_images": len(ids),
        "dtype": dtype,
        "build_seconds": round(time.perf_counter() - start_time, 3),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    with open(os.path.join(staging, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
    # The folder is swapped in whole, so a crashed build never looks valid.
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    return CodeCache(out_dir)


class CodeCache:
    """Read-only view of a code cache written by `build_code_cache`.

    Refuses a cache whose manifest does not match the requested tokenizer
    (by fingerprint), dataset or split (each check only when requested).

    Args:
        path: str. The cache folder (holds `manifest.json`).
        tokenizer: optional tokenizer backbone the codes must come from.
        dataset: str or None. Expected dataset name.
        split: str or None. Expected split name.

    Examples:

    ```python
    cache = CodeCache("caches/scenes/train/lgvq", dataset="scenes")
    cache.codes[0]          # (16, 16) code ids of the first image
    ds = cache.as_dataset() # per-image {"image_id", "codes"}
    ```
    """

    def __init__(self, path, tokenizer=None, dataset=None, split=None):
        manifest_path = os.path.join(path, MANIFEST)
        if not os.path.isfile(manifest_path):
            raise FileNotFoundError(
                f"No code cache in {path} (missing {MANIFEST}); build one "
                "with keras_lgvq.datasets.code_cache.build_code_cache."
            )
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{manifest_path} is not a keras_lgvq code cache.")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{manifest_path} has format_version "
                f"{manifest.get('format_version')}; this keras_lgvq reads "
                f"{FORMAT_VERSION}. Rebuild the cache."
            )
        expected = {}
        if tokenizer is not None:
            expected["tokenizer_fingerprint"] = tokenizer_fingerprint(
                tokenizer
            )
        if dataset is not None:
            expected["dataset"] = dataset
        if split is not None:
            expected["split"] = split
        mismatches = [
            f"{key}: cache has {manifest.get(key)!r}, requested {value!r}"
            for key, value in expected.items()
            if manifest.get(key) != value
        ]
        if mismatches:
            raise ValueError(
                f"The code cache in {path} does not match the request ("
                + "; ".join(mismatches)
                + "). Rebuild it with this tokenizer."
            )
        self.path = path
        self.manifest = manifest
        self._codes = np.load(
            os.path.join(path, CODES_FILE), mmap_mode="r", allow_pickle=False
        )
        self._ids = np.load(os.path.join(path, IDS_FILE), allow_pickle=False)
        n, g = manifest["num_images"], manifest["grid_size"]
        depth = manifest.get("index_depth")
        expected_shape = (n, g, g) + ((depth,) if depth else ())
        if self._codes.shape != expected_shape or self._ids.shape != (n,):
            raise ValueError(
                f"The code cache in {path} is inconsistent: codes "
                f"{self._codes.shape}, ids {self._ids.shape}, manifest says "
                f"{n} images of {g}x{g}"
                + (f" with {depth} index slots" if depth else "")
                + "."
            )

    @property
    def num_images(self):
        return int(self.manifest["num_images"])

    @property
    def grid_size(self):
        return int(self.manifest["grid_size"])

    @property
    def num_codes(self):
        return int(self.manifest["num_codes"])

    @property
    def index_depth(self):
        """Slots of the trailing index axis (VQCT: `top_k + 1`), or None
        for a one-codebook cache."""
        return self.manifest.get("index_depth")

    @property
    def sub_codebooks(self):
        """The tokenizer's `SubCodebook`s (VQCT: adjective, noun), or
        None."""
        from keras_lgvq.utils.code_layout import normalize_sub_codebooks

        return normalize_sub_codebooks(self.manifest.get("sub_codebooks"))

    @property
    def codes(self):
        """int32 code grids in split order, in the tokenizer's `encode`
        layout: `(N, h, w)`, or `(N, h, w, S)` with sub-codebooks."""
        return np.asarray(self._codes, "int32")

    @property
    def image_ids(self):
        """`(N,)` str image ids in split order."""
        return self._ids.astype(str)

    def __len__(self):
        return self.num_images

    def as_dataset(self):
        """`tf.data.Dataset` of per-image `{"image_id", "codes"}` (int32
        `(h, w)`, or `(h, w, S)` with sub-codebooks) in split order."""
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(
            {
                "image_id": tf.constant(self.image_ids),
                "codes": tf.constant(self.codes),
            }
        )


def make_code_dataset(
    code_cache,
    feature_cache=None,
    batch_size=32,
    training=True,
    seed=0,
    shuffle_buffer=4096,
    drop_remainder=None,
):
    """Training batches of codes and (optionally) cached caption features.

    With a text-feature cache of the same split (same image order, checked
    by image id), each image gets one of its real captions
    (`caption_mask`) drawn uniformly, anew each epoch; the draw is
    stateless and seeded, so the same seed gives the same batches.

    Args:
        code_cache: `CodeCache` or its folder.
        feature_cache: `keras_lgvq.text_priors.FeatureCache` (or anything
            whose `as_dataset()` yields per-image `image_id`,
            `token_features` (C, L, D), `padding_mask` (C, L) and
            `caption_mask` (C,)) or None (unconditional batches).
        batch_size: int.
        training: bool. Shuffle (and by default drop the last partial
            batch).
        seed: int. Seed of shuffling and caption choice.
        shuffle_buffer: int. Shuffle buffer when training.
        drop_remainder: bool or None. Default: `training`.

    Returns:
        `tf.data.Dataset` of dicts: `codes` int32 `(B, h, w)` (or
        `(B, h, w, S)` for a tokenizer with sub-codebooks), `image_id`
        `(B,)`, and with features `token_features` float32 `(B, L, D)`,
        `padding_mask` bool `(B, L)`, `caption_index` int32 `(B,)`.

    Examples:

    ```python
    ds = make_code_dataset(code_cache, feature_cache, batch_size=32)
    model.fit(ds, epochs=10)   # keras_lgvq.models.TextToImage
    ```
    """
    import tensorflow as tf

    from keras_lgvq.utils.validation import check_int

    batch_size = check_int("batch_size", batch_size)
    shuffle_buffer = check_int("shuffle_buffer", shuffle_buffer, low=0)
    if isinstance(code_cache, (str, os.PathLike)):
        code_cache = CodeCache(os.fspath(code_cache))
    if not isinstance(code_cache, CodeCache):
        raise ValueError(
            "`code_cache` must be a CodeCache or its folder; received "
            f"{type(code_cache).__name__}."
        )
    if drop_remainder is None:
        drop_remainder = bool(training)
    codes = code_cache.as_dataset()
    if feature_cache is None:
        ds = codes
    else:
        if not hasattr(feature_cache, "as_dataset"):
            raise ValueError(
                "`feature_cache` must have `as_dataset()` (a FeatureCache); "
                f"received {type(feature_cache).__name__}."
            )
        if hasattr(feature_cache, "num_images") and (
            feature_cache.num_images != code_cache.num_images
        ):
            raise ValueError(
                f"`feature_cache` holds {feature_cache.num_images} images but "
                f"`code_cache` {code_cache.num_images}; both must list the "
                "same split in the same order."
            )
        randoms = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        )
        ds = tf.data.Dataset.zip((codes, feature_cache.as_dataset(), randoms))

        def select(code_row, text_row, random):
            check = tf.debugging.assert_equal(
                code_row["image_id"],
                text_row["image_id"],
                message="code and feature caches list different images",
            )
            valid = tf.cast(text_row["caption_mask"], tf.float32)
            seed_pair = tf.stack([random, tf.constant(seed, tf.int64)])
            scores = tf.random.stateless_uniform(
                tf.shape(valid), seed=seed_pair
            )
            with tf.control_dependencies([check]):
                # The largest score among the real captions wins.
                index = tf.cast(
                    tf.argmax(tf.where(valid > 0, scores, -1.0)), tf.int32
                )
            return {
                "image_id": code_row["image_id"],
                "codes": code_row["codes"],
                "token_features": tf.cast(
                    tf.gather(text_row["token_features"], index), tf.float32
                ),
                "padding_mask": tf.cast(
                    tf.gather(text_row["padding_mask"], index), tf.bool
                ),
                "caption_index": index,
            }

        ds = ds.map(
            select, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    if training and shuffle_buffer > 1:
        ds = ds.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)

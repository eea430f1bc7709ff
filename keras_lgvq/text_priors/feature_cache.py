"""Precomputed text-prior features on disk (TFRecord shards + JSON manifest).

A text prior is frozen and LG-VQ feeds it the *unmasked* caption, so its
outputs per caption can be computed once and read back by the input
pipeline; the train step then never runs the text encoder (LG-VQ spec §2,
§11). Layout of one cache folder:

```
<root>/<dataset>/<split>/<prior>-L<sequence_length>/
    manifest.json              # keys, shapes, dtypes, shard list
    features-00000-of-00004.tfrecord
    ...
```

Each TFRecord example is one image, in split order, holding raw
little-endian bytes: `image_id`, `token_ids` (C, L) int32,
`padding_mask` (C, L) uint8, `token_features` (C, L, D) float16,
`sentence_feature` (C, E) float32 and `caption_mask` (C,) uint8. No pickle
anywhere.

Captions per image: every image stores the same number C (the largest
caption count in the split, or `captions_per_image`). Images with fewer
captions are padded by repeating their captions in order, and
`caption_mask` marks the real ones (False for repeats), so sampling "one
caption uniformly" should sample among the `caption_mask` entries.
"""

import datetime
import json
import math
import os
import re
import shutil
import time

import numpy as np

from keras_lgvq.text_priors.bert_text_prior import MINILM_NAMES
from keras_lgvq.text_priors.text_prior import TextPrior

try:
    import tensorflow as tf
except ImportError:  # pragma: no cover
    tf = None

FORMAT = "keras_lgvq.text_feature_cache"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def prior_cache_name(prior):
    """Return the short name a prior is keyed by in caches.

    `"minilm"` for the default MiniLM, the folder name for a local
    directory, else the preset name.

    Args:
        prior: `TextPrior` or str (its `name_or_path`).

    Examples:

    ```python
    prior_cache_name("/models/clip-vit-b-32/")  # "clip-vit-b-32"
    ```
    """
    name = prior.name_or_path if isinstance(prior, TextPrior) else prior
    if not isinstance(name, str) or not name:
        raise ValueError(
            "`prior` must be a TextPrior or a non-empty str. "
            f"Received {prior!r}"
        )
    if name.lower() in MINILM_NAMES:
        return "minilm"
    if os.path.sep in name or os.path.isdir(name):
        name = os.path.basename(os.path.normpath(name))
    return name


def _safe(part, what):
    if not isinstance(part, str) or not part:
        raise ValueError(f"`{what}` must be a non-empty str. Received {part!r}")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


def cache_path(root, dataset, split, prior_name, sequence_length):
    """Return the folder of the cache keyed by dataset, split, prior, length.

    Args:
        root: str. Root folder of all caches.
        dataset: str. Dataset name, e.g. `"scenes"`.
        split: str. Split name, e.g. `"train"`.
        prior_name: str or `TextPrior`. The prior (see `prior_cache_name`).
        sequence_length: int. Token length L.

    Examples:

    ```python
    path = cache_path("caches", "scenes", "train", "minilm", 30)
    # "caches/scenes/train/minilm-L30"
    ```
    """
    if (
        not isinstance(sequence_length, (int, np.integer))
        or sequence_length < 2
    ):
        raise ValueError(
            "`sequence_length` must be an int >= 2. "
            f"Received {sequence_length!r}"
        )
    name = _safe(prior_cache_name(prior_name), "prior_name")
    return os.path.join(
        root,
        _safe(dataset, "dataset"),
        _safe(split, "split"),
        f"{name}-L{int(sequence_length)}",
    )


def _validate_examples(examples, captions_per_image):
    items = []
    for index, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) != 2:
            raise ValueError(
                f"`examples`[{index}] must be a pair (image_id, captions). "
                f"Received {example!r:.100}"
            )
        image_id, captions = example
        if isinstance(image_id, bytes):
            image_id = image_id.decode("utf-8")
        if not isinstance(image_id, str) or not image_id:
            raise ValueError(
                f"`examples`[{index}] image_id must be a non-empty str. "
                f"Received {image_id!r}"
            )
        if isinstance(captions, str) or not isinstance(captions, (list, tuple)):
            raise ValueError(
                f"`examples`[{index}] captions must be a list of str. "
                f"Received {type(captions).__name__}"
            )
        if not captions:
            raise ValueError(
                f"`examples`[{index}] (image {image_id!r}) has no captions."
            )
        for j, caption in enumerate(captions):
            if not isinstance(caption, str):
                raise ValueError(
                    f"`examples`[{index}] (image {image_id!r}) caption {j} "
                    f"must be a str. Received {type(caption).__name__}."
                )
        items.append((image_id, list(captions)))
    if not items:
        raise ValueError("`examples` is empty.")
    most = max(len(c) for _, c in items)
    if captions_per_image is None:
        captions_per_image = most
    elif not isinstance(captions_per_image, int) or captions_per_image < 1:
        raise ValueError(
            "`captions_per_image` must be a positive int or None. "
            f"Received {captions_per_image!r}"
        )
    elif most > captions_per_image:
        raise ValueError(
            f"An image has {most} captions, more than "
            f"captions_per_image={captions_per_image}. Filter them first or "
            "raise `captions_per_image`."
        )
    return items, captions_per_image


def _pad_captions(captions, count):
    # Cycle through the real captions; the mask marks the originals.
    padded = [captions[i % len(captions)] for i in range(count)]
    mask = np.arange(count) < len(captions)
    return padded, mask


def _bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _serialize(
    image_id, token_ids, mask, token_features, sentence, caption_mask
):
    feature = {
        "image_id": _bytes_feature(image_id.encode("utf-8")),
        "token_ids": _bytes_feature(token_ids.astype("<i4").tobytes()),
        "padding_mask": _bytes_feature(mask.astype("u1").tobytes()),
        "token_features": _bytes_feature(
            token_features.astype("<f2").tobytes()
        ),
        "sentence_feature": _bytes_feature(sentence.astype("<f4").tobytes()),
        "caption_mask": _bytes_feature(caption_mask.astype("u1").tobytes()),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def build_feature_cache(
    prior,
    examples,
    out_dir,
    dataset,
    split,
    batch_size=256,
    captions_per_image=None,
    images_per_shard=1024,
    overwrite=False,
):
    """Run a prior once over every caption of a split and store the results.

    Args:
        prior: `TextPrior`. The frozen encoder.
        examples: iterable of `(image_id: str, captions: list[str])` in split
            order.
        out_dir: str. The cache folder, usually from `cache_path(...)`.
        dataset: str. Dataset name recorded in the manifest.
        split: str. Split name recorded in the manifest.
        batch_size: int. Captions per encoder forward pass.
        captions_per_image: int or None. C; None means the largest caption
            count in `examples`. Images with fewer captions are padded by
            repetition (see the module docstring).
        images_per_shard: int. Images per TFRecord shard.
        overwrite: bool. Replace an existing cache in `out_dir`.

    Returns:
        A `FeatureCache` over the written folder.

    Examples:

    ```python
    prior = keras_lgvq.text_priors.get("minilm")
    path = cache_path("caches", "scenes", "train", prior, 30)
    cache = build_feature_cache(
        prior, [("img0", ["a red square", "a square in red"])], path,
        dataset="scenes", split="train",
    )
    ds = cache.as_dataset()
    ```
    """
    if tf is None:  # pragma: no cover
        raise ImportError("The feature cache needs TensorFlow (TFRecord).")
    if not isinstance(prior, TextPrior):
        raise ValueError(
            f"`prior` must be a TextPrior. Received {type(prior).__name__}."
        )
    for name, value in (
        ("batch_size", batch_size),
        ("images_per_shard", images_per_shard),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive int. Received {value!r}"
            )
    _safe(dataset, "dataset")
    _safe(split, "split")
    if os.path.exists(os.path.join(out_dir, MANIFEST)) and not overwrite:
        raise FileExistsError(
            f"A feature cache already exists in {out_dir}; pass "
            "overwrite=True to rebuild it."
        )
    start_time = time.perf_counter()
    items, count = _validate_examples(examples, captions_per_image)
    num_shards = math.ceil(len(items) / images_per_shard)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = os.path.abspath(out_dir) + ".partial"
    if os.path.exists(staging):
        shutil.rmtree(staging)
    os.makedirs(staging)
    # Encode a few batches' worth of images at a time to bound memory.
    chunk_images = max(1, (4 * batch_size) // count)
    shards = []
    writer = None
    for start in range(0, len(items), chunk_images):
        chunk = items[start : start + chunk_images]
        captions, caption_masks = [], []
        for _, image_captions in chunk:
            padded, mask = _pad_captions(image_captions, count)
            captions.extend(padded)
            caption_masks.append(mask)
        out = prior.encode(captions, batch_size=batch_size)
        for i, (image_id, _) in enumerate(chunk):
            index = start + i
            if index % images_per_shard == 0:
                if writer is not None:
                    writer.close()
                file = (
                    f"features-{len(shards):05d}-of-{num_shards:05d}.tfrecord"
                )
                writer = tf.io.TFRecordWriter(os.path.join(staging, file))
                shards.append({"file": file, "num_images": 0})
            rows = slice(i * count, (i + 1) * count)
            writer.write(
                _serialize(
                    image_id,
                    out["token_ids"][rows],
                    out["padding_mask"][rows],
                    out["token_features"][rows],
                    out["sentence_feature"][rows],
                    caption_masks[i],
                )
            )
            shards[-1]["num_images"] += 1
    writer.close()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "split": split,
        "prior": prior_cache_name(prior),
        "prior_name_or_path": prior.name_or_path,
        "prior_class": type(prior).__name__,
        "sequence_length": prior.sequence_length,
        "captions_per_image": count,
        "caption_padding": "repeat; caption_mask marks real captions",
        "hidden_dim": prior.hidden_dim,
        "sentence_dim": prior.sentence_dim,
        "vocabulary_size": prior.vocabulary_size,
        "start_token_id": prior.start_token_id,
        "end_token_id": prior.end_token_id,
        "pad_token_id": prior.pad_token_id,
        "mask_token_id": prior.mask_token_id,
        "num_images": len(items),
        "num_captions": int(sum(len(c) for _, c in items)),
        "dtypes": {
            "token_ids": "int32",
            "padding_mask": "bool",
            "token_features": "float16",
            "sentence_feature": "float32",
            "caption_mask": "bool",
        },
        "shards": shards,
        "build_seconds": round(time.perf_counter() - start_time, 3),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    with open(os.path.join(staging, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
    # The manifest is written last and the folder swapped in whole, so a
    # crashed build never looks like a valid cache.
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    return FeatureCache(out_dir)


class FeatureCache:
    """Read-only view of a text-feature cache written by `build_feature_cache`.

    Refuses a cache whose manifest does not match the requested prior,
    sequence length, dataset or split (each check only when requested).

    Args:
        path: str. The cache folder (holds `manifest.json`).
        prior: `TextPrior`, str or None. Expected prior (instance or name);
            an instance also checks `sequence_length` and feature sizes.
        sequence_length: int or None. Expected token length.
        dataset: str or None. Expected dataset name.
        split: str or None. Expected split name.

    Examples:

    ```python
    cache = FeatureCache(path, prior="minilm", sequence_length=30)
    for element in cache.as_dataset().take(1):
        element["token_features"].shape  # (C, 30, 384)
    ```
    """

    def __init__(
        self, path, prior=None, sequence_length=None, dataset=None, split=None
    ):
        manifest_path = os.path.join(path, MANIFEST)
        if not os.path.isfile(manifest_path):
            raise FileNotFoundError(
                f"No feature cache in {path} (missing {MANIFEST}); build it "
                "with keras_lgvq.text_priors.feature_cache.build_feature_cache."
            )
        with open(manifest_path) as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT:
            raise ValueError(
                f"{manifest_path} is not a keras_lgvq feature cache."
            )
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{manifest_path} has format_version "
                f"{manifest.get('format_version')}; this keras_lgvq reads "
                f"{FORMAT_VERSION}. Rebuild the cache."
            )
        self.path = path
        self.manifest = manifest
        expected = {}
        if prior is not None:
            expected["prior"] = prior_cache_name(prior)
            if isinstance(prior, TextPrior):
                expected["sequence_length"] = prior.sequence_length
                expected["hidden_dim"] = prior.hidden_dim
                expected["sentence_dim"] = prior.sentence_dim
        if sequence_length is not None:
            expected["sequence_length"] = int(sequence_length)
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
                f"The feature cache in {path} does not match the request ("
                + "; ".join(mismatches)
                + "). Rebuild it for this prior and length."
            )
        for shard in manifest["shards"]:
            if not os.path.isfile(os.path.join(path, shard["file"])):
                raise FileNotFoundError(
                    f"Feature cache {path} is missing shard {shard['file']}."
                )

    @property
    def num_images(self):
        return int(self.manifest["num_images"])

    @property
    def captions_per_image(self):
        return int(self.manifest["captions_per_image"])

    @property
    def sequence_length(self):
        return int(self.manifest["sequence_length"])

    def __len__(self):
        return self.num_images

    def as_dataset(self):
        """Return a `tf.data.Dataset` of per-image elements in split order.

        Elements: `image_id` tf.string, `token_ids` (C, L) int32,
        `padding_mask` (C, L) bool, `token_features` (C, L, D) float16,
        `sentence_feature` (C, E) float32 and `caption_mask` (C,) bool.
        """
        m = self.manifest
        c, length = m["captions_per_image"], m["sequence_length"]
        hidden, sentence = m["hidden_dim"], m["sentence_dim"]
        files = [os.path.join(self.path, s["file"]) for s in m["shards"]]
        spec = {
            key: tf.io.FixedLenFeature([], tf.string)
            for key in (
                "image_id",
                "token_ids",
                "padding_mask",
                "token_features",
                "sentence_feature",
                "caption_mask",
            )
        }

        def parse(record):
            ex = tf.io.parse_single_example(record, spec)

            def raw(key, dtype, shape):
                return tf.reshape(tf.io.decode_raw(ex[key], dtype), shape)

            return {
                "image_id": ex["image_id"],
                "token_ids": raw("token_ids", tf.int32, [c, length]),
                "padding_mask": tf.cast(
                    raw("padding_mask", tf.uint8, [c, length]), tf.bool
                ),
                "token_features": raw(
                    "token_features", tf.float16, [c, length, hidden]
                ),
                "sentence_feature": raw(
                    "sentence_feature", tf.float32, [c, sentence]
                ),
                "caption_mask": tf.cast(
                    raw("caption_mask", tf.uint8, [c]), tf.bool
                ),
            }

        dataset = tf.data.TFRecordDataset(files)
        return dataset.map(
            parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )

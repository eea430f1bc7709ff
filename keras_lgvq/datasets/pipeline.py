"""`make_dataset`: the tf.data training / evaluation input pipeline."""

import tensorflow as tf

from keras_lgvq.datasets import scenes
from keras_lgvq.datasets.image_adaptation import adapt_image_tensor
from keras_lgvq.datasets.image_adaptation import check_value_range
from keras_lgvq.datasets.loading import canonical_name
from keras_lgvq.datasets.loading import load
from keras_lgvq.datasets.own_common import check_extra_fields
from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX
from keras_lgvq.utils.validation import check_int

TRANSFORMS = (
    "cub",
    "celeba_hq",
    "textcaps",
    "coco",
    "scenes",
    "center_crop",
    "none",
)
_DEFAULT_IMAGE_SIZE = {
    "cub": 256,
    "celeba_hq": 256,
    "textcaps": 256,
    "coco": 256,
}
_CACHE_KEYS = (
    "image_id",
    "token_ids",
    "padding_mask",
    "token_features",
    "sentence_feature",
)


def _resize_shorter(image, size):
    """torchvision `Resize(size)`: shorter side to `size`, other truncated."""
    shape = tf.shape(image)
    h = tf.cast(shape[0], tf.float64)
    w = tf.cast(shape[1], tf.float64)
    short = tf.minimum(h, w)
    scale = tf.constant(size, tf.float64) / short
    new_h = tf.where(h <= w, tf.constant(size, tf.float64), tf.floor(h * scale))
    new_w = tf.where(h <= w, tf.floor(w * scale), tf.constant(size, tf.float64))
    new_size = tf.cast(tf.stack([new_h, new_w]), tf.int32)
    return tf.image.resize(image, new_size, method="bilinear", antialias=True)


def _center_crop(image, size):
    shape = tf.shape(image)
    # torchvision rounds the offset half to even, as tf.round does.
    top = tf.cast(
        tf.round(tf.cast(shape[0] - size, tf.float32) / 2.0), tf.int32
    )
    left = tf.cast(
        tf.round(tf.cast(shape[1] - size, tf.float32) / 2.0), tf.int32
    )
    return tf.image.crop_to_bounding_box(image, top, left, size, size)


def _to_uint8_levels(image):
    # Upstream resizes PIL images, which stay uint8.
    return tf.clip_by_value(tf.round(image), 0.0, 255.0)


def transform_image(image, transform, image_size, training, seed):
    """Apply a dataset's paper transform and scale to [-1, 1].

    Args:
        image: uint8 (H, W, 3) tensor.
        transform: str. One of `TRANSFORMS`: `"cub"` (resize shorter side,
            random crop + flip when training, centre crop otherwise),
            `"celeba_hq"` (resize; shorter side + centre crop, which is a
            plain resize for square faces), `"textcaps"` (squash resize),
            `"coco"` (resize shorter + centre crop, flip when training),
            `"scenes"` (resize only if the size differs; never flipped, as
            captions name left and right), `"center_crop"` (resize shorter +
            centre crop), `"none"`.
        image_size: int or None. Output height and width.
        training: bool. Enables the random parts.
        seed: int64 tensor (2,). Stateless seed of this example.

    Returns:
        float32 (image_size, image_size, 3) in [-1, 1].
    """
    image = tf.cast(image, tf.float32)
    if image_size is not None and transform != "none":
        size = image_size
        if transform == "textcaps":
            image = _to_uint8_levels(
                tf.image.resize(
                    image, [size, size], method="bilinear", antialias=True
                )
            )
        elif transform == "scenes":
            shape = tf.shape(image)
            same = tf.logical_and(
                tf.equal(shape[0], size), tf.equal(shape[1], size)
            )
            image = tf.cond(
                same,
                lambda: image,
                lambda: _to_uint8_levels(
                    tf.image.resize(
                        image, [size, size], method="bilinear", antialias=True
                    )
                ),
            )
        else:
            image = _to_uint8_levels(_resize_shorter(image, size))
            if transform == "cub" and training:
                image = tf.image.stateless_random_crop(
                    image, [size, size, 3], seed=seed
                )
            else:
                image = _center_crop(image, size)
        image = tf.ensure_shape(image, [size, size, 3])
    if training and transform in ("cub", "coco"):
        image = tf.image.stateless_random_flip_left_right(
            image, seed=seed + [0, 1]
        )
    return image / 127.5 - 1.0


def _normalize_captions(captions):
    captions = tf.strings.lower(captions, encoding="utf-8")
    captions = tf.strings.regex_replace(captions, r"\s+", " ")
    return tf.strings.strip(captions)


def sample_caption(captions, max_words, seed):
    """Draw one caption among those with 1 to `max_words` words.

    Args:
        captions: tf.string (C,) (a scalar counts as one caption).
        max_words: int.
        seed: int64 tensor (2,). Stateless seed.

    Returns:
        `(caption, index, valid)`: the normalised caption, its index in
        `captions` (int32) and whether any caption was usable.
    """
    captions = _normalize_captions(tf.reshape(captions, [-1]))
    words = tf.strings.split(captions).row_lengths()
    usable = tf.logical_and(words > 0, words <= max_words)
    candidates = tf.cast(tf.where(usable)[:, 0], tf.int32)
    count = tf.size(candidates)
    pick = tf.random.stateless_uniform(
        [], seed=seed, minval=0, maxval=tf.maximum(count, 1), dtype=tf.int32
    )
    valid = count > 0
    index = tf.where(valid, tf.gather(tf.concat([candidates, [0]], 0), pick), 0)
    caption = tf.cond(
        tf.size(captions) > 0,
        lambda: tf.gather(captions, index),
        lambda: tf.constant(""),
    )
    return caption, index, valid


def validate_text_batch(batch, vocabulary_size=None, sequence_length=None):
    """Host-side checks of a batch's captions, for `tf.data.Dataset.map`.

    Runs on the CPU in the input pipeline, before any backend sees the
    batch, so it also guards steps compiled with `jax.jit`, XLA or
    `torch.compile`, where a check inside the model cannot raise. A bad
    batch fails the iteration with `tf.errors.InvalidArgumentError` whose
    message starts with `TEXT_CHECK_PREFIX` and names the problem
    (`keras_lgvq` models' `fit` re-raises it as a ValueError). Batches
    without `token_ids` pass unchanged.

    Checks: `token_ids` integer `(B, L)` (or `(L,)` unbatched) in
    `[0, vocabulary_size)` (only `>= 0` when `vocabulary_size` is None),
    `L <= sequence_length`, and `padding_mask` a prefix of ones with at
    least one real token per row.

    Args:
        batch: dict of tensors with `token_ids` and `padding_mask`.
        vocabulary_size: int or None.
        sequence_length: int or None.

    Returns:
        The batch, with `token_ids` depending on the checks.

    Examples:

    ```python
    ds = ds.map(lambda b: validate_text_batch(b, vocabulary_size=49408))
    ```
    """
    if not isinstance(batch, dict) or "token_ids" not in batch:
        return batch
    if "padding_mask" not in batch:
        raise ValueError(
            "A batch with `token_ids` also needs `padding_mask`. Received "
            f"keys {sorted(batch)}."
        )
    token_ids = batch["token_ids"]
    if not token_ids.dtype.is_integer:
        raise ValueError(
            f"`token_ids` must be integer token ids; got {token_ids.dtype}."
        )
    ids = tf.cast(token_ids, tf.int64)
    valid = tf.cast(batch["padding_mask"], tf.bool)
    if ids.shape.rank == 1:
        ids, valid = ids[None], valid[None]
    checks = [
        tf.debugging.assert_non_negative(
            ids,
            message=(
                f"{TEXT_CHECK_PREFIX}`token_ids` must be >= 0; a negative "
                "id is often padding written as -1 (pad with 0 and mark "
                "padding in `padding_mask`)."
            ),
        ),
        tf.debugging.assert_equal(
            tf.shape(ids),
            tf.shape(valid),
            message=(
                f"{TEXT_CHECK_PREFIX}`token_ids` and `padding_mask` must "
                "have the same shape."
            ),
        ),
    ]
    if vocabulary_size is not None:
        checks.append(
            tf.debugging.assert_less(
                ids,
                tf.constant(int(vocabulary_size), tf.int64),
                message=(
                    f"{TEXT_CHECK_PREFIX}`token_ids` must be < "
                    f"vocabulary_size={vocabulary_size}: ids must come from "
                    "the model's own text prior (or a feature cache built "
                    "with it)."
                ),
            )
        )
    if sequence_length is not None:
        checks.append(
            tf.debugging.assert_less_equal(
                tf.shape(ids)[-1],
                int(sequence_length),
                message=(
                    f"{TEXT_CHECK_PREFIX}`token_ids` is longer than "
                    f"sequence_length={sequence_length}; tokenize with the "
                    "model's text prior (it truncates, keeping the end "
                    "token)."
                ),
            )
        )
    counts = tf.reduce_sum(tf.cast(valid, tf.int32), axis=-1)
    checks.append(
        tf.debugging.assert_positive(
            counts,
            message=(
                f"{TEXT_CHECK_PREFIX}every caption needs at least one real "
                "token, but a row of `padding_mask` is all padding. Drop "
                "images without a usable caption."
            ),
        )
    )
    positions = tf.range(tf.shape(valid)[-1])[None, :]
    prefix = positions < counts[:, None]
    checks.append(
        tf.debugging.Assert(
            tf.reduce_all(tf.equal(valid, prefix)),
            [
                f"{TEXT_CHECK_PREFIX}`padding_mask` must be a prefix of ones "
                "in every row (real tokens first, then padding; the end "
                "token at sum(mask) - 1). Left-padded or gapped masks are "
                "not supported; re-tokenize with the text prior."
            ],
        )
    )
    with tf.control_dependencies(checks):
        token_ids = tf.identity(token_ids)
    return {**batch, "token_ids": token_ids}


def _pad_attribute(values):
    values = tf.cast(values[: scenes.MAX_OBJECTS], tf.int32)
    pad = scenes.MAX_OBJECTS - tf.shape(values)[0]
    values = tf.pad(values, [[0, pad]], constant_values=-1)
    return tf.ensure_shape(values, [scenes.MAX_OBJECTS])


def _check_element_spec(spec, what):
    if not isinstance(spec, dict):
        raise ValueError(
            f"{what} must yield dicts. Received element_spec {spec!r}."
        )
    missing = [k for k in ("image", "captions", "image_id") if k not in spec]
    if missing:
        raise ValueError(
            f"{what} must yield dicts with 'image', 'captions' and 'image_id'; "
            f"missing {missing}. Received keys {sorted(spec)}."
        )
    image = spec["image"]
    # Other dtypes and channel counts follow `image_adaptation`'s rules.
    if not (
        image.dtype in (tf.uint8, tf.string)
        or image.dtype.is_integer
        or image.dtype.is_floating
    ):
        raise ValueError(
            f"{what}'s 'image' must be uint8 (H, W, C) (C in 1..4), float "
            "(with `image_value_range`) or encoded bytes (tf.string). "
            f"Received {image!r}."
        )
    if (
        spec["captions"].dtype != tf.string
        or spec["image_id"].dtype != tf.string
    ):
        raise ValueError(
            f"{what}'s 'captions' and 'image_id' must be tf.string."
        )


def _cache_dataset(feature_cache, examples):
    if not hasattr(feature_cache, "as_dataset"):
        raise ValueError(
            "`feature_cache` must have an `as_dataset()` method returning a "
            f"tf.data.Dataset. Received: {type(feature_cache).__name__}."
        )
    cache = feature_cache.as_dataset()
    spec = cache.element_spec
    if not isinstance(spec, dict) or any(k not in spec for k in _CACHE_KEYS):
        raise ValueError(
            "`feature_cache.as_dataset()` must yield dicts with keys "
            f"{_CACHE_KEYS}. "
            f"Received element_spec {spec!r}."
        )
    n_cache = int(cache.cardinality())
    n_examples = int(examples.cardinality())
    if n_cache >= 0 and n_examples >= 0 and n_cache != n_examples:
        raise ValueError(
            f"`feature_cache` holds {n_cache} images but the split has "
            f"{n_examples}; it must list the split's images in the same order."
        )
    return cache


def make_dataset(
    name_or_tfds_dataset,
    split="train",
    batch_size=8,
    image_size=None,
    training=None,
    seed=0,
    text_prior=None,
    feature_cache=None,
    max_words=27,
    include_attributes=False,
    drop_remainder=None,
    shuffle_buffer=2048,
    data_dir=None,
    transform=None,
    manual_dir=None,
    num_parallel_calls=tf.data.AUTOTUNE,
    extra_fields=(),
    image_value_range=None,
    captions_only=False,
    **builder_kwargs,
):
    """Batched, prefetched `tf.data` pipeline of images and captions.

    Decodes, applies the paper's transform of the dataset, scales images to
    [-1, 1] and samples one caption per image per epoch among those of 1 to
    `max_words` whitespace words (upstream keeps <= 27). Sampling, crops and
    flips are stateless, seeded by `seed` and an epoch-varying stream
    (`tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`): the
    same seed (and TF global seed) gives the same batches, and each new
    iteration (epoch) draws new captions. Images without a usable caption
    are dropped. Plain `tf.data`, so it works with `tf.distribute` and, as
    numpy, with JAX and torch (`keras.Model.fit` accepts it on every
    backend).

    Args:
        name_or_tfds_dataset: str (`"scenes"`, `"cub"`, `"celeba_hq"`,
            `"textcaps"`, `"coco"`; loaded with `load`) or a
            `tf.data.Dataset` of dicts with `image`, `captions`, `image_id`.
        split: str. Split to load; also sets the `training` default.
        batch_size: int >= 1.
        image_size: int or None. Output size. None keeps the scenes' size
            (64) and uses 256 for the photo datasets. For scenes it is also
            the generation size (within [32, 256]) unless `source_image_size`
            is passed among the builder arguments.
        training: bool or None. Random crop/flip (CUB, COCO) and shuffling;
            default `split` starts with `"train"`.
        seed: int. Seed of shuffling, caption sampling, crops and flips.
        text_prior: None or an object with `tokenize(strings) -> (token_ids,
            padding_mask)` usable in `Dataset.map`; adds `token_ids` (int32
            (B, L)) and `padding_mask` (bool (B, L)).
        feature_cache: None or an object whose `as_dataset()` yields, in split
            order, `{"image_id", "token_ids" (C, L), "padding_mask" (C, L),
            "token_features" (C, L, D) float16, "sentence_feature" (C, E)}`
            with row `i` for stored caption `i` (see `caption_iterator`).
            Adds the sampled caption's `token_ids`, `padding_mask`,
            `token_features` (float32) and `sentence_feature`; mismatched
            image ids fail with `InvalidArgumentError`. Takes precedence
            over `text_prior` for the token outputs. A
            `keras_lgvq.text_priors.CaptionFeatureCache` (features per
            distinct caption) is looked up by the sampled caption instead;
            a caption it lacks fails the iteration, naming the caption.
        max_words: int >= 1. Longest usable caption in words.
        include_attributes: bool. Scenes only: add int32 (B, 3) `shape`,
            `color`, `size`, `fill` (ids into `scenes.SHAPES`..., -1 for no
            object) and `num_objects` (B,).
        drop_remainder: bool or None. Default: `training`.
        shuffle_buffer: int >= 0. Shuffle buffer when training (0 or 1: no
            shuffling).
        data_dir: str or None. TFDS data directory (see `load`).
        transform: str or None. One of `TRANSFORMS`; default: the dataset's
            own (`"center_crop"` for a `tf.data.Dataset`).
        manual_dir: str or None. Raw files of a photo dataset (see `load`).
        num_parallel_calls: int. Parallelism of the map steps.
        extra_fields: sequence of str. Features of the source dataset
            (e.g. `label` of `from_folder`, extra columns of `from_table`)
            passed to the batches under their own names; an unknown name
            raises a ValueError listing the available ones. Each must have
            the same shape in every example (they are batched).
        image_value_range: None or `(0, 1)`, `(-1, 1)`, `(0, 255)`: the
            value range of float images, which is required for them. The
            image rules (`keras_lgvq.datasets.image_adaptation`): grayscale
            is replicated to RGB, RGBA drops its alpha channel, uint8 is
            [0, 255]; images are then resized to `image_size` by the
            transform.
        captions_only: bool. Skip decoding and transforming the images:
            the batches hold `captions` and `image_id` (and the
            `extra_fields` / attributes asked for) only, drawn exactly as
            with images (same shuffling, caption draws and batching for the
            same arguments and TF global seed). What `drawn_captions` reads
            to build a caption-feature cache of the captions a training run
            will draw. Takes no `text_prior` or `feature_cache`.
        **builder_kwargs: passed to `load` (e.g. scenes `train_size`,
            `source_image_size`; `strict`).

    Returns:
        A `tf.data.Dataset` of dicts: `images` float32 (B, H, W, 3) in
        [-1, 1], `captions` tf.string (B,), `image_id` tf.string (B,), plus
        the optional outputs above.

    Examples:

    ```python
    ds = make_dataset("scenes", split="train", batch_size=8, train_size=256,
                      validation_size=32, test_size=32)
    batch = next(iter(ds))
    batch["images"].shape  # (8, 64, 64, 3)
    ```
    """
    check_int("batch_size", batch_size, 1)
    check_int("image_size", image_size, 8, allow_none=True)
    check_int("max_words", max_words, 1)
    check_int("shuffle_buffer", shuffle_buffer, 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"`seed` must be an int. Received: {seed!r}")
    if not isinstance(split, str) or not split:
        raise ValueError(
            f"`split` must be a non-empty str. Received: {split!r}"
        )
    if transform is not None and transform not in TRANSFORMS:
        raise ValueError(
            f"`transform` must be one of {TRANSFORMS} or None. Received: "
            f"{transform!r}"
        )
    if training is None:
        training = split.strip().startswith("train")
    if drop_remainder is None:
        drop_remainder = bool(training)
    if captions_only and (text_prior is not None or feature_cache is not None):
        raise ValueError(
            "`captions_only=True` yields the drawn captions only: pass "
            "neither `text_prior` nor `feature_cache` with it."
        )
    if text_prior is not None and not callable(
        getattr(text_prior, "tokenize", None)
    ):
        raise ValueError(
            "`text_prior` must have a `tokenize(strings)` method. Received: "
            f"{type(text_prior).__name__}."
        )

    if isinstance(name_or_tfds_dataset, tf.data.Dataset):
        if builder_kwargs or data_dir is not None or manual_dir is not None:
            raise ValueError(
                "`data_dir`, `manual_dir` and builder arguments only apply "
                f"when loading by name; received {sorted(builder_kwargs)} "
                "with a tf.data.Dataset."
            )
        examples = name_or_tfds_dataset
        _check_element_spec(examples.element_spec, "The dataset")
        name = None
        transform = transform or "center_crop"
    else:
        name = canonical_name(name_or_tfds_dataset)
        transform = transform or name
        if name == "scenes":
            source = builder_kwargs.pop("source_image_size", None)
            config = builder_kwargs.get("config")
            if config is not None:
                if source is not None and source != config.image_size:
                    raise ValueError(
                        f"`source_image_size`={source} differs from the "
                        "config's "
                        f"image_size={config.image_size}."
                    )
                source = config.image_size
            else:
                if source is None:
                    source = min(
                        max(image_size or 64, scenes.MIN_IMAGE_SIZE),
                        scenes.MAX_IMAGE_SIZE,
                    )
                builder_kwargs["image_size"] = source
            if image_size is None:
                image_size = source
        elif image_size is None:
            image_size = _DEFAULT_IMAGE_SIZE[name]
        examples = load(
            name,
            split,
            data_dir=data_dir,
            manual_dir=manual_dir,
            decode_images=False,
            **builder_kwargs,
        )
    spec = examples.element_spec
    if image_size is None and transform != "none":
        shape = spec["image"].shape
        if not (
            shape.rank == 3
            and shape.is_fully_defined()
            and shape[0] == shape[1]
        ):
            raise ValueError(
                "`image_size` is required unless the images are square with a "
                f"fixed, known shape. Image spec: {spec['image']!r}."
            )
        image_size = int(shape[0])
    extra_fields = check_extra_fields(extra_fields, spec)
    image_value_range = check_value_range(image_value_range)
    if spec["image"].dtype.is_floating and image_value_range is None:
        raise ValueError(
            "The dataset's images are float "
            f"({spec['image'].dtype.name}): pass `image_value_range`, (0, 1) "
            "or (-1, 1) (or (0, 255) for whole-number levels), to say how "
            "their values map to pixels, or give uint8 images. Nothing is "
            "guessed."
        )
    if include_attributes and "objects" not in spec:
        raise ValueError(
            "`include_attributes=True` needs the scenes' `objects` "
            "feature; the "
            f"dataset has keys {sorted(spec)}."
        )

    # Images without a usable caption are dropped, which makes the length
    # unknown to Keras. Our builders guarantee one caption of at most their
    # `max_words` (27 by default, and by construction for scenes), so the
    # filter is only needed below that, or for datasets of unknown origin.
    if name is None:
        guaranteed = 0
    elif name == "scenes":
        guaranteed = scenes.MAX_CAPTION_WORDS
    else:
        guaranteed = builder_kwargs.get("max_words", 27)
    needs_filter = max_words < guaranteed or name is None

    use_cache = feature_cache is not None
    # A `CaptionFeatureCache` is looked up by the sampled caption; a
    # per-image `FeatureCache` is zipped with the split in order.
    by_caption = use_cache and bool(
        getattr(feature_cache, "keyed_by_caption", False)
    )
    if by_caption:
        # Built eagerly, outside the traced map function.
        caption_table, caption_arrays = feature_cache.tf_lookup()
    streams = [examples]
    if use_cache and not by_caption:
        streams.append(_cache_dataset(feature_cache, examples))
    streams.append(
        tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    )
    ds = tf.data.Dataset.zip(tuple(streams))

    def select(*elements):
        example, random = elements[0], elements[-1]
        seed_pair = tf.stack([random, tf.constant(seed, tf.int64)])
        caption, index, valid = sample_caption(
            example["captions"], max_words, seed_pair
        )
        if not needs_filter:
            check_valid = tf.debugging.Assert(
                valid,
                [
                    f"No caption of 1 to {max_words} words for image",
                    example["image_id"],
                ],
            )
            with tf.control_dependencies([check_valid]):
                caption = tf.identity(caption)
        out = {
            "image": example["image"],
            "captions": caption,
            "image_id": example["image_id"],
            "_seed": seed_pair,
            "_valid": valid,
        }
        if by_caption:
            found = caption_table.lookup(caption)
            # Images without a usable caption are filtered out below.
            check = tf.debugging.Assert(
                tf.logical_or(found >= 0, tf.logical_not(valid)),
                ["Caption not in the caption feature_cache:", caption],
            )
            with tf.control_dependencies([check]):
                found = tf.maximum(found, 0)
            for key, dtype in (
                ("token_ids", tf.int32),
                ("padding_mask", tf.bool),
                ("token_features", tf.float32),
                ("sentence_feature", tf.float32),
            ):
                out[key] = tf.cast(tf.gather(caption_arrays[key], found), dtype)
        elif use_cache:
            row = elements[1]
            check = tf.debugging.assert_equal(
                example["image_id"],
                row["image_id"],
                message=(
                    "feature_cache is out of order: image_id differs from "
                    "the split's"
                ),
            )
            rows = tf.shape(row["token_ids"])[0]
            check_rows = tf.debugging.assert_less(
                index,
                rows,
                message=(
                    "feature_cache has fewer caption rows than the image has "
                    "captions"
                ),
            )
            with tf.control_dependencies([check, check_rows]):
                index = tf.identity(index)
            out["token_ids"] = tf.cast(
                tf.gather(row["token_ids"], index), tf.int32
            )
            out["padding_mask"] = tf.cast(
                tf.gather(row["padding_mask"], index), tf.bool
            )
            out["token_features"] = tf.cast(
                tf.gather(row["token_features"], index), tf.float32
            )
            out["sentence_feature"] = tf.cast(
                tf.gather(row["sentence_feature"], index), tf.float32
            )
        for key in extra_fields:
            out[key] = example[key]
        if include_attributes:
            objects = example["objects"]
            for key in scenes.ATTRIBUTES:
                out[key] = _pad_attribute(objects[key])
            out["num_objects"] = tf.cast(
                tf.shape(objects["shape"])[0], tf.int32
            )
        return out

    ds = ds.map(
        select, num_parallel_calls=num_parallel_calls, deterministic=True
    )
    if needs_filter:
        ds = ds.filter(lambda x: x["_valid"])
    if training and shuffle_buffer > 1:
        ds = ds.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )

    def finish(x):
        image = x.pop("image")
        if captions_only:
            x.pop("_seed")
            x.pop("_valid")
            return x
        if image.dtype == tf.string:
            image = tf.io.decode_image(
                image, channels=3, expand_animations=False
            )
        # Gray -> RGB, RGBA -> RGB, value ranges: `image_adaptation`.
        image = adapt_image_tensor(image, image_value_range, "image")
        x["images"] = transform_image(
            image, transform, image_size, training, x.pop("_seed")
        )
        x.pop("_valid")
        return x

    ds = ds.map(
        finish, num_parallel_calls=num_parallel_calls, deterministic=True
    )
    examples_count = int(ds.cardinality())
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    # Known sizes only: a caption filter makes the count unknown, and then
    # `fit` reports an epoch without batches.
    if int(ds.cardinality()) == 0:
        if examples_count == 0:
            raise ValueError(
                f"The {split!r} split has no examples, so the dataset would "
                "yield no batch. Check `split` and the data directory."
            )
        raise ValueError(
            f"The {split!r} split has {examples_count} examples, fewer than "
            f"batch_size={batch_size}, and drop_remainder=True drops the "
            "partial batch, so the dataset would yield no batch at all. Use "
            "a smaller `batch_size`, more examples, or "
            "`drop_remainder=False`."
        )
    if text_prior is not None and not use_cache:

        def tokenize(x):
            token_ids, padding_mask = text_prior.tokenize(x["captions"])
            x["token_ids"] = tf.cast(token_ids, tf.int32)
            x["padding_mask"] = tf.cast(padding_mask, tf.bool)
            return x

        ds = ds.map(
            tokenize, num_parallel_calls=num_parallel_calls, deterministic=True
        )
    if text_prior is not None or use_cache:
        vocabulary_size = getattr(text_prior, "vocabulary_size", None)
        sequence_length = getattr(text_prior, "sequence_length", None)
        if use_cache:
            manifest = getattr(feature_cache, "manifest", None) or {}
            vocabulary_size = manifest.get("vocabulary_size", vocabulary_size)
            sequence_length = manifest.get("sequence_length", sequence_length)

        def check_text(x):
            return validate_text_batch(x, vocabulary_size, sequence_length)

        ds = ds.map(
            check_text,
            num_parallel_calls=num_parallel_calls,
            deterministic=True,
        )
    options = tf.data.Options()
    options.deterministic = True
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)

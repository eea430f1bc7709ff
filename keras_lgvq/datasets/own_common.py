"""Shared parts of the own-data loaders (`own_arrays`, `own_folder`,
`own_table`, `own_tfds`) and of `make_dataset(extra_fields=...)`.

Every loader returns a `tf.data.Dataset` of dicts with `image` (uint8
`(H, W, 3)`, or encoded bytes that `make_dataset` decodes), `captions`
(tf.string `(C,)`), `image_id` (tf.string) and extra fields, which
`make_dataset` passes to the batches when named in `extra_fields`.
"""

import os
import re
import warnings

import numpy as np
import tensorflow as tf

# Keys every loader yields; extra fields may not reuse them.
CORE_KEYS = ("image", "captions", "image_id")
# Keys `make_dataset` writes into a batch; extra fields may not reuse them.
BATCH_KEYS = (
    "images",
    "captions",
    "image_id",
    "token_ids",
    "padding_mask",
    "token_features",
    "sentence_feature",
    "shape",
    "color",
    "size",
    "fill",
    "num_objects",
    "_seed",
    "_valid",
)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def caption_list(value, where):
    """The captions of one image as a list of non-empty stripped strings.

    Args:
        value: a str (one caption), a sequence of str, or None (none).
        where: string naming the image / row in error messages.

    Returns:
        list of str (empty when the image has no caption).
    """
    if value is None:
        return []
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, (list, tuple, np.ndarray)):
        values = list(np.asarray(value, dtype=object).reshape(-1))
    else:
        raise ValueError(
            f"{where}: captions must be a string or a list of strings; got "
            f"{type(value).__name__} {value!r}."
        )
    out = []
    for caption in values:
        if not isinstance(caption, str):
            raise ValueError(
                f"{where}: captions must be strings; got "
                f"{type(caption).__name__} {caption!r}. Convert them to text "
                "(e.g. class names through a template such as 'a photo of a "
                "{name}')."
            )
        caption = caption.strip()
        if caption:
            out.append(caption)
    return out


class SkipReport:
    """Collects skipped inputs, or raises at the first one under `strict`.

    Args:
        loader: string. The loader's name, used in messages.
        strict: bool. Raise a ValueError at the first problem instead of
            skipping.
    """

    def __init__(self, loader, strict):
        self.loader = loader
        self.strict = bool(strict)
        self.skipped = {}

    def skip(self, kind, message):
        """Records a skipped input of `kind` (e.g. "without a caption")."""
        if self.strict:
            raise ValueError(f"{self.loader}: {message} (strict=True).")
        self.skipped.setdefault(kind, []).append(message)

    def finish(self, total, kept):
        """Warns with the counts; raises if nothing is left."""
        if not self.skipped:
            return
        parts = [
            f"{len(items)} {kind} (first: {items[0]})"
            for kind, items in self.skipped.items()
        ]
        summary = (
            f"{self.loader}: skipped {total - kept} of {total} images: "
            + "; ".join(parts)
        )
        if kept == 0:
            raise ValueError(summary + ". No image is left.")
        warnings.warn(
            summary + ". Pass strict=True to raise instead.", stacklevel=3
        )


def image_file_problem(path):
    """Why an image file cannot be used, or None when it decodes.

    Reads and decodes the file once (as `make_dataset` will), so an
    unreadable image is found at load time, not in the middle of `fit`.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return f"cannot read {path!r} ({error.strerror or error})"
    if not data:
        return f"{path!r} is an empty file"
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        # Drop TensorFlow's "{{function_node ...}}" prefix from the reason.
        reason = re.sub(r"\{\{[^}]*\}\}", "", str(error.message))
        reason = reason.strip().splitlines()[0][:120]
        return f"cannot decode {path!r} as an image ({reason})"
    return None


def column_array(name, values, where):
    """One extra field's values (a list, one per image) as a numpy array.

    bools stay bool, whole numbers become int64, other numbers float32,
    strings tf.string; a column mixing kinds is an error naming the first
    row that differs.
    """

    def kind(value):
        if isinstance(value, (bool, np.bool_)):
            return "bool"
        if isinstance(value, (int, np.integer)):
            return "int"
        if isinstance(value, (float, np.floating)):
            return "float"
        if isinstance(value, (str, bytes)):
            return "str"
        return None

    kinds = []
    for row, value in enumerate(values):
        k = kind(value)
        if k is None:
            raise ValueError(
                f"{where(row)}: extra field {name!r} must hold strings, "
                f"numbers or bools; got {type(value).__name__} {value!r}."
            )
        kinds.append(k)
    found = set(kinds)
    if found <= {"bool"}:
        return np.asarray(values, dtype=bool)
    if found <= {"int"}:
        return np.asarray(values, dtype=np.int64)
    if found <= {"int", "float"}:
        return np.asarray(values, dtype=np.float32)
    if found <= {"str"}:
        return np.asarray(
            [v.decode("utf-8") if isinstance(v, bytes) else v for v in values],
            dtype=object,
        )
    first = kinds[0]
    row = next(i for i, k in enumerate(kinds) if k != first)
    raise ValueError(
        f"{where(row)}: extra field {name!r} mixes {first} and {kinds[row]} "
        f"values ({values[row]!r}); one field must hold one kind."
    )


def check_extra_names(names, what):
    """Raises unless extra field names avoid the reserved keys."""
    clash = sorted(set(names) & (set(CORE_KEYS) | set(BATCH_KEYS)))
    if clash:
        raise ValueError(
            f"{what}: extra field names {clash} clash with the pipeline's "
            f"own keys {sorted(set(CORE_KEYS) | set(BATCH_KEYS))}; rename "
            "them."
        )


def records_dataset(paths, captions, image_ids, extras):
    """A dataset that reads image files lazily.

    Args:
        paths: list of str. Image files (read with `tf.io.read_file`; the
            bytes are decoded by `make_dataset`).
        captions: list of lists of str, one list per image.
        image_ids: list of str.
        extras: dict name -> numpy array (one value per image).

    Returns:
        `tf.data.Dataset` of dicts `image` (encoded bytes), `captions`,
        `image_id` and the extras, with a known cardinality.
    """
    slices = {"path": np.asarray(paths, dtype=object)}
    ds = _with_captions(slices, captions, image_ids, extras)

    def read(example):
        example = dict(example)
        example["image"] = tf.io.read_file(example["path"])
        return example

    return ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def arrays_dataset(images, captions, image_ids, extras):
    """Like `records_dataset` for in-memory uint8 `(N, H, W, 3)` images."""
    return _with_captions({"image": images}, captions, image_ids, extras)


def _with_captions(slices, captions, image_ids, extras):
    # Captions are ragged: one flat string vector plus per-image bounds,
    # sliced in a map, so each element's `captions` is a plain (C,) tensor.
    counts = np.asarray([len(c) for c in captions], dtype=np.int64)
    ends = np.cumsum(counts)
    flat = tf.constant(
        [caption for group in captions for caption in group], tf.string
    )
    slices = dict(slices)
    slices["_start"] = ends - counts
    slices["_end"] = ends
    slices["image_id"] = np.asarray(image_ids, dtype=object)
    for name, values in extras.items():
        slices[name] = values
    ds = tf.data.Dataset.from_tensor_slices(slices)

    def take_captions(example):
        example = dict(example)
        start = example.pop("_start")
        end = example.pop("_end")
        example["captions"] = flat[start:end]
        return example

    return ds.map(take_captions)


def relative_id(path, root):
    """A path relative to `root`, with forward slashes (stable image ids)."""
    return os.path.relpath(path, root).replace(os.sep, "/")


def check_extra_fields(extra_fields, spec):
    """`make_dataset`'s `extra_fields` as a tuple of names of `spec`.

    Args:
        extra_fields: a str or a sequence of str, names of the source
            dataset's features.
        spec: the source dataset's `element_spec` (a dict).

    Returns:
        tuple of str.
    """
    if isinstance(extra_fields, str):
        extra_fields = (extra_fields,)
    try:
        names = tuple(extra_fields)
    except TypeError as error:
        raise ValueError(
            "`extra_fields` must be a sequence of feature names. Received: "
            f"{extra_fields!r}"
        ) from error
    for name in names:
        if not isinstance(name, str):
            raise ValueError(
                "`extra_fields` must hold feature names (str). Received: "
                f"{extra_fields!r}"
            )
    available = sorted(k for k in spec if k not in CORE_KEYS)
    unknown = [name for name in names if name not in spec]
    if unknown:
        raise ValueError(
            f"`extra_fields` names {unknown}, which the dataset does not "
            f"have; its extra fields are {available}."
        )
    check_extra_names(names, "`extra_fields`")
    return names

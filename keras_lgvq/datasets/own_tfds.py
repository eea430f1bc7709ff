"""`from_tfds`: any TFDS dataset (or `tf.data.Dataset` of dicts) with an
image feature and a text feature."""

import os

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_lgvq.datasets.image_adaptation import adapt_image_tensor
from keras_lgvq.datasets.image_adaptation import check_value_range
from keras_lgvq.datasets.own_common import check_extra_names


def from_tfds(
    source,
    image_key="image",
    text_key="caption",
    split="train",
    id_key=None,
    data_dir=None,
    image_value_range=None,
):
    """Captioned images from a TFDS dataset, ready for `make_dataset`.

    Nothing is downloaded: a dataset named here must already be prepared
    in `data_dir` (`tfds.builder(name).download_and_prepare()` once, where
    the network allows it).

    Keys may be nested with "/" (e.g. `text_key="captions/text"` for
    `coco_captions`). The text feature must be strings: a scalar (one
    caption) or a vector (several). Images go through the package's input
    rules (`keras_lgvq.datasets.image_adaptation`): grayscale to RGB,
    RGBA drops alpha, float images need `image_value_range`. Every other
    feature that is a tensor (nested names joined with "/") is an extra
    field that `make_dataset(..., extra_fields=(...))` can pass on.

    Args:
        source: a dataset name (str), a `tfds.core.DatasetBuilder`, or a
            `tf.data.Dataset` of dicts.
        image_key: str. The image feature.
        text_key: str. The text feature.
        split: str. Split to read from a name or builder.
        id_key: None (ids are the example's position, "0", "1", ...) or a
            feature holding a unique id (numbers are turned into strings).
        data_dir: None or the TFDS data directory of a name.
        image_value_range: None or `(0, 1)`, `(-1, 1)`, `(0, 255)`; required
            for float images.

    Returns:
        A `tf.data.Dataset` of dicts `image` uint8 `(H, W, 3)`, `captions`
        tf.string `(C,)`, `image_id` tf.string and the extra fields.

    Examples:

    ```python
    ds = keras_lgvq.datasets.from_tfds(
        "coco_captions", text_key="captions/text", id_key="image/id")
    batches = keras_lgvq.datasets.make_dataset(ds, batch_size=16,
                                               image_size=64)
    ```
    """
    value_range = check_value_range(image_value_range)
    if isinstance(source, tf.data.Dataset):
        ds = source
        what = "The dataset"
    else:
        if isinstance(source, str):
            builder = tfds.builder(
                source,
                data_dir=None if data_dir is None else os.fspath(data_dir),
            )
        elif isinstance(source, tfds.core.DatasetBuilder):
            builder = source
        else:
            raise ValueError(
                "`source` must be a TFDS name, a tfds DatasetBuilder or a "
                f"tf.data.Dataset; got {type(source).__name__}."
            )
        if not builder.is_prepared():
            raise ValueError(
                f"The TFDS dataset {builder.name!r} is not prepared in "
                f"{builder.data_dir!r}, and nothing downloads at run time. "
                "Prepare it once with `tfds.builder(name, data_dir=...)"
                ".download_and_prepare()` (or pass `data_dir`)."
            )
        what = f"TFDS dataset {builder.name!r}"
        ds = builder.as_dataset(split=split)
    spec = ds.element_spec
    if not isinstance(spec, dict):
        raise ValueError(
            f"{what} must yield dicts of features; got element_spec {spec!r}."
        )
    leaves = _flatten(spec)
    for argument, key in (
        ("image_key", image_key),
        ("text_key", text_key),
        ("id_key", id_key),
    ):
        if key is not None and key not in leaves:
            raise ValueError(
                f"`{argument}`={key!r} is not a feature of {what}; its "
                f"features are {sorted(leaves)} (nested names joined with "
                "'/')."
            )
    text_spec = leaves[text_key]
    if text_spec.dtype != tf.string or text_spec.shape.rank not in (0, 1):
        raise ValueError(
            f"`text_key`={text_key!r} must be a string feature (one caption "
            f"or a vector of captions); it is {text_spec!r}. A class label "
            "is not a caption: map label names to text first (e.g. "
            "'a photo of a {name}')."
        )
    image_spec = leaves[image_key]
    if image_spec.dtype != tf.string and image_spec.shape.rank not in (2, 3):
        raise ValueError(
            f"`image_key`={image_key!r} must be one image (H, W) or "
            f"(H, W, C), or encoded bytes; it is {image_spec!r}."
        )
    if image_spec.dtype.is_floating and value_range is None:
        # Raises the rule's message at once, not at the first batch.
        adapt_image_tensor(
            tf.zeros([1, 1, 3], image_spec.dtype), None, f"{what}'s images"
        )
    extra = sorted(
        k
        for k, s in leaves.items()
        if k not in (image_key, text_key, id_key)
        and isinstance(s, tf.TensorSpec)
    )
    clash = sorted(set(extra) & {"image", "captions", "image_id"})
    if clash:
        raise ValueError(
            f"{what} has feature(s) {clash} that are not `image_key` / "
            "`text_key` / `id_key` but whose names the pipeline uses; pass "
            "them as the key arguments (e.g. id_key='image_id'), or map the "
            "dataset to rename them first."
        )
    check_extra_names(extra, what)

    def convert(index, example):
        flat = _flatten(example)
        image = flat[image_key]
        if image.dtype != tf.string:
            image = adapt_image_tensor(image, value_range, f"{what}'s images")
        out = {
            "image": image,
            "captions": tf.reshape(flat[text_key], [-1]),
        }
        if id_key is None:
            out["image_id"] = tf.strings.as_string(index)
        elif flat[id_key].dtype == tf.string:
            out["image_id"] = tf.reshape(flat[id_key], [])
        else:
            out["image_id"] = tf.strings.as_string(tf.reshape(flat[id_key], []))
        for key in extra:
            out[key] = flat[key]
        return out

    return ds.enumerate().map(
        convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def _flatten(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "/"))
        else:
            out[name] = value
    return out

"""`from_arrays`: captioned images held in memory (numpy arrays, lists)."""

import numpy as np
import tensorflow as tf

from keras_lgvq.datasets.image_adaptation import adapt_image_array
from keras_lgvq.datasets.own_common import SkipReport
from keras_lgvq.datasets.own_common import arrays_dataset
from keras_lgvq.datasets.own_common import caption_list
from keras_lgvq.datasets.own_common import check_extra_names
from keras_lgvq.datasets.own_common import column_array


def from_arrays(
    images,
    captions,
    image_ids=None,
    extra_fields=None,
    image_value_range=None,
    strict=False,
):
    """Captioned images from memory, ready for `make_dataset`.

    Images go through the package's input rules
    (`keras_lgvq.datasets.image_adaptation`): grayscale is replicated to
    RGB, RGBA drops its alpha channel, float images need
    `image_value_range`. An image without a caption is skipped with a
    warning that counts them (a ValueError under `strict=True`).

    Args:
        images: uint8 / integer / float array `(N, H, W)` or
            `(N, H, W, C)` (C in 1..4), or a list of N such images, which
            may differ in size (`make_dataset` resizes them).
        captions: list of N entries, each a str (one caption) or a list of
            str (several; `make_dataset` samples one per epoch).
        image_ids: None (ids "0", "1", ...) or N strings.
        extra_fields: None or dict name -> N values (ints, floats, bools or
            strings, e.g. class labels); `make_dataset(...,
            extra_fields=(name,))` passes them to the batches.
        image_value_range: None or `(0, 1)`, `(-1, 1)`, `(0, 255)`: the
            range of float images (required for them).
        strict: bool. Raise on an image without a caption instead of
            skipping it.

    Returns:
        A `tf.data.Dataset` of dicts `image` uint8 `(H, W, 3)`, `captions`
        tf.string `(C,)`, `image_id` tf.string and the extra fields.

    Examples:

    ```python
    images = np.zeros((4, 32, 32, 3), "uint8")
    ds = keras_lgvq.datasets.from_arrays(
        images, ["a red square"] * 4, extra_fields={"label": [0, 1, 0, 1]})
    batches = keras_lgvq.datasets.make_dataset(
        ds, batch_size=2, image_size=32, extra_fields=("label",))
    ```
    """
    if isinstance(images, tf.Tensor):
        images = images.numpy()
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise ValueError(
                "`images` must be an array (N, H, W) or (N, H, W, C), or a "
                f"list of images; got an array of shape {images.shape}."
            )
        count = images.shape[0]
    elif isinstance(images, (list, tuple)):
        count = len(images)
    else:
        raise ValueError(
            "`images` must be a numpy array (N, H, W[, C]) or a list of "
            f"images; got {type(images).__name__}."
        )
    if count == 0:
        raise ValueError("`images` is empty: there is no image to load.")
    if isinstance(captions, str) or not hasattr(captions, "__len__"):
        raise ValueError(
            "`captions` must be a list with one entry per image (a str or a "
            f"list of str); got {type(captions).__name__}."
        )
    if len(captions) != count:
        raise ValueError(
            f"`captions` has {len(captions)} entries but there are {count} "
            "images; give one entry (a str or a list of str) per image."
        )
    if image_ids is None:
        image_ids = [str(i) for i in range(count)]
    else:
        image_ids = list(image_ids)
        if len(image_ids) != count:
            raise ValueError(
                f"`image_ids` has {len(image_ids)} entries for {count} images."
            )
        for i, value in enumerate(image_ids):
            if not isinstance(value, str):
                raise ValueError(
                    f"image_ids[{i}] must be a str; got {value!r}."
                )
        if len(set(image_ids)) != count:
            raise ValueError("`image_ids` must be unique.")
    extra_fields = dict(extra_fields or {})
    check_extra_names(extra_fields, "from_arrays")
    for name, values in extra_fields.items():
        if len(values) != count:
            raise ValueError(
                f"extra field {name!r} has {len(values)} values for {count} "
                "images; give one per image."
            )

    report = SkipReport("from_arrays", strict)
    kept, kept_images, kept_captions = [], [], []
    for i in range(count):
        where = f"images[{i}] (image_id {image_ids[i]!r})"
        texts = caption_list(captions[i], f"captions[{i}]")
        if not texts:
            report.skip("without a caption", f"{where} has no caption")
            continue
        kept.append(i)
        kept_captions.append(texts)
        kept_images.append(
            adapt_image_array(images[i], image_value_range, where)
        )
    report.finish(count, len(kept))

    ids = [image_ids[i] for i in kept]
    extras = {
        name: column_array(
            name,
            [values[i] for i in kept],
            lambda row, name=name: f"extra_fields[{name!r}][{kept[row]}]",
        )
        for name, values in extra_fields.items()
    }
    if len({image.shape for image in kept_images}) == 1:
        return arrays_dataset(np.stack(kept_images), kept_captions, ids, extras)
    return _generator_dataset(kept_images, kept_captions, ids, extras)


def _generator_dataset(images, captions, image_ids, extras):
    # Images of different sizes cannot be stacked; a generator keeps them
    # as they are (make_dataset resizes), with the count stated for Keras.
    signature = {
        "image": tf.TensorSpec([None, None, 3], tf.uint8),
        "captions": tf.TensorSpec([None], tf.string),
        "image_id": tf.TensorSpec([], tf.string),
    }
    for name, values in extras.items():
        dtype = tf.string if values.dtype == object else tf.as_dtype(
            values.dtype
        )
        signature[name] = tf.TensorSpec([], dtype)

    def generate():
        for i, image in enumerate(images):
            example = {
                "image": image,
                "captions": np.asarray(captions[i], dtype=object),
                "image_id": image_ids[i],
            }
            for name, values in extras.items():
                example[name] = values[i]
            yield example

    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return ds.apply(tf.data.experimental.assert_cardinality(len(images)))

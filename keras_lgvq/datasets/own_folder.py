"""`from_folder`: an image folder with one caption file per image (the CUB /
Reed layout: one caption per line)."""

import os

import numpy as np

from keras_lgvq.datasets.own_common import IMAGE_EXTENSIONS
from keras_lgvq.datasets.own_common import SkipReport
from keras_lgvq.datasets.own_common import image_file_problem
from keras_lgvq.datasets.own_common import records_dataset
from keras_lgvq.datasets.own_common import relative_id


def from_folder(
    directory,
    captions_dir=None,
    caption_extension=".txt",
    image_extensions=IMAGE_EXTENSIONS,
    recursive=True,
    verify_images=True,
    strict=False,
):
    """Captioned images from a folder, ready for `make_dataset`.

    Each image `a/b/photo.jpg` takes its captions from the text file of the
    same stem, `a/b/photo.txt`: beside it, or at the same relative path
    under `captions_dir` (Reed et al.'s CUB captions, `text_c10/<class>/
    <name>.txt`, sit in a tree parallel to `images/<class>/<name>.jpg`).
    One caption per non-empty line, UTF-8.

    Besides `image`, `captions` and `image_id` (the image's path relative to
    `directory`), every example carries extra fields that `make_dataset`
    passes on when named in `extra_fields`: `path` (the file), `class_name`
    (the image's sub-folder relative to `directory`, "" at the top) and
    `label` (int64, the index of `class_name` among the sorted names).

    Images without a caption file (or with an empty or non-UTF-8 one) and
    unreadable images are skipped with one warning that counts them;
    `strict=True` raises a ValueError naming the first such file instead.
    Images are decoded by `make_dataset` (`tf.io.decode_image`: PNG, JPEG,
    BMP, GIF, WebP); grayscale becomes RGB by replication and RGBA drops
    its alpha channel.

    Args:
        directory: str or path-like. The image folder.
        captions_dir: None (captions beside the images) or the root of a
            parallel tree of caption files.
        caption_extension: str. Extension of the caption files.
        image_extensions: tuple of str. Image file extensions
            (case-insensitive).
        recursive: bool. Search sub-folders.
        verify_images: bool. Decode every image once now, so unreadable
            files are found before training (costs one decode per image;
            with False a bad file fails the iteration later).
        strict: bool. Raise instead of skipping.

    Returns:
        A `tf.data.Dataset` of dicts `image` (encoded bytes), `captions`
        tf.string `(C,)`, `image_id`, `path`, `class_name` (tf.string) and
        `label` (int64).

    Examples:

    ```python
    ds = keras_lgvq.datasets.from_folder("birds/")   # birds/<class>/x.jpg+.txt
    batches = keras_lgvq.datasets.make_dataset(
        ds, batch_size=16, image_size=64, extra_fields=("label",))
    ```
    """
    directory = os.path.abspath(os.fspath(directory))
    if not os.path.isdir(directory):
        raise ValueError(
            f"`directory` {directory!r} is not a directory (pass the folder "
            "that holds the images)."
        )
    if captions_dir is not None:
        captions_dir = os.path.abspath(os.fspath(captions_dir))
        if not os.path.isdir(captions_dir):
            raise ValueError(
                f"`captions_dir` {captions_dir!r} is not a directory."
            )
    if not isinstance(caption_extension, str) or not caption_extension:
        raise ValueError(
            "`caption_extension` must be a non-empty str such as '.txt'. "
            f"Received: {caption_extension!r}"
        )
    extensions = tuple(e.lower() for e in image_extensions)
    if caption_extension.lower() in extensions:
        raise ValueError(
            f"`caption_extension` {caption_extension!r} is also an image "
            "extension."
        )

    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        if not recursive:
            dirs[:] = []
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in extensions:
                found.append(os.path.join(root, name))
    if not found:
        raise ValueError(
            f"No image files ({', '.join(extensions)}) in {directory!r}"
            f"{' or its sub-folders' if recursive else ''}. Check the "
            "folder, `image_extensions` and `recursive`."
        )

    report = SkipReport("from_folder", strict)
    paths, captions, ids, classes = [], [], [], []
    for path in found:
        relative = relative_id(path, directory)
        stem = os.path.splitext(path)[0]
        if captions_dir is not None:
            stem = os.path.join(captions_dir, os.path.splitext(relative)[0])
        text_path = stem + caption_extension
        if not os.path.isfile(text_path):
            report.skip(
                "without a caption file",
                f"image {path!r} has no caption file {text_path!r}",
            )
            continue
        try:
            with open(text_path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except UnicodeDecodeError as error:
            report.skip(
                "with an unreadable caption file",
                f"caption file {text_path!r} is not UTF-8 text "
                f"(byte {error.start})",
            )
            continue
        texts = [line.strip() for line in lines if line.strip()]
        if not texts:
            report.skip(
                "without a caption",
                f"caption file {text_path!r} (image {path!r}) has no "
                "non-empty line",
            )
            continue
        if verify_images:
            problem = image_file_problem(path)
            if problem is not None:
                report.skip("unreadable", problem)
                continue
        paths.append(path)
        captions.append(texts)
        ids.append(relative)
        classes.append(os.path.dirname(relative))
    report.finish(len(found), len(paths))

    label_of = {name: i for i, name in enumerate(sorted(set(classes)))}
    extras = {
        "class_name": np.asarray(classes, dtype=object),
        "label": np.asarray([label_of[c] for c in classes], np.int64),
    }
    return records_dataset(paths, captions, ids, extras)

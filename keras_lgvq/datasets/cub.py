"""TFDS builder of CUB-200-2011 with Reed et al.'s 10 captions per image."""

import os

import tensorflow as tf

from keras_lgvq.datasets import builder_utils

_CAPTION_DIRS = (
    ("birds", "text"),
    ("text",),
    ("text_c10",),
    ("birds", "text_c10"),
    ("cvpr2016_cub", "text_c10"),
)


def _read_id_table(path, what):
    """Parse `<int id> <value>` lines (CUB's images.txt and split file)."""
    table = {}
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(
                    f"{path}: line {number} is malformed: {line.strip()!r} "
                    f"(expected {what})."
                )
            table[int(parts[0])] = parts[1].strip()
    if not table:
        raise ValueError(f"{path}: no entries (expected lines of {what}).")
    return table


class LgvqCub(builder_utils.CaptionedImageBuilder):
    """CUB-200-2011 birds, 10 captions each (Reed et al. 2016), local files.

    Uses the official train/test split (5,994 / 5,794 images; `is_train` 1
    or 0), like LG-VQ's `cubtext.py`, not the class-disjoint AttnGAN split.
    `image_id` is the image's path below `images/` without extension
    (`"001.Black_footed_Albatross/Black_Footed_Albatross_0046_18"`) and
    `label` the 0-based class from the folder prefix (-1 if absent).

    Args:
        strict: bool. Raise at the first bad example instead of skipping.
        max_words: int. Longest usable caption in words (upstream: 27).
        **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (`data_dir`...).

    Examples:

    ```python
    import tensorflow_datasets as tfds

    builder = LgvqCub(data_dir="tfds_data")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="cub")
    )
    ds = builder.as_dataset(split="train")
    ```
    """

    DESCRIPTION = (
        "CUB-200-2011 with the 10 captions per image of Reed et al. (2016)."
    )
    HOMEPAGE = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    manual_dir/ (the CUB_200_2011 folder, or a folder holding it), with:
      images.txt                  lines "<id> <class>/<name>.jpg"
      train_test_split.txt        lines "<id> <1 for train | 0 for test>"
      images/<class>/<name>.jpg
    and Reed et al.'s captions (text_c10), one caption per line, in
      birds/text/<class>/<name>.txt   (or text/, text_c10/,
      birds/text_c10/, cvpr2016_cub/text_c10/, beside images.txt or one
      level above it).
    """

    def _extra_features(self):
        return {"label": tf.int64}

    def _split_items(self, root):
        base = builder_utils.find_existing(
            [
                os.path.join(root, "images.txt"),
                os.path.join(root, "CUB_200_2011", "images.txt"),
            ],
            "CUB images.txt (lines '<id> <class>/<name>.jpg')",
            kind="file",
        )
        base = os.path.dirname(base)
        images = _read_id_table(
            os.path.join(base, "images.txt"), "'<id> <class>/<name>.jpg'"
        )
        split_path = builder_utils.require_file(
            os.path.join(base, "train_test_split.txt"),
            "lines '<id> <1 for train | 0 for test>'",
        )
        is_train = _read_id_table(split_path, "'<id> <1|0>'")
        candidates = []
        for parent in (base, os.path.dirname(base)):
            candidates += [
                os.path.join(parent, *parts) for parts in _CAPTION_DIRS
            ]
        text_dir = builder_utils.find_existing(
            candidates,
            "CUB caption folder (Reed et al. text_c10: <class>/<name>.txt)",
        )
        splits = {"train": [], "test": []}
        for image_key, relpath in sorted(images.items()):
            flag = is_train.get(image_key)
            if flag not in ("0", "1"):
                raise ValueError(
                    f"{split_path}: image id {image_key} ({relpath}) has no "
                    f"train/test flag (expected '{image_key} 1' or "
                    f"'{image_key} 0')."
                )
            stem = os.path.splitext(relpath)[0]
            folder = stem.split("/")[0]
            prefix = folder.split(".")[0]
            label = int(prefix) - 1 if "/" in stem and prefix.isdigit() else -1
            splits["train" if flag == "1" else "test"].append(
                {
                    "image_id": stem,
                    "image_path": os.path.join(base, "images", relpath),
                    "caption_path": os.path.join(text_dir, stem + ".txt"),
                    "label": label,
                }
            )
        return {split: items for split, items in splits.items() if items}

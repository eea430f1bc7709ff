"""TFDS builder of Multi-Modal-CelebA-HQ (10 captions per face)."""

import os

from keras_lgvq.datasets import builder_utils
from keras_lgvq.datasets.safe_pickle import read_filename_list

_IMAGE_DIRS = ("images", "CelebA-HQ-img", "image")
_CAPTION_DIRS = ("celeba-caption", "text")


def _strip_extension(name):
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in (".jpg", ".jpeg", ".png") else name


def find_list(root, split):
    """`root/<split>/filenames.pickle`, else `filenames.txt` (one per line)."""
    return builder_utils.find_existing(
        [
            os.path.join(root, split, "filenames.pickle"),
            os.path.join(root, split, "filenames.txt"),
        ],
        f"{split} file list (a pickled list of image stems, or text with "
        "one per line)",
        kind="file",
    )


class LgvqCelebaHq(builder_utils.CaptionedImageBuilder):
    """MM-CelebA-HQ faces with 10 captions each (TediGAN release), local files.

    The layout is the one LG-VQ's `celetext.py` reads. File lists may be the
    upstream `filenames.pickle` (read by a restricted decoder that accepts
    only a list of strings, never unpickled) or a `filenames.txt`.
    `image_id` is the image stem.

    Args:
        strict: bool. Raise at the first bad example instead of skipping.
        max_words: int. Longest usable caption in words (upstream: 27).
        **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (`data_dir`...).

    Examples:

    ```python
    import tensorflow_datasets as tfds

    builder = LgvqCelebaHq(data_dir="tfds_data")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="celeba")
    )
    ```
    """

    DESCRIPTION = (
        "Multi-Modal-CelebA-HQ: CelebA-HQ faces with 10 captions each."
    )
    HOMEPAGE = "https://github.com/IIGROUP/MM-CelebA-HQ-Dataset"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    manual_dir/ with:
      train/filenames.pickle      pickled list of image stems (or
      test/filenames.pickle       filenames.txt, one stem per line)
      images/<stem>.jpg           (or CelebA-HQ-img/<stem>.jpg)
      celeba-caption/<stem>.txt   10 captions, one per line (or text/)
    """

    def _split_items(self, root):
        image_dir = builder_utils.find_existing(
            [os.path.join(root, d) for d in _IMAGE_DIRS],
            "CelebA-HQ image folder",
        )
        text_dir = builder_utils.find_existing(
            [os.path.join(root, d) for d in _CAPTION_DIRS],
            "CelebA-HQ caption folder (<stem>.txt, one caption per line)",
        )
        splits = {}
        for split in ("train", "test"):
            stems = [
                _strip_extension(s)
                for s in read_filename_list(find_list(root, split))
            ]
            splits[split] = [
                {
                    "image_id": stem,
                    "image_path": os.path.join(image_dir, stem + ".jpg"),
                    "caption_path": os.path.join(text_dir, stem + ".txt"),
                }
                for stem in stems
            ]
        return splits

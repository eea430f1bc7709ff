"""TFDS builder of TextCaps (about 5 captions per image), from local files."""

import os

from keras_lgvq.datasets import builder_utils
from keras_lgvq.datasets.celeba_hq import _strip_extension
from keras_lgvq.datasets.safe_pickle import read_filename_list

_LISTS = {"train": "train_filenames", "validation": "valid_filenames"}


class LgvqTextcaps(builder_utils.CaptionedImageBuilder):
    """TextCaps images with their captions, in LG-VQ's `textcaptext.py` layout.

    Both splits read images from `train_images/` (TextCaps validation images
    live in the TextVQA train folder). File lists may be the upstream
    `.pickle` lists (read by a restricted decoder, never unpickled) or
    `.txt` files with one id per line. `image_id` is the TextVQA image id.

    Args:
        strict: bool. Raise at the first bad example instead of skipping.
        max_words: int. Longest usable caption in words (upstream: 27).
        **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (`data_dir`...).

    Examples:

    ```python
    import tensorflow_datasets as tfds

    builder = LgvqTextcaps(data_dir="tensorflow_datasets")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir="textcaps"
        )
    )
    ```
    """

    DESCRIPTION = "TextCaps: images with text, about 5 captions each."
    HOMEPAGE = "https://textvqa.org/textcaps/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    manual_dir/ with:
      train_filenames.pickle      pickled list of image ids (or
      valid_filenames.pickle      train_filenames.txt / valid_filenames.txt)
      train_images/<id>.jpg       images of both splits
      text/<id>.txt               captions, one per line
    """

    def _split_items(self, root):
        image_dir = builder_utils.find_existing(
            [os.path.join(root, "train_images")], "TextCaps image folder"
        )
        text_dir = builder_utils.find_existing(
            [os.path.join(root, "text")], "TextCaps caption folder (<id>.txt)"
        )
        splits = {}
        for split, stem in _LISTS.items():
            path = builder_utils.find_existing(
                [
                    os.path.join(root, stem + ".pickle"),
                    os.path.join(root, stem + ".txt"),
                ],
                f"TextCaps {split} list (a pickled list of image ids, or "
                "text with one per line)",
                kind="file",
            )
            ids = [_strip_extension(s) for s in read_filename_list(path)]
            splits[split] = [
                {
                    "image_id": image_id,
                    "image_path": os.path.join(image_dir, image_id + ".jpg"),
                    "caption_path": os.path.join(text_dir, image_id + ".txt"),
                }
                for image_id in ids
            ]
        return splits

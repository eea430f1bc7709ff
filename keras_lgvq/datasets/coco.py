"""TFDS builder of MS-COCO 2014 captions (Karpathy or official splits)."""

import json
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_lgvq.datasets import builder_utils

KARPATHY_FILES = (
    "dataset_coco.json",
    "karpathy/dataset_coco.json",
    "annotations/dataset_coco.json",
)
_OFFICIAL = {"train": "train2014", "validation": "val2014"}


def find_karpathy_json(root):
    """Path of the Karpathy split file under `root`, or None."""
    for name in KARPATHY_FILES:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            return path
    return None


def _read_json(path, what):
    builder_utils.require_file(path, what)
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path}: not valid JSON ({error}); expected {what}."
        ) from None


def image_file_name(folder, coco_id):
    """`COCO_train2014_000000000009.jpg`: ids are zero-padded to 12 digits.

    (Upstream's `'COCO_train2014_000000' + str(id)` is right only for
    6-digit ids.)
    """
    return f"COCO_{folder}_{int(coco_id):012d}.jpg"


class LgvqCoco(builder_utils.CaptionedImageBuilder):
    """MS-COCO 2014 images with their (about 5) captions, one example per image.

    Configs: `karpathy` (splits train = train + restval, validation, test from
    `dataset_coco.json`) and `official` (train2014 / val2014 from the caption
    annotation files). `keras_lgvq.datasets.load("coco")` picks `karpathy`
    when the Karpathy json is present. `image_id` is the COCO id zero-padded
    to 12 digits. Unlike upstream's loader (one sample per caption), captions
    are grouped per image and one is sampled per epoch, as for the other
    datasets.

    Args:
        karpathy_json: str or None. Karpathy split file; default: looked up
            in the manual directory (`dataset_coco.json`, `karpathy/...`,
            `annotations/...`).
        strict: bool. Raise at the first bad example instead of skipping.
        max_words: int. Longest usable caption in words (upstream: 27).
        **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (`config`...).

    Examples:

    ```python
    import tensorflow_datasets as tfds

    builder = LgvqCoco(config="official", data_dir="tfds_data")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="coco")
    )
    ```
    """

    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(
            name="karpathy", description="Karpathy train/val/test split."
        ),
        tfds.core.BuilderConfig(
            name="official", description="Official train2014/val2014 split."
        ),
    ]
    DESCRIPTION = "MS-COCO 2014 captions (about 5 per image)."
    HOMEPAGE = "https://cocodataset.org/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    manual_dir/ with:
      train2014/COCO_train2014_<id, 12 digits>.jpg
      val2014/COCO_val2014_<id, 12 digits>.jpg
      annotations/captions_train2014.json   (official config)
      annotations/captions_val2014.json     (official config)
      dataset_coco.json                     (karpathy config; Karpathy's
                                             split file, also looked up in
                                             karpathy/ and annotations/)
    """

    def __init__(self, *, karpathy_json=None, **kwargs):
        self.karpathy_json = (
            None if karpathy_json is None else os.fspath(karpathy_json)
        )
        super().__init__(**kwargs)

    def _extra_features(self):
        return {"coco_id": tf.int64}

    def _split_items(self, root):
        if self.builder_config.name == "karpathy":
            return self._karpathy_items(root)
        return self._official_items(root)

    def _karpathy_items(self, root):
        path = self.karpathy_json or find_karpathy_json(root)
        if path is None:
            raise FileNotFoundError(
                f"Karpathy split file not found; looked for "
                f"{', '.join(os.path.join(root, n) for n in KARPATHY_FILES)}. "
                "Pass karpathy_json= or use config='official'."
            )
        what = (
            "Karpathy's split file: {'images': [{'filepath', 'filename', "
            "'cocoid', 'split', 'sentences': [{'raw'}]}]}"
        )
        data = _read_json(path, what)
        if not isinstance(data, dict) or not isinstance(
            data.get("images"), list
        ):
            raise ValueError(f"{path}: no 'images' list; expected {what}.")
        split_of = {
            "train": "train",
            "restval": "train",
            "val": "validation",
            "test": "test",
        }
        splits = {"train": [], "validation": [], "test": []}
        for number, entry in enumerate(data["images"]):
            try:
                split = split_of[entry["split"]]
                coco_id = int(entry["cocoid"])
                folder = entry["filepath"]
                captions = [s["raw"] for s in entry["sentences"]]
                filename = entry.get("filename") or image_file_name(
                    folder, coco_id
                )
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(
                    f"{path}: images[{number}] is malformed ({error!r}); "
                    f"expected {what}."
                ) from None
            splits[split].append(
                {
                    "image_id": f"{coco_id:012d}",
                    "image_path": os.path.join(root, folder, filename),
                    "captions": captions,
                    "caption_source": f"{path} (cocoid {coco_id})",
                    "coco_id": coco_id,
                }
            )
        return {split: items for split, items in splits.items() if items}

    def _official_items(self, root):
        splits = {}
        what = (
            "COCO caption annotations: {'images': [{'id', 'file_name'}], "
            "'annotations': [{'image_id', 'caption'}]}"
        )
        for split, folder in _OFFICIAL.items():
            path = os.path.join(root, "annotations", f"captions_{folder}.json")
            data = _read_json(path, what)
            if not isinstance(data, dict) or not isinstance(
                data.get("annotations"), list
            ):
                raise ValueError(
                    f"{path}: no 'annotations' list; expected {what}."
                )
            captions = {}
            for number, ann in enumerate(data["annotations"]):
                try:
                    captions.setdefault(int(ann["image_id"]), []).append(
                        str(ann["caption"])
                    )
                except (KeyError, TypeError, ValueError) as error:
                    raise ValueError(
                        f"{path}: annotations[{number}] is malformed "
                        f"({error!r}); expected {what}."
                    ) from None
            names = {}
            for entry in data.get("images") or []:
                if (
                    isinstance(entry, dict)
                    and "id" in entry
                    and "file_name" in entry
                ):
                    names[int(entry["id"])] = entry["file_name"]
            items = []
            for coco_id in sorted(captions):
                filename = names.get(coco_id) or image_file_name(
                    folder, coco_id
                )
                items.append(
                    {
                        "image_id": f"{coco_id:012d}",
                        "image_path": os.path.join(root, folder, filename),
                        "captions": captions[coco_id],
                        "caption_source": f"{path} (image_id {coco_id})",
                        "coco_id": coco_id,
                    }
                )
            splits[split] = items
        return splits

"""Shared machinery of the TFDS builders over users' local caption datasets."""

import os
import warnings

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

MAX_CAPTION_WORDS = 27
_JPEG_MAGIC = b"\xff\xd8"


def normalize_caption(text):
    """Collapse whitespace and lower-case, as upstream does before CLIP.

    Single ASCII spaces make `tf.strings.split` in the input pipeline count
    words exactly as Python's `str.split` did here.

    Args:
        text: str.

    Returns:
        The normalised str (empty for blank input).
    """
    return " ".join(text.split()).lower()


def usable_captions(captions, max_words=MAX_CAPTION_WORDS):
    """Captions upstream would sample: non-empty, at most `max_words` words.

    Upstream keeps lines whose whitespace word count + 2 < 30 (SOT/EOT).

    Args:
        captions: list of str.
        max_words: int.

    Returns:
        The list of usable captions, in order.
    """
    return [c for c in captions if 0 < len(c.split()) <= max_words]


def read_caption_file(path):
    """Read one caption per line, normalised, blank lines dropped.

    Args:
        path: str.

    Returns:
        list of str (possibly empty).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        data = f.read()
    # Reed et al.'s files are ASCII with a few stray bytes; never fail on them.
    text = data.decode("utf-8", errors="replace")
    return [
        c for c in (normalize_caption(line) for line in text.splitlines()) if c
    ]


def load_image(path):
    """Read and validate an image file for a `jpeg` TFDS image feature.

    Args:
        path: str.

    Returns:
        `(payload, None)` where payload is the original bytes (3-channel
        JPEG) or a uint8 (H, W, 3) array (other formats, grey or alpha
        images), or `(None, reason)` when the file is missing or corrupt.
    """
    if not os.path.isfile(path):
        return None, "missing image"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        return None, f"unreadable image ({error.strerror})"
    if not data:
        return None, "corrupt image (empty file)"
    try:
        image = tf.io.decode_image(data, channels=0, expand_animations=False)
    except (tf.errors.OpError, ValueError):
        return None, "corrupt image (cannot be decoded)"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return None, "corrupt image (zero size)"
    channels = image.shape[-1]
    if channels == 3 and data[:2] == _JPEG_MAGIC:
        return data, None
    if channels in (1, 2):
        image = tf.image.grayscale_to_rgb(image[..., :1])
    else:
        image = image[..., :3]
    return np.asarray(image.numpy(), dtype=np.uint8), None


class BadInputLog:
    """Counts examples skipped for bad input and reports them once.

    Args:
        name: str. Dataset and split, for messages.
        strict: bool. Raise `ValueError` at the first bad example instead.

    Examples:

    ```python
    log = BadInputLog("lgvq_cub/train", strict=False)
    log.add("images/a.jpg", "corrupt image (cannot be decoded)")
    log.report(total=10)
    ```
    """

    def __init__(self, name, strict=False):
        self.name = name
        self.strict = strict
        self.items = []

    def add(self, path, reason):
        if self.strict:
            raise ValueError(f"{self.name}: {path}: {reason} (strict=True).")
        self.items.append((os.fspath(path), reason))

    def counts(self):
        out = {}
        for _, reason in self.items:
            key = reason.split(" (")[0]
            out[key] = out.get(key, 0) + 1
        return out

    def report(self, total):
        if not self.items:
            return
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        first = "; ".join(f"{p} ({r})" for p, r in self.items[:5])
        warnings.warn(
            f"{self.name}: skipped {len(self.items)} of {total} examples "
            f"({counts}). First: {first}. Pass strict=True to raise instead.",
            stacklevel=2,
        )


def require_file(path, what):
    """Raise `FileNotFoundError` naming `path` and its expected content."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: file not found (expected {what}).")
    return path


def find_existing(candidates, what, kind="dir"):
    """First existing path among `candidates`, else an error listing them."""
    check = os.path.isdir if kind == "dir" else os.path.isfile
    for path in candidates:
        if check(path):
            return path
    tried = ", ".join(os.fspath(p) for p in candidates)
    raise FileNotFoundError(f"{what} not found; looked for: {tried}.")


def manual_root(builder, dl_manager, what):
    """The builder's manual directory, or a FileNotFoundError that shows
    the expected layout of `what` (TFDS only asserts)."""
    try:
        root = dl_manager.manual_dir
    except AssertionError:
        path = getattr(dl_manager, "_manual_dir", None)
        raise FileNotFoundError(
            f"{builder.name}: manual directory {path} does not exist or is "
            f"empty. Pass `manual_dir=` pointing at {what} laid out as "
            f"follows:\n{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        ) from None
    return os.fspath(root)


class CaptionedImageBuilder(
    tfds.core.GeneratorBasedBuilder, skip_registration=True
):
    """Base of the builders over a manual directory of images and captions.

    Subclasses set `MANUAL_DOWNLOAD_INSTRUCTIONS`, `DESCRIPTION` and
    implement `_split_items(root)` returning `{split: [item, ...]}` where an
    item is a dict with `image_id`, `image_path`, and either `caption_path`
    or `captions` (list of str), plus any `_extra_features()` values.
    Examples keep split order (shuffling disabled). Captions are stored
    normalised (`normalize_caption`); images with a missing or corrupt file,
    a missing caption file or no usable caption (<= `max_words` words) are
    skipped with one warning per split, or raise under `strict=True`.

    Args:
        strict: bool. Raise at the first bad example instead of skipping.
        max_words: int. Longest usable caption in words (upstream: 27).
        **kwargs: passed to `tfds.core.GeneratorBasedBuilder`.

    Examples:

    ```python
    class MyCaptions(CaptionedImageBuilder):
        MANUAL_DOWNLOAD_INSTRUCTIONS = "images/<id>.jpg and text/<id>.txt"

        def _split_items(self, root):
            ids = ["a", "b"]
            return {"train": [
                {"image_id": i,
                 "image_path": f"{root}/images/{i}.jpg",
                 "caption_path": f"{root}/text/{i}.txt"} for i in ids]}
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    DESCRIPTION = ""
    HOMEPAGE = ""
    CITATION = ""
    # TFDS derives this through `importlib_resources`, which it only
    # declares for Python < 3.9; set it directly.
    code_path = epath.Path(__file__)

    def __init__(self, *, strict=False, max_words=MAX_CAPTION_WORDS, **kwargs):
        if not isinstance(strict, bool):
            raise ValueError(f"`strict` must be a bool. Received: {strict!r}")
        if not isinstance(max_words, int) or max_words < 1:
            raise ValueError(
                f"`max_words` must be an int >= 1. Received: {max_words!r}"
            )
        self.strict = strict
        self.max_words = max_words
        self.bad_inputs = {}
        super().__init__(**kwargs)

    def _extra_features(self):
        return {}

    def _info(self):
        features = {
            "image": tfds.features.Image(
                shape=(None, None, 3), encoding_format="jpeg"
            ),
            "image_id": tfds.features.Text(),
            "captions": tfds.features.Sequence(tfds.features.Text()),
        }
        features.update(self._extra_features())
        # A plain module has no TFDS package folder, so no
        # `dataset_info_from_configs` (keras-notes §7).
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(features),
            homepage=self.HOMEPAGE or None,
            citation=self.CITATION or None,
            disable_shuffling=True,
        )

    def _manual_root(self, dl_manager):
        return manual_root(self, dl_manager, "the dataset")

    def _split_generators(self, dl_manager):
        root = self._manual_root(dl_manager)
        splits = self._split_items(root)
        return {
            split: self._generate_examples(split, items)
            for split, items in splits.items()
        }

    def _generate_examples(self, split, items):
        log = BadInputLog(f"{self.name}/{split}", strict=self.strict)
        self.bad_inputs[split] = log
        seen = set()
        written = 0
        for item in items:
            image_id = item["image_id"]
            if image_id in seen:
                raise ValueError(
                    f"{self.name}/{split}: image id {image_id!r} is listed "
                    "twice "
                    "(expected unique image names)."
                )
            seen.add(image_id)
            if "captions" in item:
                captions = [
                    c
                    for c in (normalize_caption(t) for t in item["captions"])
                    if c
                ]
                caption_source = item.get("caption_source", image_id)
            else:
                caption_source = item["caption_path"]
                if not os.path.isfile(caption_source):
                    log.add(caption_source, "missing caption file")
                    continue
                captions = read_caption_file(caption_source)
            if not usable_captions(captions, self.max_words):
                log.add(
                    caption_source,
                    f"no usable caption ({len(captions)} lines, none with 1 to "
                    f"{self.max_words} words)",
                )
                continue
            payload, reason = load_image(item["image_path"])
            if reason:
                log.add(item["image_path"], reason)
                continue
            example = {
                "image": payload,
                "image_id": image_id,
                "captions": captions,
            }
            for key in self._extra_features():
                example[key] = item[key]
            written += 1
            yield image_id, example
        log.report(total=len(items))
        if not written:
            raise ValueError(
                f"{self.name}/{split}: no usable example among "
                f"{len(items)} listed "
                f"({log.counts() or 'empty list'}). Check the layout:\n"
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )

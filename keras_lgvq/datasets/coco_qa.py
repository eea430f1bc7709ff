"""TFDS builder of COCO-QA (Ren et al. 2015) over the user's files.

COCO-QA asks one-word-answer questions about MS-COCO 2014 images, of four
types: object, number, color, location (78,736 training and 38,948 test
questions). Its release is four parallel text files per split, line `i` of
each describing question `i`; the images are the user's MS-COCO 2014
folders (training questions use train2014 images, test questions val2014).

One example per image, in the order the images first appear in
`img_ids.txt`, holding all its questions in file order (each image is
stored once). `question_records` flattens a split to one dict per question.
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from keras_lgvq.datasets import builder_utils
from keras_lgvq.datasets.coco import image_file_name

# Code in `types.txt` -> name, as in the release's readme.
QUESTION_TYPES = ("object", "number", "color", "location")
QA_FILES = ("questions.txt", "answers.txt", "img_ids.txt", "types.txt")
SPLITS = ("train", "test")
# The COCO folder a split's images come from first; the other is tried next.
IMAGE_FOLDERS = {"train": ("train2014", "val2014"),
                 "test": ("val2014", "train2014")}
# Folders under the manual directory that may hold `train/` and `test/`.
QA_ROOTS = ("", "cocoqa", "cocoqa-2015-05-17", "coco_qa", "COCO-QA")


def find_qa_root(root):
    """The folder holding COCO-QA's `train/` or `test/` under `root`.

    Args:
        root: str. The manual directory.

    Returns:
        str: the first of `root`, `root/cocoqa`, `root/cocoqa-2015-05-17`,
        `root/coco_qa`, `root/COCO-QA` with a `train` or `test` folder.

    Raises:
        FileNotFoundError: none has; the message lists where it looked.
    """
    candidates = [os.path.join(root, name) if name else root
                  for name in QA_ROOTS]
    for path in candidates:
        if any(os.path.isdir(os.path.join(path, s)) for s in SPLITS):
            return path
    looked = ", ".join(os.path.join(p, "{train,test}") for p in candidates)
    raise FileNotFoundError(
        f"COCO-QA question folders not found; looked for {looked}. Expected "
        f"the release's layout:\n{LgvqCocoQa.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )


def missing_qa_files(qa_root):
    """Paths of the COCO-QA text files absent under `qa_root` (both splits).

    Examples:

    ```python
    missing_qa_files("cocoqa")  # [] when the release is complete
    ```
    """
    return [
        os.path.join(qa_root, split, name)
        for split in SPLITS
        for name in QA_FILES
        if not os.path.isfile(os.path.join(qa_root, split, name))
    ]


def _read_lines(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    lines = text.splitlines()
    # A trailing newline is not an extra (empty) entry.
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def read_split(qa_root, split):
    """The questions of one split, validated, as a list of dicts.

    Args:
        qa_root: str. Folder holding `<split>/questions.txt` and the others.
        split: `"train"` or `"test"`.

    Returns:
        list of dicts with `question` (normalised: lower case, single
        spaces), `answer`, `question_type` (a name of `QUESTION_TYPES`),
        `coco_id` (int) and `line` (1-based line number).

    Raises:
        ValueError: the files have different line counts, or a line is
            empty, an id is not an integer, a type is not 0-3; the message
            names the file and line.
    """
    folder = os.path.join(qa_root, split)
    columns = {}
    for name in QA_FILES:
        path = builder_utils.require_file(
            os.path.join(folder, name), "one COCO-QA entry per line"
        )
        columns[name] = _read_lines(path)
    counts = {name: len(lines) for name, lines in columns.items()}
    if len(set(counts.values())) != 1:
        listed = ", ".join(f"{os.path.join(folder, n)}: {c}"
                           for n, c in counts.items())
        raise ValueError(
            f"COCO-QA {split}: the four files must have one line per "
            f"question, but their line counts differ ({listed})."
        )
    records = []
    for i, (question, answer, coco_id, kind) in enumerate(
        zip(*(columns[n] for n in QA_FILES))
    ):
        line = i + 1
        for name, value in (("questions.txt", question),
                            ("answers.txt", answer)):
            if not value:
                raise ValueError(
                    f"{os.path.join(folder, name)}: line {line} is empty "
                    "(expected one question / answer per line)."
                )
        if not coco_id.isdigit():
            raise ValueError(
                f"{os.path.join(folder, 'img_ids.txt')}: line {line} is "
                f"{coco_id!r}; expected an MS-COCO image id (an integer)."
            )
        if kind not in ("0", "1", "2", "3"):
            raise ValueError(
                f"{os.path.join(folder, 'types.txt')}: line {line} is "
                f"{kind!r}; expected 0 (object), 1 (number), 2 (color) or "
                "3 (location)."
            )
        records.append({
            "question": builder_utils.normalize_caption(question),
            "answer": builder_utils.normalize_caption(answer),
            "question_type": QUESTION_TYPES[int(kind)],
            "coco_id": int(coco_id),
            "line": line,
        })
    if not records:
        raise ValueError(f"COCO-QA {split}: {folder} has no questions.")
    return records


class LgvqCocoQa(tfds.core.GeneratorBasedBuilder):
    """COCO-QA questions with their MS-COCO 2014 images, from local files.

    One example per image: `image`, `image_id` (the COCO id zero-padded to
    12 digits), `coco_id` and `questions`, a sequence of `question`,
    `answer` and `question_type` (class label over `QUESTION_TYPES`:
    object, number, color, location). Questions and answers are stored
    lower-cased with single spaces. Missing text files are an error naming
    each of them; an image file that is missing or corrupt skips that
    image's questions with one warning per split (or raises with
    `strict=True`).

    Args:
        images_dir: str or None. Folder holding `train2014/` and
            `val2014/`; the manual directory if None.
        strict: bool. Raise at the first missing or corrupt image instead
            of skipping it.
        **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (`data_dir`...).

    Examples:

    ```python
    import tensorflow_datasets as tfds

    builder = LgvqCocoQa(data_dir="tfds_data")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="coco_qa"))
    records = question_records(builder.as_dataset(split="train"))
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    manual_dir/ with COCO-QA's release (cocoqa-2015-05-17.zip, unpacked
    here or in cocoqa/ or cocoqa-2015-05-17/):
      train/questions.txt  train/answers.txt  train/img_ids.txt
      train/types.txt      (one question per line, the four files parallel;
                            types: 0 object, 1 number, 2 color, 3 location)
      test/ (the same four files)
    and the MS-COCO 2014 images (or pass images_dir= to the folder holding
    them):
      train2014/COCO_train2014_<id, 12 digits>.jpg   (train questions)
      val2014/COCO_val2014_<id, 12 digits>.jpg       (test questions)
    """
    # TFDS derives this through `importlib_resources`, which it only
    # declares for Python < 3.9; set it directly.
    code_path = epath.Path(__file__)

    def __init__(self, *, images_dir=None, strict=False, **kwargs):
        if not isinstance(strict, bool):
            raise ValueError(f"`strict` must be a bool. Received: {strict!r}")
        self.images_dir = None if images_dir is None else os.fspath(
            images_dir)
        self.strict = strict
        self.bad_inputs = {}
        super().__init__(**kwargs)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "COCO-QA (Ren et al. 2015): one-word-answer questions of "
                "four types about MS-COCO 2014 images."
            ),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(
                    shape=(None, None, 3), encoding_format="jpeg"
                ),
                "image_id": tfds.features.Text(),
                "coco_id": tf.int64,
                "questions": tfds.features.Sequence({
                    "question": tfds.features.Text(),
                    "answer": tfds.features.Text(),
                    "question_type": tfds.features.ClassLabel(
                        names=QUESTION_TYPES
                    ),
                }),
            }),
            homepage="https://www.cs.toronto.edu/~mren/research/imageqa/data/cocoqa/",
            disable_shuffling=True,
        )

    def _manual_root(self, dl_manager):
        return builder_utils.manual_root(self, dl_manager, "the files")

    def _split_generators(self, dl_manager):
        root = self._manual_root(dl_manager)
        qa_root = find_qa_root(root)
        missing = missing_qa_files(qa_root)
        if missing:
            raise FileNotFoundError(
                f"COCO-QA files missing ({len(missing)}): "
                + ", ".join(missing)
                + f". Expected layout:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        images_dir = self.images_dir or root
        folders = ("train2014", "val2014")
        if not any(os.path.isdir(os.path.join(images_dir, f))
                   for f in folders):
            raise FileNotFoundError(
                "MS-COCO 2014 image folders not found: neither "
                f"{os.path.join(images_dir, 'train2014')} nor "
                f"{os.path.join(images_dir, 'val2014')} exists. Put them in "
                "the manual directory or pass `images_dir=`."
            )
        return {
            split: self._generate_examples(
                split, read_split(qa_root, split), images_dir
            )
            for split in SPLITS
        }

    def _image_path(self, images_dir, split, coco_id):
        paths = [
            os.path.join(images_dir, folder, image_file_name(folder, coco_id))
            for folder in IMAGE_FOLDERS[split]
        ]
        for path in paths:
            if os.path.isfile(path):
                return path
        return paths[0]

    def _generate_examples(self, split, records, images_dir):
        log = builder_utils.BadInputLog(f"{self.name}/{split}",
                                        strict=self.strict)
        self.bad_inputs[split] = log
        by_image = {}
        for record in records:
            by_image.setdefault(record["coco_id"], []).append(record)
        written = 0
        for coco_id, questions in by_image.items():
            path = self._image_path(images_dir, split, coco_id)
            payload, reason = builder_utils.load_image(path)
            if reason:
                log.add(path, f"{reason} ({len(questions)} questions)")
                continue
            written += 1
            image_id = f"{coco_id:012d}"
            yield image_id, {
                "image": payload,
                "image_id": image_id,
                "coco_id": coco_id,
                "questions": {
                    "question": [q["question"] for q in questions],
                    "answer": [q["answer"] for q in questions],
                    "question_type": [q["question_type"] for q in questions],
                },
            }
        log.report(total=len(by_image))
        if not written:
            raise ValueError(
                f"{self.name}/{split}: none of the {len(by_image)} images "
                f"could be read ({log.counts()}); check the image folders:\n"
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )


def load_coco_qa(split="train", data_dir=None, manual_dir=None,
                 images_dir=None, strict=False):
    """A COCO-QA split as a `tf.data.Dataset`, prepared on first use.

    Args:
        split: str. `"train"` or `"test"` (`"validation"` serves `test`).
        data_dir: str or None. TFDS folder; the keras_lgvq cache if None.
        manual_dir: str or None. The user's files (see
            `LgvqCocoQa.MANUAL_DOWNLOAD_INSTRUCTIONS`); needed the first
            time only. Default `<data_dir>/downloads/manual/coco_qa`.
        images_dir: str or None. Folder with `train2014/` / `val2014/`.
        strict: bool. Raise on a missing or corrupt image.

    Examples:

    ```python
    ds = load_coco_qa("train", manual_dir="~/data/coco_qa")
    records = question_records(ds)
    ```
    """
    from keras_lgvq.datasets import loading

    builder = LgvqCocoQa(
        data_dir=data_dir or loading.default_data_dir(),
        images_dir=images_dir,
        strict=strict,
    )
    loading.prepare(
        builder,
        None if manual_dir is None else os.path.expanduser(
            os.fspath(manual_dir)),
    )
    return builder.as_dataset(split=loading.resolve_split(builder, split))


def question_records(dataset, include_images=True):
    """One dict per question of a COCO-QA split, in dataset order.

    Args:
        dataset: the `tf.data.Dataset` of `load_coco_qa` / `LgvqCocoQa`.
        include_images: bool. Put the uint8 image in each record (shared,
            not copied, between the questions of one image).

    Returns:
        list of dicts: `question`, `answer`, `type` (a name of
        `QUESTION_TYPES`), `image_index`, `image_id` and, with
        `include_images`, `image` — the fields the scenes questions have.

    Examples:

    ```python
    records = question_records(load_coco_qa("test"))
    ```
    """
    out = []
    for index, example in enumerate(tfds.as_numpy(dataset)):
        qs = example["questions"]
        image_id = example["image_id"].decode()
        for question, answer, kind in zip(
            qs["question"], qs["answer"], qs["question_type"]
        ):
            record = {
                "question": question.decode(),
                "answer": answer.decode(),
                "type": QUESTION_TYPES[int(kind)],
                "image_index": index,
                "image_id": image_id,
            }
            if include_images:
                record["image"] = np.asarray(example["image"])
            out.append(record)
    return out


def answer_vocabulary(records):
    """Sorted distinct answers of question records (the classifier's
    classes; build it from the training split).

    Examples:

    ```python
    vocab = answer_vocabulary(question_records(load_coco_qa("train")))
    ```
    """
    return sorted({r["answer"] for r in records})

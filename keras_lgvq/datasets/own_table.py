"""`from_table`: a CSV / TSV / JSONL table of (image path, caption[s],
extra columns)."""

import csv
import json
import os

from keras_lgvq.datasets.own_common import SkipReport
from keras_lgvq.datasets.own_common import caption_list
from keras_lgvq.datasets.own_common import check_extra_names
from keras_lgvq.datasets.own_common import column_array
from keras_lgvq.datasets.own_common import image_file_problem
from keras_lgvq.datasets.own_common import records_dataset

FORMATS = ("csv", "tsv", "jsonl")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def from_table(
    path,
    image_column="image",
    caption_column="caption",
    extra_columns=None,
    caption_separator=None,
    image_root=None,
    file_format=None,
    verify_images=True,
    strict=False,
):
    """Captioned images listed in a table, ready for `make_dataset`.

    One row per (image, caption) or per image. Rows naming the same image
    are merged: their captions are that image's captions, in row order
    (COCO-style tables list each caption on its own row). In a JSONL row
    the caption may also be a list of strings; in a CSV cell several
    captions can be split with `caption_separator`.

    Image paths are relative to the table's folder (or `image_root`);
    absolute paths are kept. `image_id` is the path as written in the
    table; `path` (the resolved file) and the extra columns are extra
    fields that `make_dataset(..., extra_fields=(...))` passes on. CSV
    extra columns whose every value is a whole number become int64, other
    numbers float32, anything else strings; JSONL values keep their JSON
    type (string, number, bool).

    Structural problems raise a ValueError naming the file and line: a
    missing column, an empty image cell, a caption that is not a string,
    an extra value that differs between two rows of one image. Images
    without a caption and unreadable or missing image files are skipped
    with one warning that counts them (`strict=True` raises instead).

    Args:
        path: str or path-like. The table (`.csv`, `.tsv`, `.jsonl`).
        image_column: str. Column (JSONL key) of the image paths.
        caption_column: str. Column of the captions.
        extra_columns: None (every other column) or a list of column names
            to keep as extra fields.
        caption_separator: None or str splitting one cell into captions
            (e.g. "|").
        image_root: None (the table's folder) or the folder that image
            paths are relative to.
        file_format: None (from the extension) or one of `FORMATS`.
        verify_images: bool. Decode every image once now (see
            `from_folder`).
        strict: bool. Raise instead of skipping.

    Returns:
        A `tf.data.Dataset` of dicts `image` (encoded bytes), `captions`
        tf.string `(C,)`, `image_id`, `path` and the extra columns.

    Examples:

    ```python
    # photos.csv:  image,caption,label
    #              img/001.jpg,a photo of a cat,0
    ds = keras_lgvq.datasets.from_table("photos.csv")
    batches = keras_lgvq.datasets.make_dataset(
        ds, batch_size=16, image_size=64, extra_fields=("label",))
    ```
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise ValueError(f"`path` {path!r} is not a file.")
    if file_format is None:
        extension = os.path.splitext(path)[1].lower()
        if extension not in _EXTENSIONS:
            raise ValueError(
                f"Cannot tell the format of {path!r} from its extension; "
                f"pass `file_format`, one of {FORMATS}."
            )
        file_format = _EXTENSIONS[extension]
    if file_format not in FORMATS:
        raise ValueError(
            f"`file_format` must be one of {FORMATS}. Received: "
            f"{file_format!r}"
        )
    if caption_separator is not None and (
        not isinstance(caption_separator, str) or not caption_separator
    ):
        raise ValueError(
            "`caption_separator` must be None or a non-empty str. Received: "
            f"{caption_separator!r}"
        )
    root = os.path.dirname(path) if image_root is None else os.fspath(
        image_root
    )

    if file_format == "jsonl":
        rows, columns = _read_jsonl(path)
    else:
        rows, columns = _read_csv(path, "\t" if file_format == "tsv" else ",")
    if not rows:
        raise ValueError(f"{path}: the table has no rows.")
    wanted = [image_column, caption_column]
    if extra_columns is not None:
        if isinstance(extra_columns, str):
            raise ValueError(
                "`extra_columns` must be a list of column names. Received: "
                f"{extra_columns!r}"
            )
        wanted += list(extra_columns)
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; the table has columns "
            f"{sorted(columns)}. Set `image_column`, `caption_column` or "
            "`extra_columns` to the table's names."
        )
    if extra_columns is None:
        extra_columns = [
            c for c in columns if c not in (image_column, caption_column)
        ]
    extra_columns = list(extra_columns)
    check_extra_names(extra_columns + ["path"], f"{path}")

    order, captions, extras, first_line = [], {}, {}, {}
    for line, row in rows:
        where = f"{path}, line {line}"
        for column in [image_column, caption_column] + extra_columns:
            if column not in row:
                raise ValueError(
                    f"{where}: the row has no {column!r} value."
                )
        image = row[image_column]
        if not isinstance(image, str) or not image.strip():
            raise ValueError(
                f"{where}: column {image_column!r} must be a non-empty image "
                f"path; got {image!r}."
            )
        image = image.strip()
        value = row[caption_column]
        if caption_separator is not None and isinstance(value, str):
            value = value.split(caption_separator)
        texts = caption_list(value, f"{where}, column {caption_column!r}")
        values = {c: row[c] for c in extra_columns}
        if image not in captions:
            order.append(image)
            captions[image] = []
            extras[image] = values
            first_line[image] = line
        elif extras[image] != values:
            changed = sorted(c for c in values if values[c] != extras[image][c])
            raise ValueError(
                f"{where}: extra column(s) {changed} differ from line "
                f"{first_line[image]} for the same image {image!r}; one "
                "image has one value per extra column."
            )
        captions[image].extend(texts)

    report = SkipReport("from_table", strict)
    kept = []
    for image in order:
        where = f"{path}, line {first_line[image]}"
        if not captions[image]:
            report.skip("without a caption", f"{where}: image {image!r}")
            continue
        file = os.path.normpath(os.path.join(root, image))
        if verify_images:
            problem = image_file_problem(file)
        elif not os.path.isfile(file):
            problem = f"no file {file!r}"
        else:
            problem = None
        if problem is not None:
            report.skip("unreadable", f"{where}: {problem}")
            continue
        kept.append((image, file))
    report.finish(len(order), len(kept))

    columns_out = {}
    for column in extra_columns:
        values = [extras[image][column] for image, _ in kept]
        if file_format != "jsonl":
            values = _typed_csv_column(values)
        columns_out[column] = column_array(
            column,
            values,
            lambda i: f"{path}, line {first_line[kept[i][0]]}",
        )
    return records_dataset(
        [file for _, file in kept],
        [captions[image] for image, _ in kept],
        [image for image, _ in kept],
        columns_out,
    )


def _read_csv(path, delimiter):
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            columns = list(reader.fieldnames or [])
            rows = []
            for row in reader:
                if None in row:
                    raise ValueError(
                        f"{path}, line {reader.line_num}: the row has more "
                        f"cells than the header's {len(columns)} columns."
                    )
                if all(v is None or not v.strip() for v in row.values()):
                    continue
                rows.append((reader.line_num, row))
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: the table is not UTF-8 text (byte {error.start})."
        ) from error
    if len(set(columns)) != len(columns):
        raise ValueError(f"{path}: repeated column names in {columns}.")
    # A short row gives None cells; reading them as "" would hide the error.
    for line, row in rows:
        short = [c for c, v in row.items() if v is None]
        if short:
            raise ValueError(
                f"{path}, line {line}: the row has no cell for column(s) "
                f"{short}."
            )
    return rows, columns


def _read_jsonl(path):
    rows, columns = [], []
    try:
        with open(path, encoding="utf-8") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{path}, line {line}: not valid JSON ({error.msg})."
                    ) from error
                if not isinstance(row, dict):
                    raise ValueError(
                        f"{path}, line {line}: each line must be a JSON "
                        f"object; got {type(row).__name__}."
                    )
                for key in row:
                    if key not in columns:
                        columns.append(key)
                rows.append((line, row))
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: the table is not UTF-8 text (byte {error.start})."
        ) from error
    return rows, columns


def _typed_csv_column(values):
    # A CSV holds text only: a column whose every cell is a whole number is
    # a label / id, one of numbers a float, anything else stays a string.
    cells = [v.strip() for v in values]
    try:
        return [int(v) for v in cells]
    except ValueError:
        pass
    try:
        return [float(v) for v in cells]
    except ValueError:
        return list(values)

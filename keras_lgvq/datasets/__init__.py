"""Captioned image datasets: procedural scenes, CUB, CelebA-HQ, TextCaps, COCO;
question sets: scenes questions (`scenes_questions`) and COCO-QA
(`coco_qa`).

A user's own captioned images: `from_arrays`, `from_folder` (one caption
file per image), `from_table` (CSV / TSV / JSONL) and `from_tfds` return
datasets that `make_dataset` takes like the built-in ones (same
transforms, caption sampling and tokenization; `extra_fields` passes
labels and ids to the batches). The input-image rules (gray and RGBA to
RGB, value ranges) are in `image_adaptation`.

`keras_lgvq.datasets.scenes` needs numpy only. Everything else (the TFDS
builders, `load`, `make_dataset`, `drawn_captions`, `caption_iterator`)
imports TensorFlow and tensorflow-datasets on first use.
"""

import importlib

_LAZY = {
    "load": "keras_lgvq.datasets.loading",
    "get_builder": "keras_lgvq.datasets.loading",
    "caption_iterator": "keras_lgvq.datasets.loading",
    "DATASET_NAMES": "keras_lgvq.datasets.loading",
    "scenes_split_sizes": "keras_lgvq.datasets.loading",
    "default_data_dir": "keras_lgvq.datasets.loading",
    "resolve_split": "keras_lgvq.datasets.loading",
    "make_dataset": "keras_lgvq.datasets.pipeline",
    "drawn_captions": "keras_lgvq.datasets.caption_draws",
    "TRANSFORMS": "keras_lgvq.datasets.pipeline",
    "transform_image": "keras_lgvq.datasets.pipeline",
    "sample_caption": "keras_lgvq.datasets.pipeline",
    "from_arrays": "keras_lgvq.datasets.own_arrays",
    "from_folder": "keras_lgvq.datasets.own_folder",
    "from_table": "keras_lgvq.datasets.own_table",
    "from_tfds": "keras_lgvq.datasets.own_tfds",
    "adapt_image_array": "keras_lgvq.datasets.image_adaptation",
    "adapt_image_tensor": "keras_lgvq.datasets.image_adaptation",
    "VALUE_RANGES": "keras_lgvq.datasets.image_adaptation",
    "LgvqScenes": "keras_lgvq.datasets.scenes_builder",
    "ScenesConfig": "keras_lgvq.datasets.scenes_builder",
    "scenes_config": "keras_lgvq.datasets.scenes_builder",
    "SCENES_SPLIT_SIZES": "keras_lgvq.datasets.scenes_builder",
    "LgvqCub": "keras_lgvq.datasets.cub",
    "LgvqCelebaHq": "keras_lgvq.datasets.celeba_hq",
    "LgvqTextcaps": "keras_lgvq.datasets.textcaps",
    "LgvqCoco": "keras_lgvq.datasets.coco",
    "LgvqCocoQa": "keras_lgvq.datasets.coco_qa",
    "load_coco_qa": "keras_lgvq.datasets.coco_qa",
    "CodeCache": "keras_lgvq.datasets.code_cache",
    "build_code_cache": "keras_lgvq.datasets.code_cache",
    "code_cache_path": "keras_lgvq.datasets.code_cache",
    "make_code_dataset": "keras_lgvq.datasets.code_cache",
    "read_filename_list": "keras_lgvq.datasets.safe_pickle",
    "safe_load_string_list": "keras_lgvq.datasets.safe_pickle",
}

__all__ = sorted(_LAZY) + ["scenes"]


def __getattr__(name):
    if name == "scenes":
        return importlib.import_module("keras_lgvq.datasets.scenes")
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        return getattr(module, name)
    raise AttributeError(
        f"module 'keras_lgvq.datasets' has no attribute {name!r}"
    )


def __dir__():
    return __all__

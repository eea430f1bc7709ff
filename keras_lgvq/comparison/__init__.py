"""The main job: what language guidance buys, and at what cost.

LG-VQ against the same VQGAN (and, with `--all`, every tokenizer pair of
the package: CVQ+LG / CVQ, VQCT+LG / VQCT, LQAE / VQAE) on the scenes set,
with uncertainty. `recipes/scenes_compare.py` and `python -m keras_lgvq
compare` are its command line; `run_comparison` is the same run from
Python.

One module per job:

- `budgets`: `BUDGETS` (default / quick / smoke sizes), the smoke-sized
  tokenizers, `resolve_settings` and the `result_fingerprint` a resumed
  run must match;
- `systems`: the rows (`ComparedModel`, `MODELS`, `parse_models`);
- `training`: building and training one system (`train_system`);
- `data`: the shared evaluation and probe-training splits;
- `downstream`: the LQAE rows' linear probes and few-shot prompting;
- `captioning`, `vqa`: the VQGAN-family rows' captioning and VQA tasks
  (image and blind models over each tokenizer's codes);
- `text_to_image`: the single-code rows' text-to-image and completion
  task (a generator over each tokenizer's codes, one judge per run);
- `stage2_tasks`: the table of those tasks (`Stage2Task`,
  `STAGE2_TASKS`) that `runner` runs, stores and reports alike;
- `pair_tests`: per-item bootstrap and across-seed tests of each
  guided-vs-baseline pair;
- `progress`: the stopwatch and the progress lines with an ETA;
- `run_state`: what `--out` keeps so a rerun resumes;
- `figures` and `report`: the figures, `report.md`;
- `runner`: `run_comparison`.
"""

from keras_lgvq.comparison.budgets import BUDGETS
from keras_lgvq.comparison.budgets import CAPTIONING_BUDGETS
from keras_lgvq.comparison.budgets import DEFAULT_OPTIONS
from keras_lgvq.comparison.budgets import DOWNSTREAM_BUDGETS
from keras_lgvq.comparison.budgets import SMOKE_BACKBONE
from keras_lgvq.comparison.budgets import SMOKE_HEADS
from keras_lgvq.comparison.budgets import SMOKE_LQAE
from keras_lgvq.comparison.budgets import SMOKE_VQCT
from keras_lgvq.comparison.budgets import TEXT_TO_IMAGE_BUDGETS
from keras_lgvq.comparison.budgets import VQA_BUDGETS
from keras_lgvq.comparison.budgets import resolve_settings
from keras_lgvq.comparison.budgets import result_fingerprint
from keras_lgvq.comparison.captioning import CAPTIONING_SPECS
from keras_lgvq.comparison.downstream import DOWNSTREAM_SPECS
from keras_lgvq.comparison.pair_tests import significance_tests
from keras_lgvq.comparison.progress import ComparisonProgress
from keras_lgvq.comparison.progress import Stopwatch
from keras_lgvq.comparison.runner import run_comparison
from keras_lgvq.comparison.systems import DEFAULT_MODELS
from keras_lgvq.comparison.systems import MODEL_NAMES
from keras_lgvq.comparison.systems import MODELS
from keras_lgvq.comparison.systems import ComparedModel
from keras_lgvq.comparison.systems import parse_models
from keras_lgvq.comparison.text_to_image import TEXT_TO_IMAGE_SPECS
from keras_lgvq.comparison.vqa import VQA_SPECS

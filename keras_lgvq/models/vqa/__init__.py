"""Stage 2: visual question answering over a frozen tokenizer's codes
([image prefix ; question] through a frozen causal LM, answer classifier).

- `VQAModel`: the model (`compile` / `fit`, `answer`), its answer
  vocabulary stored in its config;
- `check_answer_vocabulary`: the load-time vocabulary check.

Questions for the procedural scenes: `keras_lgvq.datasets.scenes_questions`.
Spec: shared/reference/downstream-spec.md §3.
"""

from keras_lgvq.models.vqa.vqa_model import VQAModel
from keras_lgvq.models.vqa.vqa_model import check_answer_vocabulary

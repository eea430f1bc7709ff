"""Stage 2: visual question answering over a frozen tokenizer's codes
([image prefix ; question] through a frozen causal LM, answer classifier).

- `VQAModel`: the model (`compile` / `fit`, `answer`), its answer
  vocabulary stored in its config;
- `check_answer_vocabulary`: the load-time vocabulary check;
- `vqa_presets.py`: `scenes_vqa` (CPU) and `coco_qa_vqa` (the paper's
  COCO-QA setting; answers from the user's training split).

Questions: `keras_lgvq.datasets.scenes_questions` (procedural scenes) and
`keras_lgvq.datasets.coco_qa` (COCO-QA from the user's files).
Spec: shared/reference/downstream-spec.md §3.
"""

from keras_lgvq.models.vqa.vqa_model import VQAModel
from keras_lgvq.models.vqa.vqa_model import check_answer_vocabulary

"""Evaluate a VQ tokenizer: fidelity, codebook use and alignment probes.

The driver behind `recipes/evaluate.py` and `recipes/scenes_compare.py`.
Everything that does not depend on the model (images, captions, frozen
text features, the masks of the masked-word protocol) is computed once by
`prepare_split` and shared, so two tokenizers are scored on identical
inputs. `evaluate_model` then runs one tokenizer over the evaluation split
and returns a JSON-ready dict of every metric of `keras_lgvq.metrics` that
applies:

- fidelity: PSNR and SSIM (reconstructions clipped to [-1, 1]), LPIPS and
  rFID only when their ImageNet weights are on disk (otherwise recorded as
  unavailable, with the reason);
- codebook usage and perplexity over the whole evaluation split (for a
  tokenizer with sub-codebooks, VQCT, also per sub-codebook: adjective,
  noun; its codes keep their trailing index axis, see
  `keras_lgvq.utils.code_layout`);
- alignment measured by **probes** trained on the model's frozen codes
  under a fixed budget (`AlignmentProbe`: a fresh code transformer with
  InfoNCE for image-text retrieval and a fresh masked text decoder for
  masked-word recall; linear probes for the scene attributes), so a
  tokenizer without language guidance is measured on equal terms;
- for an `LGVQ`, its own guidance heads beside the probes.

One module per job:

- `masking`: the Mask-1 / Mask-3 protocol and probe-training masks;
- `splits`: `prepare_split`, the shared model-independent inputs;
- `tokenizer_runner`: `run_tokenizer`, codes, reconstructions, PSNR / SSIM
  and codebook statistics;
- `fidelity`: `perceptual_metrics` (LPIPS, rFID);
- `alignment_probe`: the `AlignmentProbe` model;
- `probe_training`: `train_alignment_probe` and its budget;
- `alignment_metrics`: retrieval, masked-word recall and relation MSE over
  a split;
- `class_captions`: repeated (class-style) captions as one retrieval
  target, class-level recalls, zero-shot classification;
- `linear_attribute_probes`: linear probes of the scene attributes;
- `evaluator`: `evaluate_model`, the orchestrator;
- `metric_table`: `flatten_metrics` and the `METRIC_SPECS` of the report.
"""

from keras_lgvq.evaluation.alignment_metrics import retrieval_recalls
from keras_lgvq.evaluation.alignment_probe import AlignmentProbe
from keras_lgvq.evaluation.class_captions import caption_groups
from keras_lgvq.evaluation.class_captions import class_prompt_features
from keras_lgvq.evaluation.class_captions import class_prompts
from keras_lgvq.evaluation.class_captions import grouped_retrieval
from keras_lgvq.evaluation.class_captions import retrieval_chance
from keras_lgvq.evaluation.class_captions import zero_shot_classify
from keras_lgvq.evaluation.linear_attribute_probes import attribute_probes
from keras_lgvq.evaluation.evaluator import evaluate_model
from keras_lgvq.evaluation.fidelity import perceptual_metrics
from keras_lgvq.evaluation.masking import MASK_CHUNK
from keras_lgvq.evaluation.masking import MASK_MAX_POSITION
from keras_lgvq.evaluation.masking import mask_slots
from keras_lgvq.evaluation.masking import protocol_masks
from keras_lgvq.evaluation.masking import sample_training_masks
from keras_lgvq.evaluation.metric_table import METRIC_SPECS
from keras_lgvq.evaluation.metric_table import REFERENCE_KEYS
from keras_lgvq.evaluation.metric_table import MetricSpec
from keras_lgvq.evaluation.metric_table import flatten_metrics
from keras_lgvq.evaluation.probe_training import DEFAULT_PROBE_CONFIG
from keras_lgvq.evaluation.probe_training import train_alignment_probe
from keras_lgvq.datasets.scenes import ATTRIBUTES
from keras_lgvq.evaluation.splits import prepare_split
from keras_lgvq.evaluation.tokenizer_runner import run_tokenizer

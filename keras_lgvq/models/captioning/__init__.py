"""Stage 2: image captioning from a frozen tokenizer's codes (ClipCap-style
prefix into a frozen causal language model).

- `MLPPrefixMapper`, `TransformerPrefixMapper`, `PooledPrefixMapper`: code
  vectors -> k prefix vectors in the LM's embedding space;
- `Captioner`: teacher-forced training with `compile` / `fit`, greedy and
  beam-search decoding; the LM frozen, fine-tuned or LoRA-adapted
  (`language_model_training`), or a small decoder trained from scratch
  (`decoder="scratch"`);
- `beam_search`: the generic host-side beam search;
- `captioning_presets.py`: ClipCap's MLP / transformer settings.

Spec: shared/reference/downstream-spec.md §2.
"""

from keras_lgvq.models.captioning.beam_search import beam_search
from keras_lgvq.models.captioning.captioner import Captioner
from keras_lgvq.models.captioning.captioner import PrefixLanguageModel
from keras_lgvq.models.captioning.captioner import as_text_list
from keras_lgvq.models.captioning.captioner import configure_language_model
from keras_lgvq.models.captioning.captioner import tokenize_texts
from keras_lgvq.models.captioning.prefix_mapper import MLPPrefixMapper
from keras_lgvq.models.captioning.prefix_mapper import PooledPrefixMapper
from keras_lgvq.models.captioning.prefix_mapper import TransformerPrefixMapper
from keras_lgvq.models.captioning.prefix_mapper import build_prefix_mapper

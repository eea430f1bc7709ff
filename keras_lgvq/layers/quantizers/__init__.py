"""Quantizers: map continuous latents to discrete codes.

- `VectorQuantizer`: taming's nearest-code quantizer (legacy / corrected
  beta, cosine codes, EMA updates, CVQ re-initialisation and contrastive
  loss).
- `FrozenVocabularyQuantizer`: LQAE's nearest token (by cosine) of a
  frozen language-model embedding table, raw embedding forwarded.
- `VQCTQuantizer`: VQCT's codebook transferred from language by a GCN over
  adjective / noun word features (top-k adjective mean + nearest noun).
"""

from keras_lgvq.layers.quantizers.frozen_vocabulary_quantizer import (
    FrozenVocabularyQuantizer,
)
from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from keras_lgvq.layers.quantizers.vqct_quantizer import VQCTQuantizer

"""Quantizers: map continuous latents to discrete codes.

- `VectorQuantizer`: taming's nearest-code quantizer (legacy / corrected
  beta, cosine codes, EMA updates, CVQ re-initialisation and contrastive
  loss).
"""

from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer

"""The taming VQGAN family (incl. CVQ, a quantizer option).

- `vqgan_backbone.py`: `VQGANBackbone`, the image tokenizer (encoder,
  quantizer, decoder) with `encode` / `decode`.
- `vqgan.py`: `VQGAN`, the trainer (L1 + LPIPS + VQ + hinge GAN with the
  adaptive weight, two optimizers).
- `vqgan_presets.py`: the paper's backbone, CVQ quantizer and GAN settings.
"""

from keras_lgvq.models.vqgan.vqgan import VQGAN
from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

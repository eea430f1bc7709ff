"""LQAE (Liu et al., 2023): images quantized onto a frozen language
model's token embeddings and read by its masked LM.

Home of `lqae_backbone.py` (ViT encoder / decoder), the trainer with the
masked LM in the loop, and `lqae_presets.py` (`imagenet_lqae`,
`scenes_lqae`, the VQAE baseline). Spec: shared/reference/lqae-spec.md.
"""

from keras_lgvq.models.lqae.lqae import LQAE
from keras_lgvq.models.lqae.lqae_backbone import LQAEBackbone

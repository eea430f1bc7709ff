"""LG-VQ (Liang et al., NeurIPS 2024): language-guided codebook learning.

LG-VQ is model-agnostic: its tokenizer is any VQ backbone (here
`VQGANBackbone`, with the plain or the CVQ quantizer), so this family has no
backbone file of its own. What it adds lives in:

- `lgvq.py`: `LGVQ`, the VQGAN trainer plus `LanguageGuidance` and a frozen
  text prior;
- `lgvq_presets.py`: the paper presets (`cub`, `celeba_hq`, `textcaps` and
  their `_cvq` variants) and the embedded CPU preset `scenes`;
- `keras_lgvq/layers/guidance/`: one file per guidance loss (GSA, MTP, RAS).
"""

from keras_lgvq.models.lgvq.lgvq import LGVQ

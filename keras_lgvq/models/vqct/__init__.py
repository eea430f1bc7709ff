"""VQCT (Zhang et al., CVPR 2024): a codebook transferred from language.

Home of `vqct_backbone.py` (the VQGAN tokenizer with the GCN codebook
quantizer of `keras_lgvq/layers/quantizers/`), the trainer and
`vqct_presets.py` (`cub_vqct`, `coco_vqct`, `ade20k_vqct`, `scenes_vqct`,
`scenes_vqct_lg`). The prior builder lives in `keras_lgvq/priors/`.
Spec: shared/reference/vqct-spec.md.
"""

from keras_lgvq.models.vqct.vqct import VQCT, VQCTLG
from keras_lgvq.models.vqct.vqct_backbone import VQCTBackbone

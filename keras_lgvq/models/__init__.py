"""keras_lgvq models, one folder per family in keras-hub's manner:

- `models/vqgan/`: `VQGANBackbone` (the tokenizer) and `VQGAN` (trainer),
  CVQ included as a quantizer option;
- `models/lgvq/`: `LGVQ`, language guidance on any VQ backbone;
- `models/vqct/`, `models/lqae/`: the other tokenizer families;
- `models/text_to_image/`, `models/captioning/`, `models/vqa/`: stage-2
  tasks over a frozen tokenizer's codes;
- `models/presets.py`: the one preset registry every `from_preset` uses.
"""

from keras_lgvq.models import presets
from keras_lgvq.models.lgvq.lgvq import LGVQ
from keras_lgvq.models.lqae.lqae import LQAE
from keras_lgvq.models.lqae.lqae_backbone import LQAEBackbone
from keras_lgvq.models.text_to_image import TextToImage, TextToImageBackbone
from keras_lgvq.models.vqgan.vqgan import VQGAN
from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone
from keras_lgvq.models.vqct.vqct import VQCT
from keras_lgvq.models.vqct.vqct import VQCTLG
from keras_lgvq.models.vqct.vqct_backbone import VQCTBackbone

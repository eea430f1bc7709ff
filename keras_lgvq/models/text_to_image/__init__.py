"""Stage 2: text-to-image generation and image completion over the codes of
a frozen tokenizer (a masked-token transformer, MaskGIT / Muse family).

- `TextToImageBackbone`: the bidirectional transformer over the code grid
  with cross-attention to the caption's token features;
- `TextToImage`: masked-token training, iterative parallel decoding with
  classifier-free guidance, completion, decoding to pixels;
- `text_to_image_presets.py`: `text_to_image_scenes` (CPU) and
  `text_to_image_celeba_hq` (the paper's 19 x 1024 size).

Spec: shared/reference/downstream-spec.md §1.
"""

from keras_lgvq.models.text_to_image.text_to_image import TextToImage
from keras_lgvq.models.text_to_image.text_to_image import TokenizerCall
from keras_lgvq.models.text_to_image.text_to_image import load_tokenizer
from keras_lgvq.models.text_to_image.text_to_image import mask_ratio
from keras_lgvq.models.text_to_image.text_to_image import masked_code_loss
from keras_lgvq.models.text_to_image.text_to_image_backbone import (
    TextToImageBackbone,
)

"""Keras layers of keras_lgvq, grouped by role:

- `layers.quantizers`: code search and codebook losses;
- `GraphConvolution`, `CodebookTransfer`: VQCT's GCN codebook network;
- `layers.vqgan`: the convolutional encoder / decoder blocks and the
  PatchGAN discriminator;
- `layers.guidance`: LG-VQ's language-guidance losses;
- `layers.vit`: LQAE's ViT encoder / decoder blocks.

Every public layer is also importable from `keras_lgvq.layers` directly.
"""

from keras_lgvq.layers.codebook_transfer import CodebookTransfer
from keras_lgvq.layers.graph_convolution import GraphConvolution
from keras_lgvq.layers.guidance import CodeTransformer
from keras_lgvq.layers.guidance import GlobalSemanticAlignment
from keras_lgvq.layers.guidance import LanguageGuidance
from keras_lgvq.layers.guidance import MaskedTextDecoder
from keras_lgvq.layers.guidance import MaskedTokenHead
from keras_lgvq.layers.guidance import RelationshipAlignment
from keras_lgvq.layers.quantizers import FrozenVocabularyQuantizer
from keras_lgvq.layers.quantizers import VQCTQuantizer
from keras_lgvq.layers.quantizers import VectorQuantizer
from keras_lgvq.layers.vqgan import AttentionBlock
from keras_lgvq.layers.vqgan import Downsample
from keras_lgvq.layers.vqgan import PatchDiscriminator
from keras_lgvq.layers.vqgan import ResNetDecoder
from keras_lgvq.layers.vqgan import ResNetEncoder
from keras_lgvq.layers.vqgan import ResnetBlock
from keras_lgvq.layers.vqgan import Upsample
from keras_lgvq.layers.vqgan import VQGANDecoder
from keras_lgvq.layers.vqgan import VQGANEncoder
from keras_lgvq.layers.vit import GLUFeedForward
from keras_lgvq.layers.vit import LQAETransformerBlock
from keras_lgvq.layers.vit import PatchEmbedding
from keras_lgvq.layers.vit import PositionEmbedding2D
from keras_lgvq.layers.vit import StandardTransformerBlock
from keras_lgvq.layers.vit import TransformerStack
from keras_lgvq.layers.vit import Unpatchify
from keras_lgvq.layers.vit import ViTDecoder
from keras_lgvq.layers.vit import ViTEncoder

"""Vision-transformer building blocks (LQAE's ViT encoder and decoder).

- `PatchEmbedding`: stride-`p` conv, image -> token grid;
- `PositionEmbedding2D`: learned `(h, w, D)` position embedding;
- `GLUFeedForward`: LQAE's gated feed-forward with a depthwise 3x3 conv;
- `LQAETransformerBlock`: the official block (NormFormer attention without
  biases + GLU feed-forward);
- `StandardTransformerBlock`: the vanilla pre-LN ViT block (keras-hub's
  `TransformerEncoder`), the documented alternative;
- `TransformerStack`: blocks in turn, optionally returning every output;
- `Unpatchify`: transposed conv, token grid -> image;
- `ViTEncoder`, `ViTDecoder`: LQAE's encoder and decoder.

All layers work on channels-last token grids `(B, h, w, D)`.
"""

from keras_lgvq.layers.vit.glu_feed_forward import GLUFeedForward
from keras_lgvq.layers.vit.lqae_transformer_block import LQAETransformerBlock
from keras_lgvq.layers.vit.patch_embedding import PatchEmbedding
from keras_lgvq.layers.vit.position_embedding_2d import PositionEmbedding2D
from keras_lgvq.layers.vit.standard_transformer_block import (
    StandardTransformerBlock,
)
from keras_lgvq.layers.vit.transformer_stack import TransformerStack
from keras_lgvq.layers.vit.unpatchify import Unpatchify
from keras_lgvq.layers.vit.vit_decoder import ViTDecoder
from keras_lgvq.layers.vit.vit_encoder import ViTEncoder

"""Keras layers of keras_lgvq: the VQGAN tokenizer and LG-VQ's guidance."""

from keras_lgvq.layers.code_transformer import CodeTransformer
from keras_lgvq.layers.global_semantic_alignment import (
    GlobalSemanticAlignment,
)
from keras_lgvq.layers.language_guidance import LanguageGuidance
from keras_lgvq.layers.masked_text_decoder import MaskedTextDecoder
from keras_lgvq.layers.masked_token_head import MaskedTokenHead
from keras_lgvq.layers.patch_discriminator import PatchDiscriminator
from keras_lgvq.layers.relationship_alignment import RelationshipAlignment
from keras_lgvq.layers.vector_quantizer import VectorQuantizer
from keras_lgvq.layers.vqgan_blocks import AttentionBlock
from keras_lgvq.layers.vqgan_blocks import Downsample
from keras_lgvq.layers.vqgan_blocks import ResnetBlock
from keras_lgvq.layers.vqgan_blocks import Upsample
from keras_lgvq.layers.vqgan_decoder import VQGANDecoder
from keras_lgvq.layers.vqgan_encoder import VQGANEncoder

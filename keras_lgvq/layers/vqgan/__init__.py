"""The taming VQGAN's convolutional building blocks and PatchGAN critic.

Shared by every tokenizer family whose encoder / decoder is convolutional
(VQGAN, CVQ, LG-VQ, VQCT, and LQAE's ResNet option).
"""

from keras_lgvq.layers.vqgan.patch_discriminator import PatchDiscriminator
from keras_lgvq.layers.vqgan.resnet_autoencoder import ResNetDecoder
from keras_lgvq.layers.vqgan.resnet_autoencoder import ResNetEncoder
from keras_lgvq.layers.vqgan.vqgan_blocks import AttentionBlock
from keras_lgvq.layers.vqgan.vqgan_blocks import Downsample
from keras_lgvq.layers.vqgan.vqgan_blocks import ResnetBlock
from keras_lgvq.layers.vqgan.vqgan_blocks import Upsample
from keras_lgvq.layers.vqgan.vqgan_decoder import VQGANDecoder
from keras_lgvq.layers.vqgan.vqgan_encoder import VQGANEncoder

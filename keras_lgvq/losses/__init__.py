"""Losses for training VQ image tokenizers."""

from keras_lgvq.losses.gan_losses import adaptive_generator_weight
from keras_lgvq.losses.gan_losses import discriminator_factor
from keras_lgvq.losses.gan_losses import generator_adversarial_loss
from keras_lgvq.losses.gan_losses import hinge_discriminator_loss
from keras_lgvq.losses.lpips import LPIPS

"""Losses for training VQ image tokenizers."""

from keras_lgvq.losses.lpips import LPIPS

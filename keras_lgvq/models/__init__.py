from keras_lgvq.models import presets
from keras_lgvq.models.lgvq import LGVQ
from keras_lgvq.models.vqgan import VQGAN
from keras_lgvq.models.vqgan_backbone import VQGANBackbone

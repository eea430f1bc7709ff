"""keras-lgvq: language-guided vector-quantized image tokenizers."""

from keras_lgvq.version import __version__

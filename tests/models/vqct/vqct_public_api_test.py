"""VQCT through the package's top-level API, as LG-VQ."""

import keras_lgvq
from keras_lgvq import models


def test_vqct_classes_are_top_level_exports():
    for name in ("VQCT", "VQCTBackbone", "VQCTLG"):
        assert name in keras_lgvq.__all__ and name in dir(keras_lgvq)
        assert getattr(keras_lgvq, name) is getattr(models, name)
    assert issubclass(keras_lgvq.VQCTLG, keras_lgvq.LGVQ)
    assert issubclass(keras_lgvq.VQCT, keras_lgvq.VQGAN)

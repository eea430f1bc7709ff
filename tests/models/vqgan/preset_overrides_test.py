"""Preset overrides keep the preset's quantizer options; the model refuses
images whose size differs from its resolution."""

import numpy as np
import pytest

from keras_lgvq.models import LGVQ
from keras_lgvq.models import VQGAN
from keras_lgvq.models import VQGANBackbone
from keras_lgvq.models import presets


def _quantizer_options(backbone):
    config = backbone.quantizer.get_config()
    return {k: config[k] for k in ("l2_normalize", "beta", "legacy_beta")}


def test_vqgan_override_keeps_the_cosine_quantizer():
    spec = presets.get_preset("scenes")
    assert spec["quantizer"]["l2_normalize"] is True
    model = VQGAN.from_preset("scenes", resolution=32)
    backbone = model.backbone
    assert backbone.resolution == 32 and backbone.grid_size == 8
    assert _quantizer_options(backbone) == {
        "l2_normalize": True, "beta": 0.25, "legacy_beta": False,
    }
    # Everything not overridden is the preset's.
    for key, value in spec["backbone"].items():
        if key != "resolution":
            got = getattr(backbone, key)
            assert (tuple(got) if isinstance(got, tuple) else got) == value
    assert backbone.get_config()["quantizer"]["config"]["l2_normalize"]


def test_lgvq_overrides_backbone_and_codebook_size():
    model = LGVQ.from_preset(
        "scenes", resolution=32, num_embeddings=64, text_prior=None
    )
    backbone = model.backbone
    assert backbone.resolution == 32 and backbone.num_embeddings == 64
    assert backbone.quantizer.num_embeddings == 64
    assert tuple(backbone.quantizer.codebook.shape) == (64, 64)
    assert _quantizer_options(backbone)["l2_normalize"] is True
    # The guidance is built for the overridden grid.
    assert model.guidance.num_tokens == 8 * 8
    # A quantizer field can be overridden too.
    plain = VQGANBackbone.from_preset("scenes", resolution=32,
                                      l2_normalize=False)
    assert _quantizer_options(plain)["l2_normalize"] is False


@pytest.mark.parametrize("cls", [VQGANBackbone, VQGAN, LGVQ])
def test_unknown_override_lists_the_valid_ones(cls):
    kwargs = {} if cls is VQGANBackbone else {"perceptual_loss": None}
    if cls is LGVQ:
        kwargs["text_prior"] = None
    with pytest.raises(ValueError, match=r"Unknown preset override\(s\) "
                       r"\['resolutin'\].*'num_embeddings'.*'resolution'"):
        cls.from_preset("scenes", resolutin=32, **kwargs)


def test_model_boundary_refuses_another_image_size():
    backbone = VQGANBackbone.from_preset("scenes", resolution=32)
    ok = backbone.encode(np.zeros((1, 32, 32, 3), "float32"))
    assert tuple(ok.shape) == (1, 8, 8)
    small = np.zeros((1, 16, 16, 3), "float32")
    for call in (backbone.encode, backbone.encode_decode):
        with pytest.raises(ValueError, match=r"must be 32x32 images.*got "
                           r"shape \(1, 16, 16, 3\).*image_size`=32"):
            call(small)
    with pytest.raises(ValueError, match="32x32"):
        backbone.encode(np.zeros((1, 32, 40, 3), "float32"))

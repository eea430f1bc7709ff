"""LQAE with the official ResNet encoder / decoder option (tiny configs)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.layers.vqgan.resnet_autoencoder import ResNetDecoder
from keras_lgvq.layers.vqgan.resnet_autoencoder import ResNetEncoder
from keras_lgvq.models import LQAE
from keras_lgvq.models import LQAEBackbone
from tests.models.lqae.tiny_lqae import WIDTH
from tests.models.lqae.tiny_lqae import tiny_backbone
from tests.models.lqae.tiny_lqae import tiny_images

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


# 32 px / 2 ** 3 = a 4 x 4 grid (the tiny LM has 32 positions).
RESNET = dict(
    encoder_type="resnet",
    patch_size=8,
    resnet_filters=32,
    resnet_channel_multipliers=(1, 1, 1, 1),
    resnet_num_res_blocks=1,
)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    return tiny_backbone(**RESNET)


def test_resnet_option_tokenizes_onto_the_lm_vocabulary(backbone):
    assert isinstance(backbone.encoder, ResNetEncoder)
    assert isinstance(backbone.decoder, ResNetDecoder)
    images = tiny_images()
    outputs = backbone.encode_decode(images)
    ids = _np(backbone.encode(images))
    assert ids.shape == (4, 4, 4)
    # Cosine-nearest row of the LM's table, from the ResNet features of
    # the [0, 1] pixels.
    features = _np(backbone.encoder((images + 1.0) / 2.0)).reshape(-1, WIDTH)
    table = _np(backbone.language_model.token_embedding_matrix())
    z = features / np.linalg.norm(features, axis=-1, keepdims=True)
    t = table / np.linalg.norm(table, axis=-1, keepdims=True)
    np.testing.assert_array_equal(ids.reshape(-1), (z @ t.T).argmax(-1))
    reconstruction = _np(outputs["reconstruction"])
    assert reconstruction.shape == (4, 32, 32, 3)
    np.testing.assert_allclose(
        _np(backbone.decode(ids)), reconstruction, atol=1e-4
    )
    np.testing.assert_allclose(_np(backbone(images)), reconstruction, atol=1e-4)
    # Probe features: the encoder's output grid (one layer) and the LM's.
    representations = backbone.image_representations(images)
    assert len(representations["encoder_layer_outputs"]) == 1
    assert tuple(representations["encoder_layer_outputs"][0].shape) == (
        4, 16, WIDTH,
    )
    assert len(representations["lm_layer_outputs"]) == 2


def test_resnet_lqae_fit_lowers_reconstruction_and_decay_skips_norms():
    keras.utils.set_random_seed(0)
    model = LQAE(tiny_backbone(**RESNET), seed=0)
    model.compile(learning_rate=3e-3, warmup_steps=2, total_steps=30)
    images = tiny_images(8)
    before = float(
        model.evaluate(images, batch_size=8, verbose=0, return_dict=True)[
            "rec_loss"
        ]
    )
    lm_before = [_np(v).copy() for v in model.backbone.language_model.weights]
    model.fit(images, batch_size=8, epochs=10, verbose=0)
    after = float(
        model.evaluate(images, batch_size=8, verbose=0, return_dict=True)[
            "rec_loss"
        ]
    )
    assert after < 0.7 * before
    for old, new in zip(lm_before, model.backbone.language_model.weights):
        np.testing.assert_array_equal(old, _np(new))
    decayed, exempt = model.weight_decay_variables()
    encoder_exempt = {
        v.name for v in exempt if v.path.startswith(model.backbone.encoder.path)
    }
    # GroupNorm scales / offsets and conv biases of the ResNet are exempt.
    assert {"gamma", "beta", "bias"} <= encoder_exempt
    assert all(v.name == "kernel" for v in decayed)


def test_resnet_backbone_round_trips_in_safe_mode(backbone, tmp_path):
    path = str(tmp_path / "lqae_resnet.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert restored.encoder_type == "resnet"
    assert isinstance(restored.encoder, ResNetEncoder)
    assert restored.resnet_channel_multipliers == (1, 1, 1, 1)
    images = tiny_images()
    np.testing.assert_allclose(
        _np(restored(images)), _np(backbone(images)), atol=1e-5
    )


def test_preset_override_turns_on_the_resnet_option():
    backbone = LQAEBackbone.from_preset("scenes_lqae", encoder_type="resnet")
    assert isinstance(backbone.encoder, ResNetEncoder)
    assert backbone.grid_size == 8 and backbone.encoder.grid_size == 8
    assert backbone.encoder.channel_multipliers == (1, 1, 2, 2)


def test_bad_resnet_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="`encoder_type` must be one of"):
        tiny_backbone(encoder_type="cnn")
    with pytest.raises(ValueError, match="`patch_size` must be 8"):
        tiny_backbone(**{**RESNET, "patch_size": 4})
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny_backbone(**{**RESNET, "resnet_filters": 16})
    with pytest.raises(ValueError, match="`channel_multipliers` must be"):
        tiny_backbone(**{**RESNET, "resnet_channel_multipliers": None})

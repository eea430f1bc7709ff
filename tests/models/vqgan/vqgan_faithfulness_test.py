"""Faithfulness to the official code: LPIPS dropout in training, PyTorch's
Adam epsilon, CVQ presets that say what they train, and the official
second forward pass per batch (by flag)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from keras_lgvq.models import VQGAN
from keras_lgvq.models import VQGANBackbone
from tests.models.tiny_configs import tiny_backbone
from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_vqgan


def _lpips_heads_available():
    from keras_lgvq.losses.lpips_assets import heads_path

    return os.path.exists(heads_path())


@pytest.mark.skipif(
    not _lpips_heads_available(),
    reason="LPIPS heads not fetched: python -m keras_lgvq.fetch_assets",
)
def test_lpips_dropout_is_applied_in_the_generator_step():
    from keras_lgvq.losses.lpips import LPIPS

    with pytest.warns(UserWarning, match="random"):
        lpips = LPIPS(allow_random_backbone=True, use_dropout=True)
    model = tiny_vqgan(discriminator=None, perceptual_loss=lpips)
    model.compile(learning_rate=1e-3)
    batch = {"images": ops.convert_to_tensor(tiny_images(2))}

    def perceptual(step):
        return float(ops.convert_to_numpy(step()["perceptual_loss"]))

    evaluation = [
        perceptual(lambda: model._evaluation_step(batch)) for _ in range(2)
    ]
    training = [
        perceptual(lambda: model._generator_step(batch, training=True)[1])
        for _ in range(2)
    ]
    # Evaluation is deterministic; training draws a dropout mask per call.
    assert evaluation[0] == evaluation[1]
    assert training[0] != training[1]
    assert abs(training[0] - evaluation[0]) > 1e-6


def test_default_adam_uses_the_pytorch_epsilon():
    model = tiny_vqgan(discriminator=None)
    model.compile()
    assert model.optimizer.generator.epsilon == 1e-8
    assert model.optimizer.discriminator.epsilon == 1e-8
    restored = keras.optimizers.deserialize(
        keras.optimizers.serialize(model.optimizer)
    )
    assert restored.generator.epsilon == 1e-8
    model.compile(epsilon=1e-7)
    assert model.optimizer.generator.epsilon == 1e-7


def test_cvq_presets_say_which_quantizer_they_train(tmp_path):
    config = VQGANBackbone.from_preset("cub_cvq", resolution=32, ch=32)
    config = config.get_config()
    quantizer = config["quantizer"]["config"]
    assert quantizer["reinit"] == "cvq" and quantizer["legacy_beta"] is False
    # The backbone's own fields agree with the quantizer it holds.
    assert config["legacy_beta"] is False and config["beta"] == 0.25
    plain = VQGANBackbone.from_preset("cub", resolution=32, ch=32)
    assert plain.get_config()["legacy_beta"] is True

    model = VQGAN.from_preset(
        "cub_cvq", resolution=32, ch=32, perceptual_loss=None
    )
    model.save_to_preset(str(tmp_path))
    with open(tmp_path / "metadata.json") as f:
        summary = json.load(f)["quantizer"]
    assert summary["class_name"] == "VectorQuantizer"
    assert summary["reinit"] == "cvq" and summary["legacy_beta"] is False
    assert summary["contrastive_weight"] == 1.0
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["config"]["legacy_beta"] is False


@pytest.mark.parametrize("two_forward_passes", [False, True])
def test_two_forward_passes_update_cvq_statistics_twice(two_forward_passes):
    # CVQ's usage average starts at zeros and is an EMA of a probability
    # vector: after k updates with decay d it sums to 1 - d**k.
    quantizer = VectorQuantizer(
        32,
        16,
        legacy_beta=False,
        reinit="cvq",
        reinit_decay=0.5,
        seed=0,
        name="quantizer",
    )
    model = tiny_vqgan(
        backbone=tiny_backbone(quantizer=quantizer),
        two_forward_passes=two_forward_passes,
    )
    model.compile(learning_rate=1e-4)
    data = tf.data.Dataset.from_tensor_slices({"images": tiny_images(4)})
    model.fit(data.batch(4), epochs=1, verbose=0)
    usage = ops.convert_to_numpy(model.backbone.quantizer.embed_prob)
    expected = 0.75 if two_forward_passes else 0.5
    np.testing.assert_allclose(usage.sum(), expected, rtol=1e-5)
    assert model.get_config()["two_forward_passes"] is two_forward_passes


def test_two_forward_passes_must_be_a_bool():
    with pytest.raises(ValueError, match="two_forward_passes"):
        tiny_vqgan(two_forward_passes="yes")

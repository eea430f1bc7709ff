"""One preset system: every `from_preset` resolves names the same way."""

import os

import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_lgvq.models import LGVQ
from keras_lgvq.models import VQGAN
from keras_lgvq.models import VQGANBackbone
from keras_lgvq.models import presets
from tests.models.tiny_configs import tiny_vqgan

CLASSES = (VQGANBackbone, VQGAN, LGVQ)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_mistyped_name_lists_the_valid_names(cls):
    with pytest.raises(ValueError) as error:
        cls.from_preset("scenez")
    message = str(error.value)
    assert "'scenez'" in message
    for name in presets.list_presets(cls.__name__):
        assert f"'{name}'" in message


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_mistyped_directory_says_no_such_directory(cls, tmp_path):
    missing = str(tmp_path / "no_such_preset")
    with pytest.raises(FileNotFoundError, match="No such directory"):
        cls.from_preset(missing)
    with pytest.raises(FileNotFoundError, match="No such directory"):
        cls.from_preset("./trained_presett")


def test_directory_without_config_and_plain_file_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        VQGANBackbone.from_preset(str(tmp_path / "empty"))
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(ValueError, match="a file, not a preset directory"):
        VQGAN.from_preset(str(tmp_path / "model.keras"))


def test_every_builtin_name_is_registered_for_its_classes():
    names = presets.list_presets()
    assert {"cub", "celeba_hq", "textcaps", "scenes"} <= set(names)
    for name in names:
        assert name in presets.describe_presets()
        assert presets.describe_presets()[name]
    assert presets.list_presets("LGVQ") == presets.list_presets("VQGAN")


def test_builtin_preset_models_come_back_built():
    # The paper config (256 px, f16, K=1024) builds without weights.
    backbone = VQGANBackbone.from_preset("cub")
    assert backbone.count_params() > 50_000_000
    assert backbone.grid_size == 16
    with pytest.warns(UserWarning, match="not available offline"):
        model = LGVQ.from_preset("cub", perceptual_loss=None)
    assert model.built
    # Today's regression: this raised "isn't built".
    assert model.count_params() > backbone.count_params()


def test_overrides_keep_the_preset_quantizer_options():
    backbone = VQGANBackbone.from_preset(
        "scenes", resolution=32, num_embeddings=64
    )
    assert backbone.resolution == 32
    assert backbone.quantizer.num_embeddings == 64
    # `scenes` uses cosine codes; a rebuild must not lose them.
    assert backbone.quantizer.l2_normalize
    model = VQGAN.from_preset("scenes", resolution=32, discriminator=None)
    assert model.backbone.quantizer.l2_normalize
    assert model.backbone.resolution == 32
    with pytest.raises(ValueError, match="Valid backbone / quantizer fields"):
        VQGANBackbone.from_preset("scenes", resolutoin=32)


def test_task_and_backbone_load_from_the_same_directory(tmp_path):
    model = tiny_vqgan()
    model.build()
    images = np.random.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    preset_dir = str(tmp_path / "trained")
    model.save_to_preset(preset_dir)
    expected = ops.convert_to_numpy(model(images))
    # keras-hub's own loader reads the backbone half of the directory.
    backbone = keras_hub.models.Backbone.from_preset(preset_dir)
    assert isinstance(backbone, VQGANBackbone)
    np.testing.assert_allclose(
        ops.convert_to_numpy(backbone(images)), expected, atol=1e-6
    )
    restored = VQGAN.from_preset(preset_dir)
    assert restored.built
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(images)), expected, atol=1e-6
    )
    # The discriminator's weights come from task.weights.h5.
    for a, b in zip(
        model.discriminator.weights, restored.discriminator.weights
    ):
        np.testing.assert_array_equal(
            ops.convert_to_numpy(a), ops.convert_to_numpy(b)
        )
    assert "task.json" in os.listdir(preset_dir)


def test_backbone_only_directory_is_refused_by_the_trainer(tmp_path):
    model = tiny_vqgan()
    model.backbone.save_to_preset(str(tmp_path / "backbone"))
    with pytest.raises(ValueError, match="holds a backbone only"):
        VQGAN.from_preset(str(tmp_path / "backbone"))
    restored = VQGANBackbone.from_preset(str(tmp_path / "backbone"))
    assert restored.count_params() == model.backbone.count_params()

"""Loading a preset's shipped weights: every way the package data can be
wrong is a clear error, and `load_weights=False` never reads it."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from keras_lgvq.models import VQGAN
from keras_lgvq.models import VQGANBackbone
from keras_lgvq.models import presets
from keras_lgvq.models.vqgan import vqgan_presets

NAME = "scenes_vqgan_trained"


@pytest.fixture
def copied(tmp_path, monkeypatch):
    """The shipped preset's files copied under a fake package root."""
    spec = presets.get_preset(NAME)
    source = vqgan_presets.shipped_weights_dir(spec)
    monkeypatch.setattr(vqgan_presets, "PACKAGE_ROOT", str(tmp_path))
    target = vqgan_presets.shipped_weights_dir(spec)
    shutil.copytree(source, target)
    return spec, target


def test_preset_without_shipped_weights_is_untouched():
    spec = presets.get_preset("scenes")
    assert vqgan_presets.shipped_weights_dir(spec) is None
    backbone = VQGANBackbone.from_preset("scenes")
    before = [keras.ops.convert_to_numpy(w) for w in backbone.weights]
    assert vqgan_presets.load_shipped_weights(backbone, spec) is backbone
    for old, new in zip(before, backbone.weights):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))
    with pytest.raises(ValueError, match="ships no trained weights"):
        vqgan_presets.read_shipped_record(spec)


def test_loads_into_a_fresh_backbone(copied):
    spec, _ = copied
    backbone = VQGANBackbone.from_preset(NAME, load_weights=False)
    reference = VQGANBackbone.from_preset(NAME)
    vqgan_presets.load_shipped_weights(backbone, spec)
    for a, b in zip(backbone.weights, reference.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )


def test_missing_file_names_the_preset_and_the_fix(copied):
    _, target = copied
    os.remove(os.path.join(target, vqgan_presets.SHIPPED_WEIGHTS_FILE))
    with pytest.raises(FileNotFoundError, match=f"{NAME}.*are missing"):
        VQGANBackbone.from_preset(NAME)
    with pytest.raises(FileNotFoundError, match="load_weights=False"):
        VQGAN.from_preset(NAME, discriminator=None)
    # The untrained architecture does not need the file.
    backbone = VQGANBackbone.from_preset(NAME, load_weights=False)
    assert backbone.built
    model = VQGAN.from_preset(NAME, load_weights=False, discriminator=None)
    assert model.built


def test_git_lfs_pointer_is_named(copied):
    _, target = copied
    with open(os.path.join(target, vqgan_presets.SHIPPED_WEIGHTS_FILE), "w") as f:
        f.write(
            "version https://git-lfs.github.com/spec/v1\n"
            "oid sha256:0123\nsize 4467344\n"
        )
    with pytest.raises(FileNotFoundError, match="Git LFS pointer"):
        VQGANBackbone.from_preset(NAME)


def test_other_file_is_refused_by_its_sha256(copied):
    _, target = copied
    path = os.path.join(target, vqgan_presets.SHIPPED_WEIGHTS_FILE)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ValueError, match="is not the file trained"):
        VQGANBackbone.from_preset(NAME)
    record_path = os.path.join(target, vqgan_presets.SHIPPED_RECORD_FILE)
    with open(record_path) as f:
        record = json.load(f)
    del record["weights_sha256"]
    with open(record_path, "w") as f:
        json.dump(record, f)
    with pytest.raises(ValueError, match="records no `weights_sha256`"):
        VQGANBackbone.from_preset(NAME)


def test_architecture_override_is_refused_with_load_weights():
    with pytest.raises(ValueError, match="resolution=32 .shipped: 64."):
        VQGANBackbone.from_preset(NAME, resolution=32)
    with pytest.raises(ValueError, match="quantizer"):
        VQGANBackbone.from_preset(NAME, l2_normalize=False)
    backbone = VQGANBackbone.from_preset(
        NAME, resolution=32, load_weights=False
    )
    assert backbone.resolution == 32


def test_a_backbone_passed_in_is_left_alone():
    mine = VQGANBackbone.from_preset("scenes")
    before = keras.ops.convert_to_numpy(mine.quantizer.codebook)
    model = VQGAN.from_preset(NAME, backbone=mine, discriminator=None)
    assert model.backbone is mine
    np.testing.assert_array_equal(
        before, keras.ops.convert_to_numpy(mine.quantizer.codebook)
    )

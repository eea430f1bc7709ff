"""The recipe that trains and installs the shipped scenes tokenizers: its
flags, its scored scenes, its figures (against numpy) and its install step.
Training itself is the common recipe code (tests/recipes/common_training_test)."""

import hashlib
import json
import os

import keras
import numpy as np
import pytest

from keras_lgvq.datasets import scenes
from keras_lgvq.models import LQAEBackbone
from keras_lgvq.models import VQGANBackbone
from keras_lgvq.models.vqgan import vqgan_presets
from recipes import ship_scenes_tokenizers as ship
from tests.models.lgvq.lgvq_trained_presets_test import _numpy_psnr_ssim
from tests.models.lqae.tiny_lqae import tiny_backbone


def test_flags_and_their_errors():
    args = ship.parse_args(["--model", "lgvq", "--out", "o"])
    assert (args.epochs, args.steps_per_epoch, args.batch_size) == (4, 300, 16)
    assert args.seed == 0 and args.validation_steps == 2
    # The LQAE's baseline (VQAE) and the unguided twins ship no weights.
    with pytest.raises(SystemExit):
        ship.parse_args(["--model", "vqae", "--out", "o"])
    with pytest.raises(ValueError, match="--steps-per-epoch must be >= 1"):
        ship.parse_args(
            ["--model", "lgvq", "--out", "o", "--steps-per-epoch", "0"]
        )
    with pytest.raises(ValueError, match="go together"):
        ship.parse_args(
            ["--model", "lgvq", "--out", "o", "--from-checkpoint", "m.keras"]
        )
    assert ship.SHIPPED == {
        "lgvq": ("LGVQ", "scenes_lgvq_trained"),
        "vqgan": ("VQGAN", "scenes_vqgan_trained"),
        "cvq_lg": ("LGVQ", "scenes_cvq_lg_trained"),
        "vqct": ("VQCT", "scenes_vqct_trained"),
        "lqae": ("LQAE", "scenes_lqae_trained"),
    }
    settings = ship.comparison_settings(args)
    assert settings["total_steps"] == 1200 and settings["seeds"] == [0]
    assert settings["discriminator"] is False
    assert settings["learning_rate"] == 1e-3


def test_scored_scenes_are_the_generator_test_split():
    images = ship.test_scenes(3, seed=0)
    expected = [e["image"] for e in scenes.generate(3, seed=0, split="test")]
    assert images.dtype == np.float32 and images.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(
        np.round((images + 1.0) * 127.5).astype("uint8"), np.stack(expected)
    )


def test_figures_match_numpy():
    backbone = VQGANBackbone.from_preset("scenes", load_weights=False)
    images = ship.test_scenes(4, seed=1)
    figures = ship.reconstruction_figures(backbone, images, batch_size=2)
    x_hat = keras.ops.convert_to_numpy(backbone(images, training=False))
    x_hat = np.clip(x_hat, -1, 1).astype("float64")
    psnr, ssim = _numpy_psnr_ssim(images, x_hat)
    assert figures["images"] == 4
    np.testing.assert_allclose(figures["psnr_db_per_image"], psnr, atol=1e-3)
    assert figures["psnr_db"] == pytest.approx(psnr.mean(), abs=1e-3)
    assert figures["ssim"] == pytest.approx(ssim.mean(), abs=1e-4)


def _fake_run(out, name):
    backbone = VQGANBackbone.from_preset("scenes", load_weights=False)
    backbone.save_to_preset(os.path.join(out, "backbone_preset"))
    with open(os.path.join(out, "training.json"), "w") as f:
        json.dump({"preset": name, "steps": 2, "wall_s": 7.0, "cpu_s": 5.0}, f)


def test_install_copies_the_preset_and_records_the_hash(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    _fake_run(out, "scenes_vqgan_trained")
    target = str(tmp_path / "pkg")
    monkeypatch.setattr(ship, "package_dir", lambda name: target)
    with pytest.raises(ValueError, match="not 'scenes_lgvq_trained'"):
        ship.install(out, "scenes_lgvq_trained")
    ship.install(out, "scenes_vqgan_trained")
    assert sorted(os.listdir(target)) == [
        "config.json", "metadata.json", "model.weights.h5", "training.json",
    ]
    with open(os.path.join(target, "training.json")) as f:
        record = json.load(f)
    weights = os.path.join(target, "model.weights.h5")
    assert record["weights_sha256"] == vqgan_presets.file_sha256(weights)
    assert record["weights_bytes"] == os.path.getsize(weights)
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        ship.install(str(tmp_path / "nothing"), "scenes_vqgan_trained")


def test_package_dir_is_the_family_folder_of_the_preset():
    import keras_lgvq

    root = os.path.dirname(os.path.abspath(keras_lgvq.__file__))
    family = {"lgvq": "lgvq", "vqgan": "lgvq", "cvq_lg": "lgvq",
              "vqct": "vqct", "lqae": "lqae"}
    for kind, (_, name) in ship.SHIPPED.items():
        assert os.path.realpath(ship.package_dir(name)) == os.path.realpath(
            os.path.join(root, "models", family[kind], "trained", name)
        )
    with pytest.raises(ValueError, match="no `shipped_weights` entry"):
        ship.package_dir("scenes")


def _architecture(backbone):
    config = backbone.get_config()
    quantizer = dict(config.pop("quantizer")["config"])
    for key in ("name", "dtype", "trainable"):
        config.pop(key, None)
        quantizer.pop(key, None)
    return config, quantizer


@pytest.mark.parametrize("kind", ["vqgan", "cvq_lg", "vqct", "lqae"])
def test_the_recipe_trains_the_architecture_its_preset_loads(kind):
    # The row is built by the main job's code; the shipped preset must
    # load its weights (same backbone and quantizer options).
    args = ship.parse_args(["--model", kind, "--out", "o"])
    model = ship.build(kind, None, ship.comparison_settings(args))
    class_name, name = ship.SHIPPED[kind]
    assert type(model).__name__ == class_name
    assert getattr(model, "discriminator", None) is None
    loader = LQAEBackbone if kind == "lqae" else VQGANBackbone
    shipped = loader.from_preset(name, load_weights=False)
    assert type(shipped) is type(model.backbone)
    assert _architecture(model.backbone) == _architecture(shipped)


def test_the_lqae_record_names_its_language_model(tmp_path):
    backbone = tiny_backbone()
    out = str(tmp_path / "preset")
    backbone.save_to_preset(out)
    record = ship.portable_language_model(backbone, out)
    lm = backbone.language_model
    table = keras.ops.convert_to_numpy(lm.token_embedding_matrix())
    assert record["vocabulary_size"] == table.shape[0] == 64
    assert record["hidden_dim"] == table.shape[1]
    assert record["table_sha256"] == hashlib.sha256(
        np.ascontiguousarray(table, "float32").tobytes()
    ).hexdigest()
    # A backbone without an LM (VQGAN, VQAE) records none.
    assert ship.portable_language_model(
        VQGANBackbone.from_preset("scenes", load_weights=False), out
    ) is None


def test_install_sums_the_segments_of_a_resumed_run(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    _fake_run(out, "scenes_lgvq_trained")
    with open(os.path.join(out, ship.SEGMENTS_FILE), "w") as f:
        json.dump(
            [{"pid": 1, "wall_s": 100.0, "cpu_s": 60.0},
             {"pid": 2, "wall_s": 50.5, "cpu_s": 30.25}],
            f,
        )
    target = str(tmp_path / "pkg")
    monkeypatch.setattr(ship, "package_dir", lambda name: target)
    ship.install(out, "scenes_lgvq_trained")
    with open(os.path.join(target, "training.json")) as f:
        record = json.load(f)
    assert record["wall_s"] == 150.5
    assert record["cpu_s"] == pytest.approx(90.2, abs=0.06)
    assert record["last_process"] == {"wall_s": 7.0, "cpu_s": 5.0}
    assert [s["pid"] for s in record["segments"]] == [1, 2]


def test_time_tracking_writes_and_restarts(tmp_path):
    out = str(tmp_path)
    write = ship.track_time(out, every_s=3600)
    with open(os.path.join(out, ship.SEGMENTS_FILE)) as f:
        first = json.load(f)
    assert len(first) == 1 and first[0]["pid"] == os.getpid()
    write()
    # No backup: a fresh run, the old segments do not count.
    ship.track_time(out, every_s=3600)
    with open(os.path.join(out, ship.SEGMENTS_FILE)) as f:
        assert len(json.load(f)) == 1
    # With a backup (a resumed run) the segments add up.
    os.makedirs(os.path.join(out, "backup"))
    ship.track_time(out, every_s=3600)
    with open(os.path.join(out, ship.SEGMENTS_FILE)) as f:
        assert len(json.load(f)) == 2

"""The trained scenes tokenizers that ship inside the package (LG-VQ, its
VQGAN, CVQ+LG and, from `keras_lgvq/models/vqct/`, the VQCT).

For each shipped preset: it loads through `from_preset` with no training
and no download, its weight file is small enough to ship, and it
reconstructs the fixed procedural test scenes recorded at training time
with the recorded PSNR (to 0.05 dB) and SSIM, on every backend. Random or
mis-loaded weights miss the figure by decibels. The README's usage snippet
runs as written.
"""

import os
import re

import keras
import numpy as np
import pytest

import keras_lgvq
from keras_lgvq.comparison.systems import MODELS
from keras_lgvq.datasets import scenes
from keras_lgvq.models import LGVQ
from keras_lgvq.models import VQCT
from keras_lgvq.models import VQGAN
from keras_lgvq.models import VQCTBackbone
from keras_lgvq.models import VQGANBackbone
from keras_lgvq.models import presets
from keras_lgvq.models.lgvq.lgvq_presets import SCENES_CVQ_QUANTIZER
from keras_lgvq.models.vqgan import vqgan_presets
from recipes import ship_scenes_tokenizers as ship

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


SHIPPED = (
    "scenes_lgvq_trained",
    "scenes_vqgan_trained",
    "scenes_cvq_lg_trained",
    "scenes_vqct_trained",
)
# name -> (the untrained preset it is, quantizer options it adds, classes
# that build it).
BASES = {
    "scenes_lgvq_trained": ("scenes", {}, ("VQGANBackbone", "VQGAN", "LGVQ")),
    "scenes_vqgan_trained": ("scenes", {}, ("VQGANBackbone", "VQGAN", "LGVQ")),
    "scenes_cvq_lg_trained": (
        "scenes", SCENES_CVQ_QUANTIZER, ("VQGANBackbone", "VQGAN", "LGVQ")
    ),
    "scenes_vqct_trained": (
        "scenes_vqct", {}, ("VQGANBackbone", "VQCTBackbone", "VQGAN", "VQCT")
    ),
}
MAX_BYTES = 10 * 1024 * 1024
README = os.path.join(os.path.dirname(__file__), "..", "..", "..", "README.md")
SECTION = "### Trained tokenizers that ship"


def _record(name):
    return vqgan_presets.read_shipped_record(presets.get_preset(name))


def _test_images(record):
    """The recorded scored scenes, rebuilt (byte-exact on every machine)."""
    source = record["test_scenes"]
    images = np.stack(
        [
            example["image"]
            for example in scenes.generate(
                record["test"]["images"],
                seed=source["seed"],
                image_size=source["image_size"],
                split=source["split"],
            )
        ]
    )
    return images.astype("float32") / 127.5 - 1.0


def _numpy_psnr_ssim(x, x_hat):
    """Independent references: per-image PSNR (data range 2) and SSIM
    (11x11 Gaussian window, sigma 1.5, valid filtering, K1 0.01, K2 0.03,
    population covariances, mean over positions and channels)."""
    x = x.astype("float64")
    x_hat = x_hat.astype("float64")
    mse = ((x - x_hat) ** 2).mean(axis=(1, 2, 3))
    psnr = 10.0 * np.log10(4.0 / mse)
    taps = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    taps /= taps.sum()

    def blur(a):  # separable valid filtering over H and W
        h = sum(taps[i] * a[:, i : a.shape[1] - 10 + i] for i in range(11))
        return sum(taps[i] * h[:, :, i : h.shape[2] - 10 + i] for i in range(11))

    c1, c2 = (0.01 * 2.0) ** 2, (0.03 * 2.0) ** 2
    mu_x, mu_y = blur(x), blur(x_hat)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(x_hat * x_hat) - mu_y**2
    cov = blur(x * x_hat) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return psnr, ssim_map.mean(axis=(1, 2, 3))


def _reconstruct(backbone, images):
    out = keras.ops.convert_to_numpy(backbone(images, training=False))
    return np.clip(out, -1.0, 1.0)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_are_small_and_recorded(name):
    spec = presets.get_preset(name)
    directory = vqgan_presets.shipped_weights_dir(spec)
    weights = os.path.join(directory, vqgan_presets.SHIPPED_WEIGHTS_FILE)
    assert os.path.getsize(weights) <= MAX_BYTES
    record = _record(name)
    assert record["preset"] == name
    assert record["weights_sha256"] == vqgan_presets.file_sha256(weights)
    assert record["weights_bytes"] == os.path.getsize(weights)
    # How it was made, next to the weights: the recipe's row for it.
    assert "recipes/ship_scenes_tokenizers.py" in record["command"]
    kind = re.search(r"--model (\S+)", record["command"]).group(1)
    assert ship.SHIPPED[kind][1] == name
    for key in ("seed", "steps", "batch_size", "backend", "package_commit",
                "wall_s", "cpu_s"):
        assert record[key] is not None, key
    assert record["steps"] >= 480  # more than the main job's budget
    assert record["language_guidance"] == MODELS[kind].guided
    assert record["trainer"] == ship.SHIPPED[kind][0]
    assert record["test"]["images"] == len(record["test"]["psnr_db_per_image"])
    assert record["evaluation"]["images"] >= 256


def test_the_budgets_are_equal_and_the_pair_is_fair():
    records = {name: _record(name) for name in SHIPPED}
    first = records[SHIPPED[0]]
    for record in records.values():
        for key in ("seed", "steps", "batch_size", "train_size",
                    "learning_rate", "test_scenes"):
            assert record[key] == first[key], key
    # LG-VQ and its VQGAN start from one backbone on one backend.
    lgvq, vqgan = records["scenes_lgvq_trained"], records["scenes_vqgan_trained"]
    for key in ("initial_backbone_abs_sum", "backend"):
        assert lgvq[key] == vqgan[key], key
    assert lgvq["trainer"] == "LGVQ" and vqgan["trainer"] == "VQGAN"


@pytest.mark.parametrize("name", SHIPPED)
def test_reconstruction_matches_the_recorded_figure(name):
    record = _record(name)
    check_recorded_figure(
        record,
        VQGANBackbone.from_preset(name),
        VQGANBackbone.from_preset(name, load_weights=False),
    )


def check_recorded_figure(record, trained, untrained):
    """The shipped tokenizer `trained` reconstructs the recorded test scenes
    with the recorded PSNR (0.05 dB) / SSIM (0.002), scored by the numpy
    reference; its `untrained` architecture is at least 3 dB worse."""
    images = _test_images(record)
    psnr, ssim = _numpy_psnr_ssim(images, _reconstruct(trained, images))
    assert abs(psnr.mean() - record["test"]["psnr_db"]) < 0.05
    assert abs(ssim.mean() - record["test"]["ssim"]) < 0.002
    np.testing.assert_allclose(
        psnr, record["test"]["psnr_db_per_image"], atol=0.3
    )
    # The untrained architecture is far worse: the figure needs the weights.
    psnr_untrained, _ = _numpy_psnr_ssim(images, _reconstruct(untrained, images))
    assert psnr_untrained.mean() < record["test"]["psnr_db"] - 3.0


@pytest.mark.parametrize("name", SHIPPED)
def test_codes_for_stage_two(name):
    backbone = VQGANBackbone.from_preset(name)
    images = _test_images(_record(name))
    codes = keras.ops.convert_to_numpy(backbone.encode(images))
    # (16, 16), or VQCT's (16, 16, top-2 adjectives + noun).
    assert codes.shape == (len(images), *backbone.index_shape)
    assert codes.shape[1:3] == (16, 16)
    ids = (
        backbone.flatten_indices(codes)
        if isinstance(backbone, VQCTBackbone)
        else codes
    )
    assert ids.min() >= 0 and ids.max() < backbone.num_embeddings
    # A trained codebook is used, not collapsed onto a few codes.
    assert len(np.unique(ids)) >= 32
    decoded = keras.ops.convert_to_numpy(backbone.decode(codes))
    np.testing.assert_allclose(
        np.clip(decoded, -1, 1), _reconstruct(backbone, images), atol=1e-4
    )


def _same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(wa), keras.ops.convert_to_numpy(wb)
        )


def test_trainers_load_the_shipped_tokenizer():
    lgvq_backbone = VQGANBackbone.from_preset("scenes_lgvq_trained")
    # Without the MiniLM prior (a separate asset, not what is tested here)
    # the trainer builds in a fraction of the time.
    model = LGVQ.from_preset(
        "scenes_lgvq_trained", discriminator=None, text_prior=None
    )
    assert model.built and model.guidance is not None
    _same_weights(model.backbone, lgvq_backbone)
    vqgan_backbone = VQGANBackbone.from_preset("scenes_vqgan_trained")
    model = VQGAN.from_preset("scenes_vqgan_trained", discriminator=None)
    _same_weights(model.backbone, vqgan_backbone)
    # Two different trainings, not one file twice.
    assert not np.array_equal(
        keras.ops.convert_to_numpy(lgvq_backbone.quantizer.codebook),
        keras.ops.convert_to_numpy(vqgan_backbone.quantizer.codebook),
    )
    cvq_backbone = VQGANBackbone.from_preset("scenes_cvq_lg_trained")
    model = LGVQ.from_preset(
        "scenes_cvq_lg_trained", discriminator=None, text_prior=None
    )
    assert model.backbone.quantizer.reinit == "cvq"
    _same_weights(model.backbone, cvq_backbone)
    vqct_backbone = VQCTBackbone.from_preset("scenes_vqct_trained")
    model = VQCT.from_preset("scenes_vqct_trained", discriminator=None)
    assert isinstance(model.backbone, VQCTBackbone)
    _same_weights(model.backbone, vqct_backbone)


def test_presets_are_registered_and_described():
    for name in SHIPPED:
        base_name, quantizer, classes = BASES[name]
        for cls in classes:
            assert name in presets.list_presets(cls)
        text = presets.describe_presets()[name]
        assert "training.json" in text and "load_weights=False" in text
        spec = presets.get_preset(name)
        base = presets.get_preset(base_name)
        # The architecture is the base preset's (CVQ adds its quantizer
        # options) and the one the main job's row trains.
        assert spec["quantizer"] == {**base["quantizer"], **quantizer}
        for key in ("backbone", "text", "guidance", "model", "prior"):
            assert spec.get(key) == base.get(key), key
        record = _record(name)
        kind = re.search(r"--model (\S+)", record["command"]).group(1)
        assert MODELS[kind].preset == base_name


def _snippet():
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    assert text.count(SECTION) == 1
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    section = section.split("\n### ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return section, match.group(1)


def test_readme_snippet_runs_and_quotes_the_record():
    section, code = _snippet()
    assert len([line for line in code.splitlines() if line.strip()]) == 3
    images = _test_images(_record("scenes_lgvq_trained"))[:4]
    # The README's code assumes `import keras_lgvq` and a batch of images.
    namespace = {"images": images, "keras_lgvq": keras_lgvq}
    exec(compile(code, "README.md", "exec"), namespace)
    codes = keras.ops.convert_to_numpy(namespace["codes"])
    assert codes.shape == (4, 16, 16)
    reconstruction = keras.ops.convert_to_numpy(namespace["reconstruction"])
    psnr, _ = _numpy_psnr_ssim(images, np.clip(reconstruction, -1, 1))
    assert psnr.mean() > 20.0
    # The figures the README quotes are the recorded ones.
    for name in SHIPPED:
        record = _record(name)
        quoted = (
            f"{record['evaluation']['psnr_db']:.2f} dB / SSIM "
            f"{record['evaluation']['ssim']:.3f}"
        )
        assert quoted in section, (name, quoted)
        assert f"{record['steps']} steps" in section

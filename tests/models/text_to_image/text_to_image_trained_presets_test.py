"""The trained scenes text-to-image generators that ship inside the package.

For each shipped preset (`scenes_lgvq_text_to_image`,
`scenes_vqgan_text_to_image`, `scenes_cvq_lg_text_to_image`, made by
`recipes/ship_scenes_stage2.py --task text_to_image --install`): it loads
through `TextToImage.from_preset` with no training, its tokenizer preset
and MiniLM attached, its files are small enough to ship, and it gives the
masked-token NLL of the fixed test scenes recorded at training time (same
fixed mask, byte for byte), well below an untrained generator of the same
architecture. Each preset's figure is checked under one backend, the three
spread over TensorFlow, JAX and torch (`one_backend`, tests/conftest.py);
plain `pytest` checks all three. Skipped, with the reason, while the
weights are not installed.
"""

import numpy as np
import pytest

from keras_lgvq.models.text_to_image import TextToImage
from keras_lgvq.text_priors import minilm_assets
from tests.models.shipped_presets import checked_record
from tests.models.shipped_presets import installed_spec
from tests.models.shipped_presets import spread_over_backends

SHIPPED = (
    "scenes_lgvq_text_to_image",
    "scenes_vqgan_text_to_image",
    "scenes_cvq_lg_text_to_image",
)
# Another backend's tokenizer may pick another code at a near tie in a few
# positions and its float32 logits differ in the last bits; over the
# 6,400 scored positions that moves the mean NLL by far less than this.
NLL_TOLERANCE = 0.02


def _installed(name):
    return installed_spec(
        name,
        "TextToImage",
        minilm_assets,
        "MiniLM (the generator's text prior, an offline asset)",
    )


@pytest.mark.parametrize(
    "name", spread_over_backends(SHIPPED, ("torch", "tensorflow", "jax"))
)
def test_shipped_generator_reproduces_its_recorded_nll(name):
    from recipes import ship_scenes_stage2 as ship

    spec = _installed(name)
    record = checked_record(name, spec)
    assert record["tokenizer_preset"] == spec["tokenizer_preset"]
    test = record["test"]
    seed = record["test_scenes"]["seed"]
    model = TextToImage.from_preset(name)
    assert model.text_prior is not None and not model.tokenizer.trainable
    again = ship.score_text_to_image_nll(model, test["images"], seed)
    # The same fixed mask on every machine.
    assert again["mask_sha256"] == test["mask_sha256"]
    assert again["masked_positions"] == test["masked_positions"]
    for key in ("nll", "nll_unconditional"):
        assert abs(again[key] - test[key]) <= NLL_TOLERANCE, (
            key, again[key], test[key])
    assert abs(again["masked_accuracy"] - test["masked_accuracy"]) <= 0.01
    # Trained: far below an untrained generator (about log 256 = 5.5; a
    # few scenes pin that down, far inside the 1-nat margin).
    untrained = TextToImage.from_preset(name, load_weights=False)
    baseline = ship.score_text_to_image_nll(
        untrained, min(8, test["images"]), seed)
    assert baseline["nll"] > test["nll"] + 1.0, (baseline["nll"],
                                                  test["nll"])
    # It samples at once: code grids decoded to images.
    images = model.generate(record["test"]["captions"][:1], steps=4,
                            seed=0, **{k: v for k, v in spec[
                                "sampling"].items() if k != "steps"})
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()

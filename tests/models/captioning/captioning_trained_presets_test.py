"""The trained scenes captioners that ship inside the package.

For each shipped preset (`scenes_lgvq_captioner`, `scenes_vqgan_captioner`,
`scenes_cvq_lg_captioner`,
made by `recipes/ship_scenes_stage2.py --install`): it loads through
`Captioner.from_preset` with no training and its tokenizer preset attached,
its files are small enough to ship, and it captions the fixed procedural
test scenes recorded at training time with the recorded CIDEr-D / ROUGE-L
(Python PTB tokenizer, no Java), while an untrained model of the same
architecture scores clearly lower. Each preset's figure is checked under
one backend, the three spread over TensorFlow, JAX and torch
(`one_backend`, tests/conftest.py); plain `pytest` checks all three.
Skipped, with the reason, while the weights are not installed.
"""

import pytest

from keras_lgvq.language_models import smollm2_assets
from keras_lgvq.models.captioning import Captioner
from tests.models.shipped_presets import checked_record
from tests.models.shipped_presets import installed_spec
from tests.models.shipped_presets import spread_over_backends

SHIPPED = (
    "scenes_lgvq_captioner",
    "scenes_vqgan_captioner",
    "scenes_cvq_lg_captioner",
)
# Greedy decoding may pick another token at a near tie on another backend;
# a changed caption moves the corpus CIDEr-D over the test scenes by a few
# hundredths at most.
TOLERANCE = {"CIDEr-D": 0.05, "ROUGE-L": 0.02}


def _installed(name):
    return installed_spec(
        name, "Captioner", smollm2_assets, "SmolLM2's tokenizer (the offline LM asset)"
    )


@pytest.mark.parametrize(
    "name", spread_over_backends(SHIPPED, ("tensorflow", "jax", "torch"))
)
def test_shipped_captioner_reproduces_its_recorded_figure(name):
    from recipes import ship_scenes_stage2 as ship

    spec = _installed(name)
    record = checked_record(name, spec)
    count = record["test"]["images"]
    seed = record["test_scenes"]["seed"]
    model = Captioner.from_preset(name)
    assert model.language_model.vocabulary_ids is not None
    scores = ship.score_captioner(model, count, seed)["scores"]
    for metric, tolerance in TOLERANCE.items():
        assert abs(scores[metric] - record["test"]["scores"][metric]) <= (
            tolerance), (metric, scores[metric], record["test"]["scores"])
    untrained = Captioner.from_preset(name, load_weights=False)
    baseline = ship.score_captioner(untrained, count, seed)["scores"]
    assert baseline["CIDEr-D"] < 0.5 * record["test"]["scores"]["CIDEr-D"]

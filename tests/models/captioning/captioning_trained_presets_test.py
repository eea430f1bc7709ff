"""The trained scenes captioners that ship inside the package.

For each shipped preset (`scenes_lgvq_captioner`, `scenes_vqgan_captioner`,
made by `recipes/ship_scenes_stage2.py --install`): it loads through
`Captioner.from_preset` with no training and its tokenizer preset attached,
its files are small enough to ship, and it captions the fixed procedural
test scenes recorded at training time with the recorded CIDEr-D / ROUGE-L
(Python PTB tokenizer, no Java) on every backend, while an untrained model
of the same architecture scores clearly lower. Skipped, with the reason,
while the weights are not installed.
"""

import os

import pytest

from keras_lgvq.language_models import smollm2_assets
from keras_lgvq.models import presets
from keras_lgvq.models.captioning import Captioner
from keras_lgvq.models.captioning import shipped

SHIPPED = ("scenes_lgvq_captioner", "scenes_vqgan_captioner")
MAX_BYTES = 10 * 1024 * 1024
# Greedy decoding may pick another token at a near tie on another backend;
# a changed caption moves the corpus CIDEr-D over the test scenes by a few
# hundredths at most.
TOLERANCE = {"CIDEr-D": 0.05, "ROUGE-L": 0.02}


def _installed(name):
    spec = presets.get_preset(name, "Captioner")
    if not shipped.is_installed(spec):
        pytest.skip(
            f"{name} is not installed in this checkout (no trained files in "
            f"{shipped.shipped_model_dir(spec)}): run `python "
            "recipes/ship_scenes_stage2.py --task captioning --tokenizer "
            f"{spec['tokenizer_preset']} --out runs/ship_{name} --install`.")
    if not smollm2_assets.is_available():
        pytest.skip("SmolLM2's tokenizer (the offline LM asset) is not "
                    "fetched: `python -m keras_lgvq.language_models."
                    "smollm2_assets`.")
    return spec


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_captioner_reproduces_its_recorded_figure(name):
    from recipes import ship_scenes_stage2 as ship

    spec = _installed(name)
    record = shipped.read_shipped_model_record(spec)
    directory = shipped.shipped_model_dir(spec)
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in (
        shipped.SHIPPED_TASK_CONFIG_FILE, shipped.SHIPPED_TASK_WEIGHTS_FILE))
    assert size <= MAX_BYTES
    assert record["preset"] == name
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

"""The LQAE rows' downstream numbers, on tiny real tokenizers.

An `LQAEBackbone` over a random `MaskedLanguageModel` (the LQAE row) and
the `scenes_vqae` backbone at 16 px (the VQAE row). Few-shot prompting
with the real SmolLM2 runs in the `--smoke --all` test of
tests/recipes/scenes_compare_test.py; here the LM is absent, which must
warn and leave a note, not crash.
"""

import types

import numpy as np
import pytest

from keras_lgvq.comparison import resolve_settings
from keras_lgvq.comparison.downstream import DOWNSTREAM_SPECS
from keras_lgvq.comparison.downstream import NOT_WORDS
from keras_lgvq.comparison.downstream import downstream_metrics
from keras_lgvq.comparison.downstream import few_shot_language_model
from keras_lgvq.comparison.downstream import has_downstream
from keras_lgvq.comparison.downstream import run_downstream
from keras_lgvq.comparison.report import downstream_notes
from keras_lgvq.comparison.report import downstream_section
from keras_lgvq.evaluation.lqae_linear_probe import lqae_linear_probe
from keras_lgvq.language_models import MaskedLanguageModel
from keras_lgvq.models.lqae import LQAEBackbone

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    "red", "sky", "sun", "cat", "dog", "owl", "elm", "fox", "bee", "ant",
]


def _split(n, seed):
    """A scenes-like split: every third scene has two objects."""
    rng = np.random.default_rng(seed)
    count = np.where(np.arange(n) % 3 == 2, 2, 1)
    split = {
        "images": rng.uniform(-1, 1, (n, 16, 16, 3)).astype("float32"),
        "num_objects": count,
    }
    for attribute, k in (("shape", 4), ("color", 3), ("size", 3),
                         ("fill", 2)):
        values = np.full((n, 3), -1)
        values[:, 0] = rng.integers(0, k, n)
        values[count == 2, 1] = 0
        split[attribute] = values
    return split


@pytest.fixture(scope="module")
def lqae():
    lm = MaskedLanguageModel.random(
        vocabulary_size=len(VOCAB), hidden_dim=16, num_layers=2, num_heads=2,
        intermediate_dim=32, max_sequence_length=32, seed=0,
        vocabulary=VOCAB,
    )
    backbone = LQAEBackbone(
        image_size=16, patch_size=4, hidden_dim=16, encoder_num_layers=2,
        encoder_num_heads=2, decoder_num_layers=1, decoder_num_heads=2,
        intermediate_dim=32, language_model=lm, exclude_special_tokens=True,
    )
    return types.SimpleNamespace(backbone=backbone)


@pytest.fixture(scope="module")
def vqae():
    backbone = LQAEBackbone.from_preset(
        "scenes_vqae", image_size=16, encoder_num_layers=1,
        decoder_num_layers=1,
    )
    return types.SimpleNamespace(backbone=backbone)


@pytest.fixture(scope="module")
def settings():
    settings = resolve_settings({"smoke": True})
    # Two attributes (one single-object, the count) keep the probes short.
    settings["downstream"] = dict(
        settings["downstream"], attributes=("shape", "num_objects")
    )
    return settings


def test_rows_with_downstream():
    assert has_downstream("lqae") and has_downstream("vqae")
    assert not has_downstream("lgvq") and not has_downstream("vqct_lg")


def test_missing_smollm2_warns_and_gives_no_lm(monkeypatch):
    from keras_lgvq.language_models import smollm2_assets

    monkeypatch.setattr(smollm2_assets, "is_available", lambda path=None: False)
    with pytest.warns(UserWarning, match="smollm2_assets"):
        lm, reason = few_shot_language_model()
    assert lm is None
    assert "SmolLM2" in reason and "few-shot columns are left out" in reason


def test_lqae_row_without_language_model(lqae, settings):
    train, test = _split(24, 0), _split(12, 1)
    result = run_downstream(
        lqae, train, test, settings, seed=0, causal_lm=None,
        lm_reason="SmolLM2 missing",
    )
    probe = result["linear_probe"]
    # Every encoder block and every LM hidden state (embeddings + 2).
    assert probe["layers"] == [
        "encoder_0", "encoder_1", "lm_0", "lm_1", "lm_2"
    ]
    assert probe["feature_dim"] == 5 * 16
    assert result["few_shot"] == {"skipped": "SmolLM2 missing"}
    assert result["notes"] == ["SmolLM2 missing"]
    assert len(result["example_text"].split(" ")) == 16
    flat = downstream_metrics(result)
    assert set(flat) == {
        f"lqae_probe_{a}{s}" for a in settings["downstream"]["attributes"]
        for s in ("", "_chance")
    }
    for key, value in flat.items():
        assert 0.0 <= value <= 100.0, key
    # Chance is the majority class of the test labels (single objects for
    # shape, all scenes for the count), in percent.
    single = test["num_objects"] == 1
    shape = test["shape"][single, 0]
    assert flat["lqae_probe_shape_chance"] == pytest.approx(
        100.0 * np.bincount(shape).max() / len(shape)
    )
    counts = test["num_objects"] - 1
    assert flat["lqae_probe_num_objects_chance"] == pytest.approx(
        100.0 * np.bincount(counts).max() / len(counts)
    )
    for key in flat:
        if not key.endswith("_chance"):
            assert DOWNSTREAM_SPECS[key].reference == key + "_chance"


def test_vqae_row_probes_its_encoder_as_lqae_linear_probe(vqae, settings):
    train, test = _split(24, 2), _split(12, 3)
    result = run_downstream(vqae, train, test, settings, seed=0)
    assert result["few_shot"] == {"skipped": NOT_WORDS}
    assert result["notes"] == [NOT_WORDS]
    assert result["linear_probe"]["layers"] == ["encoder_0"]
    # The same probe as the package's `lqae_linear_probe` on the rows that
    # carry the attribute (the others labelled -1, which it drops; every
    # image goes through the tokenizer in one batch as in the comparison,
    # so the features, hence the accuracies, are identical).
    for attribute in ("shape", "num_objects"):
        labels = {}
        for name, split in (("train", train), ("test", test)):
            if attribute == "num_objects":
                labels[name] = split["num_objects"] - 1
            else:
                labels[name] = np.where(
                    split["num_objects"] == 1, split[attribute][:, 0], -1
                )
        # Class counts of the scenes attributes (8 shapes, 3 counts).
        names = {"shape": 8, "num_objects": 3}[attribute]
        direct = lqae_linear_probe(
            vqae.backbone, train["images"], labels["train"], test["images"],
            labels["test"], num_classes=names, layers="encoder",
            epochs=settings["linear_epochs"], seed=0,
        )
        entry = result["linear_probe"][attribute]
        assert entry["accuracy"] == pytest.approx(direct["accuracy"])
        assert entry["chance"] == pytest.approx(direct["chance"])


def test_no_probe_split_skips_with_reason(vqae, settings):
    result = run_downstream(vqae, None, _split(6, 4), settings, seed=0)
    assert "--probe-size" in result["linear_probe"]["skipped"]
    assert downstream_metrics(result) == {}


def test_report_section_and_notes(settings):
    lqae = {
        "linear_probe": {"shape": {"accuracy": 50.0, "chance": 25.0},
                         "color": {"accuracy": 40.0, "chance": 33.3}},
        "few_shot": {
            "shape": {"accuracy": 75.0, "chance": 50.0,
                      "causal_lm": "CausalLM(source='smollm2')"},
            "color": {"skipped": "too few classes"},
        },
        "notes": [],
        "example_text": "red sky sun",
    }
    vqae = {
        "linear_probe": {"shape": {"accuracy": 30.0, "chance": 25.0}},
        "few_shot": {"skipped": NOT_WORDS},
        "notes": [NOT_WORDS],
    }
    summary = {"lqae": {"downstream": lqae}, "vqae": {"downstream": vqae}}
    lines = downstream_section(summary, ["lqae", "vqae"], settings)
    text = "\n".join(lines)
    assert lines[0] == "## LQAE downstream"
    assert ("| Attribute | LQAE probe (%) | VQAE probe (%) | Probe chance (%) "
            "| LQAE few-shot (%) | Few-shot chance (%) |") in text
    assert "| shape | 50.0 | 30.0 | 25.0 | 75.0 | 50.0 |" in text
    assert "| color | 40.0 | - | 33.3 | n/a | - |" in text
    assert "`red sky sun`" in text and "smollm2" in text
    notes = downstream_notes(summary, ["lqae", "vqae"], settings)
    assert f"VQAE downstream: {NOT_WORDS}." in notes
    assert "LQAE few shot, color: not scored (too few classes)" in notes
    assert downstream_section({"lgvq": {}}, ["lgvq"], settings) == []

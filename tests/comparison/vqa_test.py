"""The comparison's VQA task: which rows, budgets, flat metrics /
per-question items, the report section, stored results and resume, and
smoke-sized runs of `run_vqa` / `vqa_downstream_scenes` over tiny
tokenizers (VQCT's several codes per position included)."""

import numpy as np
import pytest

from keras_lgvq import comparison
from keras_lgvq.comparison import run_state
from keras_lgvq.comparison import runner
from keras_lgvq.comparison import vqa
from keras_lgvq.comparison.budgets import vqa_budget
from keras_lgvq.evaluation import vqa_downstream
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
from tests.models.tiny_configs import tiny_backbone

# The tiny VQA models of the tests: the `--smoke` budget's settings.
TINY_SIZES = dict(train_images=6, validation_images=2, eval_images=3,
                  questions_per_image=2)


def _result(image, blind, seed=0):
    """A `run_vqa`-shaped result from per-question correctness lists
    (WUPS@0.9 = accuracy, WUPS@0.0 = accuracy / 2 + 0.5)."""
    per = {
        model: {"accuracy": list(v), "WUPS@0.9": list(v),
                "WUPS@0.0": [x / 2 + 0.5 for x in v]}
        for model, v in (("image", image), ("blind", blind))
    }
    scores = {
        model: {"test": {name: float(np.mean(values))
                         for name, values in per[model].items()}}
        for model in ("image", "blind")
    }
    settings = {"bootstrap_resamples": 200}
    ids = [f"test_{i // 2}#{i % 2}" for i in range(len(image))]
    return {
        "scores": scores,
        "type_prior": {"test": {"accuracy": 0.25, "WUPS@0.9": 0.25,
                                "WUPS@0.0": 0.5}},
        "per_question": per,
        "question_ids": ids,
        "image_vs_blind": {"test": {
            name: vqa._bootstrap(per["image"][name], per["blind"][name],
                                 settings, seed)
            for name in vqa.VQA_METRICS.values()
        }},
        "examples": [{"question_id": ids[0], "question": "what | color?",
                      "answer": "red", "image": "red", "blind": "blue"}],
        "loss": {"image": [1.0], "blind": [1.1]},
        "val_loss": {"image": [1.0], "blind": [1.1]},
        "sizes": dict(TINY_SIZES, questions={"train": 12, "test": 6}),
        "settings": dict(vqa_budget("smoke")["settings"]),
        "language_model": "smollm2",
        "seconds": {"total": 1.0},
        "notes": ["no held-out-combination question among the test scenes"],
    }


def test_rows_whose_codes_the_vqa_model_reads():
    rows = [k for k in comparison.MODELS if vqa.has_vqa(k)]
    # VQCT's (B, h, w, S) codes included; the LQAE ViT rows are not.
    assert rows == ["lgvq", "vqgan", "cvq_lg", "cvq", "vqct_lg", "vqct"]
    with pytest.raises(ValueError, match="`kind`"):
        vqa.has_vqa("vqtc")


def test_budgets_and_fingerprint():
    assert vqa_budget("quick") is None
    # Off in the default budget (it does not fit its 30 minutes) unless
    # --all; --no-vqa wins.
    assert vqa_budget("default") is None
    assert vqa_budget("default", all_rows=True, off=True) is None
    full = vqa_budget("default", all_rows=True)
    assert full["sizes"] == vqa_downstream.VQA_SIZES
    assert full["settings"] == vqa_downstream.check_vqa_settings(None)
    assert full["settings"]["language_model_training"] == "full"
    smoke = vqa_budget("smoke")
    assert smoke["sizes"]["eval_images"] == 4
    assert smoke["settings"]["decoder_width"] == 16
    with pytest.raises(ValueError, match="captioning-lm"):
        vqa_budget("smoke", language_model="")
    with pytest.raises(ValueError, match="`mode`"):
        vqa_budget("fast")
    default = comparison.resolve_settings({})
    everything = comparison.resolve_settings({"all": True})
    off = comparison.resolve_settings({"all": True, "no_vqa": True})
    assert default["vqa"] is None and off["vqa"] is None
    assert everything["vqa"] == full
    # Turning the task on or off keeps the stored tokenizers reusable;
    # another VQA setup (another LM) does not.
    fingerprint = comparison.result_fingerprint
    assert fingerprint(default)["vqa_task"] == full
    assert fingerprint(everything) == fingerprint(off)
    other = comparison.resolve_settings({"all": True,
                                         "captioning_lm": "x.gguf"})
    assert fingerprint(other)["vqa_task"] != fingerprint(everything)[
        "vqa_task"]


def test_unavailable_reasons(monkeypatch):
    from keras_lgvq.language_models import smollm2_assets
    from keras_lgvq.metrics import vqa_metrics

    quick = comparison.resolve_settings({"quick": True})
    assert "--quick" in vqa.vqa_unavailable(quick)
    default = comparison.resolve_settings({})
    assert vqa.vqa_unavailable(default) == vqa.OFF_BY_DEFAULT
    off = comparison.resolve_settings({"smoke": True, "no_vqa": True})
    assert "--no-vqa" in vqa.vqa_unavailable(off)
    other = comparison.resolve_settings(
        {"smoke": True, "captioning_lm": "/x/lm.gguf"})
    assert vqa.vqa_unavailable(other) is None
    smoke = comparison.resolve_settings({"smoke": True})
    monkeypatch.setattr(smollm2_assets, "is_available", lambda *a: False)
    with pytest.warns(UserWarning, match="smollm2_assets"):
        reason = vqa.vqa_unavailable(smoke)
    assert smollm2_assets.fetch_command() in reason

    def no_wordnet(path=None):
        raise FileNotFoundError("WordNet 3.0 database files not found\nmore")

    monkeypatch.setattr(vqa_metrics, "find_wordnet_dir", no_wordnet)
    with pytest.warns(UserWarning, match="WordNet"):
        reason = vqa.vqa_unavailable(other)
    assert reason.endswith("(WordNet 3.0 database files not found)")


def test_flat_metrics_items_report_section_and_notes():
    image = [1.0, 0.0, 1.0, 1.0]
    blind = [0.0, 0.0, 1.0, 0.0]
    result = _result(image, blind)
    assert vqa.vqa_metrics(result) == {
        "vqa_accuracy": 0.75, "vqa_accuracy_blind": 0.25,
        "vqa_wups_0_9": 0.75, "vqa_wups_0_9_blind": 0.25,
        "vqa_wups_0_0": 0.875, "vqa_wups_0_0_blind": 0.625,
    }
    assert vqa.vqa_items(result) == {
        "vqa_accuracy": image, "vqa_wups_0_9": image,
        "vqa_wups_0_0": [x / 2 + 0.5 for x in image]}
    # Every flat key has a spec whose reference is the blind model's key.
    for key, spec in vqa.VQA_SPECS.items():
        assert spec.reference == f"{key}_blind" and spec.higher_is_better
    test = result["image_vs_blind"]["test"]["accuracy"]
    assert test["difference"] == pytest.approx(0.5)
    summary = {
        "lgvq": {"vqa": result},
        "vqgan": {"vqa": _result(blind, blind)},
        "lqae": {},
        "comparison": {"answered": ["lgvq", "vqgan"]},
    }
    kinds = ["lgvq", "vqgan", "lqae"]
    text = "\n".join(vqa.vqa_section(summary, kinds))
    assert "## Downstream: VQA" in text
    assert "| LG-VQ | image | test | 75.0 | 75.0 | 87.5 |" in text
    assert "| LG-VQ | blind | test | 25.0 | 25.0 | 62.5 |" in text
    assert "| LG-VQ | type prior | test | 25.0 | 25.0 | 50.0 |" in text
    assert "| VQGAN | image | test | 25.0 | 25.0 | 62.5 |" in text
    assert "| LG-VQ | test | +50.0 [" in text
    # A '|' inside a question does not break the table.
    assert "| what / color? | red | red | blue |" in text
    assert vqa.vqa_section({"lgvq": {}}, ["lgvq"]) == []
    notes = vqa.vqa_notes(summary, kinds, {})
    assert f"LQAE {vqa.NOT_ANSWERED}." in notes
    assert ("VQA (LG-VQ): no held-out-combination question among the test "
            "scenes.") in notes
    skipped = {"comparison": {"vqa_skipped": vqa.OFF_BY_DEFAULT}}
    assert vqa.vqa_notes(skipped, ["lgvq"], {}) == [
        f"VQA downstream task: {vqa.OFF_BY_DEFAULT}."]


class _Progress:
    """Records the progress steps a unit went through."""

    def __init__(self):
        self.steps = []

    def step(self, phase, kind, seed):
        import contextlib

        self.steps.append((phase, kind, seed))
        return contextlib.nullcontext()


def test_vqa_unit_stores_and_a_resumed_unit_reuses(tmp_path, monkeypatch):
    from keras_lgvq.comparison.progress import Stopwatch

    out = str(tmp_path)
    stored = _result([1.0, 0.0], [0.0, 0.0])
    calls = []

    def fake_run_vqa(tokenizer, settings, seed):
        calls.append((tokenizer, seed))
        return stored

    # The task table reads `vqa.run_vqa` when it runs.
    monkeypatch.setattr(vqa, "run_vqa", fake_run_vqa)
    settings = {"out": out}
    fresh = {"per_item": {"psnr": [1.0, 2.0]}, "tokenizer": "backbone"}
    progress = _Progress()
    runner.vqa_unit("lgvq", 0, fresh, settings, Stopwatch(), progress)
    assert calls == [("backbone", 0)]
    assert progress.steps == [("vqa", "lgvq", 0)]
    assert run_state.load_vqa(out, "lgvq", 0) == stored
    assert fresh["vqa_metrics"]["vqa_accuracy"] == 0.5
    # The per-question values join the unit's per-item scores.
    assert fresh["per_item"] == {"psnr": [1.0, 2.0],
                                 "vqa_accuracy": [1.0, 0.0],
                                 "vqa_wups_0_9": [1.0, 0.0],
                                 "vqa_wups_0_0": [1.0, 0.5]}
    # A reused unit reads vqa.json and trains nothing.
    reused = {"per_item": {}, "reused": True}
    progress = _Progress()
    runner.vqa_unit("lgvq", 0, reused, settings, Stopwatch(), progress)
    assert len(calls) == 1 and progress.steps == []
    assert reused["vqa"] == stored
    # A reused unit without a stored vqa.json (e.g. run with --no-vqa)
    # runs the task over its preset.
    other = {"per_item": {}, "reused": True}
    runner.vqa_unit("vqgan", 1, other, settings, Stopwatch(), _Progress())
    assert calls[-1] == (
        run_state.unit_dir(out, "vqgan", 1) + "/preset", 1)
    # Retraining the tokenizer invalidates the answers made over it.
    run_state.save_unit(out, "lgvq", 0, {"kind": "lgvq"})
    assert run_state.load_vqa(out, "lgvq", 0) is None


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return write_tiny_lm_gguf(tmp_path_factory.mktemp("lm") / "tiny.gguf")


def _tiny_settings():
    return dict(vqa_budget("smoke")["settings"], decoder_width=8)


# A whole VQA task run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
def test_vqa_downstream_scenes_pairs_image_and_blind_models(tiny_lm):
    import keras

    tokenizer = tiny_backbone(resolution=32, attn_resolutions=())
    initial, inputs = {}, {}

    def fit(model, name, data, validation_data):
        # What each model starts from and reads, before it trains.
        initial[name] = [np.array(w) for w in model.get_weights()]
        inputs[name] = data
        return model.fit(data, validation_data=validation_data,
                         batch_size=8, epochs=1, verbose=0)

    out = vqa_downstream.vqa_downstream_scenes(
        tokenizer, seed=3, language_model=tiny_lm,
        settings=_tiny_settings(), fit=fit, **TINY_SIZES)
    assert set(initial) == {"image", "blind"}
    assert len(initial["image"]) == len(initial["blind"])
    for a, b in zip(initial["image"], initial["blind"]):
        np.testing.assert_array_equal(a, b)
    # Same questions and answers; codes for one, one constant grid for
    # the other.
    np.testing.assert_array_equal(inputs["image"]["token_ids"],
                                  inputs["blind"]["token_ids"])
    np.testing.assert_array_equal(inputs["image"]["answer_ids"],
                                  inputs["blind"]["answer_ids"])
    assert "codes" in inputs["image"] and "codes" not in inputs["blind"]
    vectors = np.asarray(inputs["blind"]["code_vectors"])
    assert np.all(vectors == vectors[:1])
    # Per-question values aligned with the ids; their means are the scores.
    ids = out["question_ids"]["test"]
    assert len(ids) == len(set(ids)) == out["sizes"]["questions"]["test"]
    for model in ("image", "blind"):
        per = out[model]["per_question"]["test"]
        scores = out[model]["scores"]["test"]
        for name in vqa_downstream.PER_QUESTION_METRICS:
            assert len(per[name]) == len(ids)
            assert np.mean(per[name]) == pytest.approx(scores[name])
        truth = [q["answer"] for q in out["questions"]["test"]]
        assert per["accuracy"] == [
            float(a == t) for a, t in zip(out[model]["answers"]["test"],
                                         truth)]
    assert len(out["image"]["loss"]) == 1
    assert "sets" not in out
    keras.backend.clear_session()


# A whole VQA task run (its model code is tested on every backend).
@pytest.mark.end_to_end("torch")
def test_run_vqa_at_smoke_size_over_vqct_codes(tiny_lm):
    from keras_lgvq.comparison.budgets import SMOKE_VQCT
    from keras_lgvq.models import VQCTBackbone

    tokenizer = VQCTBackbone.from_preset("scenes_vqct", **SMOKE_VQCT)
    settings = comparison.resolve_settings({
        "smoke": True, "captioning_lm": tiny_lm,
        "bootstrap_resamples": 100})
    settings["vqa"]["sizes"] = dict(TINY_SIZES)
    settings["vqa"]["settings"] = _tiny_settings()
    result = vqa.run_vqa(tokenizer, settings, seed=0)
    n = len(result["question_ids"])
    assert n == result["sizes"]["questions"]["test"] > 0
    items = vqa.vqa_items(result)
    flat = vqa.vqa_metrics(result)
    assert set(flat) == set(vqa.VQA_SPECS) | {
        f"{k}_blind" for k in vqa.VQA_SPECS}
    for key, values in items.items():
        assert len(values) == n
        assert np.mean(values) == pytest.approx(flat[key])
    tests = result["image_vs_blind"]["test"]
    assert set(tests) == set(vqa.VQA_METRICS.values())
    assert tests["accuracy"]["n"] == n and tests["accuracy"]["verdict"]
    assert len(result["examples"]) == min(vqa.STORED_EXAMPLES, n)
    assert result["language_model"] == tiny_lm


def test_blind_vectors_of_vqct_codes_are_one_mean_grid():
    from keras import ops

    from keras_lgvq.comparison.budgets import SMOKE_VQCT
    from keras_lgvq.evaluation.captioning_downstream import blind_code_vectors
    from keras_lgvq.models import VQCTBackbone

    tokenizer = VQCTBackbone.from_preset("scenes_vqct", **SMOKE_VQCT)
    quantizer = tokenizer.quantizer
    rng = np.random.default_rng(0)
    grid = int(tokenizer.grid_size)
    adjectives = rng.integers(0, quantizer.num_adjectives,
                              (5, grid, grid, quantizer.top_k))
    nouns = rng.integers(0, quantizer.num_nouns, (5, grid, grid, 1))
    codes = np.concatenate([adjectives, nouns], -1).astype("int32")
    blind = blind_code_vectors(tokenizer, codes, 3)
    dim = int(quantizer.embedding_dim)
    assert blind.shape == (3, grid * grid, dim)
    # Independently: the codebook rows looked up per slot, adjectives
    # averaged, the noun concatenated, then the mean over the 5 grids.
    codebook = np.asarray(ops.convert_to_numpy(
        quantizer.get_codebook(training=False)))
    adjective = codebook[:quantizer.num_adjectives][adjectives].mean(-2)
    noun = codebook[quantizer.num_adjectives:][nouns[..., 0]]
    want = np.concatenate([adjective, noun], -1).reshape(
        5, grid * grid, dim).mean(0)
    for row in blind:
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-6)


def test_vqa_settings_are_checked():
    check = vqa_downstream.check_vqa_settings
    assert check({"decoder": "pretrained"})["language_model_training"] == (
        "frozen")
    with pytest.raises(ValueError, match="Unknown VQA settings"):
        check({"layers": 2})
    with pytest.raises(ValueError, match="scratch decoder"):
        check({"language_model_training": "lora"})
    with pytest.raises(ValueError, match="projection_dim"):
        check({"projection_dim": 4})
    with pytest.raises(ValueError, match="learning_rate"):
        check({"learning_rate": 0})
    with pytest.raises(ValueError, match="train_images"):
        vqa_downstream.vqa_downstream_scenes(tiny_backbone(),
                                             train_images=0)

"""`captioning_downstream_scenes` at a tiny size (tiny tokenizer, a scratch
decoder over a tiny GGUF LM's tokenizer, Python PTB tokenizer) and the
per-image caption scores."""

import numpy as np
import pytest

from keras_lgvq.evaluation.captioning_downstream import CAPTIONING_DEFAULTS
from keras_lgvq.evaluation.captioning_downstream import captioning_downstream_scenes
from keras_lgvq.evaluation.captioning_downstream import check_captioning_settings
from keras_lgvq.evaluation.captioning_downstream import decoder_vocabulary
from keras_lgvq.evaluation.captioning_downstream import load_language_model
from keras_lgvq.evaluation.captioning_downstream import paired_caption_tests
from keras_lgvq.evaluation.captioning_downstream import per_image_caption_scores
from keras_lgvq.evaluation.captioning_downstream import resolve_tokenizer
from keras_lgvq.metrics import evaluate_captions
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
from tests.models.tiny_configs import tiny_backbone

TINY = {"decoder_width": 16, "decoder_layers": 1, "mapper_width": 8,
        "prefix_length": 4, "max_caption_length": 8, "epochs": 2,
        "batch_size": 4}


def test_per_image_scores_match_the_corpus_scores_and_hand_values():
    refs = [["a red cube on the left", "a red box"],
            ["two blue balls", "a pair of blue spheres"],
            ["a green star at the top", "one green star"]]
    preds = ["a red box", "three blue balls", "a green star at the top"]
    per = per_image_caption_scores(refs, preds, use_java=False)
    corpus = evaluate_captions(refs, preds, use_java=False)
    assert per["METEOR"] is None
    # ROUGE-L and CIDEr-D: the corpus score is the mean over images.
    for name in ("ROUGE-L", "CIDEr-D"):
        assert len(per[name]) == 3
        np.testing.assert_allclose(np.mean(per[name]), corpus[name],
                                   rtol=1e-9)
    # Hand values: an exact copy of a reference has ROUGE-L 1 (its best
    # reference) and sentence BLEU-4 1 ("a red box" too for ROUGE-L).
    np.testing.assert_allclose(per["ROUGE-L"][0], 1.0)
    np.testing.assert_allclose(per["ROUGE-L"][2], 1.0)
    np.testing.assert_allclose(per["BLEU-4"][2], 1.0, rtol=1e-6)
    assert per["BLEU-4"][1] < per["BLEU-4"][2]
    # "three blue balls" vs "two blue balls": LCS 2 of 3 words both ways,
    # so ROUGE-L (beta 1.2) is 2/3 against that reference, and less
    # against the other ("blue" only).
    np.testing.assert_allclose(per["ROUGE-L"][1], 2 / 3, rtol=1e-9)


def test_sentence_bleu_without_a_matching_four_gram_is_exactly_zero():
    # Unrounded, pycocoevalcap's smoothing gives these two wrong captions
    # different tiny positive scores, and a paired test over many such
    # images would call the difference significant.
    refs = [["a red box on the left", "a red square at the left"]] * 2
    preds = ["a blue circle on the right side", "green"]
    per = per_image_caption_scores(refs, preds, use_java=False)
    assert per["BLEU-4"] == [0.0, 0.0]


def test_settings_are_checked():
    assert check_captioning_settings(None) == CAPTIONING_DEFAULTS
    with pytest.raises(ValueError, match="Unknown captioning settings"):
        check_captioning_settings({"epoch": 3})
    with pytest.raises(ValueError, match="epochs"):
        check_captioning_settings({"epochs": 0})
    with pytest.raises(ValueError, match="projection_dim"):
        check_captioning_settings({"mapper": "pooled", "projection_dim": 4})
    with pytest.raises(ValueError, match="decoder"):
        check_captioning_settings({"decoder": "gpt"})
    # The scenes default is a compact scratch decoder vocabulary.
    assert CAPTIONING_DEFAULTS["decoder_vocabulary"] == "compact"
    with pytest.raises(ValueError, match="decoder_vocabulary"):
        check_captioning_settings({"decoder_vocabulary": "small"})


def test_a_compact_scratch_decoder_needs_its_vocabulary(tmp_path):
    lm = write_tiny_lm_gguf(tmp_path / "tiny.gguf")
    settings = check_captioning_settings(dict(TINY))
    with pytest.raises(ValueError, match="vocabulary_ids"):
        load_language_model(settings, lm)
    ids = decoder_vocabulary(settings, lm, ["red cube", "blue ball"])
    model_lm = load_language_model(settings, lm, vocabulary_ids=ids)
    assert model_lm.vocabulary_ids.tolist() == ids
    assert model_lm.vocabulary_size == len(ids)
    full = check_captioning_settings(dict(TINY, decoder_vocabulary="full"))
    assert decoder_vocabulary(full, lm, ["red cube"]) is None
    with pytest.raises(ValueError, match="vocabulary_ids"):
        load_language_model(full, lm, vocabulary_ids=ids)
    assert load_language_model(full, lm).vocabulary_ids is None


def test_image_and_blind_captioners_train_and_score(tmp_path):
    tokenizer = tiny_backbone(resolution=32, attn_resolutions=())
    lm = write_tiny_lm_gguf(tmp_path / "tiny.gguf")
    result = captioning_downstream_scenes(
        tokenizer, train_images=6, validation_images=2, eval_images=4,
        captions_per_image=2, seed=3, language_model=lm, settings=TINY,
        use_java=False,
    )
    assert result["settings"]["decoder"] == "scratch"
    # The default compact decoder vocabulary: the captions' ids (the tiny
    # LM spells captions letter by letter) plus the stop id.
    assert 3 <= result["decoder_vocabulary_size"] < 30
    assert len(result["image_ids"]) == 4
    for name in ("image", "blind"):
        entry = result[name]
        scores = entry["scores"]
        assert scores["count"] == 4 and scores["METEOR"] is None
        for metric in ("BLEU-1", "BLEU-4", "ROUGE-L"):
            assert 0.0 <= scores[metric] <= 1.0
        assert 0.0 <= scores["CIDEr-D"] <= 10.0
        assert len(entry["loss"]) == len(entry["val_loss"]) == 2
        assert np.all(np.isfinite(entry["loss"] + entry["val_loss"]))
        for metric in ("BLEU-4", "ROUGE-L", "CIDEr-D"):
            values = entry["per_image"][metric]
            assert len(values) == 4 and np.all(np.isfinite(values))
        assert len(entry["predictions"]) == 4
    # The blind model sees one constant input: one caption for every
    # image. Same seed and initial weights, different inputs: the image
    # model's training differs.
    assert len(set(result["blind"]["predictions"])) == 1
    assert result["image"]["loss"] != result["blind"]["loss"]
    # Paired tests of the per-image scores; METEOR needs Java.
    assert set(result["paired"]) == {"BLEU-4", "ROUGE-L", "CIDEr-D"}
    for metric, test in result["paired"].items():
        want = np.mean(result["image"]["per_image"][metric]) - np.mean(
            result["blind"]["per_image"][metric])
        np.testing.assert_allclose(test["difference"], want, atol=1e-12)
        assert test["n"] == 4
    with pytest.raises(ValueError, match="captions_per_image"):
        captioning_downstream_scenes(tokenizer, captions_per_image=11,
                                     language_model=lm, settings=TINY)


def test_tokenizer_from_a_shipped_preset_name_or_a_path(tmp_path):
    from keras import ops

    from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

    tokenizer = resolve_tokenizer("scenes_lgvq_trained")
    assert not tokenizer.trainable
    assert (int(tokenizer.grid_size), int(tokenizer.resolution)) == (16, 64)
    # The shipped weights, not the untrained architecture.
    want = VQGANBackbone.from_preset("scenes_lgvq_trained")
    untrained = VQGANBackbone.from_preset("scenes_lgvq_trained",
                                          load_weights=False)
    table = ops.convert_to_numpy(tokenizer.quantizer.indices_to_codes(
        np.arange(8)))
    np.testing.assert_array_equal(table, ops.convert_to_numpy(
        want.quantizer.indices_to_codes(np.arange(8))))
    assert not np.array_equal(table, ops.convert_to_numpy(
        untrained.quantizer.indices_to_codes(np.arange(8))))
    # A built-in name without shipped weights would be untrained.
    with pytest.raises(ValueError, match="scenes_vqgan_trained"):
        resolve_tokenizer("scenes")
    # Paths go to `load_tokenizer` as before.
    path = str(tmp_path / "tokenizer.keras")
    tiny_backbone(resolution=32, attn_resolutions=()).save(path)
    assert int(resolve_tokenizer(path).resolution) == 32
    with pytest.raises(FileNotFoundError):
        resolve_tokenizer(str(tmp_path / "missing.keras"))


def test_paired_caption_tests_difference_and_interval():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 80)
    better = {"CIDEr-D": (base + 0.5).tolist(), "BLEU-4": base.tolist(),
              "ROUGE-L": base.tolist(), "METEOR": None}
    blind = {"CIDEr-D": base.tolist(), "BLEU-4": base.tolist(),
             "ROUGE-L": (base + rng.normal(0, 0.1, 80)).tolist(),
             "METEOR": base.tolist()}
    tests = paired_caption_tests(better, blind)
    # METEOR is left out when one side has none.
    assert set(tests) == {"BLEU-4", "ROUGE-L", "CIDEr-D"}
    np.testing.assert_allclose(tests["CIDEr-D"]["difference"], 0.5)
    assert tests["CIDEr-D"]["significant"]
    np.testing.assert_allclose(tests["CIDEr-D"]["ci_low"], 0.5)
    assert tests["BLEU-4"]["difference"] == 0.0
    assert not tests["BLEU-4"]["significant"]
    np.testing.assert_allclose(
        tests["ROUGE-L"]["difference"],
        np.mean(better["ROUGE-L"]) - np.mean(blind["ROUGE-L"]))

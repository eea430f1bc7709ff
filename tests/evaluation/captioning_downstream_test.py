"""`captioning_downstream_scenes` at a tiny size (tiny tokenizer, a scratch
decoder over a tiny GGUF LM's tokenizer, Python PTB tokenizer) and the
per-image caption scores."""

import numpy as np
import pytest

from keras_lgvq.evaluation.captioning_downstream import CAPTIONING_DEFAULTS
from keras_lgvq.evaluation.captioning_downstream import captioning_downstream_scenes
from keras_lgvq.evaluation.captioning_downstream import check_captioning_settings
from keras_lgvq.evaluation.captioning_downstream import per_image_caption_scores
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


def test_image_and_blind_captioners_train_and_score(tmp_path):
    tokenizer = tiny_backbone(resolution=32, attn_resolutions=())
    lm = write_tiny_lm_gguf(tmp_path / "tiny.gguf")
    result = captioning_downstream_scenes(
        tokenizer, train_images=6, validation_images=2, eval_images=4,
        captions_per_image=2, seed=3, language_model=lm, settings=TINY,
        use_java=False,
    )
    assert result["settings"]["decoder"] == "scratch"
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
    with pytest.raises(ValueError, match="captions_per_image"):
        captioning_downstream_scenes(tokenizer, captions_per_image=11,
                                     language_model=lm, settings=TINY)

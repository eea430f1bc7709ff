import json
import os

import numpy as np
import pytest

import keras

from keras_lgvq.text_priors.bert_text_prior import BertTextPrior
from keras_lgvq.text_priors.clip_text_prior import CLIPTextPrior
from keras_lgvq.text_priors.text_prior_registry import get
from tests.text_priors import reference_impls as ref


def test_local_directories_are_detected(tmp_path):
    clip_dir = str(tmp_path / "clip")
    ref.write_tiny_hf_clip(clip_dir, layers=1)
    clip = get(clip_dir, sequence_length=12)
    assert isinstance(clip, CLIPTextPrior) and clip.sequence_length == 12
    assert get(clip, sequence_length=12) is clip
    with pytest.raises(ValueError, match="sequence_length=12"):
        get(clip, sequence_length=30)

    bert_dir = str(tmp_path / "bert")
    ref.write_tiny_hf_bert(bert_dir)
    bert = get(bert_dir, sequence_length=8)
    assert isinstance(bert, BertTextPrior)
    assert (bert.start_token_id, bert.end_token_id) == (2, 3)
    assert (bert.pad_token_id, bert.mask_token_id) == (0, 4)
    ids, mask = bert.tokenize(["The small birds.", "A BIRD with a red crown"])
    ids = keras.ops.convert_to_numpy(ids)
    np.testing.assert_array_equal(
        ids, [[2, 10, 6, 7, 12, 11, 3, 0], [2, 5, 7, 13, 5, 8, 9, 3]]
    )
    out = bert(ids, mask)
    hidden = ref.bert_reference(bert_dir, ids[:1, :7])[0]
    mean = hidden.mean(0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out["token_features"])[0, :7],
        hidden,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out["sentence_feature"])[0],
        mean / np.linalg.norm(mean),
        atol=1e-4,
    )


def test_unknown_names_list_the_options(tmp_path):
    with pytest.raises(ValueError, match="minilm") as info:
        get("no-such-prior")
    assert "clip_vit_base_patch32" in str(info.value)
    with pytest.raises(ValueError, match="no config.json"):
        get(str(tmp_path))
    with open(tmp_path / "config.json", "w") as f:
        json.dump({"model_type": "gpt2"}, f)
    with pytest.raises(ValueError, match="gpt2"):
        get(str(tmp_path))
    with pytest.raises(ValueError, match="non-empty string"):
        get(3)


def test_clip_name_uses_local_copy_or_preset(tmp_path, monkeypatch):
    from keras_hub.src.utils import preset_utils

    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    calls = []

    def offline_get_file(preset, path):
        calls.append(preset)
        raise ConnectionError("no network")

    monkeypatch.setattr(preset_utils, "get_file", offline_get_file)
    with pytest.raises(RuntimeError, match="network") as info:
        get("clip")
    assert calls == ["clip_vit_base_patch32"]
    assert "clip-vit-b-32" in str(info.value)
    local = os.path.join(str(tmp_path), "text_priors", "clip-vit-b-32")
    ref.write_tiny_hf_clip(local, layers=1)
    prior = get("clip", sequence_length=8)
    assert isinstance(prior, CLIPTextPrior) and prior.name_or_path == "clip"
    assert prior.hidden_dim == 32 and calls == ["clip_vit_base_patch32"]

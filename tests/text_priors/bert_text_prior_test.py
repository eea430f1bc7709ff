import os

import numpy as np
import pytest
import tensorflow as tf

import keras

from keras_lgvq.text_priors import minilm_assets
from keras_lgvq.text_priors.bert_text_prior import BertTextPrior
from keras_lgvq.text_priors.text_prior_registry import get
from tests.text_priors import reference_impls as ref

pytestmark = pytest.mark.skipif(
    not minilm_assets.is_available(),
    reason=(
        "MiniLM is not in the keras_lgvq cache; fetch it with "
        f"`{minilm_assets.fetch_command()}` (CI does this in set-up)."
    ),
)

SENTENCE = "A small bird with a red crown."
# Ids of SENTENCE from bert-base-uncased's vocabulary (Hugging Face).
SENTENCE_IDS = [101, 1037, 2235, 4743, 2007, 1037, 2417, 4410, 1012, 102]


@pytest.fixture(scope="module")
def prior():
    return get("minilm")


def test_attributes(prior):
    assert isinstance(prior, BertTextPrior)
    assert prior.vocabulary_size == 30522
    assert prior.hidden_dim == prior.sentence_dim == 384
    assert (prior.start_token_id, prior.end_token_id) == (101, 102)
    assert (prior.pad_token_id, prior.mask_token_id) == (0, 103)
    assert prior.sequence_length == 30 and prior.name_or_path == "minilm"
    assert tuple(prior.token_embeddings.shape) == (30522, 384)
    assert prior.trainable_weights == []


def test_tokenize_matches_hugging_face(prior):
    import tokenizers

    hf = tokenizers.Tokenizer.from_file(
        os.path.join(minilm_assets.minilm_dir(), "tokenizer.json")
    )
    hf.no_padding()
    hf.no_truncation()
    captions = [
        SENTENCE,
        "Café naïve 2023 don't!!",
        "",
        "日本の鳥 🐦 über",
        "tab\there\nnewline   spaces",
        "a" * 150 + " b",
        "hello-world, e.g. U.S.A.; (test) #tag @me",
        "the bird " * 20,
    ]
    token_ids, mask = prior.tokenize(captions)
    token_ids = keras.ops.convert_to_numpy(token_ids)
    mask = keras.ops.convert_to_numpy(mask)
    assert token_ids[0, :10].tolist() == SENTENCE_IDS
    for row, row_mask, caption in zip(token_ids, mask, captions):
        expected = hf.encode(caption).ids
        if len(expected) > 30:  # Truncation keeps [SEP] last.
            expected = expected[:29] + [102]
        valid = row[row_mask].tolist()
        assert valid == expected, caption
        assert (row[~row_mask] == 0).all()


def test_reference_embedding(prior):
    out = prior.encode([SENTENCE, SENTENCE + " " + "very " * 40])
    sentence = out["sentence_feature"][0]
    hidden = ref.bert_reference(minilm_assets.minilm_dir(), [SENTENCE_IDS])[0]
    mean = hidden.mean(0)
    np.testing.assert_allclose(sentence, mean / np.linalg.norm(mean), atol=1e-4)
    # Padded positions are masked out of attention and pooling.
    np.testing.assert_allclose(
        out["token_features"][0, :10], hidden, atol=1e-4
    )
    norms = np.linalg.norm(out["sentence_feature"], axis=-1)
    np.testing.assert_allclose(norms, 1, atol=1e-5)
    # Truncated caption: 30 valid tokens, [SEP] last.
    assert out["padding_mask"][1].all() and out["token_ids"][1, -1] == 102


def test_paraphrases_closer_than_unrelated(prior):
    out = prior.encode(
        [
            "a photo of a red car",
            "a picture of a crimson automobile",
            "a bowl of soup on a table",
            "a small bird with a red crown",
            "a tiny bird that has a red head",
        ]
    )
    s = out["sentence_feature"]
    sim = s @ s.T
    assert sim[0, 1] > 0.6 and sim[0, 2] < 0.2
    assert sim[3, 4] > sim[3, 2] + 0.3
    assert sim[0, 1] > sim[0, 3]


def test_call_matches_encode_and_tf_data(prior):
    captions = ["a small bird", "", "a bird " * 40]
    ds = tf.data.Dataset.from_tensor_slices(captions).batch(3)
    ids, mask = next(iter(ds.map(prior.tokenize)))
    out = prior({"token_ids": ids.numpy(), "padding_mask": mask.numpy()})
    encoded = prior.encode(captions, batch_size=2)
    np.testing.assert_array_equal(ids.numpy(), encoded["token_ids"])
    assert ids.numpy()[1, :3].tolist() == [101, 102, 0]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out["sentence_feature"]),
        encoded["sentence_feature"],
        atol=1e-5,
    )


import os

import numpy as np
import pytest
import tensorflow as tf

import keras

from keras_lgvq.text_priors.clip_text_prior import CLIPTextPrior
from tests.text_priors import reference_impls as ref

CAPTIONS = [
    "The small bird with a red crown.",
    "",
    "   ",
    "  Café  naïve 2023 don't!! ",
    "A\u00a0bird\ton  the\nwing, (crowned) #1",
    "the bird " * 30,  # longer than 30 tokens: truncated, EOT kept last
    "日本の鳥 🐦 über",
    "ThE BiRd'S CrOwN'll be red",
]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("tiny_hf_clip"))
    tensors, config = ref.write_tiny_hf_clip(directory)
    return directory, tensors, config


@pytest.fixture(scope="module")
def prior(hf_dir):
    return CLIPTextPrior(hf_dir[0])


def test_tokenize_matches_official_algorithm(prior):
    vocab, merges = ref.tiny_clip_vocab()
    expected = ref.clip_tokenize_reference(CAPTIONS, vocab, merges, 30)
    token_ids, padding_mask = prior.tokenize(CAPTIONS)
    token_ids = keras.ops.convert_to_numpy(token_ids)
    padding_mask = keras.ops.convert_to_numpy(padding_mask)
    assert token_ids.dtype == np.int32 and token_ids.shape == (8, 30)
    assert padding_mask.dtype == bool
    np.testing.assert_array_equal(token_ids, expected)
    lengths = padding_mask.sum(-1)
    rows = np.arange(len(CAPTIONS))
    # SOT first, EOT at the last valid position, pad id 0 after it.
    assert (token_ids[:, 0] == prior.start_token_id).all()
    assert (token_ids[rows, lengths - 1] == prior.end_token_id).all()
    assert (token_ids[~padding_mask] == 0).all()
    np.testing.assert_array_equal(lengths[[1, 2, 5]], [2, 2, 30])


def test_special_token_strings_are_not_honoured(prior):
    token_ids, mask = prior.tokenize(["x<|endoftext|>y <|startoftext|>"])
    token_ids = keras.ops.convert_to_numpy(token_ids)[0]
    assert (token_ids == prior.end_token_id).sum() == 1
    assert (token_ids == prior.start_token_id).sum() == 1


def test_features_match_numpy_clip(prior, hf_dir):
    _, tensors, config = hf_dir
    token_ids, padding_mask = prior.tokenize(CAPTIONS)
    out = prior(token_ids, padding_mask)
    tokens, sentence = ref.clip_text_reference(
        tensors, config, keras.ops.convert_to_numpy(token_ids)
    )
    assert tuple(out["token_features"].shape) == (8, 30, 32)
    assert tuple(out["sentence_feature"].shape) == (8, 24)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out["token_features"]), tokens, atol=1e-4
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out["sentence_feature"]), sentence, atol=1e-4
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(out["padding_mask"]),
        keras.ops.convert_to_numpy(padding_mask),
    )
    # Dict input and a mask derived from the ids give the same result.
    out_dict = prior({"token_ids": token_ids})
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out_dict["sentence_feature"]),
        sentence,
        atol=1e-4,
    )


def test_length_30_equals_first_30_of_length_77(prior, hf_dir):
    prior77 = CLIPTextPrior(hf_dir[0], sequence_length=77)
    ids30, mask30 = prior.tokenize(CAPTIONS)
    ids30 = keras.ops.convert_to_numpy(ids30)
    mask30 = keras.ops.convert_to_numpy(mask30)
    ids77 = np.pad(ids30, [(0, 0), (0, 47)])
    mask77 = np.pad(mask30, [(0, 0), (0, 47)])
    out30 = prior(ids30, mask30)
    out77 = prior77(ids77, mask77)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out77["token_features"])[:, :30],
        keras.ops.convert_to_numpy(out30["token_features"]),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out77["sentence_feature"]),
        keras.ops.convert_to_numpy(out30["sentence_feature"]),
        atol=1e-5,
    )
    # Untruncated captions tokenize identically at both lengths.
    short = [c for c in CAPTIONS if len(c) < 60]
    a = keras.ops.convert_to_numpy(prior.tokenize(short)[0])
    b = keras.ops.convert_to_numpy(prior77.tokenize(short)[0])
    np.testing.assert_array_equal(b[:, :30], a)
    assert (b[:, 30:] == 0).all()


def test_attributes_and_frozen(prior, hf_dir):
    _, tensors, _ = hf_dir
    assert prior.vocabulary_size == 537
    assert prior.hidden_dim == 32 and prior.sentence_dim == 24
    assert prior.sequence_length == 30
    assert prior.start_token_id == 535 and prior.end_token_id == 536
    assert prior.pad_token_id == 0 and prior.mask_token_id is None
    assert prior.name_or_path == hf_dir[0]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(prior.token_embeddings),
        tensors["text_model.embeddings.token_embedding.weight"],
    )
    assert prior.trainable_weights == []
    assert len(prior.non_trainable_weights) == len(prior.weights) > 0
    prior.trainable = True  # Stays frozen: the variables are non-trainable.
    assert prior.trainable_weights == []
    prior.trainable = False


def test_tokenize_inside_tf_data(prior):
    eager = keras.ops.convert_to_numpy(prior.tokenize(CAPTIONS)[0])
    # Invalid UTF-8 inside a graph is replaced, not a crash.
    strings = [c.encode("utf-8") for c in CAPTIONS] + [b"\xff\xfe bird"]
    ds = tf.data.Dataset.from_tensor_slices(strings).map(prior.tokenize)
    rows = [ids.numpy() for ids, _ in ds]
    assert rows[0].shape == (30,)
    np.testing.assert_array_equal(np.stack(rows[:-1]), eager)
    assert rows[-1][0] == prior.start_token_id
    assert prior.end_token_id in rows[-1]
    # A (C,) vector of captions per element gives (C, L); empty strings
    # still give [SOT, EOT, pad...].
    per_image = tf.data.Dataset.from_tensor_slices(CAPTIONS[:4]).batch(4)
    ids, mask = next(iter(per_image.map(prior.tokenize)))
    assert ids.shape == (4, 30) and mask.dtype == tf.bool
    np.testing.assert_array_equal(ids.numpy(), eager[:4])
    assert ids.numpy()[1, :3].tolist() == [535, 536, 0]


def test_bad_python_inputs(prior):
    with pytest.raises(ValueError, match=r"`strings`\[1\] must be a str"):
        prior.tokenize(["a bird", 3])
    with pytest.raises(ValueError, match="must be a str"):
        prior.tokenize([None])
    with pytest.raises(ValueError, match="rectangular"):
        prior.tokenize([["a"], ["b", "c"]])
    with pytest.raises(ValueError, match="tf.string"):
        prior.tokenize(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        prior.tokenize([b"\xff"])
    ids, mask = prior.tokenize("a single caption")
    assert tuple(ids.shape) == (30,)
    ids, mask = prior.tokenize([["a", "b"], ["c", ""]])
    assert tuple(ids.shape) == (2, 2, 30)
    out = prior(ids, mask)
    assert tuple(out["token_features"].shape) == (2, 2, 30, 32)
    assert tuple(out["sentence_feature"].shape) == (2, 2, 24)


def test_hf_errors(hf_dir, tmp_path):
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file

    directory = str(tmp_path / "no_projection")
    os.makedirs(directory)
    for name in ("config.json", "vocab.json", "merges.txt"):
        with open(os.path.join(hf_dir[0], name), "rb") as src:
            with open(os.path.join(directory, name), "wb") as dst:
                dst.write(src.read())
    tensors = load_file(os.path.join(hf_dir[0], "model.safetensors"))
    del tensors["text_projection.weight"]
    save_file(tensors, os.path.join(directory, "model.safetensors"))
    with pytest.raises(ValueError, match="text_projection"):
        CLIPTextPrior(directory)
    with pytest.raises(ValueError, match="sequence_length"):
        CLIPTextPrior(hf_dir[0], sequence_length=78)
    with pytest.raises(ValueError, match="sequence_length"):
        CLIPTextPrior(hf_dir[0], sequence_length=1)

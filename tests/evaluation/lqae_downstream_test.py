"""LQAE downstream: probe features, images as text, few-shot prompting.

Tiny real models throughout: an `LQAEBackbone` over a random
`MaskedLanguageModel` with a small word vocabulary, and a random keras-hub
`LlamaBackbone` saved as a preset (with a byte-level BPE tokenizer) as the
causal LM. Label scoring is checked against a hand log-likelihood from the
backbone's own full-sequence forward pass.
"""

import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_lgvq.evaluation.few_shot_prompting import build_prompt
from keras_lgvq.evaluation.few_shot_prompting import episodes_feasible
from keras_lgvq.evaluation.few_shot_prompting import few_shot_classification
from keras_lgvq.evaluation.few_shot_prompting import label_log_likelihoods
from keras_lgvq.evaluation.few_shot_prompting import lqae_few_shot
from keras_lgvq.evaluation.few_shot_prompting import prompt_segments
from keras_lgvq.evaluation.few_shot_prompting import sample_episodes
from keras_lgvq.evaluation.few_shot_prompting import scene_classes
from keras_lgvq.evaluation.images_as_text import images_to_text
from keras_lgvq.evaluation.images_as_text import text_to_token_ids
from keras_lgvq.evaluation.images_as_text import token_ids_to_text
from keras_lgvq.evaluation.lqae_downstream import lqae_downstream_scenes
from keras_lgvq.evaluation.lqae_linear_probe import lm_probe_features
from keras_lgvq.evaluation.lqae_linear_probe import lqae_linear_probe
from keras_lgvq.evaluation.lqae_linear_probe import lqae_probe_features
from keras_lgvq.evaluation.lqae_linear_probe import pooled_layer_features
from keras_lgvq.evaluation.lqae_linear_probe import select_layers
from keras_lgvq.language_models import ByteLevelBPETokenizer
from keras_lgvq.language_models import CausalLM
from keras_lgvq.language_models import MaskedLanguageModel
from keras_lgvq.models.lqae import LQAEBackbone

# Three-character pieces only: with the tiny byte-level causal LM below,
# every image-as-text then has the same token count, so prompts of one
# protocol share shapes (JAX compiles each new shape once).
WORDS = [
    "red", "sky", "sun", "cat", "dog", "owl", "elm", "fox", "bee", "ant",
    "cow", "pig", "hen", "ram", "yak", "emu", "bat", "eel", "jay", "koi",
    "oak", "ivy", "fig", "yew", "gum", "ash", "bay", "tea", "ink", "ore",
    "##s",
]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
GRID = 4


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def backbone():
    lm = MaskedLanguageModel.random(
        vocabulary_size=len(VOCAB), hidden_dim=16, num_layers=2, num_heads=2,
        intermediate_dim=32, max_sequence_length=32, seed=0,
        vocabulary=VOCAB,
    )
    return LQAEBackbone(
        image_size=16, patch_size=4, hidden_dim=16, encoder_num_layers=2,
        encoder_num_heads=2, decoder_num_layers=1, decoder_num_heads=2,
        intermediate_dim=32, language_model=lm, exclude_special_tokens=True,
    )


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, size=(8, 16, 16, 3)).astype("float32")


def _bytes_to_unicode():
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory):
    """A tiny random Llama with a byte-level BPE that covers every byte."""
    vocab = {"<|endoftext|>": 0}
    for char in _bytes_to_unicode():
        vocab[char] = len(vocab)
    # Merges only of characters the test texts never use.
    merges = ["Q Z", "QZ X"]
    for merge in merges:
        vocab["".join(merge.split(" "))] = len(vocab)
    tokenizer = ByteLevelBPETokenizer(
        vocab, merges, end_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=len(vocab), num_layers=1, num_query_heads=2,
        hidden_dim=8, intermediate_dim=12, num_key_value_heads=1,
        dtype="float32",
    )
    preset = str(tmp_path_factory.mktemp("llama") / "preset")
    backbone.save_to_preset(preset)
    tokenizer.save_to_preset(preset)
    return CausalLM(source=preset)


# ------------------------------------------------------------ probe
def test_probe_features_shapes_and_layer_selection(backbone, images):
    reps = backbone.image_representations(images)
    out = lqae_probe_features(backbone, images, layers="all", batch_size=8)
    assert out["layer_names"] == [
        "encoder_0", "encoder_1", "lm_0", "lm_1", "lm_2"
    ]
    assert out["features"].shape == (8, 5 * 16)
    assert out["token_ids"].shape == (8, GRID, GRID)
    # Mean over all 16 tokens, none dropped.
    enc_last = _np(reps["encoder_layer_outputs"][1])
    np.testing.assert_allclose(
        out["features"][:, 16:32], enc_last.mean(axis=1), atol=1e-5
    )
    assert np.abs(
        out["features"][:, 16:32] - enc_last[:, 1:].mean(axis=1)
    ).max() > 1e-4
    picked, names = pooled_layer_features(reps, ["lm:-1", "encoder:0"])
    assert names == ["lm_2", "encoder_0"]
    np.testing.assert_allclose(
        picked,
        np.concatenate([out["features"][:, 64:80], out["features"][:, :16]], 1),
        atol=1e-5,
    )
    enc, names = pooled_layer_features(reps, "encoder")
    assert enc.shape == (8, 32) and names == ["encoder_0", "encoder_1"]
    _, names = pooled_layer_features(reps, "lm")
    assert names == ["lm_0", "lm_1", "lm_2"]
    # (B, h, w, D) grids pool the same as (B, L, D) sequences.
    grid_reps = {"encoder_layer_outputs": [
        _np(x).reshape(8, GRID, GRID, 16) for x in reps["encoder_layer_outputs"]
    ]}
    np.testing.assert_allclose(
        pooled_layer_features(grid_reps, "encoder")[0], enc, atol=1e-6
    )


def test_lm_probe_features_from_token_ids(backbone, images):
    ids = _np(backbone.encode(images))
    feats, names = lm_probe_features(backbone.language_model, ids, ["lm:-1"],
                                     batch_size=4)
    assert names == ["lm_2"]
    # The backbone's LM reads the raw embeddings of its own token ids.
    reference = lqae_probe_features(backbone, images, ["lm:-1"],
                                    batch_size=4)["features"]
    np.testing.assert_allclose(feats, reference, atol=1e-5)
    grid, _ = lm_probe_features(backbone.language_model, ids, "all",
                                batch_size=4)
    assert grid.shape == (8, 48)


def test_select_layers_rejects_bad_selections():
    assert select_layers(2, 3, ["encoder:-2", ("lm", 1)]) == [
        ("encoder", 0), ("lm", 1)
    ]
    with pytest.raises(ValueError, match="out of range"):
        select_layers(2, 3, ["lm:3"])
    with pytest.raises(ValueError, match="group"):
        select_layers(2, 3, ["decoder:0"])
    with pytest.raises(ValueError, match="twice"):
        select_layers(2, 3, ["lm:0", "lm:-3"])
    with pytest.raises(ValueError, match="group:index"):
        select_layers(2, 3, ["lm"])
    with pytest.raises(ValueError, match="selects nothing"):
        select_layers(2, 0, "lm")
    with pytest.raises(ValueError, match="'all'"):
        select_layers(2, 3, "bert")
    with pytest.raises(ValueError, match="dict"):
        pooled_layer_features([np.zeros((1, 2, 3))])


def test_linear_probe_wiring_and_separable_labels(backbone):
    rng = np.random.default_rng(1)
    bright = rng.integers(0, 2, size=24)
    images = (np.where(bright, 0.7, -0.7)[:, None, None, None]
              + 0.05 * rng.standard_normal((24, 16, 16, 3)))
    images = np.clip(images, -1, 1).astype("float32")
    layers = ["encoder:-1", "lm:-1"]
    result = lqae_linear_probe(
        backbone, images[:16], bright[:16], images[16:], bright[16:],
        layers=layers, epochs=15, batch_size=8,
    )
    assert result["feature_dim"] == 32
    assert result["layers"] == ["encoder_1", "lm_2"]
    assert result["num_train"] == 16 and result["num_test"] == 8
    assert result["chance"] == 100.0 * np.bincount(bright[16:]).max() / 8
    # Brightness is linearly readable from the pooled features.
    assert result["accuracy"] >= 75.0
    with pytest.raises(ValueError, match="train_labels"):
        lqae_linear_probe(backbone, images[:4], bright[:3], images[4:6],
                          bright[4:6])


# ---------------------------------------------------------- images as text
def test_images_as_text_round_trip(backbone, images):
    lm = backbone.language_model
    out = images_to_text(backbone, images, batch_size=4)
    assert not set(out["token_ids"].ravel()) & set(lm.special_token_ids)
    ids = out["token_ids"]
    np.testing.assert_array_equal(ids, _np(backbone.encode(images)))
    assert len(out["texts"]) == 8
    assert all(len(t.split(" ")) == GRID * GRID for t in out["texts"])
    np.testing.assert_array_equal(
        text_to_token_ids(out["texts"], lm, shape=(GRID, GRID)), ids
    )
    first = out["texts"][0].split(" ")
    assert first == [VOCAB[i] for i in ids[0].reshape(-1)]
    hand = np.asarray([[VOCAB.index(w) for w in ("owl", "##s", "red",
                                                  "fox")]])
    assert token_ids_to_text(hand, lm) == ["owl ##s red fox"]
    assert token_ids_to_text(hand, lm, mode="decode") == ["owls red fox"]
    with pytest.raises(ValueError, match="vocabulary"):
        token_ids_to_text(np.asarray([[len(VOCAB)]]), lm)
    with pytest.raises(ValueError, match="not tokens"):
        text_to_token_ids(["owl zebra"], lm)
    with pytest.raises(ValueError, match="mode"):
        token_ids_to_text(hand, lm, mode="words")
    with pytest.raises(ValueError, match="needs 16"):
        text_to_token_ids(["owl"], lm, shape=(GRID, GRID))


# ------------------------------------------------------------ episodes
def test_episode_sampler_counts_and_determinism():
    labels = np.repeat(np.arange(6), 5)
    labels[:2] = -1  # unlabelled rows are never drawn
    episodes = sample_episodes(labels, num_ways=3, num_shots=2,
                               num_queries=2, num_episodes=8, seed=4)
    assert len(episodes) == 8
    for ep in episodes:
        assert len(set(ep["classes"])) == 3
        assert len(ep["support"]) == 6 and len(ep["queries"]) == 6
        assert not set(ep["support"]) & set(ep["queries"])
        for c in ep["classes"]:
            assert (ep["support_labels"] == c).sum() == 2
            assert (ep["query_labels"] == c).sum() == 2
        np.testing.assert_array_equal(labels[ep["support"]],
                                      ep["support_labels"])
        assert (labels[ep["queries"]] >= 0).all()
        # Class 0 has only 3 labelled rows: never eligible for 4 examples.
        assert 0 not in ep["classes"]
    again = sample_episodes(labels, 3, 2, 2, 8, seed=4)
    other = sample_episodes(labels, 3, 2, 2, 8, seed=5)
    for a, b in zip(episodes, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(
        not np.array_equal(a["support"], b["support"])
        for a, b in zip(episodes, other)
    )
    assert episodes_feasible(labels, 6, 2, 2) is not None
    with pytest.raises(ValueError, match="classes with >= 4"):
        sample_episodes(labels, 6, 2, 2)
    with pytest.raises(ValueError, match="num_ways"):
        sample_episodes(labels, 1, 1)


def test_prompt_construction_is_deterministic():
    prompt = build_prompt(["red sky", "blue sun"], ["circle", "star"],
                          "red sun", repeats=1, task_induction="Answer.")
    block = ("Image: red sky\nLabel: circle\n\n"
             "Image: blue sun\nLabel: star\n\n")
    assert prompt == "Answer.\n\n" + block + block + "Image: red sun\nLabel:"
    support, query = prompt_segments(["red sky"], ["circle"], "sun")
    assert support + query == build_prompt(["red sky"], ["circle"], "sun")
    with pytest.raises(ValueError, match="equal length"):
        build_prompt(["a"], ["x", "y"], "q")
    with pytest.raises(ValueError, match="repeats"):
        build_prompt(["a"], ["x"], "q", repeats=-1)
    with pytest.raises(ValueError, match="label"):
        build_prompt(["a"], ["x"], "q", example_template="{text}")


# ------------------------------------------------------------- scoring
def _hand_log_likelihoods(lm, cases):
    """log p(candidate | prompt) per `(prompt pieces, candidate)` case.

    One full-sequence forward of the keras-hub backbone over all cases,
    right-padded to one length (causal: padding after a sequence cannot
    change it), then a numpy log-softmax.
    """
    rows = []
    for pieces, candidate in cases:
        prompt = np.concatenate([lm.encode(t) for t in pieces])
        rows.append((prompt, lm.encode(" " + candidate)))
    length = max(len(p) + len(c) for p, c in rows)
    ids = np.zeros((len(rows), length), "int32")
    for i, (p, c) in enumerate(rows):
        ids[i, : len(p) + len(c)] = np.concatenate([p, c])
    hidden = lm.backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    logits = _np(lm.backbone.token_embedding(hidden, reverse=True))
    logits = logits.astype("float64")
    top = logits.max(-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    out = []
    for i, (p, c) in enumerate(rows):
        out.append(sum(logp[i, len(p) + j - 1, c[j]] for j in range(len(c))))
    return np.asarray(out)


def test_label_scores_match_hand_log_likelihood(causal_lm):
    segments = prompt_segments(["red owl", "elm sky"], ["sun", "moon"],
                               "red sky")
    prompt = segments[0] + segments[1]
    candidates = ["sun", "moon", "red oak"]  # different token counts
    hand = _hand_log_likelihoods(
        causal_lm,
        [(segments, c) for c in candidates]
        + [((prompt,), c) for c in candidates],
    )
    scores = label_log_likelihoods(causal_lm, segments, candidates)
    np.testing.assert_allclose(scores, hand[:3], atol=1e-4)
    # A plain string prompt is tokenized whole.
    scores = label_log_likelihoods(causal_lm, prompt, candidates)
    np.testing.assert_allclose(scores, hand[3:], atol=1e-4)
    normalized = label_log_likelihoods(causal_lm, prompt, candidates,
                                       length_normalize=True)
    lengths = [len(causal_lm.encode(" " + c)) for c in candidates]
    np.testing.assert_allclose(normalized, hand[3:] / lengths, atol=1e-4)
    with pytest.raises(ValueError, match="distinct"):
        label_log_likelihoods(causal_lm, prompt, ["sun", "sun"])
    with pytest.raises(ValueError, match="CausalLM"):
        label_log_likelihoods(object(), prompt, ["sun"])


def test_few_shot_classification_end_to_end(causal_lm):
    texts = ["red owl", "red sun", "red sky", "elm sky", "elm sun",
             "elm owl", "oak fig", "oak ivy", "oak yew"]
    labels = np.asarray([0, 0, 0, 1, 1, 1, 2, 2, 2])
    names = ["warm", "cool", "tree"]
    kwargs = dict(num_ways=2, num_shots=1, num_queries=1, num_episodes=2,
                  seed=7, return_details=True)
    result = few_shot_classification(texts, labels, names,
                                     causal_lm=causal_lm, **kwargs)
    again = few_shot_classification(texts, labels, names,
                                    causal_lm=causal_lm, **kwargs)
    assert result["num_predictions"] == 2 * 2
    assert result["chance"] == 50.0
    assert "CausalLM(source=" in result["causal_lm"]
    assert 0.0 <= result["accuracy"] <= 100.0
    for ep, ep2 in zip(result["episodes"], again["episodes"]):
        assert ep["prompts"] == ep2["prompts"]
        np.testing.assert_allclose(ep["scores"], ep2["scores"], atol=1e-6)
        # Each query's prediction is the best label for its own prompt.
        for q, prompt in enumerate(ep["prompts"]):
            assert prompt.endswith(f"Image: {texts[ep['queries'][q]]}\nLabel:")
            best = ep["classes"][np.argmax(ep["scores"][q])]
            assert ep["predictions"][q] == best
    hits = sum(int((ep["predictions"] == ep["query_labels"]).sum())
               for ep in result["episodes"])
    assert result["accuracy"] == pytest.approx(100.0 * hits / 4)
    # The query's prompt scores agree with the stand-alone scorer.
    ep = result["episodes"][0]
    support_texts = [texts[i] for i in ep["support"]]
    support_labels = [names[c] for c in ep["support_labels"]]
    segments = prompt_segments(support_texts, support_labels,
                               texts[ep["queries"][0]])
    np.testing.assert_allclose(
        label_log_likelihoods(causal_lm, segments, ep["candidates"]),
        ep["scores"][0], atol=1e-4,
    )
    with pytest.raises(ValueError, match="label_names"):
        few_shot_classification(texts, labels, ["a", "a", "b"],
                                causal_lm=causal_lm)
    with pytest.raises(ValueError, match="labels"):
        few_shot_classification(texts, labels[:3], names, causal_lm=causal_lm)


# -------------------------------------------------------------- scenes
def _scenes_split(images, seed):
    rng = np.random.default_rng(seed)
    n = len(images)
    count = np.where(np.arange(n) % 3 == 2, 2, 1)
    split = {"images": images, "num_objects": count}
    for attr, k in (("shape", 8), ("color", 10), ("size", 3), ("fill", 3)):
        values = np.full((n, 3), -1)
        values[:, 0] = np.arange(n) % 2 if attr == "color" else rng.integers(
            0, k, n)
        values[count == 2, 1] = 1
        split[attr] = values
    return split


def test_scene_classes_reads_single_object_attributes(images):
    split = _scenes_split(images, 0)
    imgs, labels, names = scene_classes(split, "color")
    assert len(imgs) == 6 and names[0] == "red"
    np.testing.assert_array_equal(labels, split["color"][split["num_objects"] == 1, 0])
    _, counts, count_names = scene_classes(split, "num_objects")
    assert count_names == ["one", "two", "three"]
    np.testing.assert_array_equal(counts, split["num_objects"] - 1)
    with pytest.raises(ValueError, match="attribute"):
        scene_classes(split, "texture")
    with pytest.raises(ValueError, match="include_attributes"):
        scene_classes({"images": images}, "shape")


def test_downstream_on_scenes_and_lqae_few_shot(backbone, causal_lm):
    rng = np.random.default_rng(2)
    imgs = rng.uniform(-1, 1, size=(12, 16, 16, 3)).astype("float32")
    train, test = _scenes_split(imgs, 1), _scenes_split(imgs[::-1], 2)
    # One size class only among the test's single objects: 2-way episodes
    # cannot be drawn, which the result must say.
    test["size"][:, 0] = 1
    result = lqae_downstream_scenes(
        backbone, train, test, attributes=("color", "size"),
        probe_layers=["lm:-1"], probe_epochs=3, causal_lm=causal_lm,
        few_shot={"num_episodes": 2}, batch_size=4,
    )
    probe = result["linear_probe"]
    assert probe["layers"] == ["lm_2"] and probe["feature_dim"] == 16
    assert 0 <= probe["color"]["accuracy"] <= 100
    assert probe["size"]["chance"] == 100.0
    assert result["few_shot"]["color"]["num_predictions"] == 4
    assert "1 of the 1 classes" in result["few_shot"]["size"]["skipped"]
    assert len(result["example_text"].split(" ")) == GRID * GRID
    images_c, labels_c, names_c = scene_classes(test, "color")
    direct = lqae_few_shot(backbone, images_c, labels_c, names_c,
                           causal_lm=causal_lm, num_episodes=2, batch_size=4)
    assert direct["tokens_per_image"] == GRID * GRID
    assert direct["accuracy"] == result["few_shot"]["color"]["accuracy"]

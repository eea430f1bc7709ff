"""Class-style captions: duplicate-aware retrieval, zero-shot, one encoding
per caption in `prepare_split`, and the evaluation's cost per phase."""

import numpy as np
import pytest

from keras_lgvq.evaluation import class_captions
from keras_lgvq.evaluation import evaluator
from keras_lgvq.evaluation import splits
from keras_lgvq.evaluation.alignment_metrics import retrieval_recalls
from keras_lgvq.metrics import image_to_text_recall
from keras_lgvq.metrics import text_to_image_recall
from tests.evaluation.fakes import FakePrior
from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_lgvq
from tests.text_priors.caption_feature_cache_test import CountingPrior

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


CAT, DOG = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])


def _two_classes():
    # Two images per class caption; the images sit exactly on their text.
    text = np.stack([CAT, CAT, DOG, DOG])
    images = text.copy()
    captions = ["a photo of a cat"] * 2 + ["a photo of a dog"] * 2
    return images, text, captions, np.array([0, 0, 1, 1])


def test_repeated_captions_old_metric_zero_right_answer_full():
    images, text, captions, labels = _two_classes()
    owner = np.arange(4)
    # Per-row protocol: the identical row of the other image ties with the
    # right one and counts against the model.
    assert image_to_text_recall(images, text, owner)["R@1"] == 0.0
    assert text_to_image_recall(images, text, owner)["R@1"] == 0.0
    groups, first = class_captions.caption_groups(captions=captions)
    np.testing.assert_array_equal(groups, [0, 0, 1, 1])
    np.testing.assert_array_equal(first, [0, 2])
    with pytest.warns(UserWarning, match="2 of 4 evaluation captions repeat"):
        out = retrieval_recalls(images, text, groups, labels)
    assert out["image_to_text"]["R@1"] == 100.0
    assert out["text_to_image"]["R@1"] == 100.0
    assert out["captions"] == {
        "total": 4, "distinct": 2, "repeated": 2,
        "targets": "distinct captions",
    }
    assert out["class_level"]["image_to_text"]["R@1"] == 100.0
    # A collapsed embedding still scores no better than chance: ties count
    # against the model.
    with pytest.warns(UserWarning):
        flat = retrieval_recalls(np.ones((4, 3)), text, groups)
    assert flat["image_to_text"]["R@1"] == 0.0


def test_class_level_counts_any_caption_of_the_class():
    # Two different cat captions; image 1 is closest to the *other* cat
    # caption: wrong by caption, right by class.
    text = np.stack([CAT, CAT + [0, 0, 1.0], DOG])
    images = np.stack([CAT, CAT, DOG])
    groups = np.array([0, 1, 2])
    out = class_captions.grouped_retrieval(
        images, text, groups, labels=np.array([0, 0, 1])
    )
    assert out["image_to_text"]["R@1"] == pytest.approx(200 / 3)
    assert out["class_level"]["image_to_text"]["R@1"] == 100.0
    assert out["class_level"]["num_classes"] == 2


def test_without_repeats_equals_the_per_row_metric():
    rng = np.random.default_rng(0)
    images, text = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    owner = np.arange(12)
    out = class_captions.grouped_retrieval(images, text, owner)
    assert out["image_to_text"] == image_to_text_recall(images, text, owner)
    assert out["text_to_image"] == text_to_image_recall(images, text, owner)
    assert out["captions"]["repeated"] == 0


def test_caption_groups_by_token_rows():
    ids = np.array([[1, 5, 2, 0], [1, 6, 2, 0], [1, 5, 2, 0]])
    groups, first = class_captions.caption_groups(ids, ids > 0)
    np.testing.assert_array_equal(groups, [0, 1, 0])
    np.testing.assert_array_equal(first, [0, 1])
    with pytest.raises(ValueError, match="token_ids"):
        class_captions.caption_groups()


def test_zero_shot_known_answer():
    classes = np.eye(3)
    images = np.array(
        [[1, 0.2, 0], [0, 1, 0.1], [0.1, 0, 1], [1, 0, 0]], "float32"
    )
    out = class_captions.zero_shot_classify(images, classes, [0, 1, 2, 1])
    np.testing.assert_array_equal(out["predictions"], [0, 1, 2, 0])
    assert out["accuracy"] == 75.0
    assert out["per_class_accuracy"] == [100.0, 50.0, 100.0]
    assert out["chance"] == 50.0 and out["num_classes"] == 3
    with pytest.raises(ValueError, match=r"ints in \[0, 3\)"):
        class_captions.zero_shot_classify(images, classes, [0, 1, 2, 3])


def test_zero_shot_templates_average_normalised_embeddings():
    rng = np.random.default_rng(1)
    templates = rng.normal(size=(4, 3, 6)) * rng.uniform(0.1, 10, (4, 3, 1))
    images = rng.normal(size=(20, 6))
    # Reference: normalise each template, average, normalise, cosine.
    t = templates / np.linalg.norm(templates, axis=-1, keepdims=True)
    c = t.mean(1)
    c /= np.linalg.norm(c, axis=-1, keepdims=True)
    v = images / np.linalg.norm(images, axis=-1, keepdims=True)
    expected = np.argmax(v @ c.T, axis=1)
    out = class_captions.zero_shot_classify(images, templates)
    np.testing.assert_array_equal(out["predictions"], expected)


def test_class_prompt_features_encode_each_prompt_once():
    prior = CountingPrior()
    prompts = class_captions.class_prompts(
        ["cat", "dog"], ["a photo of a {}", "a {}", "a {}"]
    )
    features = class_captions.class_prompt_features(prior, prompts)
    assert features.shape == (2, 3, 4)
    assert prior.rows == 4  # "a cat" and "a dog" appear twice each
    np.testing.assert_array_equal(features[0, 1], features[0, 2])
    with pytest.raises(ValueError, match="one '\\{\\}'"):
        class_captions.class_prompts(["cat"], ["no slot"])


class _CountingFakePrior(FakePrior):
    def __init__(self):
        super().__init__()
        self.rows = []

    def encode_tokens(self, token_ids, padding_mask, batch_size=64):
        self.rows.append(len(token_ids))
        return super().encode_tokens(token_ids, padding_mask, batch_size)


def _class_batches(n=16, batch=8, carry_features=False):
    # Two class captions (token rows) repeated over n images.
    labels = np.arange(n) % 2
    rows = np.array([[1, 3, 4, 5, 2, 0, 0, 0], [1, 3, 4, 6, 2, 0, 0, 0]])
    ids = rows[labels].astype("int32")
    images = tiny_images(n, seed=3)
    out = []
    for s in range(0, n, batch):
        b = {
            "images": images[s : s + batch],
            "token_ids": ids[s : s + batch],
            "padding_mask": ids[s : s + batch] > 0,
            "label": labels[s : s + batch],
        }
        if carry_features:
            enc = FakePrior().encode_tokens(b["token_ids"], b["padding_mask"])
            b["token_features"] = enc["token_features"]
            b["sentence_feature"] = enc["sentence_feature"]
        out.append(b)
    return out


def test_prepare_split_encodes_each_distinct_caption_once():
    prior = _CountingFakePrior()
    split = splits.prepare_split(
        _class_batches(), prior, protocol_mask_counts=(1,), verbose=0
    )
    assert split["text_encoding"]["caption_rows"] == 2
    assert prior.rows[0] == 2  # the unmasked captions: 2 of 16
    # Mask-1 inputs: one row per distinct (caption, masked position).
    masked = np.where(split["mask_1"], 39, split["token_ids"])
    distinct = len(np.unique(masked, axis=0))
    assert split["text_encoding"]["masked_rows"] == distinct == prior.rows[1]
    assert distinct < 16
    full = FakePrior().encode_tokens(split["token_ids"], split["padding_mask"])
    np.testing.assert_allclose(
        split["sentence_feature"], full["sentence_feature"], rtol=1e-6
    )
    np.testing.assert_allclose(
        split["token_features"], full["token_features"], rtol=1e-3, atol=1e-3
    )
    np.testing.assert_array_equal(split["labels"], np.arange(16) % 2)
    assert set(split["seconds"]) == {
        "read", "text_features", "masked_text_features"
    }
    # Features the batches already carry (a cached pipeline) are kept.
    prior = _CountingFakePrior()
    carried = splits.prepare_split(
        _class_batches(carry_features=True), prior, protocol_mask_counts=(),
        verbose=0,
    )
    assert carried["text_encoding"]["caption_rows"] == 0 and not prior.rows


def test_evaluate_model_class_captions_cost_per_phase_and_budget():
    prior = FakePrior()
    eval_split = splits.prepare_split(_class_batches(), prior, verbose=0)
    probe_split = splits.prepare_split(
        _class_batches(), prior, seed=1, protocol_mask_counts=(),
        training_masks=True, verbose=0,
    )
    class_rows = np.array([[1, 3, 4, 5, 2, 0, 0, 0], [1, 3, 4, 6, 2, 0, 0, 0]])
    prompts = prior.encode_tokens(class_rows, class_rows > 0)
    model = tiny_lgvq()
    model.build()
    with pytest.warns(UserWarning, match="repeat"):
        results = evaluator.evaluate_model(
            model, eval_split, probe_split, text_prior=prior,
            probe_config=dict(
                epochs=3, batch_size=4, max_steps=2, max_train_images=8,
                linear_epochs=1, decoder_intermediate_dim=32,
            ),
            verbose=0,
            zero_shot=dict(prompt_features=prompts["sentence_feature"]),
        )
    info = results["probe_training"]
    assert info["steps"] == 2 and info["train_images"] == 8
    for block in (results["own_heads"]["retrieval"], results["retrieval_probe"]):
        assert block["captions"]["distinct"] == 2
        assert "class_level" in block
    for head in ("own", "probe"):
        entry = results["zero_shot"][head]
        assert 0 <= entry["accuracy"] <= 100 and entry["chance"] == 50.0
    assert set(results["seconds"]) >= {
        "tokenize", "fidelity", "own_retrieval", "own_masked_word",
        "own_relation", "probe_tokenize", "probe_training",
        "probe_retrieval", "probe_masked_word", "probe_relation",
        "zero_shot", "total",
    }
    assert all(v >= 0 for v in results["seconds"].values())
    assert set(results["split_seconds"]["eval"]) == {
        "read", "text_features", "masked_text_features"
    }
    table = evaluator.cost_table(results)
    assert "probe_training" in table and "prepare eval: read" in table
    # The chance column follows the distinct captions (2 here), not N.
    from keras_lgvq.evaluation.metric_table import flatten_metrics

    flat = flatten_metrics(results)
    assert results["num_distinct_captions"] == 2
    assert flat["chance_retrieval_R@1"] == pytest.approx(50.0)
    assert flat["chance_retrieval_t2i_R@1"] == pytest.approx(
        results["retrieval_chance"]["t2i"][1]
    )


class _NoModel:
    """Bad requests must fail before the model is touched."""

    def __getattr__(self, name):
        raise AssertionError(f"the model was used ({name})")


def test_bad_budget_and_zero_shot_requests_fail_first():
    prior = FakePrior()
    split = splits.prepare_split(
        _class_batches(), prior, protocol_mask_counts=(), verbose=0
    )
    with pytest.raises(ValueError, match="max_steps"):
        evaluator.evaluate_model(
            _NoModel(), split, text_prior=prior, verbose=0,
            probe_config=dict(max_steps=0),
        )
    with pytest.raises(ValueError, match="Unknown `zero_shot` keys"):
        evaluator.evaluate_model(
            _NoModel(), split, text_prior=prior, verbose=0,
            zero_shot=dict(classes=["cat"]),
        )
    del split["labels"]
    with pytest.raises(ValueError, match="class labels"):
        evaluator.evaluate_model(
            _NoModel(), split, text_prior=prior, verbose=0,
            zero_shot=dict(class_names=["cat", "dog"]),
        )


def test_string_labels_become_sorted_indices():
    batches = _class_batches()
    for b in batches:
        b["label"] = np.where(b["label"] == 0, b"dog", b"cat")
    split = splits.prepare_split(batches, None, verbose=0)
    assert split["label_names"] == ["cat", "dog"]
    np.testing.assert_array_equal(split["labels"], 1 - np.arange(16) % 2)
    for b in batches:
        b["label"] = b["label"][:, None].repeat(2, 1)
    with pytest.raises(ValueError, match="one int class label per image"):
        splits.prepare_split(batches, None, verbose=0)


def test_retrieval_chance_matches_random_rankings():
    # Monte Carlo over random rankings, against the closed form.
    from keras_lgvq.evaluation.class_captions import retrieval_chance

    groups = np.array([0, 0, 0, 1, 2, 2, 3, 4])
    chance = retrieval_chance(groups, ks=(1, 3))
    rng = np.random.default_rng(0)
    distinct = np.unique(groups)
    hits = {("i2t", 1): 0, ("i2t", 3): 0, ("t2i", 1): 0, ("t2i", 3): 0}
    trials = 20000
    for _ in range(trials):
        order = rng.permutation(distinct)  # captions ranked for one image
        image = rng.integers(len(groups))
        query = rng.choice(distinct)  # one distinct caption query
        images = rng.permutation(len(groups))
        for k in (1, 3):
            hits[("i2t", k)] += groups[image] in order[:k]
            hits[("t2i", k)] += np.any(groups[images[:k]] == query)
    for (direction, k), count in hits.items():
        assert chance[direction][k] == pytest.approx(
            100.0 * count / trials, abs=1.5
        )
    # No repeats: both are K / N.
    plain = retrieval_chance(np.arange(10), ks=(1, 5))
    assert plain["i2t"][5] == pytest.approx(50.0)
    assert plain["t2i"][5] == pytest.approx(50.0)

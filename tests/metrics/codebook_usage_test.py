import keras
import numpy as np
import pytest

from keras_lgvq.metrics.codebook_usage import CodebookUsage


def np_usage_perplexity(counts):
    counts = np.asarray(counts, np.float64)
    p = counts / counts.sum()
    nz = p[p > 0]
    return np.mean(counts > 0), np.exp(-np.sum(nz * np.log(nz)))


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_histogram_usage_perplexity_over_several_updates():
    rng = np.random.default_rng(0)
    k = 64
    metric = CodebookUsage(num_embeddings=k)
    counts = np.zeros(k)
    # Skewed draws from the first 40 codes only, in differently shaped batches.
    probs = rng.dirichlet(np.ones(40) * 0.5)
    for shape in [(2, 4, 4), (3, 8), (5,), (1, 2, 2, 2)]:
        idx = rng.choice(40, size=shape, p=probs)
        metric.update_state(idx)
        counts += np.bincount(idx.ravel(), minlength=k)
    np.testing.assert_array_equal(_np(metric.histogram()), counts)
    usage, perplexity = np_usage_perplexity(counts)
    result = metric.result()
    assert float(result["usage"]) == pytest.approx(usage, abs=1e-6)
    assert float(result["perplexity"]) == pytest.approx(perplexity, rel=1e-5)
    assert float(metric.usage()) == pytest.approx(usage, abs=1e-6)
    assert float(metric.perplexity()) == pytest.approx(perplexity, rel=1e-5)
    assert 1.0 < perplexity < 40.0


def test_uniform_and_single_code_extremes():
    metric = CodebookUsage(8)
    metric.update_state(np.tile(np.arange(8), 3))
    assert float(metric.result()["usage"]) == 1.0
    assert float(metric.result()["perplexity"]) == pytest.approx(8.0, rel=1e-5)
    metric.reset_state()
    assert float(metric.result()["perplexity"]) == 0.0  # empty
    metric.update_state(np.full((4, 4), 3))
    assert float(metric.result()["usage"]) == pytest.approx(1 / 8)
    assert float(metric.result()["perplexity"]) == pytest.approx(1.0)


def test_out_of_range_ignored_and_sample_weight():
    metric = CodebookUsage(4)
    idx = np.array([[0, 1, -1, 4], [2, 2, 9, 1]])
    w = np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.5]])
    metric.update_state(idx, sample_weight=w)
    np.testing.assert_allclose(_np(metric.histogram()), [1.0, 0.5, 2.0, 0.0])


def test_update_state_compiles():
    # The update must trace under each backend's compiler.
    metric = CodebookUsage(16)
    idx = np.random.default_rng(1).integers(0, 10, (2, 4, 4)).astype("int32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.function(metric.update_state, jit_compile=True)(idx)
        tf.function(metric.update_state)(idx)
        expected = 2 * np.bincount(idx.ravel(), minlength=16)
    elif backend == "jax":
        import jax

        values = [v.value for v in metric.variables]
        values = jax.jit(metric.stateless_update_state)(values, idx)
        for variable, value in zip(metric.variables, values):
            variable.assign(value)
        expected = np.bincount(idx.ravel(), minlength=16)
    else:
        metric.update_state(idx)
        expected = np.bincount(idx.ravel(), minlength=16)
    np.testing.assert_array_equal(_np(metric.histogram()), expected)


def test_validation_and_config():
    with pytest.raises(ValueError, match="num_embeddings"):
        CodebookUsage(0)
    with pytest.raises(ValueError, match="integer"):
        CodebookUsage(4).update_state(np.zeros((2,), "float32"))
    clone = CodebookUsage.from_config(CodebookUsage(12, name="u").get_config())
    assert clone.num_embeddings == 12 and clone.name == "u"
    assert all(not v.trainable for v in clone.variables)


# === Sub-codebooks (VQCT's trailing index axis) ===

LAYOUT = [("adjective", 6, 2), ("noun", 5, 1)]


def _vqct_indices(rng, shape):
    return np.concatenate(
        [rng.integers(0, 6, shape + (2,)), rng.integers(0, 4, shape + (1,))],
        axis=-1,
    ).astype("int32")


def test_sub_codebooks_histograms_per_part_and_together():
    rng = np.random.default_rng(3)
    metric = CodebookUsage(sub_codebooks=LAYOUT)
    assert metric.num_embeddings == 11
    adj_counts, noun_counts = np.zeros(6), np.zeros(5)
    for shape in [(2, 4, 4), (3, 5), (7,)]:
        idx = _vqct_indices(rng, shape)
        metric.update_state(idx)
        adj_counts += np.bincount(idx[..., :2].ravel(), minlength=6)
        noun_counts += np.bincount(idx[..., 2].ravel(), minlength=5)
    # Flattened ids: adjectives, then nouns offset by 6.
    both = np.concatenate([adj_counts, noun_counts])
    np.testing.assert_array_equal(_np(metric.histogram()), both)
    np.testing.assert_array_equal(_np(metric.histogram("noun")), noun_counts)
    result = {k: float(v) for k, v in metric.result().items()}
    for key, counts in (("", both), ("adjective_", adj_counts),
                        ("noun_", noun_counts)):
        usage, perplexity = np_usage_perplexity(counts)
        assert result[f"{key}usage"] == pytest.approx(usage, abs=1e-6)
        assert result[f"{key}perplexity"] == pytest.approx(perplexity, rel=1e-5)
    assert result["noun_usage"] == pytest.approx(4 / 5)  # noun 4 never drawn
    assert float(metric.usage("noun")) == pytest.approx(4 / 5)


def test_sub_codebooks_ignore_out_of_range_slots_and_weight_positions():
    metric = CodebookUsage(11, sub_codebooks=LAYOUT)
    # -1 padding and an adjective id 6 (a noun's flattened id, not an
    # adjective) are ignored; weights are per position.
    idx = np.array([[[0, -1, 4], [6, 2, 0]], [[1, 1, 5], [3, 3, 2]]], "int32")
    weights = np.array([[1.0, 0.5], [1.0, 0.0]])
    metric.update_state(idx, sample_weight=weights)
    expected = np.zeros(11)
    expected[[0, 10]] += 1.0          # (0, -1, 4): adjective 0, noun 4
    expected[[2, 6]] += 0.5           # (6, 2, 0): adjective 2, noun 0
    expected[1] += 2.0                # (1, 1, 5): noun 5 is out of range
    np.testing.assert_allclose(_np(metric.histogram()), expected)


def test_sub_codebook_update_compiles():
    metric = CodebookUsage(sub_codebooks=LAYOUT)
    idx = _vqct_indices(np.random.default_rng(4), (2, 3, 3))
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.function(metric.update_state, jit_compile=True)(idx)
    elif backend == "jax":
        import jax

        values = [v.value for v in metric.variables]
        values = jax.jit(metric.stateless_update_state)(values, idx)
        for variable, value in zip(metric.variables, values):
            variable.assign(value)
    else:
        metric.update_state(idx)
    flat = idx.astype("int64") + np.array([0, 0, 6])
    np.testing.assert_array_equal(
        _np(metric.histogram()), np.bincount(flat.ravel(), minlength=11)
    )


def test_sub_codebook_validation_and_config():
    with pytest.raises(ValueError, match="sum of the sub-codebook sizes"):
        CodebookUsage(10, sub_codebooks=LAYOUT)
    with pytest.raises(ValueError, match="required without"):
        CodebookUsage()
    metric = CodebookUsage(sub_codebooks=LAYOUT)
    with pytest.raises(ValueError, match="trailing index axis of 3"):
        metric.update_state(np.zeros((2, 4, 4), "int32"))
    with pytest.raises(ValueError, match="Unknown sub-codebook 'verb'"):
        metric.usage("verb")
    with pytest.raises(ValueError, match="none"):
        CodebookUsage(4).histogram("noun")
    clone = CodebookUsage.from_config(metric.get_config())
    assert clone.sub_codebooks == metric.sub_codebooks
    assert clone.num_embeddings == 11
    single = CodebookUsage.from_config(CodebookUsage(4).get_config())
    assert single.sub_codebooks is None

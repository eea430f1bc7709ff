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

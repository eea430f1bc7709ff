import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer

K, D = 64, 8


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _f(x):
    return float(_np(x))


def _features(shape=(3, 5, 7, D), scale=1.0, seed=0):
    return (np.random.RandomState(seed).randn(*shape) * scale).astype("float32")


def _table(k=K, d=D, scale=1.0, seed=1):
    return (np.random.RandomState(seed).randn(k, d) * scale).astype("float32")


def _np_nearest(z, codebook):
    # Float64 brute force over all (row, code) pairs.
    z = z.reshape(-1, codebook.shape[1]).astype("float64")
    e = codebook.astype("float64")
    d = (z**2).sum(-1)[:, None] - 2.0 * z @ e.T + (e**2).sum(-1)[None]
    return d.argmin(-1)


def _np_normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _gradients(layer, x, objective, training=False):
    """Gradients of `objective(layer(x))` w.r.t. `x` and the trainables.

    Backend-specific on purpose: it is the independent check of the
    layer's gradient paths.
    """
    backend = keras.backend.backend()
    if not layer.built:
        layer.build(x.shape)
    variables = layer.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = objective(layer(x, training=training))
        grads = tape.gradient(
            value,
            [x] + [v.value for v in variables],
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        grads = [tf.convert_to_tensor(g).numpy() for g in grads]
        return grads[0], grads[1:]
    if backend == "jax":
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def fn(x, trainable):
            out, _ = layer.stateless_call(
                trainable, non_trainable, x, training=training
            )
            return objective(out)

        gx, gv = jax.jit(jax.grad(fn, argnums=(0, 1)))(
            jax.numpy.asarray(x), [v.value for v in variables]
        )
        return _np(gx), [_np(g) for g in gv]
    import torch

    x = torch.tensor(x, requires_grad=True)
    for v in variables:
        v.value.grad = None
    objective(layer(x, training=training)).backward()
    return (
        np.zeros(x.shape, "float32")
        if x.grad is None
        else x.grad.detach().cpu().numpy(),
        [
            np.zeros(v.shape, "float32")
            if v.value.grad is None
            else v.value.grad.detach().cpu().numpy()
            for v in variables
        ],
    )


@pytest.mark.parametrize("chunk_size", [1, 16, 35, 4096])
def test_indices_match_numpy_brute_force(chunk_size):
    z = _features()  # N = 105 rows
    table = _table()
    vq = VectorQuantizer(
        K, D, codebook_initializer=table, chunk_size=chunk_size
    )
    out = vq(z)
    assert tuple(out["indices"].shape) == (3, 5, 7)
    assert keras.backend.standardize_dtype(out["indices"].dtype) == "int32"
    np.testing.assert_array_equal(
        _np(out["indices"]).reshape(-1), _np_nearest(z, table)
    )
    expected = table[_np_nearest(z, table)].reshape(z.shape)
    np.testing.assert_allclose(_np(out["quantized"]), expected, atol=1e-6)


def test_chunked_equals_unchunked_compiled():
    # Through `Model.predict` the layer runs under tf.function / jax.jit.
    z = _features((6, 4, 5, D), seed=3)
    table = _table(seed=4)
    results = []
    for chunk_size in (7, 32, 4096):
        inputs = keras.Input((4, 5, D))
        vq = VectorQuantizer(
            K, D, codebook_initializer=table, chunk_size=chunk_size
        )
        model = keras.Model(inputs, vq(inputs)["indices"])
        results.append(model.predict(z, batch_size=4, verbose=0))
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[2])
    np.testing.assert_array_equal(
        results[2].reshape(-1), _np_nearest(z, table)
    )


@pytest.mark.parametrize("legacy_beta", [False, True])
def test_loss_values_match_numpy(legacy_beta):
    z = _features()
    table = _table()
    vq = VectorQuantizer(
        K, D, beta=0.3, legacy_beta=legacy_beta, codebook_initializer=table
    )
    out = vq(z)
    mse = np.mean((table[_np_nearest(z, table)] - z.reshape(-1, D)) ** 2)
    commitment_w, codebook_w = (1.0, 0.3) if legacy_beta else (0.3, 1.0)
    np.testing.assert_allclose(
        _f(out["commitment_loss"]), commitment_w * mse, rtol=1e-5
    )
    np.testing.assert_allclose(
        _f(out["codebook_loss"]), codebook_w * mse, rtol=1e-5
    )
    np.testing.assert_allclose(_f(out["loss"]), 1.3 * mse, rtol=1e-5)
    assert _f(out["contrastive_loss"]) == 0.0
    for key in ("loss", "codebook_loss", "commitment_loss", "perplexity"):
        assert tuple(out[key].shape) == ()
        assert keras.backend.standardize_dtype(out[key].dtype) == "float32"


def test_perplexity_and_usage_match_numpy():
    z = _features()
    table = _table()
    out = VectorQuantizer(K, D, codebook_initializer=table)(z)
    counts = np.bincount(_np_nearest(z, table), minlength=K)
    p = counts / counts.sum()
    perplexity = np.exp(-np.sum(p * np.log(p + 1e-10)))
    np.testing.assert_allclose(_f(out["perplexity"]), perplexity, rtol=1e-5)
    np.testing.assert_allclose(_f(out["usage"]), np.mean(counts > 0))


@pytest.mark.parametrize("legacy_beta", [False, True])
def test_gradient_paths(legacy_beta):
    z = _features((2, 3, 4, D))
    table = _table()
    w = np.random.RandomState(5).randn(*z.shape).astype("float32")
    vq = VectorQuantizer(
        K, D, beta=0.25, legacy_beta=legacy_beta, codebook_initializer=table
    )
    # Straight-through: d sum(quantized * w) / dz = w, nothing to the codes.
    gx, (gcode,) = _gradients(
        vq, z, lambda o: ops.sum(o["quantized"] * ops.convert_to_tensor(w))
    )
    np.testing.assert_allclose(gx, w, atol=1e-6)
    np.testing.assert_allclose(gcode, 0.0, atol=1e-7)

    # VQ loss: the commitment term reaches z, the codebook term the codes.
    gx, (gcode,) = _gradients(vq, z, lambda o: o["loss"])
    idx = _np_nearest(z, table)
    flat = z.reshape(-1, D)
    size = flat.size
    commitment_w, codebook_w = (1.0, 0.25) if legacy_beta else (0.25, 1.0)
    expected_x = commitment_w * 2.0 / size * (flat - table[idx])
    expected_code = np.zeros_like(table)
    np.add.at(expected_code, idx, codebook_w * 2.0 / size * (table[idx] - flat))
    np.testing.assert_allclose(gx.reshape(-1, D), expected_x, atol=1e-6)
    np.testing.assert_allclose(gcode, expected_code, atol=1e-6)


def test_straight_through_sgd_step_on_dense():
    # Backend-agnostic form of the straight-through check: a Dense before
    # the quantiser gets the same update as if the quantiser were identity.
    x = np.random.RandomState(0).randn(16, 4).astype("float32")
    y = np.random.RandomState(1).randn(16, D).astype("float32")
    kernel = np.random.RandomState(2).randn(4, D).astype("float32") * 0.5
    table = _table()

    def step(with_vq):
        inputs = keras.Input((4,))
        dense = keras.layers.Dense(D, use_bias=False, name="dense")
        h = dense(inputs)
        if with_vq:
            h = VectorQuantizer(
                K, D, codebook_initializer=table, trainable_codebook=False
            )(h)[
                "quantized"
            ]
        model = keras.Model(inputs, h)
        dense.kernel.assign(kernel)
        # Loss linear in the output: d/dh sum(h * y) = y either way.
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=lambda t, p: -ops.sum(p * t, axis=-1),
        )
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        return _np(dense.kernel)

    np.testing.assert_allclose(step(True), step(False), atol=1e-5)


@pytest.mark.parametrize("epsilon", [1e-5, 0.05])
def test_ema_update_matches_numpy(epsilon):
    decay = 0.9
    z = _features((2, 4, 5, D))
    table = _table(k=16)
    vq = VectorQuantizer(
        16,
        D,
        ema_decay=decay,
        ema_epsilon=epsilon,
        codebook_initializer=table,
    )
    vq.build(z.shape)
    assert vq.trainable_weights == []
    # Initial accumulators reproduce the initial codebook exactly.
    np.testing.assert_allclose(_np(vq.get_codebook()), table, rtol=1e-5)

    out = vq(z, training=True)
    flat = z.reshape(-1, D).astype("float64")
    idx = _np_nearest(z, table)  # quantised with the pre-update codebook
    np.testing.assert_array_equal(_np(out["indices"]).reshape(-1), idx)
    n = flat.shape[0]
    frac = np.bincount(idx, minlength=16) / n
    sums = np.zeros((16, D))
    np.add.at(sums, idx, flat)
    count = decay / 16 + (1 - decay) * frac
    total = decay * table / 16 + (1 - decay) * sums / n
    np.testing.assert_allclose(_np(vq.ema_count), count, rtol=1e-5)
    np.testing.assert_allclose(_np(vq.ema_sum), total, rtol=1e-4, atol=1e-7)
    smoothed = (count + epsilon) / (count.sum() + 16 * epsilon) * count.sum()
    np.testing.assert_allclose(
        _np(vq.get_codebook()), total / smoothed[:, None], rtol=1e-4,
        atol=1e-6,
    )
    # EMA mode: commitment term only.
    mse = np.mean((table[idx] - flat) ** 2)
    assert _f(out["codebook_loss"]) == 0.0
    np.testing.assert_allclose(_f(out["loss"]), 0.25 * mse, rtol=1e-5)

    # Inference does not update.
    before = _np(vq.ema_sum)
    vq(z, training=False)
    np.testing.assert_array_equal(_np(vq.ema_sum), before)


def test_ema_updates_under_compiled_fit():
    # `fit` runs `call(training=True)` under tf.function / jax.jit
    # (stateless) / torch; the accumulators must still move, identically.
    z = _features((4, 3, 3, D))
    table = _table(k=16)
    inputs = keras.Input((3, 3, D))
    vq = VectorQuantizer(16, D, ema_decay=0.5, codebook_initializer=table)
    # An identity Dense gives the model a trainable weight; lr 0 keeps it.
    h = keras.layers.Dense(D, kernel_initializer="identity")(inputs)
    model = keras.Model(inputs, vq(h)["quantized"])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    model.fit(z, z, batch_size=4, epochs=1, verbose=0)
    idx = _np_nearest(z, table)
    frac = np.bincount(idx, minlength=16) / idx.size
    np.testing.assert_allclose(
        _np(vq.ema_count), 0.5 / 16 + 0.5 * frac, rtol=1e-5
    )


@pytest.mark.parametrize("anchor", ["probrandom", "random", "closest"])
def test_cvq_reinit_moves_dead_codes_only(anchor):
    rng = np.random.RandomState(0)
    centers = rng.randn(4, D).astype("float32") * 3
    z = (centers[rng.randint(0, 4, 96)] + 0.1 * rng.randn(96, D)).astype(
        "float32"
    )
    table = np.concatenate(
        [centers, 50.0 + rng.randn(12, D).astype("float32")]
    )
    vq = VectorQuantizer(
        16, D, reinit="cvq", anchor=anchor, codebook_initializer=table, seed=3
    )
    out = vq(z.reshape(8, 12, D), training=True)
    new = _np(vq.codebook)
    idx = _np(out["indices"]).reshape(-1)
    probs = np.bincount(idx, minlength=16) / idx.size
    embed_prob = 0.01 * probs
    np.testing.assert_allclose(_np(vq.embed_prob), embed_prob, atol=1e-7)
    decay = np.exp(-embed_prob * 16 * 10 / 0.01 - 1e-3)[:, None]
    # Well-used codes (every centre holds ~1/4 of the batch) stay put.
    np.testing.assert_allclose(new[:4], table[:4], atol=1e-6)
    # Dead codes are pulled onto batch features: recover the anchor.
    anchors = (new[4:] - table[4:] * (1 - decay[4:])) / decay[4:]
    gaps = np.abs(anchors[:, None, :] - z[None]).max(-1)  # (12, N)
    assert np.all(gaps.min(-1) < 1e-2)
    assert np.all(np.linalg.norm(new[4:] - z[gaps.argmin(-1)], axis=-1) < 0.2)
    if anchor == "closest":
        sim = -((z[:, None] - table[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(gaps.argmin(-1), sim.argmax(0)[4:])
    # Inference does not re-initialise.
    before = _np(vq.codebook)
    vq(z.reshape(8, 12, D), training=False)
    np.testing.assert_array_equal(_np(vq.codebook), before)


def _np_contrastive(flat, table, temperature):
    """CVQ contrastive loss as published: full sort per code."""
    sim = -((flat[:, None] - table[None]) ** 2).sum(-1)  # (N, K)
    s = np.sort(sim.T, axis=-1)
    n, k = sim.shape
    pos = s[:, -max(1, n // k) :].mean(-1, keepdims=True)
    logits = np.concatenate([pos, s[:, : n // 2]], axis=-1) / temperature
    m = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(-1)) + m[:, 0]
    return np.mean(lse - logits[:, 0])


def test_contrastive_loss_matches_numpy_and_trains_codes_only():
    rng = np.random.RandomState(0)
    z = (0.3 * rng.randn(5, 8, D)).astype("float32")  # N = 40
    table = (0.3 * rng.randn(8, D)).astype("float32")
    temperature = 0.5
    vq = VectorQuantizer(
        8,
        D,
        contrastive_weight=2.0,
        contrastive_temperature=temperature,
        codebook_initializer=table,
    )
    out = vq(z, training=True)
    flat = z.reshape(-1, D).astype("float64")
    expected = _np_contrastive(flat, table, temperature)
    assert expected > 1e-3  # not saturated, so the check means something
    np.testing.assert_allclose(
        _f(out["contrastive_loss"]), 2.0 * expected, rtol=1e-4
    )
    mse = np.mean((table[_np_nearest(z, table)] - flat) ** 2)
    np.testing.assert_allclose(
        _f(out["loss"]), 1.25 * mse + 2.0 * expected, rtol=1e-4
    )
    # Not computed in inference.
    assert _f(vq(z)["contrastive_loss"]) == 0.0
    # Features are detached inside the similarity: only the codes learn.
    gx, (gcode,) = _gradients(
        vq, z, lambda o: o["contrastive_loss"], training=True
    )
    np.testing.assert_allclose(gx, 0.0, atol=1e-7)
    assert np.abs(gcode).max() > 1e-4


@pytest.mark.parametrize("n", [1, 3, 17])
def test_contrastive_loss_small_and_odd_batches(n):
    rng = np.random.RandomState(n)
    z = (0.3 * rng.randn(n, D)).astype("float32")
    table = (0.3 * rng.randn(4, D)).astype("float32")
    vq = VectorQuantizer(
        4,
        D,
        contrastive_weight=1.0,
        contrastive_temperature=1.0,
        codebook_initializer=table,
    )
    loss = _f(vq(z, training=True)["contrastive_loss"])
    expected = _np_contrastive(z.astype("float64"), table, 1.0)
    # N = 1 has no negatives: the loss is exactly 0.
    np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TF graph, unknown N"
)
def test_contrastive_loss_with_dynamic_batch():
    import tensorflow as tf

    rng = np.random.RandomState(5)
    z = (0.3 * rng.randn(6, 5, D)).astype("float32")
    table = (0.3 * rng.randn(4, D)).astype("float32")
    vq = VectorQuantizer(
        4,
        D,
        contrastive_weight=1.0,
        contrastive_temperature=1.0,
        codebook_initializer=table,
    )
    vq.build((None, None, D))
    fn = tf.function(
        lambda x: vq(x, training=True)["contrastive_loss"],
        input_signature=[tf.TensorSpec((None, None, D), "float32")],
    )
    expected = _np_contrastive(z.reshape(-1, D).astype("float64"), table, 1.0)
    np.testing.assert_allclose(_f(fn(z)), expected, rtol=1e-4)


def test_cvq_preset_runs_and_gradients_flow():
    z = _features((2, 6, 6, D), scale=0.5)
    vq = VectorQuantizer(
        K, D, reinit="cvq", contrastive_weight=1.0, legacy_beta=False, seed=0
    )
    gx, (gcode,) = _gradients(vq, z, lambda o: o["loss"], training=True)
    assert np.all(np.isfinite(gx)) and np.abs(gx).max() > 0
    assert np.all(np.isfinite(gcode)) and np.abs(gcode).max() > 0


def test_l2_normalize_cosine_codes():
    z = _features()
    table = _table()
    vq = VectorQuantizer(K, D, l2_normalize=True, codebook_initializer=table)
    out = vq(z)
    zn = _np_normalize(z.reshape(-1, D).astype("float64"))
    tn = _np_normalize(table.astype("float64"))
    idx = (zn @ tn.T).argmax(-1)
    np.testing.assert_array_equal(_np(out["indices"]).reshape(-1), idx)
    np.testing.assert_allclose(
        _np(out["quantized"]).reshape(-1, D), tn[idx], atol=1e-5
    )
    mse = np.mean((tn[idx] - zn) ** 2)
    np.testing.assert_allclose(_f(out["loss"]), 1.25 * mse, rtol=1e-4)
    np.testing.assert_allclose(
        _np(vq.indices_to_codes(out["indices"])).reshape(-1, D),
        tn[idx],
        atol=1e-6,
    )


def test_indices_to_codes():
    table = _table()
    vq = VectorQuantizer(K, D, codebook_initializer=table)
    indices = np.array([[0, 5], [63, 5]], dtype="int32")
    codes = vq.indices_to_codes(indices)
    assert tuple(codes.shape) == (2, 2, D)
    np.testing.assert_allclose(_np(codes), table[indices])
    z = _features()
    out = vq(z)
    np.testing.assert_allclose(
        _np(vq.indices_to_codes(out["indices"])), _np(out["quantized"]),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="indices"):
        vq.indices_to_codes(np.zeros((2,), "float32"))


def test_default_initializer_range():
    vq = VectorQuantizer(100, 4, seed=0)
    vq.build((None, 4))
    values = _np(vq.get_codebook())
    assert values.shape == (100, 4)
    assert np.abs(values).max() <= 1.0 / 100
    assert values.std() > 1e-3  # not all zeros


def test_get_config_round_trip():
    vq = VectorQuantizer(
        K,
        D,
        beta=0.5,
        legacy_beta=True,
        l2_normalize=True,
        ema_decay=0.95,
        ema_epsilon=1e-3,
        chunk_size=128,
        codebook_initializer=keras.initializers.RandomNormal(stddev=0.2),
        seed=7,
        name="vq",
    )
    config = vq.get_config()
    clone = VectorQuantizer.from_config(config)
    assert clone.get_config() == config
    assert config["codebook_initializer"]["class_name"] == "RandomNormal"
    cvq = VectorQuantizer(
        K, D, reinit="cvq", anchor="closest", reinit_decay=0.9,
        contrastive_weight=1.0, contrastive_temperature=0.1,
    )
    config = cvq.get_config()
    assert VectorQuantizer.from_config(config).get_config() == config
    # Registered for `.keras` loading.
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(cvq)
    )
    assert isinstance(restored, VectorQuantizer)
    assert restored.get_config() == config

    # Weights carry the state, so a clone with copied weights agrees.
    z = _features()
    vq(z)
    clone(z)
    clone.set_weights(vq.get_weights())
    np.testing.assert_array_equal(
        _np(clone(z)["indices"]), _np(vq(z)["indices"])
    )


def test_frozen_table():
    table = _table()
    vq = VectorQuantizer(
        K, D, trainable_codebook=False, codebook_initializer=table
    )
    out = vq(_features(), training=True)
    assert vq.trainable_weights == []
    assert len(vq.non_trainable_weights) >= 1
    np.testing.assert_array_equal(_np(vq.get_codebook()), table)
    assert vq.get_config()["codebook_initializer"] is None
    assert tuple(out["quantized"].shape) == (3, 5, 7, D)


def test_mixed_precision_inputs():
    z = _features()
    table = _table()
    vq = VectorQuantizer(K, D, codebook_initializer=table)
    for dtype in ("bfloat16", "float16"):
        zl = ops.cast(z, dtype)
        out = vq(zl)
        assert keras.backend.standardize_dtype(out["quantized"].dtype) == dtype
        assert keras.backend.standardize_dtype(out["loss"].dtype) == "float32"
        ref = _np_nearest(_np(ops.cast(zl, "float32")), table)
        np.testing.assert_array_equal(_np(out["indices"]).reshape(-1), ref)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_embeddings"):
        VectorQuantizer(0, D)
    with pytest.raises(ValueError, match="embedding_dim"):
        VectorQuantizer(K, 0)
    with pytest.raises(ValueError, match="chunk_size"):
        VectorQuantizer(K, D, chunk_size=0)
    with pytest.raises(ValueError, match="ema_decay"):
        VectorQuantizer(K, D, ema_decay=1.0)
    with pytest.raises(ValueError, match="reinit"):
        VectorQuantizer(K, D, reinit="kmeans")
    with pytest.raises(ValueError, match="anchor"):
        VectorQuantizer(K, D, anchor="nearest")
    with pytest.raises(ValueError, match="contrastive_temperature"):
        VectorQuantizer(K, D, contrastive_temperature=0.0)
    with pytest.raises(ValueError, match="ema_decay"):
        VectorQuantizer(K, D, reinit="cvq", ema_decay=0.99)
    with pytest.raises(ValueError, match="trainable_codebook"):
        VectorQuantizer(K, D, trainable_codebook=False, reinit="cvq")
    with pytest.raises(ValueError, match="codebook_initializer"):
        VectorQuantizer(K, D, codebook_initializer=np.zeros((K, D + 1)))

    vq = VectorQuantizer(K, D)
    with pytest.raises(ValueError, match="embedding_dim"):
        vq(np.zeros((2, 3, D + 1), "float32"))
    with pytest.raises(ValueError, match="floating"):
        vq(np.zeros((2, 3, D), "int32"))


def test_large_codebook_memory_bounded():
    # K=16384, D=256, N=2048 in 512-row chunks: one (512, 16384) block of
    # distances at a time (32 MiB) instead of the full 128 MiB matrix.
    k, d = 16384, 256
    z = np.random.RandomState(0).randn(2, 32, 32, d).astype("float32")
    vq = VectorQuantizer(k, d, chunk_size=512, seed=0)
    out = vq(z)
    indices = _np(out["indices"])
    assert indices.shape == (2, 32, 32)
    assert indices.min() >= 0 and indices.max() < k
    table = _np(vq.get_codebook())
    rows = z.reshape(-1, d)[::64]
    np.testing.assert_array_equal(
        indices.reshape(-1)[::64], _np_nearest(rows, table)
    )

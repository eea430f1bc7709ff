import keras
import numpy as np
import pytest

from keras_lgvq.layers.vqgan.patch_discriminator import PatchDiscriminator

# Logit-map side for a square input, per n_layers (worked out by hand from
# PyTorch's conv arithmetic: stride-2 halves, each stride-1 conv loses 1).
EXPECTED_SIDE = {
    32: {1: 14, 2: 6, 3: 2},
    64: {1: 30, 2: 14, 3: 6},
    256: {1: 126, 2: 62, 3: 30},
}


def _np_conv(x, kernel, bias, stride):
    """Valid 2D cross-correlation, channels-last, numpy."""
    kh, kw, _, filters = kernel.shape
    batch, height, width, _ = x.shape
    out_h = (height - kh) // stride + 1
    out_w = (width - kw) // stride + 1
    out = np.zeros((batch, out_h, out_w, filters), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[
                :,
                i : i + stride * (out_h - 1) + 1 : stride,
                j : j + stride * (out_w - 1) + 1 : stride,
                :,
            ]
            out += patch @ kernel[i, j]
    if bias is not None:
        out += bias
    return out


def _np_pad(x):
    return np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _lrelu(x):
    return np.where(x > 0, x, 0.2 * x)


def _convs(disc):
    return [l for l in disc.sequence if isinstance(l, keras.layers.Conv2D)]


def _norms(disc):
    return [
        l
        for l in disc.sequence
        if isinstance(l, keras.layers.BatchNormalization)
    ]


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_output_shapes(n_layers):
    disc = PatchDiscriminator(ndf=4, n_layers=n_layers)
    for side in (32, 64):
        x = np.random.uniform(-1, 1, (2, side, side, 3)).astype("float32")
        out = keras.ops.convert_to_numpy(disc(x))
        expected = EXPECTED_SIDE[side][n_layers]
        assert out.shape == (2, expected, expected, 1)
    # 256 px only symbolically: no need to run the convolutions.
    symbolic = disc(keras.Input((256, 256, 3)))
    expected = EXPECTED_SIDE[256][n_layers]
    assert tuple(symbolic.shape) == (None, expected, expected, 1)
    assert disc.compute_output_shape((5, 256, 256, 3)) == (
        5,
        expected,
        expected,
        1,
    )


def test_default_is_taming_discriminator_with_taming_init():
    disc = PatchDiscriminator()
    disc.build((None, 256, 256, 3))
    assert disc.compute_output_shape((1, 256, 256, 3)) == (1, 30, 30, 1)
    convs = _convs(disc)
    assert [c.filters for c in convs] == [64, 128, 256, 512, 1]
    assert [c.strides for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 2
    assert [c.use_bias for c in convs] == [True, False, False, False, True]
    assert all(c.kernel_size == (4, 4) for c in convs)
    # taming's NLayerDiscriminator has 2,765,633 parameters.
    trainable = sum(int(np.prod(w.shape)) for w in disc.trainable_weights)
    assert trainable == 2765633
    assert len(disc.non_trainable_weights) == 6  # 3 BN x (mean, var)
    for bn in _norms(disc):
        assert bn.epsilon == pytest.approx(1e-5)
        assert bn.momentum == pytest.approx(0.9)
        # Moving statistics stay in sync across replicas.
        assert bn.moving_mean.aggregation == "mean"
        assert bn.moving_variance.aggregation == "mean"

    # Initialisation statistics (taming weights_init).
    kernels = np.concatenate(
        [keras.ops.convert_to_numpy(c.kernel).ravel() for c in _convs(disc)]
    )
    assert abs(kernels.mean()) < 1e-3
    assert kernels.std() == pytest.approx(0.02, rel=0.02)
    for conv in _convs(disc):
        if conv.use_bias:
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(conv.bias), 0.0
            )
    gammas = np.concatenate(
        [keras.ops.convert_to_numpy(bn.gamma) for bn in _norms(disc)]
    )
    assert gammas.mean() == pytest.approx(1.0, abs=0.005)
    assert gammas.std() == pytest.approx(0.02, abs=0.004)
    for bn in _norms(disc):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.beta), 0)


def test_first_conv_and_padding_match_numpy():
    # ndf/n_layers as in test_output_shapes so JAX reuses compiled ops.
    disc = PatchDiscriminator(ndf=4, n_layers=1)
    x = np.random.uniform(-1, 1, (2, 6, 7, 3)).astype("float32")
    disc.build((None, 6, 7, 3))
    pad, conv, act = disc.sequence[:3]
    assert isinstance(pad, keras.layers.ZeroPadding2D)
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype("float64")
    # A non-zero bias, so a missing bias would be caught.
    bias = np.array([0.1, -0.2, 0.3, -0.4])
    conv.bias.assign(bias)
    got = keras.ops.convert_to_numpy(act(conv(pad(x))))
    want = _lrelu(_np_conv(_np_pad(x.astype("float64")), kernel, bias, 2))
    assert got.shape == (2, 3, 3, 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_full_forward_matches_numpy_in_inference():
    disc = PatchDiscriminator(ndf=4, n_layers=1)
    x = np.random.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    disc.build(x.shape)
    conv0, conv1, conv2 = _convs(disc)
    (bn,) = _norms(disc)
    rng = np.random.default_rng(0)
    # Non-trivial moving statistics so inference BN is really exercised.
    bn.moving_mean.assign(rng.normal(0, 0.1, 8).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, 8).astype("float32"))
    bn.beta.assign(rng.normal(0, 0.1, 8).astype("float32"))
    conv2.bias.assign(np.array([0.05], dtype="float32"))
    got = keras.ops.convert_to_numpy(disc(x, training=False))

    def w(v):
        return keras.ops.convert_to_numpy(v).astype("float64")

    h = _np_pad(x.astype("float64"))
    h = _lrelu(_np_conv(h, w(conv0.kernel), w(conv0.bias), 2))
    h = _np_conv(_np_pad(h), w(conv1.kernel), None, 1)
    h = (h - w(bn.moving_mean)) / np.sqrt(w(bn.moving_variance) + 1e-5)
    h = _lrelu(h * w(bn.gamma) + w(bn.beta))
    want = _np_conv(_np_pad(h), w(conv2.kernel), w(conv2.bias), 1)
    assert got.shape == want.shape == (2, 14, 14, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_batch_norm_train_vs_inference():
    disc = PatchDiscriminator(ndf=4, n_layers=2)
    x = np.random.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    disc.build(x.shape)
    bn = _norms(disc)[0]

    inference_before = keras.ops.convert_to_numpy(disc(x, training=False))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(bn.moving_mean), 0.0
    )

    # Pre-BN activations of the first BatchNorm, for the expected update.
    h = x
    for layer in disc.sequence:
        if layer is bn:
            break
        h = layer(h)
    h = keras.ops.convert_to_numpy(h).astype("float64")
    batch_mean = h.mean(axis=(0, 1, 2))
    batch_var = h.var(axis=(0, 1, 2))

    train = keras.ops.convert_to_numpy(disc(x, training=True))
    assert not np.allclose(train, inference_before, atol=1e-4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(bn.moving_mean),
        0.1 * batch_mean,
        rtol=1e-4,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(bn.moving_variance),
        0.9 + 0.1 * batch_var,
        rtol=1e-4,
    )

    moving = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    inference_after = keras.ops.convert_to_numpy(disc(x, training=False))
    # Inference uses (and does not touch) the updated moving statistics.
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(bn.moving_mean), moving
    )
    assert not np.allclose(inference_after, inference_before, atol=1e-6)


def test_without_batch_norm():
    disc = PatchDiscriminator(ndf=4, n_layers=2, use_batch_norm=False)
    out = disc(np.zeros((1, 32, 32, 3), dtype="float32"))
    assert tuple(out.shape) == (1, 6, 6, 1)
    assert not _norms(disc)
    assert all(c.use_bias for c in _convs(disc))
    assert not disc.non_trainable_weights


def test_get_config_round_trip(tmp_path):
    disc = PatchDiscriminator(
        input_channels=1, ndf=4, n_layers=2, use_batch_norm=True, name="d"
    )
    config = disc.get_config()
    for key, value in {
        "input_channels": 1,
        "ndf": 4,
        "n_layers": 2,
        "use_batch_norm": True,
        "name": "d",
    }.items():
        assert config[key] == value
    clone = PatchDiscriminator.from_config(config)
    assert clone.get_config() == config

    inputs = keras.Input((32, 32, 1))
    model = keras.Model(inputs, disc(inputs))
    x = np.random.uniform(-1, 1, (2, 32, 32, 1)).astype("float32")
    disc(x, training=True)  # move the BN statistics away from their init
    path = str(tmp_path / "disc.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-6,
        atol=1e-6,
    )


def test_input_validation():
    disc = PatchDiscriminator(ndf=4, n_layers=3)
    with pytest.raises(ValueError, match="channels"):
        disc(np.zeros((1, 32, 32, 4), dtype="float32"))
    with pytest.raises(ValueError, match="shape"):
        PatchDiscriminator(ndf=4)(np.zeros((32, 32, 3), dtype="float32"))
    with pytest.raises(ValueError, match="too small"):
        PatchDiscriminator(ndf=4)(np.zeros((1, 8, 8, 3), dtype="float32"))
    with pytest.raises(ValueError, match="ndf"):
        PatchDiscriminator(ndf=0)
    with pytest.raises(ValueError, match="n_layers"):
        PatchDiscriminator(n_layers=1.5)
    with pytest.raises(ValueError, match="input_channels"):
        PatchDiscriminator(input_channels=True)
    with pytest.raises(ValueError, match="use_batch_norm"):
        PatchDiscriminator(use_batch_norm="yes")

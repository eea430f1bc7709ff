import os
import warnings

import keras
import numpy as np
import pytest

from keras_lgvq.losses import LPIPS
from keras_lgvq.losses import lpips as lpips_module
from keras_lgvq.losses import lpips_assets

CHANNELS = lpips_assets.HEAD_CHANNELS
SHIFT = np.array([-0.030, -0.088, -0.188])
SCALE = np.array([0.458, 0.448, 0.450])
# Every image pair has this shape: on JAX each new shape recompiles the VGG
# ops, so the tests share one.
IMAGES = (2, 32, 32, 3)


def _images(rng):
    return rng.uniform(-1, 1, IMAGES).astype("float32")


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _value_and_grad(fn, value):
    """Value and gradient of a scalar function of one array, per backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        v = tf.convert_to_tensor(value)
        with tf.GradientTape() as tape:
            tape.watch(v)
            out = fn(v)
        return float(out), tape.gradient(out, v).numpy()
    if backend == "jax":
        import jax

        # Jitted: one XLA compile instead of one per primitive (~3x less CPU).
        out, grad = jax.jit(jax.value_and_grad(fn))(jax.numpy.asarray(value))
        return float(out), np.asarray(grad)
    if backend == "torch":
        import torch

        v = torch.tensor(value, requires_grad=True)
        out = fn(v)
        out.backward()
        return float(out.detach()), v.grad.numpy()
    pytest.skip(f"no gradient helper for backend {backend}")


def _write_heads(path, seed=1):
    rng = np.random.default_rng(seed)
    arrays = {
        f"lin{i}": rng.uniform(0.0, 0.2, c).astype("float32")
        for i, c in enumerate(CHANNELS)
    }
    np.savez(path, **arrays)
    return [arrays[f"lin{i}"] for i in range(len(CHANNELS))]


def _np_distance(features_x, features_y, heads):
    total = 0.0
    for fx, fy, w in zip(features_x, features_y, heads):
        fx = fx.astype("float64")
        fy = fy.astype("float64")
        nx = fx / (np.sqrt((fx**2).sum(-1, keepdims=True)) + 1e-10)
        ny = fy / (np.sqrt((fy**2).sum(-1, keepdims=True)) + 1e-10)
        total = total + ((nx - ny) ** 2 @ w.astype("float64")).mean(
            axis=(1, 2)
        )
    return total


def _random_features(rng, batch, sides=(8, 4, 2, 2, 1)):
    # Post-ReLU-like maps: non-negative, with exact zeros.
    return [
        np.maximum(rng.normal(size=(batch, s, s, c)), 0).astype("float32")
        for s, c in zip(sides, CHANNELS)
    ]


def _make_lpips(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LPIPS(**kwargs)


@pytest.fixture(scope="module")
def heads_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("heads") / "heads.npz")
    return path, _write_heads(path)


@pytest.fixture(scope="module")
def lpips_layer(heads_file):
    # One shared instance: building VGG16 is the slow part (on JAX above all).
    keras.utils.set_random_seed(1)
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(
        record=True
    ) as caught:
        warnings.simplefilter("always")
        # Make sure no cached ImageNet file is picked up on this machine.
        mp.setattr(lpips_module, "_keras_model_dirs", lambda: [])
        layer = LPIPS(
            heads=heads_file[0], allow_random_backbone=True, use_dropout=True
        )
    layer.construction_warnings = [str(w.message) for w in caught]
    return layer


def test_frozen_and_labelled(lpips_layer):
    assert lpips_layer.random_backbone is True
    assert lpips_layer.vgg_weights_path is None
    assert any(
        "randomly initialised VGG16" in m
        for m in lpips_layer.construction_warnings
    )
    assert lpips_layer.trainable_weights == []
    # 13 VGG convs (kernel, bias) + 5 heads, all frozen.
    variables = [
        w
        for w in lpips_layer.non_trainable_weights
        if "seed_generator" not in w.path
    ]
    assert len(variables) == 31
    assert [h.kernel.shape for h in lpips_layer.head_layers] == [
        (1, 1, c, 1) for c in CHANNELS
    ]
    # Making an enclosing model trainable does not unfreeze it.
    a = keras.Input(IMAGES[1:])
    b = keras.Input(IMAGES[1:])
    distance = keras.layers.Reshape((1,))(lpips_layer(a, b))
    parent = keras.Model([a, b], keras.layers.Dense(1)(distance))
    parent.trainable = True
    lpips_layer.trainable = True
    assert lpips_layer.trainable is False
    assert lpips_layer.trainable_weights == []
    assert len(parent.trainable_weights) == 2  # the Dense kernel and bias


def test_distance_properties(lpips_layer):
    rng = np.random.default_rng(0)
    x = _images(rng)
    y = np.clip(x + rng.normal(0, 0.3, x.shape), -1, 1).astype("float32")
    d_xy = _numpy(lpips_layer(x, y))
    d_yx = _numpy(lpips_layer(y, x))
    d_xx = _numpy(lpips_layer(x, x))
    assert d_xy.shape == (2,)
    assert d_xy.dtype == np.float32
    np.testing.assert_array_equal(d_xx, 0.0)
    np.testing.assert_allclose(d_xy, d_yx, rtol=1e-5)
    assert np.all(d_xy > 0)
    # A larger perturbation gives a larger distance.
    z = np.clip(x + rng.normal(0, 1.0, x.shape), -1, 1).astype("float32")
    assert np.all(_numpy(lpips_layer(x, z)) > d_xy)


def test_head_math_matches_numpy(lpips_layer, heads_file):
    rng = np.random.default_rng(3)
    fx = _random_features(rng, 2)
    fy = _random_features(rng, 2)
    got = _numpy(lpips_layer.distance_from_features(fx, fy, training=False))
    want = _np_distance(fx, fy, heads_file[1])
    assert got.shape == (2,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_call_is_features_then_heads(lpips_layer):
    rng = np.random.default_rng(4)
    x = _images(rng)
    y = _images(rng)
    both = lpips_layer.extract_features(np.concatenate([x, y]))
    fx = [_numpy(f)[:2] for f in both]
    fy = [_numpy(f)[2:] for f in both]
    assert [f.shape for f in fx] == [
        (2, 32, 32, 64),
        (2, 16, 16, 128),
        (2, 8, 8, 256),
        (2, 4, 4, 512),
        (2, 2, 2, 512),
    ]
    assert all(f.min() >= 0 for f in fx)  # post-ReLU taps
    heads = [_numpy(h.kernel).reshape(-1) for h in lpips_layer.head_layers]
    np.testing.assert_allclose(
        _numpy(lpips_layer(x, y)), _np_distance(fx, fy, heads), rtol=1e-4
    )


def test_caffe_preprocessing_matches_keras(lpips_layer):
    x = np.random.uniform(-1, 1, (2, 4, 4, 3)).astype("float32")
    want = keras.applications.vgg16.preprocess_input((x + 1.0) * 127.5)
    np.testing.assert_allclose(
        _numpy(lpips_layer.preprocess(x)), want, rtol=1e-5, atol=1e-3
    )


def test_dropout_only_in_training(lpips_layer, heads_file):
    rng = np.random.default_rng(5)
    fx = _random_features(rng, 2)
    fy = _random_features(rng, 2)
    eval_value = _numpy(lpips_layer.distance_from_features(fx, fy))
    train_value = _numpy(
        lpips_layer.distance_from_features(fx, fy, training=True)
    )
    np.testing.assert_allclose(
        eval_value, _np_distance(fx, fy, heads_file[1]), rtol=1e-5
    )
    assert not np.allclose(train_value, eval_value, rtol=1e-3)


def test_gradient_flows_to_inputs(lpips_layer):
    rng = np.random.default_rng(6)
    x = _images(rng)
    y = np.clip(x + rng.normal(0, 0.3, x.shape), -1, 1).astype("float32")
    pair = np.concatenate([x, y])

    # One backward pass gives the gradient for both arguments.
    def loss(v):
        return keras.ops.sum(lpips_layer(v[:2], v[2:]))

    value, grad = _value_and_grad(loss, pair)
    assert grad.shape == pair.shape
    assert np.all(np.isfinite(grad))
    assert np.abs(grad[:2]).max() > 0  # to x
    assert np.abs(grad[2:]).max() > 0  # to y
    # Directional finite difference along a random direction in y.
    direction = rng.normal(size=y.shape).astype("float32")
    direction /= np.linalg.norm(direction)
    eps = 1e-2
    plus = float(np.sum(_numpy(lpips_layer(x, y + eps * direction))))
    minus = float(np.sum(_numpy(lpips_layer(x, y - eps * direction))))
    numeric = (plus - minus) / (2 * eps)
    analytic = float(np.sum(grad[2:] * direction))
    assert value == pytest.approx((plus + minus) / 2, rel=1e-2)
    assert analytic == pytest.approx(numeric, rel=0.1, abs=1e-4)


def test_zero_feature_vector_has_finite_gradient(lpips_layer):
    rng = np.random.default_rng(7)
    fx = _random_features(rng, 1)
    fy = _random_features(rng, 1)
    fx[0][0, 0, 0, :] = 0.0  # an all-zero feature vector
    first = fx[0]

    def loss(v):
        return keras.ops.sum(
            lpips_layer.distance_from_features([v] + fx[1:], fy)
        )

    value, grad = _value_and_grad(loss, first)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))
    heads = [_numpy(h.kernel).reshape(-1) for h in lpips_layer.head_layers]
    want = _np_distance(fx, fy, heads).sum()
    np.testing.assert_allclose(value, want, rtol=1e-5)


def test_get_config_round_trip_and_lpips_scaling(lpips_layer, heads_file):
    config = lpips_layer.get_config()
    for key, value in {
        "vgg_weights": None,
        "heads": heads_file[0],
        "allow_random_backbone": True,
        "use_dropout": True,
        "vgg_preprocessing": "caffe",
        "trainable": False,
    }.items():
        assert config[key] == value
    # Rebuild with the LPIPS scaling layer instead of caffe preprocessing.
    config = dict(config, vgg_preprocessing="lpips", name="perceptual")
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setattr(lpips_module, "_keras_model_dirs", lambda: [])
        clone = LPIPS.from_config(config)
    assert clone.get_config() == config
    assert clone.trainable_weights == []
    clone.set_weights(lpips_layer.get_weights())

    rng = np.random.default_rng(8)
    x = _images(rng)
    y = _images(rng)
    np.testing.assert_allclose(
        _numpy(clone.preprocess(x)), (x - SHIFT) / SCALE, rtol=1e-5, atol=1e-6
    )
    scaled = np.concatenate([x, y]).astype("float64")
    scaled = ((scaled - SHIFT) / SCALE).astype("float32")
    features = [_numpy(f) for f in lpips_layer.feature_extractor(scaled)]
    want = _numpy(
        lpips_layer.distance_from_features(
            [f[:2] for f in features], [f[2:] for f in features]
        )
    )
    np.testing.assert_allclose(_numpy(clone(x, y)), want, rtol=1e-4)


def _write_legacy_notop_h5(model, path):
    """Write weights in the legacy layout of keras.applications' .h5."""
    import h5py

    layers = {layer.name: layer for layer in model.layers}
    # The real file also lists block5_pool (no weights); keep that layout.
    names = list(layers) + ["block5_pool"]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode("utf8") for n in names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for name in names:
            group = f.create_group(name)
            weight_names = []
            variables = layers[name].weights if name in layers else []
            for variable, suffix in zip(variables, ("kernel", "bias")):
                weight_name = f"{name}/{suffix}:0"
                group.create_dataset(weight_name, data=_numpy(variable))
                weight_names.append(weight_name.encode("utf8"))
            group.attrs["weight_names"] = weight_names


def test_vgg_weights_file_round_trip(
    lpips_layer, heads_file, tmp_path, monkeypatch
):
    # The shared random backbone, written as keras.applications writes
    # vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5, then loaded into a
    # new (differently initialised) LPIPS.
    source = lpips_layer.feature_extractor
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    path = str(models_dir / lpips_module.VGG16_NOTOP_FILENAME)
    _write_legacy_notop_h5(source, path)

    keras.utils.set_random_seed(11)
    layer = LPIPS(vgg_weights=path, heads=heads_file[0])
    assert layer.random_backbone is False
    assert layer.vgg_weights_path == path
    source_weights = [_numpy(w) for w in source.weights]
    loaded = [_numpy(w) for w in layer.feature_extractor.weights]
    assert len(loaded) == len(source_weights) == 26
    for a, b in zip(loaded, source_weights):
        np.testing.assert_array_equal(a, b)

    rng = np.random.default_rng(9)
    x = _images(rng)
    y = _images(rng)
    np.testing.assert_allclose(
        _numpy(layer(x, y)), _numpy(lpips_layer(x, y)), rtol=1e-5
    )

    # "auto" (and None) find the same file through $KERAS_HOME/models.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert lpips_module._resolve_vgg_weights("auto", False) == path
    assert lpips_module._resolve_vgg_weights(None, False) == path


def test_missing_weights_error(heads_file, tmp_path, monkeypatch):
    empty = str(tmp_path / "models")
    monkeypatch.setattr(lpips_module, "_keras_model_dirs", lambda: [empty])
    with pytest.raises(FileNotFoundError) as info:
        LPIPS(heads=heads_file[0])
    message = str(info.value)
    assert lpips_module.VGG16_NOTOP_FILENAME in message
    assert "weights='imagenet'" in message
    assert "include_top=False" in message
    assert "vgg_weights=" in message
    assert "allow_random_backbone=True" in message
    assert empty in message
    # An explicit missing path is an error even if random is allowed.
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LPIPS(
            vgg_weights=str(tmp_path / "nope.h5"),
            heads=heads_file[0],
            allow_random_backbone=True,
        )
    wrong = tmp_path / "weights.npz"
    wrong.write_bytes(b"")
    with pytest.raises(ValueError, match=".h5"):
        LPIPS(vgg_weights=str(wrong), heads=heads_file[0])


def test_missing_and_invalid_heads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(lpips_module, "_keras_model_dirs", lambda: [])
    with pytest.raises(FileNotFoundError) as info:
        LPIPS(allow_random_backbone=True)
    assert "python -m keras_lgvq.losses.lpips_assets" in str(info.value)
    assert lpips_assets.heads_path() in str(info.value)

    # The default path is lpips_assets.heads_path().
    arrays = _write_heads(lpips_assets.heads_path(), seed=2)
    path, loaded = lpips_module._load_heads(None)
    assert path == lpips_assets.heads_path()
    for a, b in zip(loaded, arrays):
        np.testing.assert_array_equal(a, b)

    bad = dict(zip([f"lin{i}" for i in range(5)], arrays))
    bad["lin2"] = -bad["lin2"]
    np.savez(tmp_path / "negative.npz", **bad)
    with pytest.raises(ValueError, match="non-negative"):
        lpips_module._load_heads(str(tmp_path / "negative.npz"))
    bad["lin2"] = np.ones(7, dtype="float32")
    np.savez(tmp_path / "short.npz", **bad)
    with pytest.raises(ValueError, match="expected 256"):
        lpips_module._load_heads(str(tmp_path / "short.npz"))


def test_input_validation(lpips_layer):
    x = np.zeros((1, 32, 32, 3), dtype="float32")
    with pytest.raises(ValueError, match="channels-last RGB"):
        lpips_layer(x[..., :1], x[..., :1])
    with pytest.raises(ValueError, match="at least 16"):
        lpips_layer(x[:, :8, :8], x[:, :8, :8])
    with pytest.raises(ValueError, match="same shape"):
        lpips_layer(x, np.zeros((2, 32, 32, 3), dtype="float32"))
    with pytest.raises(ValueError, match="vgg_preprocessing"):
        LPIPS(vgg_preprocessing="bgr", allow_random_backbone=True)
    with pytest.raises(ValueError, match="allow_random_backbone"):
        LPIPS(allow_random_backbone="yes")


def test_real_heads_if_cached():
    path = lpips_assets.heads_path()
    if not os.path.isfile(path):
        pytest.skip(
            f"real LPIPS heads not cached at {path}; run "
            f"`{lpips_assets.FETCH_COMMAND}` to fetch them"
        )
    _, heads = lpips_module._load_heads(path)
    sums = [float(h.sum()) for h in heads]
    np.testing.assert_allclose(sums, lpips_assets.HEAD_SUMS, atol=0.01)

import keras
import numpy as np
import pytest
from scipy import ndimage

from keras_lgvq.metrics.image_quality import PSNR
from keras_lgvq.metrics.image_quality import SSIM
from keras_lgvq.metrics.image_quality import psnr
from keras_lgvq.metrics.image_quality import ssim


def np_psnr(a, b, data_range):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    mse = ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(data_range**2 / mse)


def np_ssim(a, b, data_range):
    """skimage.metrics.structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, channel_axis=-1), rewritten:
    reflect-padded Gaussian filtering (truncate 3.5 -> 11 taps), then
    the 5-pixel border is cropped before averaging."""
    k1, k2, sigma, pad = 0.01, 0.03, 1.5, 5
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    out = []
    for img_a, img_b in zip(a.astype(np.float64), b.astype(np.float64)):
        per_channel = []
        for ch in range(img_a.shape[-1]):
            x, y = img_a[..., ch], img_b[..., ch]

            def filt(z):
                return ndimage.gaussian_filter(
                    z, sigma=sigma, truncate=3.5, mode="reflect"
                )

            ux, uy = filt(x), filt(y)
            vx = filt(x * x) - ux * ux
            vy = filt(y * y) - uy * uy
            vxy = filt(x * y) - ux * uy
            s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / (
                (ux**2 + uy**2 + c1) * (vx + vy + c2)
            )
            per_channel.append(s[pad:-pad, pad:-pad].mean())
        out.append(np.mean(per_channel))
    return np.array(out)


def _pair(shape, low, high, noise, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(low, high, shape)
    b = np.clip(
        a + noise * (high - low) * rng.standard_normal(shape), low, high
    )
    return a.astype("float32"), b.astype("float32")


def test_psnr_matches_numpy_for_both_ranges():
    a, b = _pair((3, 16, 20, 3), -1, 1, 0.05)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(psnr(a, b, data_range=2.0)),
        np_psnr(a, b, 2.0),
        rtol=1e-4,
    )
    a, b = _pair((2, 16, 16, 3), 0, 255, 0.1, seed=1)
    a8, b8 = a.round().astype("uint8"), b.round().astype("uint8")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(psnr(a8, b8, data_range=255.0)),
        np_psnr(a8, b8, 255.0),
        rtol=1e-4,
    )


def test_psnr_identical_images_inf_or_capped():
    a, _ = _pair((2, 8, 8, 3), -1, 1, 0.0)
    assert np.all(np.isposinf(keras.ops.convert_to_numpy(psnr(a, a))))
    capped = keras.ops.convert_to_numpy(psnr(a, a, max_psnr=100.0))
    np.testing.assert_allclose(capped, [100.0, 100.0])


def test_ssim_matches_skimage_formula():
    a, b = _pair((2, 24, 32, 3), -1, 1, 0.1)
    got = keras.ops.convert_to_numpy(ssim(a, b, data_range=2.0))
    np.testing.assert_allclose(got, np_ssim(a, b, 2.0), atol=2e-5)
    assert np.all(got < 0.99)


def test_ssim_uint8_and_unbatched_and_channels_first():
    a, b = _pair((1, 20, 20, 1), 0, 255, 0.2, seed=3)
    a8, b8 = a.round().astype("uint8"), b.round().astype("uint8")
    ref = np_ssim(a8, b8, 255.0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ssim(a8[0], b8[0], data_range=255.0)),
        ref[0],
        atol=2e-5,
    )
    cf = keras.ops.convert_to_numpy(
        ssim(
            np.transpose(a8, (0, 3, 1, 2)),
            np.transpose(b8, (0, 3, 1, 2)),
            data_range=255.0,
            data_format="channels_first",
        )
    )
    np.testing.assert_allclose(cf, ref, atol=2e-5)


def test_ssim_identical_is_one():
    a, _ = _pair((2, 16, 16, 3), -1, 1, 0.0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ssim(a, a)), [1.0, 1.0], atol=1e-6
    )


def test_input_validation():
    a = np.zeros((1, 8, 8, 3), "float32")
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a, a)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, data_range=0)
    with pytest.raises(ValueError, match="rank 4"):
        psnr(np.zeros((8, 8)), np.zeros((8, 8)))


def test_metrics_accumulate_weighted_means():
    batches = [
        _pair((2, 16, 16, 3), -1, 1, n, seed=i)
        for i, n in enumerate([0.02, 0.1, 0.3])
    ]
    weights = [np.array([1.0, 2.0]), np.array([0.5, 0.0]), np.array([1.0, 1.0])]
    psnr_metric, ssim_metric = PSNR(data_range=2.0), SSIM(data_range=2.0)
    for (a, b), w in zip(batches, weights):
        psnr_metric.update_state(a, b, sample_weight=w)
        ssim_metric.update_state(a, b, sample_weight=w)
    w_all = np.concatenate(weights)
    p_all = np.concatenate([np_psnr(a, b, 2.0) for a, b in batches])
    s_all = np.concatenate([np_ssim(a, b, 2.0) for a, b in batches])
    np.testing.assert_allclose(
        float(psnr_metric.result()),
        np.sum(p_all * w_all) / w_all.sum(),
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        float(ssim_metric.result()),
        np.sum(s_all * w_all) / w_all.sum(),
        atol=2e-5,
    )
    psnr_metric.reset_state()
    a, _ = batches[0]
    psnr_metric.update_state(a, a)  # capped at 100 dB, not inf
    assert float(psnr_metric.result()) == pytest.approx(100.0)


def test_metric_config_roundtrip():
    metric = PSNR(data_range=255.0, max_psnr=None, name="p")
    clone = PSNR.from_config(metric.get_config())
    assert clone.data_range == 255.0 and clone.max_psnr is None
    assert clone.name == "p"
    clone = SSIM.from_config(SSIM(data_range=1.0).get_config())
    assert clone.data_range == 1.0 and clone.name == "ssim"


def test_metrics_work_in_compiled_evaluate():
    # Runs inside the backend's compiled test step (tf.function / jax.jit).
    a, b = _pair((4, 16, 16, 3), -1, 1, 0.1)
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Identity()]
    )
    model.compile(loss="mse", metrics=[PSNR(), SSIM()])
    result = model.evaluate(b, a, batch_size=2, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        result["psnr"], np_psnr(a, b, 2.0).mean(), rtol=1e-4
    )
    np.testing.assert_allclose(
        result["ssim"], np_ssim(a, b, 2.0).mean(), atol=2e-5
    )

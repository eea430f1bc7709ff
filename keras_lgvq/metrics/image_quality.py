"""Pixel-fidelity metrics: PSNR and SSIM (functions and Keras metrics)."""

import math

import keras
import numpy as np
from keras import ops

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5


def _check_data_range(data_range):
    if not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(
            "`data_range` must be a positive number (2.0 for images in "
            "[-1, 1], 1.0 for [0, 1], 255.0 for [0, 255]). "
            f"Received: data_range={data_range!r}"
        )
    return float(data_range)


def _prepare_pair(y_true, y_pred, data_format):
    """Return float32 channels-last 4D tensors and whether input was 3D."""
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise ValueError(
            "`y_true` and `y_pred` must have the same shape. Received: "
            f"y_true.shape={tuple(y_true.shape)}, "
            f"y_pred.shape={tuple(y_pred.shape)}"
        )
    rank = len(y_true.shape)
    if rank not in (3, 4):
        raise ValueError(
            "Expected images of rank 4 `(batch, height, width, channels)` "
            "or rank 3 `(height, width, channels)` (channels first with "
            f"`data_format='channels_first'`). Received: shape="
            f"{tuple(y_true.shape)}"
        )
    unbatched = rank == 3
    if unbatched:
        y_true = ops.expand_dims(y_true, 0)
        y_pred = ops.expand_dims(y_pred, 0)
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    if data_format == "channels_first":
        y_true = ops.transpose(y_true, (0, 2, 3, 1))
        y_pred = ops.transpose(y_pred, (0, 2, 3, 1))
    return (
        ops.cast(y_true, "float32"),
        ops.cast(y_pred, "float32"),
        unbatched,
    )


def psnr(y_true, y_pred, data_range=2.0, max_psnr=None, data_format=None):
    """Peak signal-to-noise ratio per image, in dB.

    `PSNR = 10 * log10(data_range**2 / MSE)` with the MSE taken over all
    pixels and channels of each image. Identical images give an MSE of 0
    and hence `inf`; pass `max_psnr` to cap the value instead (the
    `PSNR` metric caps at 100 dB by default so one perfect image cannot
    turn a dataset mean into `inf`).

    Args:
        y_true: tensor. Reference images `(batch, H, W, C)` or `(H, W, C)`,
            any real or integer dtype.
        y_pred: tensor. Images to score, same shape as `y_true`.
        data_range: float. Width of the value range: 2.0 for `[-1, 1]`,
            1.0 for `[0, 1]`, 255.0 for `[0, 255]`.
        max_psnr: float or None. Upper cap in dB; `None` keeps `inf`.
        data_format: string or None. `"channels_last"` or
            `"channels_first"`; defaults to `keras.config.image_data_format()`.

    Returns:
        A float32 tensor of shape `(batch,)` (a scalar for unbatched input).

    Examples:

    ```python
    x = np.random.uniform(-1, 1, (2, 32, 32, 3))
    keras_lgvq.metrics.psnr(x, x + 0.01, data_range=2.0)  # ~46 dB each
    ```
    """
    data_range = _check_data_range(data_range)
    y_true, y_pred, unbatched = _prepare_pair(y_true, y_pred, data_format)
    mse = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
    # log10(L^2 / mse) written so that mse == 0 gives +inf, not NaN.
    value = 10.0 * (
        2.0 * math.log10(data_range) - ops.log(mse) / math.log(10.0)
    )
    if max_psnr is not None:
        value = ops.minimum(value, float(max_psnr))
    return value[0] if unbatched else value


def _gaussian_window(size=_SSIM_WINDOW, sigma=_SSIM_SIGMA):
    """Normalised 1D Gaussian taps (numpy, float32)."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    taps = np.exp(-(coords**2) / (2.0 * sigma**2))
    return (taps / taps.sum()).astype("float32")


def ssim(y_true, y_pred, data_range=2.0, data_format=None):
    """Structural similarity per image (Wang et al. 2004).

    The standard setting: an 11x11 Gaussian window with sigma 1.5,
    `K1 = 0.01`, `K2 = 0.03`, population (not sample) covariances, and
    "valid" filtering (no padding), i.e. the SSIM map covers only windows
    that lie inside the image. Each channel is scored separately and the
    map is averaged over positions and channels. This equals
    `skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, channel_axis=-1)` and
    `tf.image.ssim`.

    Args:
        y_true: tensor. Reference images `(batch, H, W, C)` or `(H, W, C)`
            with `H, W >= 11`.
        y_pred: tensor. Images to score, same shape as `y_true`.
        data_range: float. Width of the value range (2.0 for `[-1, 1]`,
            255.0 for `[0, 255]`).
        data_format: string or None. `"channels_last"` or
            `"channels_first"`; defaults to `keras.config.image_data_format()`.

    Returns:
        A float32 tensor of shape `(batch,)`; 1.0 for identical images.

    Examples:

    ```python
    x = np.random.uniform(0, 255, (2, 32, 32, 3))
    keras_lgvq.metrics.ssim(x, x, data_range=255.0)  # [1., 1.]
    ```
    """
    data_range = _check_data_range(data_range)
    y_true, y_pred, unbatched = _prepare_pair(y_true, y_pred, data_format)
    height, width, channels = y_true.shape[1], y_true.shape[2], y_true.shape[3]
    if (height is not None and height < _SSIM_WINDOW) or (
        width is not None and width < _SSIM_WINDOW
    ):
        raise ValueError(
            f"SSIM needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} "
            f"pixels. Received: height={height}, width={width}"
        )
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    # All five local statistics in one separable depthwise pass.
    stack = ops.concatenate(
        [y_true, y_pred, y_true * y_true, y_pred * y_pred, y_true * y_pred],
        axis=-1,
    )
    n = 5 * channels
    taps = _gaussian_window()
    kernel_h = np.tile(taps.reshape(_SSIM_WINDOW, 1, 1, 1), (1, 1, n, 1))
    kernel_w = np.tile(taps.reshape(1, _SSIM_WINDOW, 1, 1), (1, 1, n, 1))
    stats = ops.depthwise_conv(
        stack, kernel_h, padding="valid", data_format="channels_last"
    )
    stats = ops.depthwise_conv(
        stats, kernel_w, padding="valid", data_format="channels_last"
    )
    mu_x, mu_y, e_xx, e_yy, e_xy = ops.split(stats, 5, axis=-1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    value = ops.mean(numerator / denominator, axis=(1, 2, 3))
    return value[0] if unbatched else value


@keras.saving.register_keras_serializable(package="keras_lgvq")
class PSNR(keras.metrics.Mean):
    """Mean per-image PSNR (dB) over everything passed to `update_state`.

    Each image contributes one PSNR value (see `keras_lgvq.metrics.psnr`),
    and `result()` is their (optionally weighted) mean, the usual
    "average PSNR over the evaluation set".

    Args:
        data_range: float. Width of the value range: 2.0 for `[-1, 1]`,
            255.0 for `[0, 255]`.
        max_psnr: float or None. Per-image cap in dB (default 100) so that a
            perfect reconstruction does not make the mean `inf`; `None`
            disables the cap.
        data_format: string or None. Image layout; defaults to
            `keras.config.image_data_format()`.
        name: string. Metric name.
        dtype: string. Dtype of the accumulators.

    Examples:

    ```python
    metric = keras_lgvq.metrics.PSNR(data_range=2.0)
    for x, x_hat in pairs:
        metric.update_state(x, x_hat)
    metric.result()
    ```
    """

    def __init__(
        self,
        data_range=2.0,
        max_psnr=100.0,
        data_format=None,
        name="psnr",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.data_range = _check_data_range(data_range)
        self.max_psnr = None if max_psnr is None else float(max_psnr)
        self.data_format = data_format
        self._direction = "up"

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = psnr(
            y_true,
            y_pred,
            data_range=self.data_range,
            max_psnr=self.max_psnr,
            data_format=self.data_format,
        )
        return super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "data_range": self.data_range,
                "max_psnr": self.max_psnr,
                "data_format": self.data_format,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_lgvq")
class SSIM(keras.metrics.Mean):
    """Mean per-image SSIM over everything passed to `update_state`.

    Uses `keras_lgvq.metrics.ssim` (Gaussian window 11, sigma 1.5,
    K1 0.01, K2 0.03, valid filtering).

    Args:
        data_range: float. Width of the value range: 2.0 for `[-1, 1]`,
            255.0 for `[0, 255]`.
        data_format: string or None. Image layout; defaults to
            `keras.config.image_data_format()`.
        name: string. Metric name.
        dtype: string. Dtype of the accumulators.

    Examples:

    ```python
    metric = keras_lgvq.metrics.SSIM(data_range=2.0)
    metric.update_state(x, x_hat)
    metric.result()
    ```
    """

    def __init__(
        self, data_range=2.0, data_format=None, name="ssim", dtype=None
    ):
        super().__init__(name=name, dtype=dtype)
        self.data_range = _check_data_range(data_range)
        self.data_format = data_format
        self._direction = "up"

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = ssim(
            y_true,
            y_pred,
            data_range=self.data_range,
            data_format=self.data_format,
        )
        return super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"data_range": self.data_range, "data_format": self.data_format}
        )
        return config

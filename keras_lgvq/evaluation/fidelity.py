"""Perceptual fidelity metrics: LPIPS and rFID, or the reason they are absent.

Both need ImageNet weights (VGG16, Inception-v3) that are never downloaded at
run time; without them the result says so instead of reporting a number from
random weights. (PSNR, SSIM and codebook usage are accumulated while the
tokenizer runs, in `keras_lgvq.evaluation.tokenizer_runner`.)
"""

from keras_lgvq.utils.tensors import to_numpy


def _unavailable(error):
    text = " ".join(str(error).split()) or repr(error)
    if len(text) > 400:
        text = text[:397] + "..."
    return {"available": False, "reason": text}


def perceptual_metrics(images, reconstruct, lpips_weights="auto",
                       inception_weights=None, batch_size=16):
    """LPIPS and rFID when their ImageNet weights exist, else the reason.

    Nothing is downloaded and no random-weight stand-in is ever reported:
    a missing file gives `{"available": False, "reason": ...}`.

    Args:
        images: float array `(N, H, W, 3)` in [-1, 1].
        reconstruct: callable `images -> reconstructions` (clipped).
        lpips_weights: str or None. VGG16 weights for LPIPS (`"auto"`
            searches Keras's cache).
        inception_weights: str or None. Inception-v3 weights for rFID
            (None searches the default places).
        batch_size: int. Images per pass.

    Returns:
        `{"lpips": ..., "rfid": ...}`; each a dict with `available` and
        either `value` or `reason`.

    Examples:

    ```python
    keras_lgvq.evaluation.perceptual_metrics(images, lambda x: model(x))
    ```
    """
    from keras_lgvq.losses.lpips import LPIPS
    from keras_lgvq.metrics.frechet_inception_distance import (
        FrechetInceptionDistance,
    )
    from keras_lgvq.metrics.lpips_metric import LPIPSMetric

    results = {}
    metrics = {}
    try:
        metrics["lpips"] = LPIPSMetric(LPIPS(vgg_weights=lpips_weights))
    except (FileNotFoundError, ValueError) as error:
        results["lpips"] = _unavailable(error)
    try:
        metrics["rfid"] = FrechetInceptionDistance(weights=inception_weights)
    except (FileNotFoundError, ValueError) as error:
        results["rfid"] = _unavailable(error)
    if metrics:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            x_hat = reconstruct(x)
            for metric in metrics.values():
                metric.update_state(x, x_hat)
        for name, metric in metrics.items():
            value = float(to_numpy(metric.result()))
            results[name] = {"available": True, "value": value}
        if "rfid" in metrics:
            results["rfid"]["num_images"] = int(len(images))
    return results

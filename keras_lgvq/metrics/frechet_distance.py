"""Fréchet distance between two Gaussians (numpy, float64, no scipy)."""

import numpy as np


def _as_float64(name, value, ndim):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(
            f"`{name}` must have {ndim} dimension(s). "
            f"Received shape: {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or inf values.")
    return array


def _psd_projection(sigma):
    """Symmetrise and clip negative eigenvalues (nearest PSD matrix)."""
    sigma = 0.5 * (sigma + sigma.T)
    eigvals, eigvecs = np.linalg.eigh(sigma)
    eigvals = np.clip(eigvals, 0.0, None)
    return eigvals, eigvecs


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Fréchet (2-Wasserstein squared) distance between two Gaussians.

    `d = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)`.

    The trace term is computed from the eigenvalues of the symmetric
    matrix `S1^1/2 S2 S1^1/2` (both square roots by `numpy.linalg.eigh`),
    which is equal to `tr(sqrtm(S1 S2))` but never produces the complex
    values or the "singular product" failures of `scipy.linalg.sqrtm`.
    Cost: two `D x D` symmetric eigendecompositions plus one `r x r`
    (`r` = rank of `sigma1`), a few seconds for Inception's D = 2048 on a
    small CPU.
    Inputs are first symmetrised and projected onto the positive
    semi-definite cone (negative eigenvalues from round-off or
    rank-deficient sample covariances are clipped to 0), so the result is
    a true squared distance: finite, symmetric up to round-off, and >= 0.

    Args:
        mu1: array `(D,)`. Mean of the first Gaussian.
        sigma1: array `(D, D)`. Covariance of the first Gaussian.
        mu2: array `(D,)`. Mean of the second Gaussian.
        sigma2: array `(D, D)`. Covariance of the second Gaussian.

    Returns:
        A Python float.

    Examples:

    ```python
    d = keras_lgvq.metrics.frechet_distance(
        np.zeros(3), np.eye(3), np.ones(3), 4 * np.eye(3)
    )  # 3 + 3 * (2 - 1) ** 2 = 6.0
    ```
    """
    mu1 = _as_float64("mu1", mu1, 1)
    mu2 = _as_float64("mu2", mu2, 1)
    sigma1 = _as_float64("sigma1", sigma1, 2)
    sigma2 = _as_float64("sigma2", sigma2, 2)
    dim = mu1.shape[0]
    if (
        mu2.shape != (dim,)
        or sigma1.shape != (dim, dim)
        or (sigma2.shape != (dim, dim))
    ):
        raise ValueError(
            "Expected `mu1`, `mu2` of shape (D,) and `sigma1`, `sigma2` of "
            f"shape (D, D). Received: mu1 {mu1.shape}, sigma1 "
            f"{sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )
    w1, v1 = _psd_projection(sigma1)
    w2, v2 = _psd_projection(sigma2)
    # S1^1/2 S2 S1^1/2 has the eigenvalues of W^1/2 V^T S2 V W^1/2 restricted
    # to the range of S1; sample covariances of N < D features have rank
    # < N, so this r x r problem is much smaller than D x D.
    keep = w1 > w1.max(initial=0.0) * 1e-12
    half = v1[:, keep] * np.sqrt(w1[keep])  # (D, r)
    projected = half.T @ v2  # (r, D)
    middle = (projected * w2) @ projected.T
    middle = 0.5 * (middle + middle.T)
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0, None)))
    diff = mu1 - mu2
    value = diff @ diff + w1.sum() + w2.sum() - 2.0 * trace_sqrt
    # Only round-off can push a squared distance below zero.
    return float(max(value, 0.0))


def gaussian_statistics(features):
    """Mean and (unbiased) covariance of a feature matrix.

    Args:
        features: array `(N, D)` with `N >= 2`.

    Returns:
        `(mu, sigma)`: float64 arrays of shape `(D,)` and `(D, D)`.

    Examples:

    ```python
    mu, sigma = keras_lgvq.metrics.gaussian_statistics(np.random.rand(8, 4))
    ```
    """
    features = _as_float64("features", features, 2)
    if features.shape[0] < 2:
        raise ValueError(
            "`features` needs at least 2 rows to estimate a covariance. "
            f"Received shape: {features.shape}"
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)

import numpy as np
import pytest
from scipy import linalg

from keras_lgvq.metrics.frechet_distance import frechet_distance
from keras_lgvq.metrics.frechet_distance import gaussian_statistics

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def _random_cov(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / (rank or d) + (0 if rank else 0.1 * np.eye(d))


def test_identical_gaussians_give_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(6), _random_cov(rng, 6)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(
        0.0, abs=1e-9
    )
    # Rank-deficient (like a sample covariance with N < D) as well.
    low = _random_cov(rng, 10, rank=3)
    assert frechet_distance(mu[:1].repeat(10), low, mu[:1].repeat(10), low) == (
        pytest.approx(0.0, abs=1e-7)
    )


def test_diagonal_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)
    # Docstring example: 3 + 3 * (2 - 1)^2.
    assert frechet_distance(
        np.zeros(3), np.eye(3), np.ones(3), 4 * np.eye(3)
    ) == pytest.approx(6.0)


def test_matches_scipy_sqrtm_and_is_symmetric():
    rng = np.random.default_rng(2)
    d = 7
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    covmean = linalg.sqrtm(s1 @ s2).real
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    d12 = frechet_distance(mu1, s1, mu2, s2)
    d21 = frechet_distance(mu2, s2, mu1, s1)
    assert d12 == pytest.approx(reference, rel=1e-8)
    assert d12 == pytest.approx(d21, rel=1e-9)


def test_non_psd_input_is_projected_not_nan():
    rng = np.random.default_rng(3)
    s = _random_cov(rng, 5)
    bad = s.copy()
    bad[0, 1] += 1e-3  # slightly asymmetric
    w, v = np.linalg.eigh(s)
    w_neg = w.copy()
    w_neg[0] = -1e-4  # one negative eigenvalue
    negative = (v * w_neg) @ v.T
    value = frechet_distance(np.zeros(5), s, np.zeros(5), bad)
    assert np.isfinite(value) and 0.0 <= value < 1e-4
    # Clipped to 0, so only that direction differs: (sqrt(w0) - 0)^2 = w0.
    value = frechet_distance(np.zeros(5), s, np.zeros(5), negative)
    assert value == pytest.approx(w[0], rel=1e-8)
    # Fully negative-definite: projects to 0, distance = tr(s).
    assert frechet_distance(np.zeros(5), s, np.zeros(5), -s) == pytest.approx(
        np.trace(s), rel=1e-9
    )


def test_sample_statistics_and_validation():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 3))
    mu, sigma = gaussian_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x.T))
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_statistics(x[:1])
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(
            np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2)
        )

import keras
import numpy as np
from scipy import stats

from keras_lgvq.utils.distributions import normal_cdf
from keras_lgvq.utils.distributions import truncated_normal_cdf_range
from keras_lgvq.utils.distributions import truncated_normal_inverse_cdf


def test_inverse_cdf_matches_scipy_truncnorm():
    mean, std, low, high = 0.5, 0.1, 0.1, 0.3
    reference = stats.truncnorm(
        (low - mean) / std, (high - mean) / std, loc=mean, scale=std
    )
    lo, hi = truncated_normal_cdf_range(mean, std, low, high)
    assert lo == stats.norm.cdf(-4.0) or abs(lo - stats.norm.cdf(-4)) < 1e-12
    assert abs(hi - stats.norm.cdf(-2.0)) < 1e-12
    q = np.linspace(0.01, 0.99, 25)
    u = (lo + q * (hi - lo)).astype("float32")
    got = keras.ops.convert_to_numpy(
        truncated_normal_inverse_cdf(
            keras.ops.convert_to_tensor(u), mean, std, low, high
        )
    )
    np.testing.assert_allclose(got, reference.ppf(q), atol=2e-4)
    assert got.min() >= low and got.max() <= high


def test_normal_cdf():
    for x in (-2.0, 0.0, 0.7):
        assert abs(normal_cdf(x) - stats.norm.cdf(x)) < 1e-12

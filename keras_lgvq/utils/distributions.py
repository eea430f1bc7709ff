"""The truncated normal of LG-VQ's mask ratio, by inverse-CDF sampling.

One definition shared by the MTP layer (`MaskedTextDecoder`, which draws the
uniforms with `keras.random`) and the evaluation's probe-training masks
(which draw them with a seeded numpy generator): a uniform `u` on
`[Phi(a), Phi(b)]` maps to `mean + std * sqrt(2) * erfinv(2u - 1)`, a draw of
`N(mean, std)` truncated to `[a, b]`.
"""

import math

from keras import ops


def normal_cdf(x):
    """Standard normal CDF of a Python float.

    Examples:

    ```python
    normal_cdf(0.0)  # 0.5
    ```
    """
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def truncated_normal_cdf_range(mean, std, low, high):
    """`(Phi((low - mean) / std), Phi((high - mean) / std))`.

    The range the uniforms of `truncated_normal_inverse_cdf` are drawn from.

    Args:
        mean: float. Mean of the untruncated normal.
        std: float. Its standard deviation (> 0).
        low: float. Lower truncation bound.
        high: float. Upper truncation bound.

    Returns:
        Two Python floats.

    Examples:

    ```python
    lo, hi = truncated_normal_cdf_range(0.5, 0.1, 0.1, 0.3)
    ```
    """
    return normal_cdf((low - mean) / std), normal_cdf((high - mean) / std)


def truncated_normal_inverse_cdf(u, mean, std, low, high):
    """Maps uniforms on `truncated_normal_cdf_range(...)` to the samples.

    Args:
        u: float tensor of uniforms in the CDF range.
        mean: float. Mean of the untruncated normal.
        std: float. Its standard deviation.
        low: float. Lower truncation bound.
        high: float. Upper truncation bound.

    Returns:
        Tensor of the shape of `u` with values in `[low, high]`.

    Examples:

    ```python
    lo, hi = truncated_normal_cdf_range(0.5, 0.1, 0.1, 0.3)
    u = keras.random.uniform((4,), minval=lo, maxval=hi)
    ratios = truncated_normal_inverse_cdf(u, 0.5, 0.1, 0.1, 0.3)
    ```
    """
    # Inverse normal CDF: mean + std * sqrt(2) * erfinv(2u - 1).
    value = mean + std * math.sqrt(2.0) * ops.erfinv(2.0 * u - 1.0)
    # Guards float32 round-off at the bounds only.
    return ops.clip(value, low, high)

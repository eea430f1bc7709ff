"""Small tensor helpers shared across the package (one definition each)."""

import numpy as np
from keras import ops

# Added to the squared norm before an L2 normalisation. The official LG-VQ
# code has none (lgvq-spec §9 item 19); this only keeps an all-zero vector
# finite (it maps to zero) and is negligible for any other vector.
NORM_EPSILON = 1e-12


def to_numpy(value):
    """A backend tensor, variable, array or nested list as a numpy array.

    Args:
        value: tensor, `keras.Variable`, numpy array or array-like.

    Returns:
        `np.ndarray`.

    Examples:

    ```python
    array = to_numpy(keras.ops.ones((2, 3)))
    ```
    """
    return np.asarray(ops.convert_to_numpy(value))


def l2_normalize(x, axis=-1, epsilon=NORM_EPSILON):
    """`x / sqrt(sum(x ** 2) + epsilon)` along `axis`.

    The epsilon is added to the squared norm (not a clamp on the norm), so
    the function is smooth at zero and a zero vector maps to zero.

    Args:
        x: float tensor.
        axis: int. Axis normalised.
        epsilon: float. Added to the squared norm.

    Returns:
        Tensor of the shape of `x`.

    Examples:

    ```python
    unit = l2_normalize(keras.ops.convert_to_tensor([[3.0, 4.0]]))
    ```
    """
    sq_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(sq_norm + epsilon)

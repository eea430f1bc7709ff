import keras
import numpy as np

from keras_lgvq.utils.tensors import l2_normalize
from keras_lgvq.utils.tensors import to_numpy


def test_to_numpy_of_tensors_variables_and_lists():
    x = keras.ops.convert_to_tensor([[1.0, 2.0]])
    assert isinstance(to_numpy(x), np.ndarray)
    np.testing.assert_array_equal(to_numpy(x), [[1.0, 2.0]])
    v = keras.Variable(np.ones((2, 2), "float32"))
    np.testing.assert_array_equal(to_numpy(v), np.ones((2, 2)))
    np.testing.assert_array_equal(to_numpy([1, 2, 3]), [1, 2, 3])


def test_l2_normalize_matches_numpy_and_keeps_zero_vectors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 5)).astype("float32")
    x[0, 0] = 0.0
    got = to_numpy(l2_normalize(keras.ops.convert_to_tensor(x)))
    sq = (x.astype("float64") ** 2).sum(-1, keepdims=True)
    np.testing.assert_allclose(got, x / np.sqrt(sq + 1e-12), rtol=1e-5)
    np.testing.assert_array_equal(got[0, 0], 0.0)
    np.testing.assert_allclose(np.linalg.norm(got[1:], axis=-1), 1, rtol=1e-5)
    along_1 = to_numpy(l2_normalize(keras.ops.convert_to_tensor(x), axis=1))
    np.testing.assert_allclose(
        np.linalg.norm(along_1[1:], axis=1), 1, rtol=1e-5
    )

"""The `tf_eager` marker (tests/conftest.py): under TensorFlow a marked test
or file runs its tf.functions eagerly, an unmarked one traces them, and
XLA inside a marked test is refused rather than silently skipped."""

import keras
import numpy as np
import pytest

from tests import conftest

pytestmark = pytest.mark.skipif(
    conftest.backend() != "tensorflow",
    reason="tf_eager changes TensorFlow only; JAX and torch ignore it",
)


def _traced_executes_eagerly():
    import tensorflow as tf

    # True only when the tf.function body runs op by op.
    return bool(tf.function(lambda: tf.constant(tf.executing_eagerly()))())


def _tiny_model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


@pytest.mark.tf_eager
def test_a_marked_test_runs_tf_functions_eagerly():
    assert _traced_executes_eagerly() is True


@pytest.mark.tf_eager
def test_a_marked_test_still_fits_and_predicts():
    model = _tiny_model()
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 3), "float32")
    history = model.fit(x, np.zeros((4, 2), "float32"), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x, verbose=0).shape == (4, 2)


@pytest.mark.tf_eager
def test_xla_in_a_marked_test_is_a_usage_error():
    with pytest.raises(pytest.UsageError, match="marked tf_eager"):
        _tiny_model().compile(optimizer="sgd", loss="mse", jit_compile=True)


def test_an_unmarked_test_traces_tf_functions():
    import tensorflow as tf

    assert not tf.config.functions_run_eagerly()
    assert _traced_executes_eagerly() is False
    # The marked tests' compile guard is gone: XLA compiles as asked.
    model = _tiny_model()
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert model.jit_compile is True


def test_the_switch_is_restored_when_the_block_ends():
    import tensorflow as tf

    compile_ = keras.Model.compile
    with conftest._tensorflow_functions_eagerly("a_test"):
        assert tf.config.functions_run_eagerly()
        assert keras.Model.compile is not compile_
    assert not tf.config.functions_run_eagerly()
    assert keras.Model.compile is compile_


class _Node:
    nodeid = "tests/x_test.py"

    def __init__(self, marked):
        self.marked = marked

    def get_closest_marker(self, name):
        return pytest.mark.tf_eager.mark if self.marked else None


def test_a_marked_module_runs_its_fixtures_eagerly_and_tests_reuse_it():
    import tensorflow as tf

    # The module fixture's block: marked file -> eager.
    with conftest._eager_if_marked(_Node(True), True):
        assert tf.config.functions_run_eagerly()
        # A test in that file does not open a second block (wanted=False).
        with conftest._eager_if_marked(_Node(True), False):
            assert tf.config.functions_run_eagerly()
        assert tf.config.functions_run_eagerly()
    with conftest._eager_if_marked(_Node(False), True):
        assert not tf.config.functions_run_eagerly()
    assert not tf.config.functions_run_eagerly()

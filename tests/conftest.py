import os

import numpy as np
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long-running test, deselect with -m 'not slow'"
    )


@pytest.fixture(autouse=True)
def _seed_everything():
    import keras

    keras.utils.set_random_seed(0)
    np.random.seed(0)
    yield


def backend():
    return os.environ.get("KERAS_BACKEND", "tensorflow")


@pytest.fixture(autouse=True, scope="module")
def _release_backend_state():
    """Frees each test file's graphs and compiled functions when it ends.

    A worker process runs hundreds of files; without this, Keras's global
    state and JAX's compilation caches keep every file's models alive, and
    a worker grew past 6 GB on JAX.
    """
    yield
    import keras

    keras.backend.clear_session()
    if backend() == "jax":
        import jax

        jax.clear_caches()

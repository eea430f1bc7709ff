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

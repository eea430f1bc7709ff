"""`distribution_scope` and the replica helpers of `keras_lgvq.backend`."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq import backend as lgvq_backend
from keras_lgvq.backend import distribution
from keras_lgvq.backend import distribution_scope

BACKEND = keras.backend.backend()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_default_scope_is_one_device():
    with distribution_scope() as info:
        assert info.name == "default"
        assert (info.num_replicas, info.num_workers) == (1, 1)
        assert info.worker_index == 0 and info.strategy is None
        assert lgvq_backend.num_replicas() == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="ddp"), "one of"),
        (dict(name=None), "one of"),
        (dict(name="default", devices=["cpu:0"]), "'mirrored' only"),
        (dict(name="multiworker", devices=["cpu:0"]), "'mirrored' only"),
        (dict(name="default", num_processes=2), "JAX multi-worker"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        with distribution_scope(**kwargs):
            pass


@pytest.mark.skipif(BACKEND != "torch", reason="torch message")
@pytest.mark.parametrize("name", ["mirrored", "multiworker"])
def test_torch_names_what_is_supported(name):
    with pytest.raises(ValueError, match=r"supported: \('default',\)"):
        with distribution_scope(name):
            pass
    assert distribution.supported_names() == ("default",)


@pytest.mark.skipif(BACKEND == "torch", reason="tensorflow / jax")
def test_mirrored_scope_on_this_machine():
    with distribution_scope("mirrored") as info:
        assert info.num_replicas >= 1 and info.num_workers == 1
        if BACKEND == "tensorflow":
            import tensorflow as tf

            assert isinstance(info.strategy, tf.distribute.MirroredStrategy)
            assert tf.distribute.get_strategy() is info.strategy
        else:
            assert keras.distribution.distribution() is info.strategy
    if BACKEND == "jax":
        assert keras.distribution.distribution() is None


@pytest.mark.skipif(BACKEND != "jax", reason="jax cluster set-up")
def test_jax_multiworker_needs_a_cluster(monkeypatch):
    for key in distribution._JAX_ENV:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match="KERAS_DISTRIBUTION_NUM_PROCESSES"):
        with distribution_scope("multiworker"):
            pass
    with pytest.raises(ValueError, match="num_processes"):
        with distribution_scope("multiworker", num_processes=0):
            pass
    # One process is a valid (single-host) cluster.
    with distribution_scope("multiworker", num_processes=1) as info:
        assert info.num_workers == 1


def test_replica_helpers_are_identities_on_one_device():
    x = ops.convert_to_tensor(np.arange(6, dtype="float32").reshape(3, 2))
    np.testing.assert_array_equal(
        ops.convert_to_numpy(lgvq_backend.replica_all_gather(x)),
        ops.convert_to_numpy(x),
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(lgvq_backend.replica_sum(x)),
        ops.convert_to_numpy(x),
    )
    assert lgvq_backend.replica_batch_offset(3) == (0, 3)


def test_runtime_assert_raises_on_concrete_values():
    lgvq_backend.runtime_assert(ops.convert_to_tensor(True), "unused")
    with pytest.raises(ValueError, match="the message"):
        lgvq_backend.runtime_assert(ops.convert_to_tensor(False), "the message")


_UNEVEN = textwrap.dedent(
    """
    import json, os, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, os.getcwd())
    from keras_lgvq import backend as B

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rows = {0: tf.constant([[0.0], [1.0], [2.0]]), 1: tf.constant([[3.0], [4.0]])}

    values = strategy.experimental_distribute_values_from_function(
        lambda context: rows[context.replica_id_in_sync_group])

    @tf.function
    def run(values):
        return strategy.run(step, args=(values,))

    def step(x):
        offset, total = B.replica_batch_offset(tf.shape(x)[0])
        gathered = B.replica_all_gather(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            # Each replica weights the gathered rows by its id + 1.
            replica = tf.cast(
                tf.distribute.get_replica_context().replica_id_in_sync_group,
                tf.float32)
            loss = tf.reduce_sum(B.replica_all_gather(x)) * (replica + 1.0)
        grad = tape.gradient(loss, x)
        return offset, total, gathered, grad, B.replica_sum(tf.shape(x)[0])

    out = run(values)
    local = [strategy.experimental_local_results(v) for v in out]
    print(json.dumps({
        "offset": [int(v) for v in local[0]],
        "total": [int(v) for v in local[1]],
        "gathered": [v.numpy().ravel().tolist() for v in local[2]],
        "grad": [v.numpy().ravel().tolist() for v in local[3]],
        "sum": [int(v) for v in local[4]],
    }))
    """
)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
def test_replica_helpers_under_mirrored_strategy_with_an_uneven_split():
    result = subprocess.run(
        [sys.executable, "-c", _UNEVEN],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Replica 0 holds global rows 0-2, replica 1 rows 3-4.
    assert report["offset"] == [0, 3] and report["total"] == [5, 5]
    assert report["gathered"] == [[0, 1, 2, 3, 4]] * 2
    assert report["sum"] == [5, 5]
    # The gather's gradient sums every replica's upstream gradient at this
    # replica's rows: (1 + 2) for each row.
    assert report["grad"] == [[3.0, 3.0, 3.0], [3.0, 3.0]]

"""LG-VQ data parallelism: 2 replicas x B/2 make the update of 1 x B.

Each check runs in a fresh process, because the device layout must be set
before the backend starts: 2 logical CPUs for `MirroredStrategy`, 2 worker
processes on localhost for `MultiWorkerMirroredStrategy` (TF_CONFIG), and
2 virtual XLA CPU devices for JAX's `DataParallel`. The tiny LG-VQ has GSA,
MTP and RAS weights of 1 and a discriminator from step 0, so every term of
the generator loss (and the InfoNCE negatives and the MTP mask above all)
has to be the global batch's for the weights to agree. Its MTP decoder's
dropout is 0: Keras draws dropout masks per replica (each replica from the
same mirrored seed), which is a per-example draw, not a batch-level term.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

BACKEND = keras.backend.backend()
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 3))

# Shared by every script: a tiny LG-VQ, its data and the comparison.
_COMMON = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    sys.path.insert(0, os.getcwd())

    def make_model(global_batch, optimizer):
        import keras
        from keras_lgvq.optimizers import GANOptimizer
        from tests.models.tiny_configs import tiny_lgvq

        keras.utils.set_random_seed(0)
        model = tiny_lgvq(guidance=dict(
            alpha=1.0, beta=1.0, gamma=1.0, decoder_intermediate_dim=32,
            dropout=0.0, seed=0,
            global_batch_contrastive=global_batch,
            global_batch_masking=global_batch,
            gsa_symmetric=True,
        ))

        def make():
            if optimizer == "sgd":
                return keras.optimizers.SGD(0.02)
            # Adam normalises each gradient entry: float round-off on
            # entries that are zero in exact arithmetic (biases before a
            # GroupNorm, attention key biases) becomes a step of up to
            # +-lr with epsilon 1e-8, so a larger epsilon keeps the
            # comparison about the gradients.
            return keras.optimizers.Adam(
                1e-3, beta_1=0.5, beta_2=0.9, epsilon=1e-3
            )

        model.compile(optimizer=GANOptimizer(make(), make()))
        return model

    def make_data(batch_size, shard=False):
        import tensorflow as tf
        from tests.models.tiny_configs import tiny_text_batch

        data = tiny_text_batch(16)
        ds = tf.data.Dataset.from_tensor_slices(data).batch(batch_size)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return ds.with_options(options)

    def weights(model):
        return [np.asarray(w, "float64") for w in model.get_weights()]

    def trainable(model):
        return [np.asarray(v, "float64") for v in model.trainable_weights]

    def compare(model, other, start):
        # Every weight (buffers and seeds included) against the other run;
        # "moved" over the trainable ones, against the start.
        diff = max(float(np.max(np.abs(a - b)))
                   for a, b in zip(weights(model), weights(other)))
        moved = max(float(np.max(np.abs(a - b)))
                    for a, b in zip(trainable(model), trainable(start)))
        return diff, moved
    """
)


def _run(script, args, env=None, timeout=1200):
    env = dict(os.environ, **(env or {}))
    result = subprocess.run(
        [sys.executable, "-c", _COMMON + textwrap.dedent(script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_same_update(report, rtol=1e-4):
    assert report["moved"] > 5e-4, report  # the steps did train
    assert report["max_diff"] < 1e-5 * max(1.0, report["moved"]), report
    for key in ("loss", "gsa_loss", "mtp_loss", "ras_loss", "disc_loss"):
        np.testing.assert_allclose(
            report["parallel"][key], report["single"][key], rtol=rtol
        )


_MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from keras_lgvq.backend import distribution_scope

path = sys.argv[1]
make_model(True, "sgd").save_weights(path)

def run(name, optimizer, global_batch, **kwargs):
    with distribution_scope(name, **kwargs) as info:
        model = make_model(global_batch, optimizer)
        model.load_weights(path)
        logs = model.fit(make_data(8), epochs=1, verbose=0).history
    assert info.num_replicas == (1 if name == "default" else 2)
    return model, logs

reports = {}
for optimizer in ("sgd", "adam"):
    # On one device the flags change nothing: one reference per optimizer.
    single, single_logs = run("default", optimizer, True)
    for mode in ("global", "local") if optimizer == "sgd" else ("global",):
        mirrored, mirrored_logs = run(
            "mirrored", optimizer, mode == "global",
            devices=["/cpu:0", "/cpu:1"])
        diff, moved = compare(single, mirrored, make_model(True, optimizer))
        reports[f"{optimizer}-{mode}"] = {
            "max_diff": diff, "moved": moved,
            "single": single_logs, "parallel": mirrored_logs}
print(json.dumps(reports))
"""


@pytest.fixture(scope="module")
def mirrored_reports(tmp_path_factory):
    # One process for every MirroredStrategy check: TensorFlow starts once.
    path = tmp_path_factory.mktemp("mirrored") / "w.weights.h5"
    return _run(_MIRRORED, [str(path)], timeout=1800)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mirrored_two_replicas_match_one_device(mirrored_reports, optimizer):
    _assert_same_update(mirrored_reports[f"{optimizer}-global"])


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
def test_per_replica_flags_are_what_ddp_computes(mirrored_reports):
    # With the flags off each replica scores its 4 images against its own 4
    # captions and masks and normalises its own rows: the update is that of
    # per-GPU DDP code, not of 1 x B.
    report = mirrored_reports["sgd-local"]
    assert report["max_diff"] > 1e-4, report
    local, single = report["parallel"], report["single"]
    assert abs(local["gsa_loss"][0] - single["gsa_loss"][0]) > 1e-3, report
    assert abs(local["mtp_loss"][0] - single["mtp_loss"][0]) > 1e-3, report


_WORKER = """
import tensorflow as tf
from keras_lgvq.backend import distribution_scope

path, out, optimizer = sys.argv[1], sys.argv[2], sys.argv[3]
with distribution_scope("multiworker") as info:
    model = make_model(True, optimizer)
    model.load_weights(path)
    logs = model.fit(make_data(8), epochs=1, verbose=0).history
result = {"logs": logs, "workers": info.num_workers,
          "replicas": info.num_replicas, "index": info.worker_index}
np.savez(f"{out}.{info.worker_index}.npz", *weights(model))
print(json.dumps(result))
"""

_SINGLE_WORKER = """
import keras
path, out, optimizer = sys.argv[1], sys.argv[2], sys.argv[3]
model = make_model(True, optimizer)
model.save_weights(path)
start = trainable(model)
logs = model.fit(make_data(8), epochs=1, verbose=0).history
np.savez(out, *weights(model))
moved = max(float(np.max(np.abs(a - b)))
            for a, b in zip(trainable(model), start))
print(json.dumps({"logs": logs, "moved": moved}))
"""


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
def test_multi_worker_two_processes_match_one_worker(tmp_path):
    path = str(tmp_path / "w.weights.h5")
    reference = _run(
        _SINGLE_WORKER,
        [path, str(tmp_path / "single.npz"), "sgd"],
        env={"KERAS_BACKEND": "tensorflow"},
    )
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        config = {
            "cluster": {"worker": workers},
            "task": {"type": "worker", "index": index},
        }
        env = dict(
            os.environ,
            KERAS_BACKEND="tensorflow",
            TF_CONFIG=json.dumps(config),
        )
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _COMMON + textwrap.dedent(_WORKER),
                    path,
                    str(tmp_path / "multi"),
                    "sgd",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=1200)
            assert process.returncode == 0, stderr[-4000:]
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [o["index"] for o in outputs] == [0, 1]
    assert all(o["workers"] == 2 and o["replicas"] == 2 for o in outputs)
    single = np.load(tmp_path / "single.npz")
    assert reference["moved"] > 5e-4
    for index in range(2):
        multi = np.load(tmp_path / f"multi.{index}.npz")
        diff = max(
            float(np.max(np.abs(single[k] - multi[k]))) for k in single.files
        )
        assert diff < 1e-5 * max(1.0, reference["moved"]), (index, diff)
    for key in ("loss", "gsa_loss", "mtp_loss", "ras_loss"):
        np.testing.assert_allclose(
            outputs[0]["logs"][key], reference["logs"][key], rtol=1e-4
        )


_JAX = """
import jax
import keras
from keras_lgvq.backend import distribution_scope

assert len(jax.devices()) == 2, jax.devices()
path, optimizer = sys.argv[1], sys.argv[2]
make_model(True, optimizer).save_weights(path)

def run(name):
    with distribution_scope(name) as info:
        model = make_model(True, optimizer)
        model.load_weights(path)
        logs = model.fit(make_data(8), epochs=1, verbose=0).history
        sharding = str(model.backbone.quantizer.codebook.value.sharding)
    return model, logs, info.num_replicas, sharding

single, single_logs, n1, _ = run("default")
parallel, parallel_logs, n2, sharding = run("mirrored")
assert (n1, n2) == (1, 2), (n1, n2)
diff, moved = compare(single, parallel, make_model(True, optimizer))
print(json.dumps({"max_diff": diff, "moved": moved, "sharding": sharding,
                  "single": single_logs, "parallel": parallel_logs}))
"""


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution on JAX")
def test_jax_data_parallel_two_devices_match_one(tmp_path):
    report = _run(
        _JAX,
        [str(tmp_path / "w.weights.h5"), "adam"],
        env={
            "KERAS_BACKEND": "jax",
            # Keep the run's XLA flags (scripts/test.sh compiles the
            # tests' tiny steps unoptimised) and add the two host devices.
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
            + " --xla_force_host_platform_device_count=2",
        },
    )
    # Variables are replicated over the 2-device mesh.
    assert "NamedSharding" in report["sharding"], report["sharding"]
    _assert_same_update(report)

"""Data parallelism on one machine or many, on the engines that exist.

`distribution_scope(name)` is the one entry point. Build, compile and fit a
model inside it:

- `"default"`: one device (nothing is distributed).
- `"mirrored"`: every local device of this machine. TensorFlow:
  `tf.distribute.MirroredStrategy`; JAX: `keras.distribution.DataParallel`
  over the local devices.
- `"multiworker"`: several machines (or processes). TensorFlow:
  `tf.distribute.MultiWorkerMirroredStrategy`, configured by `TF_CONFIG`;
  JAX: `jax.distributed.initialize` (through `keras.distribution.initialize`)
  for the processes named by the arguments or by
  `KERAS_DISTRIBUTION_JOB_ADDRESSES` / `KERAS_DISTRIBUTION_NUM_PROCESSES` /
  `KERAS_DISTRIBUTION_PROCESS_ID`, then `DataParallel` over every device of
  every process.

The torch backend trains on one device only here ("default").

The batch that `fit` receives is the **global** batch: TensorFlow splits
each batch across replicas (and `tf.data` auto-shards it across workers);
JAX shards it over the device mesh. LG-VQ's batch-level terms (InfoNCE
negatives, the masking ratio and the masked-token normalisation) span the
global batch, so 2 replicas x B/2 make the update of 1 x B (see
`keras_lgvq.layers.LanguageGuidance`, `global_batch_contrastive`).
"""

import contextlib
import dataclasses
import os

import keras

NAMES = ("default", "mirrored", "multiworker")
_SUPPORTED = {
    "tensorflow": NAMES,
    "jax": NAMES,
    "torch": ("default",),
}
_JAX_ENV = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
# TensorFlow strategies are made once per process: a second
# MultiWorkerMirroredStrategy cannot join the same cluster again.
_TF_STRATEGIES = {}


@dataclasses.dataclass(frozen=True)
class DistributionInfo:
    """What `distribution_scope` set up.

    Attributes:
        name: string. The scope's name.
        num_replicas: int. Replicas the global batch is split over (use a
            global batch size divisible by it).
        num_workers: int. Processes (machines) taking part.
        worker_index: int. This process's index (0 is the chief, which
            should write checkpoints and logs).
        strategy: the `tf.distribute.Strategy` (TensorFlow), the
            `keras.distribution.DataParallel` (JAX) or None.
    """

    name: str
    num_replicas: int
    num_workers: int
    worker_index: int
    strategy: object = None


def supported_names(backend=None):
    """The scope names the (given or current) Keras backend supports."""
    return _SUPPORTED[backend or keras.backend.backend()]


def _check_supported(name):
    backend = keras.backend.backend()
    if name not in _SUPPORTED[backend]:
        raise ValueError(
            f"distribution_scope({name!r}) is not available on the "
            f"{backend} backend: keras_lgvq trains on one device there "
            f"(supported: {_SUPPORTED[backend]}). For data parallelism run "
            "with KERAS_BACKEND=tensorflow (MirroredStrategy / "
            "MultiWorkerMirroredStrategy) or KERAS_BACKEND=jax "
            "(keras.distribution.DataParallel)."
        )


# === TensorFlow ===


def _tf_strategy(name, devices):
    import tensorflow as tf

    key = (name, tuple(devices or ()))
    if key in _TF_STRATEGIES:
        return _TF_STRATEGIES[key]
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _TF_STRATEGIES[key] = strategy
    return strategy


def _tf_info(name, strategy):
    resolver = getattr(
        getattr(strategy, "extended", None), "_cluster_resolver", None
    )
    num_workers, index = 1, 0
    if name == "multiworker" and resolver is not None:
        spec = resolver.cluster_spec().as_dict()
        num_workers = max(1, len(spec.get("worker", [])))
        index = int(resolver.task_id or 0)
    return DistributionInfo(
        name, strategy.num_replicas_in_sync, num_workers, index, strategy
    )


# === JAX ===


def _jax_initialize(job_addresses, num_processes, process_id):
    import jax

    configured = (
        job_addresses is not None
        or num_processes is not None
        or any(os.environ.get(key) for key in _JAX_ENV)
    )
    if not configured:
        raise ValueError(
            "distribution_scope('multiworker') on JAX needs the cluster: "
            "pass `job_addresses` (the coordinator's 'host:port' first), "
            "`num_processes` and `process_id`, or set "
            f"{', '.join(_JAX_ENV)} in every process. On one machine use "
            "'mirrored'."
        )
    if num_processes is None:
        value = os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES")
        num_processes = int(value) if value else None
    if num_processes is not None and int(num_processes) < 1:
        raise ValueError(
            f"`num_processes` must be >= 1. Received: {num_processes!r}"
        )
    if num_processes == 1 or jax.distributed.is_initialized():
        return
    keras.distribution.initialize(
        job_addresses=job_addresses,
        num_processes=num_processes,
        process_id=process_id,
    )


def _jax_distribution(name, devices, job_addresses, num_processes, process_id):
    import jax

    if name == "multiworker":
        _jax_initialize(job_addresses, num_processes, process_id)
        devices = keras.distribution.list_devices()
    elif devices is None:
        # This machine's devices (in a multi-process run list_devices
        # would name every process's).
        devices = [f"{d.platform}:{d.id}" for d in jax.local_devices()]
    distribution = keras.distribution.DataParallel(devices=list(devices))
    info = DistributionInfo(
        name,
        len(devices),
        jax.process_count(),
        jax.process_index(),
        distribution,
    )
    return distribution, info


@contextlib.contextmanager
def distribution_scope(
    name="default",
    devices=None,
    job_addresses=None,
    num_processes=None,
    process_id=None,
):
    """Context in which models are built, compiled and trained data-parallel.

    Args:
        name: string. `"default"` (one device), `"mirrored"` (every device
            of this machine) or `"multiworker"` (several machines or
            processes). The torch backend supports `"default"` only.
        devices: list of strings or None. `"mirrored"` only: the devices to
            use (TensorFlow names such as `"/gpu:0"`, JAX names such as
            `"gpu:0"`); None uses all local devices.
        job_addresses: string or None. JAX `"multiworker"`: comma-separated
            addresses, the coordinator (process 0) first; defaults to
            `KERAS_DISTRIBUTION_JOB_ADDRESSES`. TensorFlow reads `TF_CONFIG`
            instead.
        num_processes: int or None. JAX `"multiworker"`: number of processes
            (`KERAS_DISTRIBUTION_NUM_PROCESSES`).
        process_id: int or None. JAX `"multiworker"`: this process's index
            (`KERAS_DISTRIBUTION_PROCESS_ID`).

    Yields:
        A `DistributionInfo` (replica count, worker index, the strategy).

    Raises:
        ValueError: for an unknown name, a name the backend does not
            support, or a JAX multi-worker run without a cluster.

    Examples:

    ```python
    with keras_lgvq.backend.distribution_scope("mirrored") as info:
        model = keras_lgvq.LGVQ.from_preset("scenes")
        model.compile(learning_rate=1e-3)
        ds = keras_lgvq.datasets.make_dataset(
            "scenes", batch_size=16 * info.num_replicas,
            text_prior=model.text_prior)
        model.fit(ds, epochs=1)
    ```

    On TensorFlow, create a `"multiworker"` scope before any other
    TensorFlow work in the program (collective ops are configured at
    start-up); every worker runs the same script with its own `TF_CONFIG`.
    """
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(
            f"`name` must be one of {NAMES}. Received: name={name!r}"
        )
    backend = keras.backend.backend()
    if devices is not None and name != "mirrored":
        raise ValueError(
            "`devices` applies to 'mirrored' only ('multiworker' uses every "
            "device of every worker). Received: "
            f"name={name!r}, devices={devices!r}"
        )
    cluster = dict(
        job_addresses=job_addresses,
        num_processes=num_processes,
        process_id=process_id,
    )
    given = sorted(key for key, value in cluster.items() if value is not None)
    if given and not (backend == "jax" and name == "multiworker"):
        raise ValueError(
            f"{given} describe a JAX multi-worker cluster and apply to "
            "distribution_scope('multiworker') on the jax backend only "
            "(TensorFlow reads the cluster from TF_CONFIG). Received: "
            f"name={name!r} on {backend}."
        )
    _check_supported(name)
    if name == "default":
        yield DistributionInfo(name, 1, 1, 0, None)
        return
    if backend == "tensorflow":
        strategy = _tf_strategy(name, devices)
        with strategy.scope():
            yield _tf_info(name, strategy)
        return
    distribution, info = _jax_distribution(
        name, devices, job_addresses, num_processes, process_id
    )
    with distribution.scope():
        yield info

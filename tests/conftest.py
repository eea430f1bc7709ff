"""Shared pytest set-up.

`host_only` marks a test file in which no Keras backend op runs (data
builders, caption metrics, figures, statistics): its result cannot depend
on `KERAS_BACKEND`. `scripts/test.sh` runs the suite once per backend and
sets `LGVQ_HOST_ONLY_BACKEND` to the first one, so those files run once per
CI run instead of three times; plain `pytest` runs them on any backend.

To re-check the marker, run the marked files under torch with
`LGVQ_CHECK_HOST_ONLY=1`: every torch call inside a `host_only` test then
fails it (Keras's torch backend computes every op with torch functions).

`end_to_end(backend)` marks a test that runs a whole recipe (argument
parsing, data, training loop, checkpoints, reports). The model code it
drives is tested on every backend in the model tests; the recipe's own code
is host code. `scripts/test.sh` exports `LGVQ_TEST_BACKENDS` (the backends
of the run) and each such test then runs under its named backend only (under
the first of the run's backends when its own is not among them), which keeps
CI's three passes from training the same recipes three times. The names are
spread over the backends so that each backend runs some recipes end to end.
Without `LGVQ_TEST_BACKENDS` (plain `pytest`) they run under any backend.
The heavy recipe runs (the main job's smoke run, the text-to-image recipe,
the stage-2 comparisons) are given to torch: measured in one sitting they
took 150 s there against ~600 s of TensorFlow's graph building.

`one_backend(backend)` marks a check of shipped trained weights (a figure
recorded at training time, reproduced): the code that loads and runs them
is tested on every backend, so each preset's figure is checked under one,
spread over the three, in the same way.

`tf_eager` marks a test (or, as `pytestmark`, a file) whose subject is what
a step computes (loss terms, frozen parts, logging, evaluation, round trips
of presets and caches), not how TensorFlow compiles it: under TensorFlow it
runs with `tf.config.run_functions_eagerly(True)`, so each Keras step and
predict executes op by op instead of being traced into a graph and
optimised by Grappler (the same Python code and TensorFlow kernels; a
one-step fit of the tiny VQGAN spent ~17 of its 27 s tracing and
optimising the graph). tf.data functions stay traced. Only files measured
faster that way carry it: a long training loop (the scenes judge, the
attribute probes) is faster traced. TensorFlow's graph path is tested by
every trainer's unmarked fit, input-validation, export, distribution and
XLA tests. `jit_compile=True` inside a `tf_eager` test is an error: XLA
would silently not run. JAX and torch ignore the marker.
"""

import contextlib
import os

import numpy as np
import pytest


def backend():
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _limit_torch_threads():
    """One torch thread per core share under pytest-xdist.

    Torch's OpenMP pool defaults to one thread per core; with two workers
    on two cores the pools oversubscribe the machine and spin-wait: a small
    conv step's forward + backward took 125 ms with two threads per worker
    against 6.7 ms with one (measured while another worker ran).
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if backend() != "torch" or workers < 2:
        return
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_configure(config):
    _limit_torch_threads()
    config.addinivalue_line(
        "markers", "slow: long-running test, deselect with -m 'not slow'"
    )
    config.addinivalue_line(
        "markers",
        "host_only: no Keras backend op runs here; scripts/test.sh runs it "
        "under one backend only ($LGVQ_HOST_ONLY_BACKEND)",
    )
    config.addinivalue_line(
        "markers",
        "end_to_end(backend): a whole recipe run; scripts/test.sh runs it "
        "under `backend` only ($LGVQ_TEST_BACKENDS)",
    )
    config.addinivalue_line(
        "markers",
        "one_backend(backend): a shipped preset's recorded figure; "
        "scripts/test.sh checks it under `backend` only "
        "($LGVQ_TEST_BACKENDS)",
    )
    config.addinivalue_line(
        "markers",
        "tf_eager: under TensorFlow, run this test's tf.functions (the "
        "Keras step) eagerly; its subject is the arithmetic, not the graph",
    )


BACKENDS = ("tensorflow", "jax", "torch")


_ONE_BACKEND_REASONS = {
    "end_to_end": "a whole recipe run; this test run ran it under {target} "
    "(the model code it drives is tested on every backend)",
    "one_backend": "a shipped preset's recorded figure; this test run "
    "checked it under {target} (the code that loads and runs it is tested "
    "on every backend)",
}


def _one_backend(item, run_backends, name):
    """The backend this run gives a test marked `name`, or None."""
    marker = item.get_closest_marker(name)
    if marker is None:
        return None
    if len(marker.args) != 1 or marker.args[0] not in BACKENDS:
        raise pytest.UsageError(
            f"{item.nodeid}: {name} takes one backend name of {BACKENDS},"
            f" got {marker.args}; write e.g. "
            f'@pytest.mark.{name}("torch").'
        )
    wanted = marker.args[0]
    return wanted if wanted in run_backends else run_backends[0]


def pytest_collection_modifyitems(config, items):
    run_backends = os.environ.get("LGVQ_TEST_BACKENDS", "").split()
    unknown = sorted(set(run_backends) - set(BACKENDS))
    if unknown:
        raise pytest.UsageError(
            f"LGVQ_TEST_BACKENDS names unknown backends {unknown}; expected "
            f"a space-separated list of {BACKENDS}."
        )
    only = os.environ.get("LGVQ_HOST_ONLY_BACKEND")
    for item in items:
        if item.get_closest_marker("host_only") and only not in (
            None,
            "",
            backend(),
        ):
            item.add_marker(
                pytest.mark.skip(
                    reason=f"host_only: no backend op runs here; it ran "
                    f"under {only}"
                )
            )
        # Validated on every run; without LGVQ_TEST_BACKENDS it always runs.
        for name, reason in _ONE_BACKEND_REASONS.items():
            target = _one_backend(item, run_backends or [backend()], name)
            if target is not None and target != backend():
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"{name}: " + reason.format(target=target)
                    )
                )


@pytest.fixture(autouse=True)
def _seed_everything():
    import keras

    keras.utils.set_random_seed(0)
    np.random.seed(0)
    yield


@contextlib.contextmanager
def _tensorflow_functions_eagerly(nodeid):
    """tf.functions run eagerly; compiling with XLA is a usage error."""
    import keras
    import tensorflow as tf

    compile_ = keras.Model.compile

    def compile_without_xla(self, *args, **kwargs):
        if kwargs.get("jit_compile") is True:
            raise pytest.UsageError(
                f"{nodeid} is marked tf_eager, where XLA cannot run; remove "
                "the marker from a test that compiles with jit_compile=True."
            )
        return compile_(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.Model, "compile", compile_without_xla)
        tf.config.run_functions_eagerly(True)
        try:
            yield
        finally:
            tf.config.run_functions_eagerly(False)


def _eager_if_marked(node, wanted):
    """The eager block for `node` when it is marked and `wanted`, else none."""
    if backend() == "tensorflow" and wanted and node.get_closest_marker(
        "tf_eager"
    ):
        return _tensorflow_functions_eagerly(node.nodeid)
    return contextlib.nullcontext()


@pytest.fixture(autouse=True, scope="module")
def _tensorflow_eager_module(request):
    """A file marked `tf_eager`: its module fixtures run eagerly too."""
    with _eager_if_marked(request.node, True):
        yield


@pytest.fixture(autouse=True)
def _tensorflow_eager(request):
    """A test marked `tf_eager` in an unmarked file (else the module's)."""
    module = request.node.getparent(pytest.Module)
    with _eager_if_marked(
        request.node, not module.get_closest_marker("tf_eager")
    ):
        yield


@pytest.fixture(autouse=True)
def _check_host_only(request):
    """With LGVQ_CHECK_HOST_ONLY=1 on torch, a `host_only` test must make no
    torch call."""
    if not (
        os.environ.get("LGVQ_CHECK_HOST_ONLY") == "1"
        and backend() == "torch"
        and request.node.get_closest_marker("host_only")
    ):
        yield
        return
    from torch.overrides import TorchFunctionMode

    calls = []

    class _Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            calls.append(getattr(func, "__name__", repr(func)))
            return func(*args, **(kwargs or {}))

    with _Record():
        yield
    assert not calls, (
        f"{request.node.nodeid} is marked host_only but made "
        f"{len(calls)} torch calls (first: {calls[:5]}); remove the marker."
    )


@pytest.fixture(autouse=True, scope="module")
def _release_backend_state():
    """Frees each test file's graphs and compiled functions when it ends.

    A worker process runs hundreds of files; without this, Keras's global
    state and JAX's compilation caches keep every file's models alive, and
    a worker grew past 6 GB on JAX. No forced `gc.collect()`
    (`free_memory=False`): it took 1-2 s per file, and Python's own
    collector still reclaims the cycles.
    """
    yield
    import keras

    keras.backend.clear_session(free_memory=False)
    if backend() == "jax":
        import jax

        jax.clear_caches()

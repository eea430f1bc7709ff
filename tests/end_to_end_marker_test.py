"""The `end_to_end(backend)` and `one_backend(backend)` markers' choice of
backend (tests/conftest.py)."""

import pytest

from tests import conftest

pytestmark = pytest.mark.host_only

MARKERS = ["end_to_end", "one_backend"]


class _Item:
    nodeid = "tests/x_test.py::test_x"

    def __init__(self, name, *args):
        self.name = name
        marker = getattr(pytest.mark, name)
        self._marker = marker(*args).mark if args else None

    def get_closest_marker(self, name):
        return self._marker if name == self.name else None


@pytest.mark.parametrize("name", MARKERS)
def test_named_backend_runs_it_when_it_is_in_the_run(name):
    run = ["tensorflow", "jax", "torch"]
    assert conftest._one_backend(_Item(name, "torch"), run, name) == "torch"
    assert conftest._one_backend(_Item(name, "jax"), run, name) == "jax"


@pytest.mark.parametrize("name", MARKERS)
def test_first_backend_of_the_run_takes_it_otherwise(name):
    # BACKENDS="jax" alone must still run a test named for torch.
    assert conftest._one_backend(_Item(name, "torch"), ["jax"], name) == "jax"


@pytest.mark.parametrize("name", MARKERS)
def test_unmarked_tests_are_left_alone(name):
    assert conftest._one_backend(_Item(name), ["jax"], name) is None
    # A marker of the other kind is not this one.
    other = MARKERS[1 - MARKERS.index(name)]
    assert conftest._one_backend(_Item(other, "torch"), ["jax"], name) is None


@pytest.mark.parametrize("name", MARKERS)
@pytest.mark.parametrize("args", [("tf",), (), ("jax", "torch")])
def test_a_bad_marker_is_a_usage_error(name, args):
    item = _Item(name, *args) if args else _Item(name)
    if not args:
        item._marker = getattr(pytest.mark, name).mark
    with pytest.raises(pytest.UsageError, match=f"{name} takes one"):
        conftest._one_backend(item, ["jax"], name)


def test_collection_skips_each_marker_outside_its_backend(monkeypatch):
    class _Collected(_Item):
        def __init__(self, name, *args):
            super().__init__(name, *args)
            self.added = []

        def add_marker(self, marker):
            self.added.append(marker)

    monkeypatch.setenv("LGVQ_TEST_BACKENDS", "tensorflow jax torch")
    monkeypatch.delenv("LGVQ_HOST_ONLY_BACKEND", raising=False)
    here = conftest.backend()
    other = next(b for b in conftest.BACKENDS if b != here)
    items = [_Collected(n, b) for n in MARKERS for b in (here, other)]
    conftest.pytest_collection_modifyitems(None, items)
    skipped = [bool(i.added) for i in items]
    assert skipped == [False, True, False, True]
    reasons = [i.added[0].kwargs["reason"] for i in items if i.added]
    assert reasons[0].startswith("end_to_end: a whole recipe run")
    assert reasons[1].startswith("one_backend: a shipped preset's")

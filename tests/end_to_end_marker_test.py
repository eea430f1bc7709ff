"""The `end_to_end(backend)` marker's choice of backend (tests/conftest.py)."""

import pytest

from tests import conftest

pytestmark = pytest.mark.host_only


class _Item:
    nodeid = "tests/x_test.py::test_x"

    def __init__(self, *args):
        self._marker = pytest.mark.end_to_end(*args).mark if args else None

    def get_closest_marker(self, name):
        return self._marker if name == "end_to_end" else None


def test_named_backend_runs_it_when_it_is_in_the_run():
    run = ["tensorflow", "jax", "torch"]
    assert conftest._end_to_end_backend(_Item("torch"), run) == "torch"
    assert conftest._end_to_end_backend(_Item("jax"), run) == "jax"


def test_first_backend_of_the_run_takes_it_otherwise():
    # BACKENDS="jax" alone must still run a test named for torch.
    assert conftest._end_to_end_backend(_Item("torch"), ["jax"]) == "jax"


def test_unmarked_tests_are_left_alone():
    assert conftest._end_to_end_backend(_Item(), ["jax"]) is None


@pytest.mark.parametrize("args", [("tf",), (), ("jax", "torch")])
def test_a_bad_marker_is_a_usage_error(args):
    item = _Item(*args) if args else _Item()
    if not args:
        item._marker = pytest.mark.end_to_end.mark
    with pytest.raises(pytest.UsageError, match="end_to_end takes one"):
        conftest._end_to_end_backend(item, ["jax"])

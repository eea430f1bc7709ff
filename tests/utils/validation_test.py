import numpy as np
import pytest

from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number


def test_check_int_accepts_ints_and_returns_python_ints():
    assert check_int("n", 3) == 3
    value = check_int("n", np.int64(5))
    assert value == 5 and type(value) is int
    assert check_int("n", 0, low=0) == 0
    assert check_int("n", None, allow_none=True) is None


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (0, {}, r"`width` must be an int >= 1\. Received: width=0"),
        (True, {}, "width=True"),
        (2.0, {}, "width=2.0"),
        ("3", {}, "width='3'"),
        (None, {}, "width=None"),
        (1, {"low": 2}, ">= 2"),
        (-1, {"low": 0, "allow_none": True}, ">= 0 or None"),
    ],
)
def test_check_int_rejects(value, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_int("width", value, **kwargs)


def test_check_number_bounds():
    assert check_number("p", 0.5, 0.0, 1.0) == 0.5
    assert check_number("p", 0, low=0.0) == 0.0
    with pytest.raises(ValueError, match=r"`p` must be < 1"):
        check_number("p", 1.0, 0.0, 1.0, high_open=True)
    with pytest.raises(ValueError, match=r"`p` must be > 0"):
        check_number("p", 0.0, low=0.0, low_open=True)
    with pytest.raises(ValueError, match="finite"):
        check_number("p", float("nan"))
    with pytest.raises(ValueError, match="number"):
        check_number("p", True)

import pytest
import tensorflow as tf

from keras_lgvq.utils.input_errors import input_errors_as_value_errors

PREFIX = "Invalid thing: "


def _fail(message):
    raise tf.errors.InvalidArgumentError(None, None, message)


def test_own_checks_become_value_errors_with_their_message():
    message = (
        "Error in user-defined function: assertion failed: [Invalid thing: "
        "`x` must be < 3: the model\\'s own ids.] [Condition x < y did not "
        "hold element-wise:] [x = ] [[5]]\n\t [[{{node Assert}}]]"
    )
    with pytest.raises(ValueError) as info:
        with input_errors_as_value_errors([PREFIX]):
            _fail(message)
    assert str(info.value) == (
        "Invalid thing: `x` must be < 3: the model's own ids."
    )


def test_other_errors_propagate_unchanged():
    with pytest.raises(tf.errors.InvalidArgumentError, match="other"):
        with input_errors_as_value_errors([PREFIX]):
            _fail("some other failure")
    with pytest.raises(StopIteration):
        with input_errors_as_value_errors([PREFIX]):
            raise StopIteration
    with pytest.raises(ValueError, match="no batch"):
        with input_errors_as_value_errors([PREFIX], no_batch_message="no batch"):
            raise StopIteration
    with pytest.raises(KeyError):
        with input_errors_as_value_errors([PREFIX]):
            raise KeyError("x")

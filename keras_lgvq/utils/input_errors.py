"""Input-pipeline check failures, re-raised as the ValueError they are."""

import contextlib


@contextlib.contextmanager
def input_errors_as_value_errors(prefixes, no_batch_message=None):
    """Re-raises the package's own input-pipeline checks as ValueError.

    Host-side checks written as tf.data assertions (and TensorFlow's
    in-graph assertions) fail the iteration with
    `tf.errors.InvalidArgumentError`, on every backend, since every backend
    reads tf.data. The ones keras_lgvq wrote start with one of `prefixes`;
    only those become a ValueError carrying their own message (the first
    line from the prefix on). Every other error propagates unchanged.

    Args:
        prefixes: sequence of str. Message prefixes of the package's checks
            (`keras_lgvq.utils.validation.TEXT_CHECK_PREFIX`, ...).
        no_batch_message: str or None. When given, a `StopIteration` (how
            Keras on JAX reports a dataset with no batch) becomes a
            ValueError with this message.

    Examples:

    ```python
    with input_errors_as_value_errors([CODE_CHECK_PREFIX]):
        model.fit(dataset)
    ```
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        text = str(error)
        found = [p for p in prefixes if p in text]
        if not found:
            raise
        start = min(text.index(p) for p in found)
        # The first line from the prefix, without what TensorFlow appends
        # to an assertion's message (`] [Condition x < y ...`) or escapes.
        line = text[start:].splitlines()[0].split("] [")[0]
        line = line.replace("\\'", "'").strip().rstrip("'\"]")
        raise ValueError(line) from error
    except StopIteration as error:
        if no_batch_message is None:
            raise
        raise ValueError(no_batch_message) from error

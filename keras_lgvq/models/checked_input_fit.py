"""`fit` / `evaluate` for the stage-2 models whose inputs are checked on the
host: a refused batch is a ValueError and changes nothing."""

import contextlib

from keras_lgvq.backend import keep_state_on_error
from keras_lgvq.utils.input_errors import input_errors_as_value_errors
from keras_lgvq.utils.validation import CODE_CHECK_PREFIX


class CheckedInputFit:
    """Mixin: `fit` / `evaluate` run `_filter_inputs` on the data first.

    The model's `_filter_inputs(x)` checks in-memory arrays on the host
    and adds checks to a `tf.data` pipeline (e.g.
    `keras_lgvq.datasets.code_batch_checks.validate_code_batch`), whose
    failures carry one of `input_check_prefixes`. Here such a failure is
    re-raised as a ValueError with the check's message, and the model is
    left as it was (JAX detaches the variables while `fit` runs;
    `keras_lgvq.backend.keep_state_on_error`).

    Examples:

    ```python
    class Model(CheckedInputFit, keras.Model):
        input_check_prefixes = (CODE_CHECK_PREFIX,)

        def _filter_inputs(self, x):
            ...
    ```
    """

    input_check_prefixes = (CODE_CHECK_PREFIX,)

    def _filter_inputs(self, x):
        return x

    def fit(self, x=None, *args, validation_data=None, **kwargs):
        if validation_data is not None:
            validation_data = self._filter_inputs(validation_data)
        x = self._filter_inputs(x)
        with self._input_errors():
            return super().fit(
                x, *args, validation_data=validation_data, **kwargs
            )

    def evaluate(self, x=None, *args, **kwargs):
        x = self._filter_inputs(x)
        with self._input_errors():
            return super().evaluate(x, *args, **kwargs)

    @contextlib.contextmanager
    def _input_errors(self):
        with keep_state_on_error(self):
            with input_errors_as_value_errors(
                list(self.input_check_prefixes)
            ):
                yield

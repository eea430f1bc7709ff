"""Leaving a training step with a NaN / Inf loss out, for Keras's own step.

`NonFiniteStepSkipping` is a mixin for models trained by Keras's default
`train_step` (the stage-2 models: `Captioner`, `VQAModel`, `TextToImage`).
The tokenizer trainers (`VQGAN` and subclasses) have their own version,
which also keeps their per-term trackers' means exact.
"""

import keras
from keras import ops

from keras_lgvq.backend.optimizer_build import build_optimizer_if_model_built


def _all_finite(logs):
    finite = ops.convert_to_tensor(True)
    for value in logs.values():
        value = ops.cast(value, "float32")
        finite = ops.logical_and(finite, ops.all(ops.isfinite(value)))
    return finite


class SkipNonfiniteStepsFlag:
    """The `skip_nonfinite_steps` switch shared by every model that can
    leave a step out (`NonFiniteStepSkipping` below, and `VQGAN`, whose own
    step also keeps its per-term means exact).

    The property is read when a step is traced; changing it drops the
    built train function so the next `fit` traces the other variant.
    """

    _skip_nonfinite_steps = False

    @property
    def skip_nonfinite_steps(self):
        """Whether a step with a NaN or Inf loss changes nothing: every
        trainable, non-trainable and optimizer variable keeps its value
        from before the step and the epoch means leave the batch out
        (`keras_lgvq.callbacks.NonFiniteGuard(policy="skip")` sets it).
        Costs one copy of the training state per step. Defaults to False.
        """
        return self._skip_nonfinite_steps

    @skip_nonfinite_steps.setter
    def skip_nonfinite_steps(self, value):
        if not isinstance(value, bool):
            raise ValueError(
                "`skip_nonfinite_steps` must be a bool. Received: "
                f"{value!r}"
            )
        if value != self._skip_nonfinite_steps:
            self._skip_nonfinite_steps = value
            # The step (and the metric state on JAX) differs: rebuild it.
            self.train_function = None


class NonFiniteStepSkipping(SkipNonfiniteStepsFlag):
    """Mixin: `skip_nonfinite_steps` for a model using Keras's `train_step`.

    When the flag is on, a step whose logged values (the running loss and
    metric means, which turn NaN / Inf with the batch that made them so)
    are not all finite changes nothing: every trainable, non-trainable,
    optimizer (slots, iteration count) and metric variable keeps its value
    from before the step, so the epoch means leave the batch out. The
    step's own logs still show the bad values, which is how
    `keras_lgvq.callbacks.NonFiniteGuard(policy="skip")` names and counts
    it. Costs one copy of the training state per step. Single device
    (the stage-2 models train on one).

    Either way, on TensorFlow the step's ops wait for the batch
    (`keras_lgvq.backend.batch_dependencies`): a batch the input pipeline
    refuses advances no iteration counter or seed generator.

    Examples:

    ```python
    class Model(NonFiniteStepSkipping, keras.Model):
        ...

    model.skip_nonfinite_steps = True  # or NonFiniteGuard(policy="skip")
    ```
    """

    def train_step(self, *args):
        from keras_lgvq.backend import batch_dependencies

        # The step's state changes wait for the batch: in a TensorFlow
        # graph the iteration counter and seed states would otherwise
        # advance on a batch the input pipeline refuses. The optimizer's
        # variables are made before, outside that dependency.
        build_optimizer_if_model_built(self)
        with batch_dependencies(args[-1]):
            return self._guarded_train_step(*args)

    def test_step(self, *args):
        from keras_lgvq.backend import batch_dependencies

        with batch_dependencies(args[-1]):
            return super().test_step(*args)

    def _guarded_train_step(self, *args):
        if not self._skip_nonfinite_steps:
            return super().train_step(*args)
        if len(args) == 2 and keras.backend.backend() == "jax":
            # JAX's stateless step: `(state, data) -> (logs, state)` with
            # state = (trainable, non-trainable, optimizer, metrics).
            state, data = args
            logs, new_state = super().train_step(state, data)
            keep = _all_finite(logs)
            kept = tuple(
                [ops.where(keep, new, old) for new, old in zip(n, o)]
                for n, o in zip(new_state, state)
            )
            return logs, kept
        variables = (
            list(self.trainable_variables)
            + list(self.non_trainable_variables)
            + list(self.optimizer.variables)
            + list(self.metrics_variables)
        )
        before = [ops.copy(v) for v in variables]
        logs = super().train_step(*args)
        keep = _all_finite(logs)
        for variable, old in zip(variables, before):
            variable.assign(ops.where(keep, variable, old))
        return logs

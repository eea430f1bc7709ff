"""JAX: a stateless train step (two `value_and_grad` passes per batch)."""

import contextlib

import jax
import numpy as np
from keras import StatelessScope
from keras import ops

from keras_lgvq.backend.optimizer_build import build_optimizer_if_model_built
from keras_lgvq.backend.single_program import conditionals_are_slow  # noqa: F401
from keras_lgvq.backend.single_program import graph_assertions_available  # noqa: F401
from keras_lgvq.backend.single_program import num_replicas  # noqa: F401
from keras_lgvq.backend.single_program import replica_all_gather  # noqa: F401
from keras_lgvq.backend.single_program import replica_batch_offset  # noqa: F401
from keras_lgvq.backend.single_program import replica_mean  # noqa: F401
from keras_lgvq.backend.single_program import replica_sum  # noqa: F401


def runtime_assert(condition, message):
    """Raises ValueError when `condition` is concrete and False. Under
    `jax.jit` nothing can raise: the host-side checks of the input pipeline
    and `fit` cover traced steps."""
    if isinstance(condition, jax.core.Tracer):
        return
    if not bool(np.asarray(condition)):
        raise ValueError(message)


def gradient(fn, x):
    return jax.grad(fn)(x)


# A `jax.vjp` inside the traced step would capture the layers' state
# updates (batch-norm statistics, dropout seeds) in its own trace, so the
# adaptive weight's gradients are taken by re-applying the last layer
# (`VQGAN.adaptive_weight_gradients`); XLA shares what it can.
INPUT_GRADIENT_SHARES_FORWARD = False


def _current_values(scope, variables, fallback):
    values = []
    for variable, old in zip(variables, fallback):
        new = scope.get_current_value(variable)
        values.append(old if new is None else new)
    return values


class GANTrainer:
    """Generator step then discriminator step, both pure functions of state.

    Besides Keras's usual handling of non-trainable state, assignments that
    layers make to *trainable* variables inside `call` (CVQ's codebook
    re-initialisation) are kept, as TensorFlow and torch keep them: the
    optimizer update is applied on top of the assigned value.
    """

    def _keep_state_on_error(self):
        return keep_state_on_error(self)

    def _stateless_run(self, fn, trainable, non_trainable, optimizer, *args):
        mapping = list(zip(self.trainable_variables, trainable))
        mapping += list(zip(self.non_trainable_variables, non_trainable))
        mapping += list(zip(self.optimizer.variables, optimizer))
        with StatelessScope(state_mapping=mapping) as scope:
            outputs = fn(*args)
        new_non_trainable = _current_values(
            scope, self.non_trainable_variables, non_trainable
        )
        assigned_trainable = _current_values(
            scope, self.trainable_variables, trainable
        )
        return outputs, new_non_trainable, assigned_trainable

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_vars, metrics_vars = state
        batch = self._unpack_batch(data)
        variables = self.trainable_variables
        g_vars, d_vars = self._split_trainable_variables()
        position = {id(v): i for i, v in enumerate(variables)}
        g_index = [position[id(v)] for v in g_vars]
        d_index = [position[id(v)] for v in d_vars]
        num_g_opt = len(self.optimizer.generator.variables)
        g_opt, d_opt = optimizer_vars[:num_g_opt], optimizer_vars[num_g_opt:]

        def merged(values, index, part):
            values = list(values)
            for i, v in zip(index, part):
                values[i] = v
            return values

        def generator_loss(g_values, non_trainable):
            full = merged(trainable, g_index, g_values)
            (loss, logs, aux), ntv, assigned = self._stateless_run(
                lambda: self._generator_step(batch, training=True),
                full,
                non_trainable,
                optimizer_vars,
            )
            return loss, (logs, aux, ntv, assigned)

        g_values = [trainable[i] for i in g_index]
        (_, (logs, aux, non_trainable, assigned)), grads = (
            jax.value_and_grad(generator_loss, has_aux=True)(
                g_values, non_trainable
            )
        )
        g_values = [assigned[i] for i in g_index]
        g_values, g_opt = self.optimizer.generator.stateless_apply(
            g_opt, grads, g_values
        )
        trainable = merged(trainable, g_index, g_values)

        if self.discriminator is not None:
            reconstruction = ops.stop_gradient(aux["reconstruction"])

            def discriminator_loss(d_values, non_trainable):
                full = merged(trainable, d_index, d_values)
                (loss, d_logs), ntv, assigned = self._stateless_run(
                    lambda: self._discriminator_step(
                        batch, reconstruction, aux["disc_factor"]
                    ),
                    full,
                    non_trainable,
                    list(g_opt) + list(d_opt),
                )
                return loss, (d_logs, ntv, assigned)

            d_values = [trainable[i] for i in d_index]
            (_, (d_logs, non_trainable, assigned)), grads = (
                jax.value_and_grad(discriminator_loss, has_aux=True)(
                    d_values, non_trainable
                )
            )
            # A second generator pass (`two_forward_passes`) may assign
            # generator variables (CVQ re-initialisation); keep them.
            trainable = merged(
                trainable, g_index, [assigned[i] for i in g_index]
            )
            d_values, d_opt = self.optimizer.discriminator.stateless_apply(
                d_opt, grads, d_values
            )
            trainable = merged(trainable, d_index, d_values)
            logs.update(d_logs)

        logs, metrics_vars = self._stateless_record(metrics_vars, logs)
        state = (
            trainable,
            non_trainable,
            list(g_opt) + list(d_opt),
            metrics_vars,
        )
        return logs, state

    def test_step(self, state, data):
        trainable, non_trainable, metrics_vars = state
        batch = self._unpack_batch(data)
        mapping = list(zip(self.trainable_variables, trainable))
        mapping += list(zip(self.non_trainable_variables, non_trainable))
        with StatelessScope(state_mapping=mapping):
            logs = self._evaluation_step(batch)
        logs, metrics_vars = self._stateless_record(metrics_vars, logs)
        return logs, (trainable, non_trainable, metrics_vars)

    def _stateless_record(self, metrics_vars, logs):
        mapping = list(zip(self.metrics_variables, metrics_vars))
        with StatelessScope(state_mapping=mapping) as scope:
            results = self._record(logs)
        metrics_vars = _current_values(
            scope, self.metrics_variables, metrics_vars
        )
        return results, metrics_vars


@contextlib.contextmanager
def keep_state_on_error(model):
    """Leaves the model usable when `fit` / `evaluate` fail mid-way.

    Keras's JAX loop detaches the variables' values while it runs and
    reattaches them at the end of the epoch; an error in between (a
    batch the input pipeline's checks refuse) would leave every variable
    without a value. On an error this reattaches the state of the last
    completed step, or the values from before the call when no step
    completed (they are intact: a batch is refused before the step that
    would consume them). An unbuilt optimizer of a built model is built
    first, so its variables exist before the call too.
    """
    variables, seen = [], set()
    build_optimizer_if_model_built(model)
    optimizer = getattr(model, "optimizer", None)
    for variable in (
        list(model.variables)
        + list(optimizer.variables if optimizer is not None else [])
        + list(model.metrics_variables)
    ):
        if id(variable) not in seen:
            seen.add(id(variable))
            variables.append(variable)
    values = [v._value for v in variables]
    previous = getattr(model, "_jax_state", None)
    completed = False
    try:
        yield
        completed = True
    finally:
        if not completed:
            state = getattr(model, "_jax_state", None)
            if state is not None and state is not previous:
                model.jax_state_sync()
            for variable, value in zip(variables, values):
                alive = value is not None and not value.is_deleted()
                if variable._value is None and alive:
                    variable._value = value


def concrete_numpy(x):
    """`x` as numpy when it holds values now, else None (under `jax.jit`)."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def batch_dependencies(batch):
    """No-op context: steps run eagerly or as one traced program, so no
    state change can run before the batch exists (TensorFlow's graphs
    need one, see `tensorflow_trainer.batch_dependencies`)."""
    return contextlib.nullcontext()

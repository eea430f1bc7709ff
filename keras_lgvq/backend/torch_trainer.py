"""torch: autograd train step (eager or torch.compile via jit_compile)."""

import contextlib

import numpy as np
import torch

from keras_lgvq.backend.single_program import conditionals_are_slow  # noqa: F401
from keras_lgvq.backend.single_program import graph_assertions_available  # noqa: F401
from keras_lgvq.backend.single_program import num_replicas  # noqa: F401
from keras_lgvq.backend.single_program import replica_all_gather  # noqa: F401
from keras_lgvq.backend.single_program import replica_batch_offset  # noqa: F401
from keras_lgvq.backend.single_program import replica_mean  # noqa: F401
from keras_lgvq.backend.single_program import replica_sum  # noqa: F401


def runtime_assert(condition, message):
    """Raises ValueError when `condition` is False (values are concrete in
    eager torch; under `torch.compile` the host-side checks cover it)."""
    if torch.compiler.is_compiling():
        return
    if isinstance(condition, torch.Tensor):
        condition = bool(condition.detach().cpu().item())
    if not condition:
        raise ValueError(message)


def gradient(fn, x):
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = fn(x)
        (grad,) = torch.autograd.grad(y, x)
    return grad


# `value_and_input_gradient` reuses the forward pass it differentiates.
INPUT_GRADIENT_SHARES_FORWARD = True


def value_and_input_gradient(fn, x):
    """`fn(x)` and the gradient of its first output at `x`, one forward.

    `fn` returns a tuple whose first item is a scalar; `x` is part of the
    train step's graph. The graph is kept for the step's own backward;
    the gradient is detached (taming's `autograd.grad(..., retain_graph=
    True)`).
    """
    outputs = fn(x)
    (grad,) = torch.autograd.grad(outputs[0], x, retain_graph=True)
    return outputs, grad.detach()


class GANTrainer:
    """Generator step then discriminator step with `loss.backward()`."""

    def train_step(self, data):
        batch = self._unpack_batch(data)
        g_vars, d_vars = self._split_trainable_variables()
        self.zero_grad()
        loss, logs, aux = self._generator_step(batch, training=True)
        loss.backward()
        self._apply(self.optimizer.generator, g_vars)
        if self.discriminator is not None:
            # The generator's backward pass also reached the discriminator.
            self.zero_grad()
            reconstruction = aux["reconstruction"].detach()
            d_loss, d_logs = self._discriminator_step(
                batch, reconstruction, aux["disc_factor"]
            )
            d_loss.backward()
            self._apply(self.optimizer.discriminator, d_vars)
            logs.update(d_logs)
        return self._record(logs)

    def _keep_state_on_error(self):
        return keep_state_on_error(self)

    def test_step(self, data):
        with torch.no_grad():
            logs = self._evaluation_step(self._unpack_batch(data))
        return self._record(logs)

    def _apply(self, optimizer, variables):
        pairs = [
            (v.value.grad, v) for v in variables if v.value.grad is not None
        ]
        if pairs:
            with torch.no_grad():
                optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])


def concrete_numpy(x):
    """`x` as numpy when it holds values now, else None (`torch.compile`)."""
    if torch.compiler.is_compiling():
        return None
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def keep_state_on_error(model):
    """No-op context: variables keep their values through an error in
    `fit` here (JAX's loop needs one, see `jax_trainer`)."""
    return contextlib.nullcontext()


def batch_dependencies(batch):
    """No-op context: steps run eagerly or as one traced program, so no
    state change can run before the batch exists (TensorFlow's graphs
    need one, see `tensorflow_trainer.batch_dependencies`)."""
    return contextlib.nullcontext()

"""Per-backend gradient helpers for layer tests (TensorFlow, JAX, torch).

`variable_grads(fn, variables)` differentiates a zero-argument closure
with respect to Keras variables; `input_grads(fn, inputs)` with respect to
input arrays. The closure returns a scalar or a dict of scalars; for a dict
every entry is differentiated from one forward pass. Results are numpy, with
`None` where the backend reports no gradient path (TF, torch); JAX returns
zeros there. Use `is_zero_grad` to test for "no gradient" uniformly.

Layers must be built (called once) before `variable_grads`: on JAX the
closure runs inside a `keras.StatelessScope` under `jax.jit`, traced once
(Python side effects happen at trace time only, and state the closure
writes, such as seed-generator advances, is discarded).
"""

import keras
import numpy as np


_FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
}


def to_numpy(x):
    return None if x is None else np.asarray(keras.ops.convert_to_numpy(x))


def is_zero_grad(grad):
    """True when a gradient is absent (`None`) or exactly zero."""
    return grad is None or not np.any(np.asarray(grad))


def _as_dict(out):
    return (out, False) if isinstance(out, dict) else ({"": out}, True)


def _unwrap(losses, grads, single):
    if single:
        return losses[""], grads[""]
    return losses, grads


def variable_grads(fn, variables):
    """Returns `(loss, grads)` of `fn()` w.r.t. Keras `variables`.

    For a scalar `fn()`, `grads` is a list (one entry per variable); for a
    dict-valued `fn()`, `loss` and `grads` are dicts keyed like its output.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape(persistent=True) as tape:
            out, single = _as_dict(fn())
        losses, grads = {}, {}
        for key, loss in out.items():
            losses[key] = to_numpy(loss)
            grads[key] = [
                to_numpy(g)
                for g in tape.gradient(loss, [v.value for v in variables])
            ]
        del tape
        return _unwrap(losses, grads, single)
    if backend == "jax":
        import jax

        def stateless(values):
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping):
                out, _ = _as_dict(fn())
            return out, out

        values = [v.value for v in variables]
        # One compiled program instead of op-by-op dispatch; a test needs no
        # optimised code, and XLA compiles about twice as fast without.
        lowered = jax.jit(jax.jacrev(stateless, has_aux=True)).lower(values)
        compiled = lowered.compile(compiler_options=_FAST_COMPILE)
        jac, out = compiled(values)
        single = set(out) == {""}
        losses = {k: to_numpy(v) for k, v in out.items()}
        grads = {k: [to_numpy(g) for g in jac[k]] for k in out}
        return _unwrap(losses, grads, single)
    if backend == "torch":
        import torch

        out, single = _as_dict(fn())
        params = [v.value for v in variables]
        differentiable = [p.requires_grad for p in params]
        losses, grads = {}, {}
        keys = list(out)
        for i, key in enumerate(keys):
            loss = out[key]
            losses[key] = to_numpy(loss.detach())
            wanted = [p for p, d in zip(params, differentiable) if d]
            found = torch.autograd.grad(
                loss,
                wanted,
                retain_graph=i < len(keys) - 1,
                allow_unused=True,
            )
            found = iter(found)
            grads[key] = [
                to_numpy(next(found)) if d else None for d in differentiable
            ]
        return _unwrap(losses, grads, single)
    raise ValueError(f"Unsupported backend: {backend}")


def input_grads(fn, inputs):
    """Returns `(loss, [grad or None per input])` of scalar `fn(*inputs)`."""
    backend = keras.backend.backend()
    inputs = [np.asarray(x, dtype="float32") for x in inputs]
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(x) for x in inputs]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            loss = fn(*tensors)
        grads = tape.gradient(loss, tensors)
        return to_numpy(loss), [to_numpy(g) for g in grads]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        argnums = tuple(range(len(inputs)))
        loss, grads = jax.value_and_grad(fn, argnums=argnums)(
            *[jnp.asarray(x) for x in inputs]
        )
        return to_numpy(loss), [to_numpy(g) for g in grads]
    if backend == "torch":
        import torch

        tensors = [
            keras.ops.convert_to_tensor(x).requires_grad_(True) for x in inputs
        ]
        loss = fn(*tensors)
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        return to_numpy(loss.detach()), [
            None if g is None else g.detach().cpu().numpy() for g in grads
        ]
    raise ValueError(f"Unsupported backend: {backend}")

"""Backend-specific code: the two-optimizer GAN `train_step` and gradients.

This is the one place in keras_lgvq with TensorFlow, JAX or torch code. Each
module implements the same small interface for the backend Keras runs on:

- `GANTrainer`: a mixin with `train_step` / `test_step` that alternates a
  generator update and a discriminator update per batch, built on the
  backend-agnostic hooks of `keras_lgvq.models.VQGAN`.
- `gradient(fn, x)`: the gradient of a scalar function at a tensor, used for
  the adaptive GAN weight.
- `value_and_input_gradient(fn, x)`: `fn(x)` (a tuple, first item a
  scalar) and the constant gradient of its first item at `x` from the same
  forward pass; only where `INPUT_GRADIENT_SHARES_FORWARD` (TensorFlow,
  torch): the adaptive weight then needs no second LPIPS / discriminator
  forward. JAX has no such function (see `jax_trainer`).
- `replica_mean(x)`, `replica_sum(x)`: the mean / sum of a tensor over
  data-parallel replicas (only `tf.distribute` needs them; identity
  elsewhere, where one program already sees the global batch).
- `replica_all_gather(x)`: every replica's `x` concatenated along axis 0
  in replica order (differentiable); `replica_batch_offset(n)`: this
  replica's `(offset, global_size)` in the global batch. They let batch-level
  losses (InfoNCE negatives, one mask draw) span the global batch.
- `runtime_assert(condition, message)`: ValueError when the values exist
  now, a graph assertion inside `tf.function`, nothing under `jax.jit` /
  `torch.compile` (host-side checks cover those).
- `distribution_scope(name)`: data parallelism on one or many machines
  (`keras_lgvq.backend.distribution`).
- `conditionals_are_slow()`: True while tracing an XLA-compiled TensorFlow
  graph, where a differentiated `tf.cond` was measured ~20x slower than
  either branch; code with a branch-free equivalent takes it there.
- `batch_dependencies(batch)`: a context in which every op of a step
  waits for the batch (TensorFlow graphs; a no-op elsewhere), so a batch
  the input pipeline refuses advances no counter or seed.
- `keep_state_on_error(model)`: a context that leaves a model's variables
  usable when `fit` / `evaluate` fail mid-way (JAX's loop detaches them
  while it runs; a no-op elsewhere).
- `num_replicas()`: replicas the loss is split over (for loss scaling).
- `concrete_numpy(x)`: `x` as numpy when its values exist now, None while
  traced (`tf.function`, `jax.jit`, `torch.compile`): value checks run on
  the host side where they can raise.
"""

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from keras_lgvq.backend.tensorflow_trainer import INPUT_GRADIENT_SHARES_FORWARD
    from keras_lgvq.backend.tensorflow_trainer import GANTrainer
    from keras_lgvq.backend.tensorflow_trainer import batch_dependencies
    from keras_lgvq.backend.tensorflow_trainer import concrete_numpy
    from keras_lgvq.backend.tensorflow_trainer import conditionals_are_slow
    from keras_lgvq.backend.tensorflow_trainer import gradient
    from keras_lgvq.backend.tensorflow_trainer import graph_assertions_available
    from keras_lgvq.backend.tensorflow_trainer import keep_state_on_error
    from keras_lgvq.backend.tensorflow_trainer import num_replicas
    from keras_lgvq.backend.tensorflow_trainer import replica_all_gather
    from keras_lgvq.backend.tensorflow_trainer import replica_batch_offset
    from keras_lgvq.backend.tensorflow_trainer import replica_mean
    from keras_lgvq.backend.tensorflow_trainer import replica_sum
    from keras_lgvq.backend.tensorflow_trainer import runtime_assert
    from keras_lgvq.backend.tensorflow_trainer import value_and_input_gradient
elif _BACKEND == "jax":
    from keras_lgvq.backend.jax_trainer import INPUT_GRADIENT_SHARES_FORWARD
    from keras_lgvq.backend.jax_trainer import GANTrainer
    from keras_lgvq.backend.jax_trainer import batch_dependencies
    from keras_lgvq.backend.jax_trainer import concrete_numpy
    from keras_lgvq.backend.jax_trainer import conditionals_are_slow
    from keras_lgvq.backend.jax_trainer import gradient
    from keras_lgvq.backend.jax_trainer import graph_assertions_available
    from keras_lgvq.backend.jax_trainer import keep_state_on_error
    from keras_lgvq.backend.jax_trainer import num_replicas
    from keras_lgvq.backend.jax_trainer import replica_all_gather
    from keras_lgvq.backend.jax_trainer import replica_batch_offset
    from keras_lgvq.backend.jax_trainer import replica_mean
    from keras_lgvq.backend.jax_trainer import replica_sum
    from keras_lgvq.backend.jax_trainer import runtime_assert
elif _BACKEND == "torch":
    from keras_lgvq.backend.torch_trainer import INPUT_GRADIENT_SHARES_FORWARD
    from keras_lgvq.backend.torch_trainer import GANTrainer
    from keras_lgvq.backend.torch_trainer import batch_dependencies
    from keras_lgvq.backend.torch_trainer import concrete_numpy
    from keras_lgvq.backend.torch_trainer import conditionals_are_slow
    from keras_lgvq.backend.torch_trainer import gradient
    from keras_lgvq.backend.torch_trainer import graph_assertions_available
    from keras_lgvq.backend.torch_trainer import keep_state_on_error
    from keras_lgvq.backend.torch_trainer import num_replicas
    from keras_lgvq.backend.torch_trainer import replica_all_gather
    from keras_lgvq.backend.torch_trainer import replica_batch_offset
    from keras_lgvq.backend.torch_trainer import replica_mean
    from keras_lgvq.backend.torch_trainer import replica_sum
    from keras_lgvq.backend.torch_trainer import runtime_assert
    from keras_lgvq.backend.torch_trainer import value_and_input_gradient
else:
    raise ImportError(
        f"keras_lgvq supports the tensorflow, jax and torch backends; "
        f"KERAS_BACKEND is {_BACKEND!r}."
    )

from keras_lgvq.backend.distribution import distribution_scope  # noqa: E402

"""TensorFlow: GradientTape train step, works under tf.distribute and XLA."""

import contextlib

import tensorflow as tf
from keras import ops
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.ops import control_flow_util


def num_replicas():
    # Replicas of the current replica context: a call in cross-replica
    # context (under a strategy's scope, outside `strategy.run`) sees the
    # whole batch, so nothing is split there.
    context = tf.distribute.get_replica_context()
    if context is None:
        return 1
    return context.num_replicas_in_sync


def _replica_context():
    """The replica context when several replicas run in sync, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def replica_mean(x):
    context = _replica_context()
    if context is None:
        return x
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, x)


def replica_sum(x):
    context = _replica_context()
    if context is None:
        return x
    return context.all_reduce(tf.distribute.ReduceOp.SUM, x)


def replica_all_gather(x):
    """`x` of every replica, concatenated along axis 0 in replica order.

    Differentiable: the gradient at this replica's rows is the sum over
    replicas of the upstream gradients there (all-reduce, then slice).
    """
    context = _replica_context()
    if context is None:
        return x
    return context.all_gather(x, axis=0)


def replica_batch_offset(batch_size):
    """`(offset, global_size)` of this replica's rows in the global batch.

    The global batch is the replicas' batches in replica order; sizes are
    gathered, so an uneven last batch is placed exactly.
    """
    context = _replica_context()
    if context is None:
        return 0, batch_size
    size = tf.reshape(tf.cast(batch_size, tf.int32), [1])
    sizes = context.all_gather(size, axis=0)
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    before = tf.range(tf.shape(sizes)[0]) < replica
    offset = tf.reduce_sum(tf.where(before, sizes, tf.zeros_like(sizes)))
    return offset, tf.reduce_sum(sizes)


def graph_assertions_available():
    """Whether traced steps can fail on a value (tf.function graphs run assertions)."""
    return True


def runtime_assert(condition, message):
    """Raises ValueError now when `condition` is concrete and False; inside
    a `tf.function` adds a graph assertion that fails the step at run time
    with `message` (XLA drops assertions; host-side checks cover it)."""
    if tf.executing_eagerly() or not isinstance(condition, tf.Tensor):
        if not bool(ops.convert_to_numpy(condition)):
            raise ValueError(message)
        return
    tf.debugging.Assert(condition, [message])


def gradient(fn, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x)


def conditionals_are_slow():
    """Whether the graph being traced is XLA-compiled (`jit_compile=True`).

    There a differentiated `tf.cond` (the MTP head's masked-rows buffer
    with its full-logits fallback) made the LG-VQ step at the official tiny
    config take 26-31 s instead of 1.4 s (TF 2.21, CPU); the same step
    without the cond, or with full logits, took 1.3-1.4 s.
    """
    return control_flow_util.GraphOrParentsInXlaContext(
        tf_ops.get_default_graph()
    )


# `value_and_input_gradient` reuses the forward pass it differentiates.
INPUT_GRADIENT_SHARES_FORWARD = True


def value_and_input_gradient(fn, x):
    """`fn(x)` and the gradient of its first output at `x`, one forward.

    `fn` returns a tuple whose first item is a scalar. The outputs stay in
    any enclosing tape (the train step's), the gradient is a constant:
    taming's `autograd.grad(loss, last_layer, retain_graph=True)`.
    """
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = fn(x)
    return outputs, tf.stop_gradient(tape.gradient(outputs[0], x))


class GANTrainer:
    """Generator step then discriminator step, each with its own tape."""


    def train_step(self, data):
        batch = self._unpack_batch(data)
        # Every state change of the step waits for the batch. In a graph,
        # ops with no data input (the optimizers' iteration counters, the
        # seed generators' states) may otherwise run before the input
        # pipeline refuses a bad batch, and a refused step would still
        # advance them (measured: `optimizer.iterations` read 1 after
        # `fit` raised on the first batch).
        with batch_dependencies(batch):
            return self._gan_train_step(batch)

    def _gan_train_step(self, batch):
        # Optimizers all-reduce gradients with SUM across replicas, so each
        # replica's loss is divided by the replica count.
        scale = 1.0 / num_replicas()
        g_vars, d_vars = self._split_trainable_variables()
        with tf.GradientTape() as tape:
            loss, logs, aux = self._generator_step(batch, training=True)
            scaled = loss * scale
        grads = tape.gradient(scaled, g_vars)
        self._apply(self.optimizer.generator, grads, g_vars)
        if self.discriminator is not None:
            reconstruction = ops.stop_gradient(aux["reconstruction"])
            with tf.GradientTape() as tape:
                d_loss, d_logs = self._discriminator_step(
                    batch, reconstruction, aux["disc_factor"]
                )
                scaled = d_loss * scale
            grads = tape.gradient(scaled, d_vars)
            self._apply(self.optimizer.discriminator, grads, d_vars)
            logs.update(d_logs)
        return _reducible(self._record(logs))

    def _keep_state_on_error(self):
        return keep_state_on_error(self)

    def test_step(self, data):
        batch = self._unpack_batch(data)
        # As in `train_step`: a refused batch advances no seed generator.
        with batch_dependencies(batch):
            return _reducible(self._record(self._evaluation_step(batch)))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under tf.distribute Keras builds the model symbolically from the
        # MEAN of the first distributed batch, which fails for bool
        # tensors (no AddN kernel) and for dict batches under
        # MultiWorkerMirroredStrategy. These trainers build the model and
        # both optimizers in `compile` and have no compiled loss or metric,
        # so that build has nothing to do once they are built.
        ready = (
            self.built
            and all(layer.built for layer in self._flatten_layers())
            and getattr(self, "_compile_loss", None) is None
            and getattr(self, "_compile_metrics", None) is None
            and self.optimizer is not None
            and self.optimizer.built
        )
        if ready:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _apply(self, optimizer, grads, variables):
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if pairs:
            optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])


def keep_state_on_error(model):
    """No-op context: variables keep their values through an error in
    `fit` here (JAX's loop needs one, see `jax_trainer`)."""
    return contextlib.nullcontext()


def batch_dependencies(batch):
    """A context in which every op created waits for `batch`'s tensors.

    In a graph, ops without a data input (an optimizer's iteration
    counter, a seed generator's state update) may run before the input
    pipeline fails on a refused batch; created in this context they run
    only once the batch exists.
    """
    tensors = [
        value for value in tf.nest.flatten(batch)
        if isinstance(value, tf.Tensor)
    ]
    return tf.control_dependencies(tensors)


def _reducible(logs):
    """Logs Keras can reduce across workers.

    Keras reduces a step's outputs with `strategy.reduce(MEAN, v, axis=0)`
    under a multi-worker MultiWorkerMirroredStrategy, which fails on
    scalars; a leading axis of 1 gives the same mean. (The values are
    `Mean` trackers' results, equal on every replica: their variables are
    sum-aggregated.)
    """
    strategy = tf.distribute.get_strategy()
    multi_worker = isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()
    if not multi_worker:
        return logs
    return {key: tf.reshape(value, [1]) for key, value in logs.items()}


def concrete_numpy(x):
    """`x` as numpy when it holds values now (eager), else None (traced)."""
    if isinstance(x, tf.Tensor) and not hasattr(x, "numpy"):
        return None  # A symbolic tensor inside tf.function.
    if not tf.executing_eagerly() and isinstance(x, tf.Tensor):
        return None
    return ops.convert_to_numpy(x)

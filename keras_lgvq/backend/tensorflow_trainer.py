"""TensorFlow: GradientTape train step, works under tf.distribute and XLA."""

import tensorflow as tf
from keras import ops


def num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_mean(x):
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, x)


def gradient(fn, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.gradient(y, x)


class GANTrainer:
    """Generator step then discriminator step, each with its own tape."""

    def train_step(self, data):
        batch = self._unpack_batch(data)
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
        return self._record(logs)

    def test_step(self, data):
        return self._record(self._evaluation_step(self._unpack_batch(data)))

    def _apply(self, optimizer, grads, variables):
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if pairs:
            optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])


def concrete_numpy(x):
    """`x` as numpy when it holds values now (eager), else None (traced)."""
    if isinstance(x, tf.Tensor) and not hasattr(x, "numpy"):
        return None  # A symbolic tensor inside tf.function.
    if not tf.executing_eagerly() and isinstance(x, tf.Tensor):
        return None
    return ops.convert_to_numpy(x)

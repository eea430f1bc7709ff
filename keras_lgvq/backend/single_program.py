"""Replica helpers for backends where one program sees the global batch.

JAX under `keras.distribution` runs SPMD over the whole batch, and torch
trains on one device, so there is nothing to reduce or gather across
replicas: the loss needs no scaling, a "replica" mean or sum is the value
itself and this program's rows start at 0. (TensorFlow's versions, which
talk to `tf.distribute`'s replica context, are in `tensorflow_trainer`.)
"""


def num_replicas():
    return 1


def replica_mean(x):
    return x


def replica_sum(x):
    return x


def replica_all_gather(x):
    return x


def replica_batch_offset(batch_size):
    return 0, batch_size


def graph_assertions_available():
    """Whether traced steps can fail on a value: neither `jax.jit` nor
    `torch.compile` graphs can raise on one (host-side checks cover them)."""
    return False


def conditionals_are_slow():
    """Whether the program being traced should avoid `ops.cond`: never on
    JAX (`lax.cond`) or torch (Python branches)."""
    return False

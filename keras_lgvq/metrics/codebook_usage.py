"""Codebook usage and perplexity over a whole evaluation set."""

import keras
from keras import ops

from keras_lgvq.utils.validation import check_int

@keras.saving.register_keras_serializable(package="keras_lgvq")
class CodebookUsage(keras.metrics.Metric):
    """Fraction of codes used and code perplexity over a whole dataset.

    Accumulates a `num_embeddings`-bin histogram of code indices across
    every `update_state` call (so, unlike per-batch training statistics,
    it is not biased low by small batches). From the histogram:

    - `usage()`: fraction of the K codes selected at least once, in
      `[0, 1]` (the paper's Fig. 7 reports it in %).
    - `perplexity()`: `exp(H(p))` of the average code distribution `p`,
      between 1 and K; 0 log 0 counts as 0.
    - `histogram()`: the raw counts, shape `(K,)`.

    `result()` returns `{"usage": ..., "perplexity": ...}`. Indices outside
    `[0, num_embeddings)` (e.g. -1 used as a padding marker) are ignored.
    Counts are float32, exact up to 2**24 per code.

    Args:
        num_embeddings: int. Codebook size K.
        name: string. Metric name.
        dtype: string. Dtype of the result.

    Examples:

    ```python
    usage = keras_lgvq.metrics.CodebookUsage(num_embeddings=1024)
    for batch in dataset:
        usage.update_state(tokenizer.encode_to_indices(batch))
    usage.result()  # {"usage": 0.41, "perplexity": 312.5}
    ```
    """

    def __init__(self, num_embeddings, name="codebook_usage", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_embeddings = check_int("num_embeddings", num_embeddings)
        self.counts = self.add_variable(
            shape=(num_embeddings,),
            initializer="zeros",
            dtype="float32",
            aggregation="sum",
            name="counts",
        )
        self._direction = "up"

    def update_state(self, indices, sample_weight=None):
        """Add code indices (any shape) to the histogram.

        Args:
            indices: int tensor of any shape. Selected code ids.
            sample_weight: optional tensor broadcastable to `indices`.
                Weight of each index (e.g. 0 for padded positions).
        """
        indices = ops.convert_to_tensor(indices)
        if "int" not in str(indices.dtype):
            raise ValueError(
                "`indices` must be an integer tensor of code ids. "
                f"Received dtype: {indices.dtype}"
            )
        if sample_weight is None:
            weights = ops.ones(ops.shape(indices), dtype="float32")
        else:
            weights = ops.convert_to_tensor(sample_weight, dtype="float32")
            weights = ops.broadcast_to(weights, ops.shape(indices))
        weights = ops.reshape(weights, (-1,))
        indices = ops.reshape(ops.cast(indices, "int32"), (-1,))
        valid = ops.logical_and(indices >= 0, indices < self.num_embeddings)
        # segment_sum with a static segment count is jit-friendly on every
        # backend (bincount is not traceable on JAX).
        weights = ops.where(valid, weights, 0.0)
        indices = ops.where(valid, indices, 0)
        batch_counts = ops.segment_sum(
            weights, indices, num_segments=self.num_embeddings
        )
        self.counts.assign_add(ops.cast(batch_counts, self.counts.dtype))

    def histogram(self):
        """Return the accumulated counts, a `(num_embeddings,)` tensor."""
        return ops.copy(self.counts.value)

    def usage(self):
        """Return the fraction of codes used at least once, in `[0, 1]`."""
        used = ops.cast(self.counts > 0, "float32")
        return ops.cast(ops.mean(used), self.dtype)

    def perplexity(self):
        """Return `exp(entropy)` of the normalised histogram (0 if empty)."""
        counts = self.counts.value
        total = ops.sum(counts)
        p = counts / ops.maximum(total, 1e-12)
        # 0 * log(0) := 0: take the log of 1 where p == 0.
        entropy = -ops.sum(p * ops.log(ops.where(p > 0, p, 1.0)))
        value = ops.where(total > 0, ops.exp(entropy), 0.0)
        return ops.cast(value, self.dtype)

    def result(self):
        return {"usage": self.usage(), "perplexity": self.perplexity()}

    def reset_state(self):
        self.counts.assign(ops.zeros((self.num_embeddings,), "float32"))

    def get_config(self):
        config = super().get_config()
        config.update({"num_embeddings": self.num_embeddings})
        return config

"""Codebook usage and perplexity over a whole evaluation set."""

import keras
from keras import ops

from keras_lgvq.utils import code_layout
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

    **Sub-codebooks** (VQCT): with `sub_codebooks` (a tokenizer's
    `sub_codebooks`, e.g. `[("adjective", 46, 2), ("noun", 52, 1)]`),
    `update_state` takes indices with the trailing index axis of that
    layout, `(..., S)`, each slot's id local to its sub-codebook (see
    `keras_lgvq.utils.code_layout`). Every slot is counted once per
    position under its flattened id (nouns offset by the adjective count),
    so `histogram()` is over all `K = sum(sizes)` codes and `usage()` /
    `perplexity()` describe them together, as the VQCT quantizer's own
    statistics do; `histogram(name)`, `usage(name)` and `perplexity(name)`
    describe one sub-codebook, and `result()` adds `"<name>_usage"` and
    `"<name>_perplexity"`. A slot id outside its own sub-codebook is
    ignored.

    Args:
        num_embeddings: int. Codebook size K. With `sub_codebooks` it may
            be None (it is the sum of their sizes) or must equal it.
        sub_codebooks: None, or the `(name, size, slots)` entries of a
            tokenizer with a trailing index axis.
        name: string. Metric name.
        dtype: string. Dtype of the result.

    Examples:

    ```python
    usage = keras_lgvq.metrics.CodebookUsage(num_embeddings=1024)
    for batch in dataset:
        usage.update_state(tokenizer.encode(batch))
    usage.result()  # {"usage": 0.41, "perplexity": 312.5}

    usage = keras_lgvq.metrics.CodebookUsage(
        sub_codebooks=vqct_backbone.sub_codebooks)
    usage.update_state(vqct_backbone.encode(images))  # (B, h, w, 3)
    usage.result()  # {..., "adjective_usage": ..., "noun_perplexity": ...}
    ```
    """

    def __init__(
        self,
        num_embeddings=None,
        sub_codebooks=None,
        name="codebook_usage",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.sub_codebooks = code_layout.normalize_sub_codebooks(
            sub_codebooks
        )
        if self.sub_codebooks is not None:
            total = code_layout.total_codes(self.sub_codebooks)
            if num_embeddings is not None and (
                check_int("num_embeddings", num_embeddings) != total
            ):
                raise ValueError(
                    f"`num_embeddings` ({num_embeddings}) must equal the "
                    f"sum of the sub-codebook sizes ({total}: "
                    + ", ".join(
                        f"{p.name} {p.size}" for p in self.sub_codebooks
                    )
                    + "), or be None."
                )
            num_embeddings = total
        elif num_embeddings is None:
            raise ValueError(
                "`num_embeddings` is required without `sub_codebooks` (the "
                "codebook size K)."
            )
        self.num_embeddings = check_int("num_embeddings", num_embeddings)
        self.counts = self.add_variable(
            shape=(self.num_embeddings,),
            initializer="zeros",
            dtype="float32",
            aggregation="sum",
            name="counts",
        )
        self._direction = "up"

    def update_state(self, indices, sample_weight=None):
        """Add code indices to the histogram.

        Args:
            indices: int tensor. Selected code ids: any shape for one
                codebook; `(..., S)` in the layout of `sub_codebooks`
                otherwise.
            sample_weight: optional tensor broadcastable to `indices`
                (with sub-codebooks also to `indices.shape[:-1]`, one
                weight per position). Weight of each index (e.g. 0 for
                padded positions).
        """
        indices = ops.convert_to_tensor(indices)
        if "int" not in str(indices.dtype):
            raise ValueError(
                "`indices` must be an integer tensor of code ids. "
                f"Received dtype: {indices.dtype}"
            )
        indices = ops.cast(indices, "int32")
        if sample_weight is None:
            weights = ops.ones(ops.shape(indices), dtype="float32")
        else:
            weights = ops.convert_to_tensor(sample_weight, dtype="float32")
            if self.sub_codebooks is not None and (
                len(weights.shape) == len(indices.shape) - 1
            ):
                weights = ops.expand_dims(weights, -1)
            weights = ops.broadcast_to(weights, ops.shape(indices))
        if self.sub_codebooks is None:
            valid = ops.logical_and(
                indices >= 0, indices < self.num_embeddings
            )
        else:
            depth = code_layout.index_depth(self.sub_codebooks)
            if len(indices.shape) < 1 or indices.shape[-1] != depth:
                raise ValueError(
                    f"`indices` must have a trailing index axis of {depth} "
                    "slots ("
                    + ", ".join(
                        f"{p.slots} {p.name}" for p in self.sub_codebooks
                    )
                    + f"), as the tokenizer's `encode` returns. Received "
                    f"shape {tuple(indices.shape)}."
                )
            sizes = ops.convert_to_tensor(
                code_layout.slot_sizes(self.sub_codebooks), "int32"
            )
            offsets = ops.convert_to_tensor(
                code_layout.slot_offsets(self.sub_codebooks), "int32"
            )
            valid = ops.logical_and(indices >= 0, indices < sizes)
            # Flattened ids: each slot offset past the sub-codebooks before.
            indices = indices + offsets
        weights = ops.reshape(weights, (-1,))
        valid = ops.reshape(valid, (-1,))
        indices = ops.reshape(indices, (-1,))
        # segment_sum with a static segment count is jit-friendly on every
        # backend (bincount is not traceable on JAX).
        weights = ops.where(valid, weights, 0.0)
        indices = ops.where(valid, indices, 0)
        batch_counts = ops.segment_sum(
            weights, indices, num_segments=self.num_embeddings
        )
        self.counts.assign_add(ops.cast(batch_counts, self.counts.dtype))

    def _counts(self, part):
        counts = self.counts.value
        if part is None:
            return counts
        ranges = (
            code_layout.part_ranges(self.sub_codebooks)
            if self.sub_codebooks is not None
            else {}
        )
        if part not in ranges:
            raise ValueError(
                f"Unknown sub-codebook {part!r}; this metric has "
                f"{sorted(ranges) or 'none (one codebook)'}."
            )
        start, stop = ranges[part]
        return counts[start:stop]

    def histogram(self, part=None):
        """Return the accumulated counts: `(num_embeddings,)` (flattened
        ids), or the `(size,)` counts of the sub-codebook `part`."""
        return ops.copy(self._counts(part))

    def usage(self, part=None):
        """Return the fraction of codes (of `part`) used at least once."""
        used = ops.cast(self._counts(part) > 0, "float32")
        return ops.cast(ops.mean(used), self.dtype)

    def perplexity(self, part=None):
        """Return `exp(entropy)` of the normalised histogram (of `part`; 0
        if empty)."""
        counts = self._counts(part)
        total = ops.sum(counts)
        p = counts / ops.maximum(total, 1e-12)
        # 0 * log(0) := 0: take the log of 1 where p == 0.
        entropy = -ops.sum(p * ops.log(ops.where(p > 0, p, 1.0)))
        value = ops.where(total > 0, ops.exp(entropy), 0.0)
        return ops.cast(value, self.dtype)

    def result(self):
        result = {"usage": self.usage(), "perplexity": self.perplexity()}
        for part in self.sub_codebooks or ():
            result[f"{part.name}_usage"] = self.usage(part.name)
            result[f"{part.name}_perplexity"] = self.perplexity(part.name)
        return result

    def reset_state(self):
        self.counts.assign(ops.zeros((self.num_embeddings,), "float32"))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_embeddings": self.num_embeddings,
                "sub_codebooks": None
                if self.sub_codebooks is None
                else [list(p) for p in self.sub_codebooks],
            }
        )
        return config

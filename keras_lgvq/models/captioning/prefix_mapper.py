"""Prefix mappers: a tokenizer's code vectors -> k vectors in an LM's
embedding space (ClipCap, arXiv 2111.09734, with codes in place of CLIP).
"""

import keras
import keras_hub
from keras import ops


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer; received {value!r}."
        )
    return value


class _PrefixMapperBase(keras.layers.Layer):
    """Shared checks: inputs `(B, num_positions, code_dim)`."""

    def __init__(self, num_positions, code_dim, prefix_length, lm_dim,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_positions = _check_positive_int("num_positions", num_positions)
        self.code_dim = _check_positive_int("code_dim", code_dim)
        self.prefix_length = _check_positive_int("prefix_length", prefix_length)
        self.lm_dim = _check_positive_int("lm_dim", lm_dim)

    def _check_inputs(self, code_vectors):
        shape = tuple(code_vectors.shape)
        want = (self.num_positions, self.code_dim)
        if len(shape) != 3 or tuple(shape[1:]) != want:
            raise ValueError(
                "`code_vectors` must have shape (batch, num_positions, "
                f"code_dim) = (batch, {want[0]}, {want[1]}) (the tokenizer's "
                f"flattened code grid); received {shape}."
            )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.prefix_length, self.lm_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_positions": self.num_positions,
                "code_dim": self.code_dim,
                "prefix_length": self.prefix_length,
                "lm_dim": self.lm_dim,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_lgvq")
class MLPPrefixMapper(_PrefixMapperBase):
    """ClipCap's MLP mapper (Linear - Tanh - Linear) over a code grid.

    ClipCap maps one CLIP vector; a tokenizer gives a grid of code vectors,
    so the grid is flattened (row-major, which keeps where each code is:
    spatial relations matter for captions and questions) before the first
    linear layer. The output is reshaped to `prefix_length` vectors of the
    LM's width.

    `projection_dim` first projects every code vector to a small width
    with one linear map shared by all positions (no bias, no activation),
    then flattens: `num_positions * projection_dim` inputs instead of
    `num_positions * code_dim`. With a 16 x 16 grid of 64-d codes the plain
    flatten has 16,384 inputs, and Adam at 1e-3 moves each hidden
    pre-activation by O(1) per step, so the tanh units saturate into a
    per-image hash that does not generalise
    (benchmarks/results/stage2_measurements.md); the shared projection
    has `code_dim * projection_dim` weights that see every position.

    Args:
        num_positions: int. Code positions per image (`h * w`).
        code_dim: int. Width of one code vector (the codebook's D).
        prefix_length: int. Prefix vectors k (ClipCap: 10).
        lm_dim: int. The LM's embedding width.
        hidden_dim: int. Width of the hidden layer; defaults to
            `(prefix_length * lm_dim) // 2` as in ClipCap.
        projection_dim: int or None. Width of the shared per-position
            projection applied before flattening; None (default, ClipCap)
            flattens the code vectors as they are.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Examples:

    ```python
    mapper = MLPPrefixMapper(num_positions=256, code_dim=64,
                             prefix_length=10, lm_dim=576)
    prefix = mapper(keras.random.normal((2, 256, 64)))   # (2, 10, 576)
    # Project each 64-d code to 8 values first: 2,048 flattened inputs.
    mapper = MLPPrefixMapper(256, 64, 10, 576, projection_dim=8)
    ```
    """

    def __init__(self, num_positions, code_dim, prefix_length, lm_dim,
                 hidden_dim=None, projection_dim=None, **kwargs):
        super().__init__(num_positions, code_dim, prefix_length, lm_dim,
                         **kwargs)
        if hidden_dim is None:
            hidden_dim = max(1, (prefix_length * lm_dim) // 2)
        self.hidden_dim = _check_positive_int("hidden_dim", hidden_dim)
        self.projection_dim = (
            None if projection_dim is None
            else _check_positive_int("projection_dim", projection_dim)
        )
        self.projection = None
        if self.projection_dim is not None:
            self.projection = keras.layers.Dense(
                self.projection_dim, use_bias=False,
                dtype=self.dtype_policy, name="projection",
            )
        self.hidden = keras.layers.Dense(
            self.hidden_dim, activation="tanh", dtype=self.dtype_policy,
            name="hidden",
        )
        self.output_projection = keras.layers.Dense(
            prefix_length * lm_dim, dtype=self.dtype_policy, name="output",
        )

    @property
    def _flat_dim(self):
        return self.num_positions * (self.projection_dim or self.code_dim)

    def build(self, input_shape=None):
        if self.projection is not None:
            self.projection.build((None, self.num_positions, self.code_dim))
        self.hidden.build((None, self._flat_dim))
        self.output_projection.build((None, self.hidden_dim))
        self.built = True

    def call(self, code_vectors):
        self._check_inputs(code_vectors)
        x = code_vectors
        if self.projection is not None:
            x = self.projection(x)
        x = ops.reshape(x, (-1, self._flat_dim))
        x = self.output_projection(self.hidden(x))
        return ops.reshape(x, (-1, self.prefix_length, self.lm_dim))

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim,
                       "projection_dim": self.projection_dim})
        return config


@keras.saving.register_keras_serializable(package="keras_lgvq")
class TransformerPrefixMapper(_PrefixMapperBase):
    """ClipCap's transformer mapper over a code grid.

    Each code vector is projected to `hidden_dim` and given a learned
    position embedding; `prefix_length` learned constant vectors are
    appended, the sequence goes through `num_layers` transformer encoder
    blocks (keras-hub's `TransformerEncoder`, bidirectional), and the
    outputs at the constants' positions are projected to the LM's width.

    Args:
        num_positions: int. Code positions per image (`h * w`).
        code_dim: int. Width of one code vector.
        prefix_length: int. Prefix vectors k (ClipCap: 40 for this mapper).
        lm_dim: int. The LM's embedding width.
        hidden_dim: int. Transformer width (default 256).
        num_layers: int. Encoder blocks (ClipCap: 8; default 2).
        num_heads: int. Attention heads (must divide `hidden_dim`).
        intermediate_dim: int or None. Feed-forward width; `4 * hidden_dim`
            if None.
        dropout: float. Dropout in the blocks.
        **kwargs: `keras.layers.Layer` arguments.

    Examples:

    ```python
    mapper = TransformerPrefixMapper(num_positions=256, code_dim=64,
                                     prefix_length=10, lm_dim=576,
                                     hidden_dim=128, num_layers=2,
                                     num_heads=4)
    prefix = mapper(keras.random.normal((2, 256, 64)))   # (2, 10, 576)
    ```
    """

    def __init__(self, num_positions, code_dim, prefix_length, lm_dim,
                 hidden_dim=256, num_layers=2, num_heads=4,
                 intermediate_dim=None, dropout=0.0, **kwargs):
        super().__init__(num_positions, code_dim, prefix_length, lm_dim,
                         **kwargs)
        self.hidden_dim = _check_positive_int("hidden_dim", hidden_dim)
        self.num_layers = _check_positive_int("num_layers", num_layers)
        self.num_heads = _check_positive_int("num_heads", num_heads)
        if hidden_dim % num_heads:
            raise ValueError(
                f"`num_heads`={num_heads} must divide `hidden_dim`="
                f"{hidden_dim}."
            )
        if intermediate_dim is None:
            intermediate_dim = 4 * hidden_dim
        self.intermediate_dim = _check_positive_int(
            "intermediate_dim", intermediate_dim
        )
        self.dropout = float(dropout)
        policy = self.dtype_policy
        self.input_projection = keras.layers.Dense(
            hidden_dim, dtype=policy, name="input_projection"
        )
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            num_positions + prefix_length, dtype=policy,
            name="position_embedding",
        )
        self.blocks = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim=self.intermediate_dim,
                num_heads=num_heads,
                dropout=self.dropout,
                activation="gelu",
                normalize_first=True,
                dtype=policy,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=policy, name="output_norm"
        )
        self.output_projection = keras.layers.Dense(
            lm_dim, dtype=policy, name="output_projection"
        )

    def build(self, input_shape=None):
        length = self.num_positions + self.prefix_length
        self.prefix_constants = self.add_weight(
            shape=(self.prefix_length, self.hidden_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="prefix_constants",
        )
        self.input_projection.build((None, None, self.code_dim))
        self.position_embedding.build((None, length, self.hidden_dim))
        for block in self.blocks:
            block.build((None, length, self.hidden_dim))
        self.output_norm.build((None, None, self.hidden_dim))
        self.output_projection.build((None, None, self.hidden_dim))
        self.built = True

    def call(self, code_vectors, training=None):
        self._check_inputs(code_vectors)
        x = self.input_projection(code_vectors)
        constants = ops.broadcast_to(
            ops.cast(self.prefix_constants, x.dtype)[None],
            (ops.shape(x)[0], self.prefix_length, self.hidden_dim),
        )
        x = ops.concatenate([x, constants], axis=1)
        x = x + self.position_embedding(x)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.output_norm(x[:, self.num_positions:, :])
        return self.output_projection(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_lgvq")
class PooledPrefixMapper(_PrefixMapperBase):
    """Per-position MLP over the code grid, average-pooled to k regions.

    Every code vector goes through the same two-layer MLP (Linear - GELU -
    Linear, `code_dim -> hidden_dim -> lm_dim`); the square code grid is
    then cut into `prefix_length = s * s` equal square regions (row-major)
    and each prefix vector is the mean of its region's outputs. Prefix
    vector `i` thus describes one region of the image, which keeps where
    things are at a coarse scale, and the mapper has
    `O(code_dim * hidden_dim + hidden_dim * lm_dim)` weights, none tied to
    one grid position (the flattening MLP has one weight per position and
    input; measured to overfit at small training sets,
    benchmarks/results/stage2_measurements.md).

    Args:
        num_positions: int. Code positions per image (`h * w`, a square).
        code_dim: int. Width of one code vector.
        prefix_length: int. Prefix vectors k: a square `s * s` whose side
            `s` divides the grid side.
        lm_dim: int. The LM's embedding width.
        hidden_dim: int. Width of the per-position hidden layer (default
            256).
        **kwargs: `keras.layers.Layer` arguments.

    Examples:

    ```python
    mapper = PooledPrefixMapper(num_positions=256, code_dim=64,
                                prefix_length=16, lm_dim=576)
    prefix = mapper(keras.random.normal((2, 256, 64)))   # (2, 16, 576)
    ```
    """

    def __init__(self, num_positions, code_dim, prefix_length, lm_dim,
                 hidden_dim=256, **kwargs):
        super().__init__(num_positions, code_dim, prefix_length, lm_dim,
                         **kwargs)
        self.hidden_dim = _check_positive_int("hidden_dim", hidden_dim)
        side = int(round(num_positions ** 0.5))
        regions = int(round(prefix_length ** 0.5))
        if side * side != num_positions:
            raise ValueError(
                f"PooledPrefixMapper needs a square code grid; "
                f"`num_positions`={num_positions} is not a square."
            )
        if regions * regions != prefix_length or side % regions:
            raise ValueError(
                f"`prefix_length`={prefix_length} must be a square s * s "
                f"whose side s divides the grid side {side} (e.g. 1, 4, 16,"
                f" 64 for a 16 x 16 grid)."
            )
        self.grid_side = side
        self.region_side = regions
        policy = self.dtype_policy
        self.hidden = keras.layers.Dense(
            self.hidden_dim, activation="gelu", dtype=policy, name="hidden"
        )
        self.output_projection = keras.layers.Dense(
            lm_dim, dtype=policy, name="output"
        )

    def build(self, input_shape=None):
        self.hidden.build((None, None, self.code_dim))
        self.output_projection.build((None, None, self.hidden_dim))
        self.built = True

    def call(self, code_vectors):
        self._check_inputs(code_vectors)
        x = self.output_projection(self.hidden(code_vectors))
        s, r = self.grid_side, self.region_side
        cell = s // r
        # (B, r, cell, r, cell, D): rows then columns of each region.
        x = ops.reshape(x, (-1, r, cell, r, cell, self.lm_dim))
        x = ops.mean(x, axis=(2, 4))
        return ops.reshape(x, (-1, self.prefix_length, self.lm_dim))

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dim": self.hidden_dim})
        return config


MAPPER_TYPES = {
    "mlp": MLPPrefixMapper,
    "transformer": TransformerPrefixMapper,
    "pooled": PooledPrefixMapper,
}


def build_prefix_mapper(kind, **kwargs):
    """A prefix mapper by kind name.

    Args:
        kind: `"mlp"`, `"transformer"` or `"pooled"`.
        **kwargs: the mapper's arguments.

    Examples:

    ```python
    mapper = build_prefix_mapper("mlp", num_positions=256, code_dim=64,
                                 prefix_length=10, lm_dim=576)
    ```
    """
    if kind not in MAPPER_TYPES:
        raise ValueError(
            f"`mapper` kind must be one of {sorted(MAPPER_TYPES)}; received "
            f"{kind!r}."
        )
    return MAPPER_TYPES[kind](**kwargs)

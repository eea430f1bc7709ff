"""Building blocks of the taming-transformers VQGAN autoencoder (NHWC).

This module holds the four blocks shared by `VQGANEncoder` and
`VQGANDecoder` (`ResnetBlock`, `AttentionBlock`, `Downsample`, `Upsample`),
the taming GroupNorm helper `group_norm`, the PyTorch-default conv
initialisation (`TorchBiasUniform`, `torch_conv2d`), and the logic the
encoder and decoder share: config validation (`check_vqgan_config`), level
and middle stacks (`vqgan_level_layers`, `vqgan_mid_layers`), shape-only
building (`build_in_order`), input checks (`check_vqgan_input`), output
shapes (`resized_shape`) and the config dict (`vqgan_config`).

Sublayer names follow the taming `state_dict` names (`norm1`, `conv1`,
`nin_shortcut`, `q`, `proj_out`, ...), so a checkpoint converter only has to
map `.` to `/` and transpose kernels.
"""

import keras
from keras import ops

# Re-exported: defined in keras_lgvq.utils, shared with the guidance layers.
from keras_lgvq.utils.initializers import TorchBiasUniform  # noqa: F401
from keras_lgvq.utils.validation import check_int

# Taming's `Normalize`: GroupNorm(32 groups, eps 1e-6, affine).
GROUPS = 32
EPSILON = 1e-6


def torch_conv_kernel_initializer(seed=None):
    """PyTorch's default conv/linear kernel initialiser in Keras terms.

    `kaiming_uniform_(a=sqrt(5))` is `U(-b, b)` with `b = 1/sqrt(fan_in)`,
    which is `VarianceScaling(scale=1/3, mode="fan_in", "uniform")`.

    Args:
        seed: int, `keras.random.SeedGenerator` or `None`. Random seed.

    Examples:

    ```python
    init = keras_lgvq.layers.vqgan.vqgan_blocks.torch_conv_kernel_initializer()
    ```
    """
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed
    )


def torch_conv2d(
    filters,
    kernel_size,
    in_channels,
    strides=1,
    padding="same",
    name=None,
    dtype=None,
):
    """A `keras.layers.Conv2D` initialised like PyTorch's `nn.Conv2d`.

    Args:
        filters: int. Output channels.
        kernel_size: int. Square kernel size.
        in_channels: int. Input channels (needed for the bias bound).
        strides: int. Stride.
        padding: string. `"same"` or `"valid"`.
        name: string. Layer name.
        dtype: string or `keras.DTypePolicy`. Layer dtype policy.

    Examples:

    ```python
    conv = keras_lgvq.layers.vqgan.vqgan_blocks.torch_conv2d(64, 3, in_channels=32)
    ```
    """
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        kernel_initializer=torch_conv_kernel_initializer(),
        bias_initializer=TorchBiasUniform(
            fan_in=kernel_size * kernel_size * in_channels
        ),
        name=name,
        dtype=dtype,
    )


def group_norm(name=None, dtype=None, groups=GROUPS, epsilon=EPSILON):
    """Taming's `Normalize`: GroupNorm with 32 groups and eps 1e-6.

    Keras' `GroupNormalization` already computes its statistics in float32
    under mixed precision, so it is safe with `"mixed_bfloat16"`.

    Args:
        name: string. Layer name.
        dtype: string or `keras.DTypePolicy`. Layer dtype policy.
        groups: int. Number of groups.
        epsilon: float. Variance epsilon.

    Examples:

    ```python
    norm = keras_lgvq.layers.vqgan.vqgan_blocks.group_norm(name="norm1")
    ```
    """
    return keras.layers.GroupNormalization(
        groups=groups, axis=-1, epsilon=epsilon, name=name, dtype=dtype
    )


def swish(x):
    """`x * sigmoid(x)`, taming's `nonlinearity`."""
    return x * ops.sigmoid(x)


def _check_rank_4(input_shape, name="inputs", last_axis="channels"):
    """Validate that a shape is 4-D and return it as a tuple."""
    input_shape = tuple(input_shape)
    if len(input_shape) != 4:
        raise ValueError(
            f"`{name}` must be 4-D (batch, height, width, {last_axis}). "
            f"Received shape: {input_shape}"
        )
    return input_shape


def _check_feature_map(input_shape, groups=None):
    """Validate a (B, H, W, C) shape and return C."""
    input_shape = _check_rank_4(input_shape)
    channels = input_shape[-1]
    if channels is None:
        raise ValueError(
            "The channel dimension of `inputs` must be known. "
            f"Received shape: {input_shape}"
        )
    if groups is not None and channels % groups:
        raise ValueError(
            f"`inputs` channels ({channels}) must be divisible by "
            f"`groups`={groups} for GroupNorm. Received shape: {input_shape}"
        )
    return channels


def _check_groups(groups, epsilon):
    check_int("groups", groups)
    if not epsilon > 0:
        raise ValueError(f"`epsilon` must be > 0. Received: {epsilon}")


def resized_shape(input_shape, resize, channels):
    """`(B, H, W, C) -> (B, resize(H), resize(W), channels)`.

    Unknown (`None`) heights and widths stay unknown.

    Args:
        input_shape: tuple. A 4-D shape.
        resize: callable. Maps a known side length to the new one.
        channels: int or `None`. Channels of the result.

    Returns:
        The resized shape as a tuple.

    Examples:

    ```python
    keras_lgvq.layers.vqgan.vqgan_blocks.resized_shape(
        (None, 8, None, 3), lambda n: n * 2, 16
    )  # (None, 16, None, 16)
    ```
    """
    b, h, w, _ = input_shape
    return (
        b,
        None if h is None else resize(h),
        None if w is None else resize(w),
        channels,
    )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class ResnetBlock(keras.layers.Layer):
    """Taming VQGAN residual block without time embedding.

    Computes `shortcut(x) + conv2(dropout(swish(GN(conv1(swish(GN(x)))))))`
    with 3x3 convs. The shortcut is the identity when the channel count is
    unchanged and a 1x1 conv (`nin_shortcut`) otherwise. Input channels are
    inferred at build time.

    Args:
        filters: int or `None`. Output channels; `None` keeps the input
            channel count.
        dropout: float. Dropout rate in `[0, 1)` before the second conv.
        groups: int. GroupNorm groups (taming: 32).
        epsilon: float. GroupNorm epsilon (taming: 1e-6).
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Examples:

    ```python
    block = keras_lgvq.layers.vqgan.vqgan_blocks.ResnetBlock(filters=64)
    y = block(np.zeros((2, 16, 16, 32), "float32"))  # (2, 16, 16, 64)
    ```
    """

    def __init__(
        self,
        filters=None,
        dropout=0.0,
        groups=GROUPS,
        epsilon=EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_int("filters", filters, allow_none=True)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: {dropout}"
            )
        _check_groups(groups, epsilon)
        self.filters = filters
        self.dropout = dropout
        self.groups = groups
        self.epsilon = epsilon

    def build(self, input_shape):
        in_channels = _check_feature_map(input_shape, self.groups)
        out_channels = self.filters or in_channels
        if out_channels % self.groups:
            raise ValueError(
                f"`filters` ({out_channels}) must be divisible by "
                f"`groups`={self.groups}."
            )
        self._out_channels = out_channels
        # Sublayers need the input channel count (bias init bound), so they
        # are created here rather than in `__init__`.
        dtype = self.dtype_policy
        norm_kwargs = dict(
            dtype=dtype, groups=self.groups, epsilon=self.epsilon
        )
        self.norm1 = group_norm(name="norm1", **norm_kwargs)
        self.conv1 = torch_conv2d(
            out_channels, 3, in_channels, name="conv1", dtype=dtype
        )
        self.norm2 = group_norm(name="norm2", **norm_kwargs)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, name="dropout", dtype=dtype
        )
        self.conv2 = torch_conv2d(
            out_channels, 3, out_channels, name="conv2", dtype=dtype
        )
        if in_channels != out_channels:
            self.nin_shortcut = torch_conv2d(
                out_channels, 1, in_channels, name="nin_shortcut", dtype=dtype
            )
        else:
            self.nin_shortcut = None

        input_shape = tuple(input_shape)
        out_shape = input_shape[:-1] + (out_channels,)
        self.norm1.build(input_shape)
        self.conv1.build(input_shape)
        self.norm2.build(out_shape)
        self.conv2.build(out_shape)
        if self.nin_shortcut is not None:
            self.nin_shortcut.build(input_shape)

    def call(self, inputs, training=None):
        h = self.conv1(swish(self.norm1(inputs)))
        h = swish(self.norm2(h))
        h = self.dropout_layer(h, training=training)
        h = self.conv2(h)
        shortcut = inputs
        if self.nin_shortcut is not None:
            shortcut = self.nin_shortcut(inputs)
        return shortcut + h

    def compute_output_shape(self, input_shape):
        in_channels = _check_feature_map(input_shape)
        return tuple(input_shape)[:-1] + (self.filters or in_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "dropout": self.dropout,
                "groups": self.groups,
                "epsilon": self.epsilon,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_lgvq")
class AttentionBlock(keras.layers.Layer):
    """Taming VQGAN single-head spatial self-attention with a residual.

    `h = GN(x)`; `q, k, v` are 1x1 convs of `h`; every one of the `H*W`
    positions attends to all positions with weights
    `softmax(q k^T * C^-0.5)`; the result goes through the 1x1 conv
    `proj_out` and is added to `x`. The softmax runs in float32 so the block
    is stable under mixed precision.

    Args:
        groups: int. GroupNorm groups (taming: 32).
        epsilon: float. GroupNorm epsilon (taming: 1e-6).
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Examples:

    ```python
    attn = keras_lgvq.layers.vqgan.vqgan_blocks.AttentionBlock()
    y = attn(np.zeros((2, 8, 8, 64), "float32"))  # (2, 8, 8, 64)
    ```
    """

    def __init__(self, groups=GROUPS, epsilon=EPSILON, **kwargs):
        super().__init__(**kwargs)
        _check_groups(groups, epsilon)
        self.groups = groups
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = _check_feature_map(input_shape, self.groups)
        dtype = self.dtype_policy
        self.norm = group_norm(
            name="norm", dtype=dtype, groups=self.groups, epsilon=self.epsilon
        )
        self.q = torch_conv2d(channels, 1, channels, name="q", dtype=dtype)
        self.k = torch_conv2d(channels, 1, channels, name="k", dtype=dtype)
        self.v = torch_conv2d(channels, 1, channels, name="v", dtype=dtype)
        self.proj_out = torch_conv2d(
            channels, 1, channels, name="proj_out", dtype=dtype
        )
        input_shape = tuple(input_shape)
        for layer in (self.norm, self.q, self.k, self.v, self.proj_out):
            layer.build(input_shape)
        self._scale = float(channels) ** -0.5

    def call(self, inputs):
        h = self.norm(inputs)
        q, k, v = self.q(h), self.k(h), self.v(h)
        shape = ops.shape(inputs)
        channels = inputs.shape[-1]
        flat = (shape[0], -1, channels)
        q = ops.reshape(q, flat)
        k = ops.reshape(k, flat)
        v = ops.reshape(v, flat)
        # (B, HW_query, HW_key); softmax over keys.
        logits = ops.einsum("bic,bjc->bij", q, k)
        logits = ops.cast(logits, "float32") * self._scale
        weights = ops.cast(ops.softmax(logits, axis=-1), v.dtype)
        h = ops.einsum("bij,bjc->bic", weights, v)
        h = ops.reshape(h, shape)
        return inputs + self.proj_out(h)

    def compute_output_shape(self, input_shape):
        _check_feature_map(input_shape)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"groups": self.groups, "epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="keras_lgvq")
class Downsample(keras.layers.Layer):
    """Taming VQGAN downsampling: asymmetric zero pad, then strided conv.

    Pads one zero row at the bottom and one zero column at the right, then
    applies a 3x3 conv with stride 2 and no further padding, keeping the
    channel count. `(B, H, W, C) -> (B, H // 2, W // 2, C)`.

    Args:
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Examples:

    ```python
    down = keras_lgvq.layers.vqgan.vqgan_blocks.Downsample()
    y = down(np.zeros((2, 16, 16, 32), "float32"))  # (2, 8, 8, 32)
    ```
    """

    def build(self, input_shape):
        channels = _check_feature_map(input_shape)
        self.conv = torch_conv2d(
            channels,
            3,
            channels,
            strides=2,
            padding="valid",
            name="conv",
            dtype=self.dtype_policy,
        )
        padded = resized_shape(tuple(input_shape), lambda n: n + 1, channels)
        self.conv.build(padded)

    def call(self, inputs):
        # torch.nn.functional.pad(x, (0, 1, 0, 1)): right and bottom only.
        x = ops.pad(inputs, [[0, 0], [0, 1], [0, 1], [0, 0]])
        return self.conv(x)

    def compute_output_shape(self, input_shape):
        channels = _check_feature_map(input_shape)
        # (n + 1 - 3) // 2 + 1 == n // 2 for the padded valid conv.
        return resized_shape(tuple(input_shape), lambda n: n // 2, channels)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class Upsample(keras.layers.Layer):
    """Taming VQGAN upsampling: nearest-neighbour x2, then a 3x3 conv.

    The conv uses zero "same" padding and keeps the channel count.
    `(B, H, W, C) -> (B, 2H, 2W, C)`.

    Args:
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Examples:

    ```python
    up = keras_lgvq.layers.vqgan.vqgan_blocks.Upsample()
    y = up(np.zeros((2, 8, 8, 32), "float32"))  # (2, 16, 16, 32)
    ```
    """

    def build(self, input_shape):
        channels = _check_feature_map(input_shape)
        self.conv = torch_conv2d(
            channels, 3, channels, name="conv", dtype=self.dtype_policy
        )
        self.conv.build(self.compute_output_shape(input_shape))

    def call(self, inputs):
        x = ops.repeat(inputs, 2, axis=1)
        x = ops.repeat(x, 2, axis=2)
        return self.conv(x)

    def compute_output_shape(self, input_shape):
        channels = _check_feature_map(input_shape)
        return resized_shape(tuple(input_shape), lambda n: n * 2, channels)


def check_vqgan_config(
    resolution,
    ch,
    ch_mult,
    num_res_blocks,
    attn_resolutions,
    z_channels,
    dropout,
    image_channels,
    image_channels_name,
    check_ch=True,
):
    """Validate the shared VQGAN encoder/decoder arguments.

    Raises a `ValueError` naming the offending argument. An entry of
    `attn_resolutions` that no level reaches is an error (taming silently
    ignores it, which hides typos such as 32 instead of 16).

    Args:
        resolution: int. Nominal image side length.
        ch: int. Base channel count.
        ch_mult: tuple of ints. Per-level channel multipliers.
        num_res_blocks: int. Residual blocks per level.
        attn_resolutions: tuple of ints. Resolutions with attention.
        z_channels: int. Latent channels.
        dropout: float. Dropout rate.
        image_channels: int. `in_channels` or `out_channels`.
        image_channels_name: string. Name used in error messages.
        check_ch: bool. Whether `ch` itself is GroupNorm-normalised.

    Returns:
        A tuple `(ch_mult, attn_resolutions, factor)` with the sequences as
        tuples of ints and `factor = 2 ** (len(ch_mult) - 1)`.

    Examples:

    ```python
    ch_mult, attn, f = keras_lgvq.layers.vqgan.vqgan_blocks.check_vqgan_config(
        256, 128, (1, 1, 2, 2, 4), 2, (16,), 256, 0.0, 3, "in_channels"
    )
    ```
    """

    check_int("resolution", resolution)
    check_int("ch", ch)
    check_int("num_res_blocks", num_res_blocks)
    check_int("z_channels", z_channels)
    check_int(image_channels_name, image_channels)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: {dropout}")
    try:
        ch_mult = tuple(ch_mult)
        attn_resolutions = tuple(attn_resolutions)
    except TypeError as e:
        raise ValueError(
            "`ch_mult` and `attn_resolutions` must be sequences of ints."
        ) from e
    if not ch_mult:
        raise ValueError("`ch_mult` must not be empty. Received: ()")
    for m in ch_mult:
        check_int("ch_mult", m)
    if check_ch and ch % GROUPS:
        raise ValueError(
            f"`ch` ({ch}) must be divisible by {GROUPS} (GroupNorm groups)."
        )
    for i, m in enumerate(ch_mult):
        if (ch * m) % GROUPS:
            raise ValueError(
                f"`ch_mult`: level {i} has ch * ch_mult[{i}] = {ch * m} "
                f"channels, which is not divisible by {GROUPS} "
                "(GroupNorm groups)."
            )
    factor = 2 ** (len(ch_mult) - 1)
    if resolution % factor:
        raise ValueError(
            f"`resolution` ({resolution}) must be divisible by the "
            f"downsampling factor 2 ** (len(ch_mult) - 1) = {factor}."
        )
    reached = [resolution // 2**i for i in range(len(ch_mult))]
    for r in attn_resolutions:
        if r not in reached:
            raise ValueError(
                f"`attn_resolutions` contains {r}, which no level reaches; "
                f"the level resolutions are {reached}."
            )
    return (
        tuple(int(m) for m in ch_mult),
        tuple(int(r) for r in attn_resolutions),
        factor,
    )


def vqgan_mid_layers(channels, dropout, dtype=None):
    """The middle stack `ResnetBlock -> AttentionBlock -> ResnetBlock`.

    Shared by the encoder (after the last level) and the decoder (before the
    first level), with taming's names `mid_block_1`, `mid_attn_1`,
    `mid_block_2`.

    Args:
        channels: int. Channels of the stack (`ch * ch_mult[-1]`).
        dropout: float. Dropout rate inside the residual blocks.
        dtype: string or `keras.DTypePolicy`. Dtype policy of the blocks.

    Returns:
        A list of the three layers in call order.

    Examples:

    ```python
    mid = keras_lgvq.layers.vqgan.vqgan_blocks.vqgan_mid_layers(64, dropout=0.0)
    ```
    """
    return [
        ResnetBlock(channels, dropout=dropout, name="mid_block_1", dtype=dtype),
        AttentionBlock(name="mid_attn_1", dtype=dtype),
        ResnetBlock(channels, dropout=dropout, name="mid_block_2", dtype=dtype),
    ]


def vqgan_level_layers(
    direction,
    ch,
    ch_mult,
    blocks_per_level,
    resolution,
    attn_resolutions,
    dropout,
    dtype=None,
):
    """The per-level blocks of the VQGAN encoder (`"down"`) or decoder (`"up"`).

    Level `i` has `blocks_per_level` `ResnetBlock`s with `ch * ch_mult[i]`
    channels, each followed by an `AttentionBlock` when the level's nominal
    resolution `resolution // 2 ** i` is in `attn_resolutions`. The encoder
    runs the levels `0 .. L-1` with a `Downsample` after every level but the
    last; the decoder runs them `L-1 .. 0` with an `Upsample` after every
    level but level 0. Names are `{direction}_{i}_block_{j}`,
    `{direction}_{i}_attn_{j}` and `{direction}_{i}_{direction}sample`.

    Args:
        direction: string. `"down"` (encoder) or `"up"` (decoder).
        ch: int. Base channel count.
        ch_mult: tuple of ints. Per-level channel multipliers.
        blocks_per_level: int. Residual blocks per level.
        resolution: int. Nominal image side length (level 0).
        attn_resolutions: tuple of ints. Level resolutions with attention.
        dropout: float. Dropout rate inside the residual blocks.
        dtype: string or `keras.DTypePolicy`. Dtype policy of the blocks.

    Returns:
        A list of layers in call order.

    Examples:

    ```python
    layers = keras_lgvq.layers.vqgan.vqgan_blocks.vqgan_level_layers(
        "down", 32, (1, 2), 1, 32, (16,), 0.0
    )
    ```
    """
    num_levels = len(ch_mult)
    if direction == "down":
        levels, resample = range(num_levels), Downsample
    elif direction == "up":
        levels, resample = reversed(range(num_levels)), Upsample
    else:
        raise ValueError(
            f'`direction` must be "down" or "up". Received: {direction}'
        )
    layers = []
    for step, i in enumerate(levels):
        attend = resolution // 2**i in attn_resolutions
        for j in range(blocks_per_level):
            layers.append(
                ResnetBlock(
                    ch * ch_mult[i],
                    dropout=dropout,
                    name=f"{direction}_{i}_block_{j}",
                    dtype=dtype,
                )
            )
            if attend:
                attn_name = f"{direction}_{i}_attn_{j}"
                layers.append(AttentionBlock(name=attn_name, dtype=dtype))
        if step != num_levels - 1:
            layers.append(
                resample(name=f"{direction}_{i}_{direction}sample", dtype=dtype)
            )
    return layers


def build_in_order(layers, input_shape):
    """Build `layers` one after another from shapes alone.

    Creates every weight without running a forward pass (cheap parameter
    counting); each layer is built on the previous one's output shape.

    Args:
        layers: list of `keras.layers.Layer`. Layers in call order.
        input_shape: tuple. Input shape of the first layer.

    Returns:
        The output shape of the last layer.

    Examples:

    ```python
    shape = keras_lgvq.layers.vqgan.vqgan_blocks.build_in_order(
        [Downsample(), Upsample()], (None, 8, 8, 32)
    )  # (None, 8, 8, 32)
    ```
    """
    shape = input_shape
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def check_vqgan_input(
    input_shape,
    name,
    last_axis,
    channels_name,
    channels,
    factor=None,
    dtype=None,
):
    """Validate the `(B, H, W, C)` input of a VQGAN encoder or decoder.

    Args:
        input_shape: tuple. The input shape.
        name: string. Argument name used in error messages (`"inputs"`).
        last_axis: string. Name of the last axis in the 4-D message.
        channels_name: string. Config argument that fixes the channels.
        channels: int. Expected size of the last axis.
        factor: int or `None`. When given, known heights and widths must be
            divisible by it.
        dtype: string or `None`. When given, it must be a float dtype.

    Returns:
        `input_shape` as a tuple.

    Examples:

    ```python
    keras_lgvq.layers.vqgan.vqgan_blocks.check_vqgan_input(
        (2, 32, 32, 3), "inputs", "channels", "in_channels", 3, factor=2
    )
    ```
    """
    if dtype is not None and not keras.backend.is_float_dtype(dtype):
        raise ValueError(
            f"`{name}` must be a float tensor. Received dtype: {dtype}"
        )
    input_shape = _check_rank_4(input_shape, name, last_axis)
    if input_shape[-1] != channels:
        raise ValueError(
            f"`{name}` must have `{channels_name}`={channels} channels "
            f"(last axis). Received shape: {input_shape}"
        )
    if factor is not None:
        for size in input_shape[1:3]:
            if size is not None and size % factor:
                raise ValueError(
                    f"`{name}` height and width must be divisible by the "
                    f"downsampling factor {factor}. "
                    f"Received shape: {input_shape}"
                )
    return input_shape


def vqgan_config(layer, image_channels_name):
    """The constructor arguments of a VQGAN encoder or decoder, in order.

    Args:
        layer: `VQGANEncoder` or `VQGANDecoder`.
        image_channels_name: string. `"in_channels"` or `"out_channels"`.

    Returns:
        A dict for `get_config`.

    Examples:

    ```python
    config = keras_lgvq.layers.vqgan.vqgan_blocks.vqgan_config(enc, "in_channels")
    ```
    """
    names = (
        "resolution",
        image_channels_name,
        "ch",
        "ch_mult",
        "num_res_blocks",
        "attn_resolutions",
        "z_channels",
        "dropout",
    )
    return {name: getattr(layer, name) for name in names}

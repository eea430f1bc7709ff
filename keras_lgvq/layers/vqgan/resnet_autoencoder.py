"""LQAE's convolutional encoder / decoder option, from the VQGAN blocks.

The official LQAE code has, besides its ViT, a `ResNetEncoder` /
`ResNetDecoder` pair (`lqae/models/base_resnet.py`, used when
`vit_encoder_decoder=False`; lqae-spec §1.1): MaskGIT-style stacks of
residual blocks with GroupNorm + swish, no attention, average-pool
downsampling and a 1x1 conv to the code width. These layers build that
structure from the package's taming blocks (`ResnetBlock`, `Upsample`,
`group_norm`, `torch_conv2d`).
"""

import keras

from keras_lgvq.layers.vqgan.vqgan_blocks import GROUPS
from keras_lgvq.layers.vqgan.vqgan_blocks import ResnetBlock
from keras_lgvq.layers.vqgan.vqgan_blocks import Upsample
from keras_lgvq.layers.vqgan.vqgan_blocks import build_in_order
from keras_lgvq.layers.vqgan.vqgan_blocks import group_norm
from keras_lgvq.layers.vqgan.vqgan_blocks import swish
from keras_lgvq.layers.vqgan.vqgan_blocks import torch_conv2d
from keras_lgvq.layers.vqgan.vqgan_blocks import torch_conv_kernel_initializer
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number


def _check_resnet_config(image_size, filters, channel_multipliers, dropout):
    """Validates the shared arguments; returns (multipliers, factor)."""
    check_int("image_size", image_size)
    check_int("filters", filters)
    try:
        multipliers = tuple(int(m) for m in channel_multipliers)
    except (TypeError, ValueError):
        multipliers = ()
    if not multipliers or any(m < 1 for m in multipliers):
        raise ValueError(
            "`channel_multipliers` must be a non-empty sequence of positive "
            "ints, one per level (official: (1, 1, 2, 2, 4)). Received: "
            f"{channel_multipliers!r}"
        )
    for m in multipliers:
        if (filters * m) % GROUPS:
            raise ValueError(
                f"`filters` x each channel multiplier must be a multiple of "
                f"{GROUPS} (the GroupNorm groups); filters={filters} with "
                f"multiplier {m} gives {filters * m}. Use e.g. filters=32 or "
                "128."
            )
    factor = 2 ** (len(multipliers) - 1)
    if image_size % factor:
        raise ValueError(
            f"`image_size`={image_size} must be a multiple of the "
            f"downsampling factor {factor} (2 ** (len(channel_multipliers) "
            f"- 1) with channel_multipliers={multipliers})."
        )
    check_number("dropout", dropout, 0.0, 1.0, high_open=True)
    return multipliers, factor


def _check_images(shape, image_size, name):
    shape = tuple(shape)
    if len(shape) != 4 or tuple(shape[1:3]) != (image_size, image_size):
        raise ValueError(
            f"`{name}` must have shape (batch, {image_size}, {image_size}, "
            f"channels). Received shape: {shape}"
        )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class ResNetEncoder(keras.layers.Layer):
    """LQAE's ResNet image encoder (official `ResNetEncoder`), NHWC.

    `conv_in` (3x3, bias-free, `-> filters`), then per level `i`
    `num_res_blocks` `ResnetBlock`s with `filters * channel_multipliers[i]`
    channels and, except after the last level, a 2x2 average pool; then
    `num_res_blocks` more blocks at the last width, GroupNorm -> swish ->
    `conv_out` (1x1, with bias, `-> hidden_dim`). There is no attention.
    At 256 px with the official `(1, 1, 2, 2, 4)` the grid is 16 x 16 of
    width 768 (RoBERTa's), as the ViT-B/16's.

    Deviations from the official block (the package's taming
    `ResnetBlock` is reused): its 3x3 convs have biases (official: none),
    and its 1x1 shortcut is applied to the block's input; the official
    `ResBlock` applies it to the residual branch's output when the width
    changes, so its "shortcut" there carries no input signal.

    Args:
        image_size: int. Input height = width; a multiple of
            `2 ** (len(channel_multipliers) - 1)`.
        hidden_dim: int. Output (code) width (official: 768).
        filters: int. Base width (official: 128); `filters * m` must be a
            multiple of 32 for every multiplier `m`.
        channel_multipliers: sequence of ints. Width multiplier per level
            (official: `(1, 1, 2, 2, 4)`).
        num_res_blocks: int. Residual blocks per level (official: 2).
        dropout: float in [0, 1). Dropout inside the residual blocks.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        images: float tensor `(B, image_size, image_size, C)`.
        training: bool.
        return_layer_outputs: bool. Also return a list of layer outputs for
            probes: the output grid alone (the convolutional stages have
            other grid sizes; the official encoder returns none).

    Returns:
        `(B, g, g, hidden_dim)` with `g = image_size // 2 **
        (len(channel_multipliers) - 1)`, or `(features, [features])`.

    Examples:

    ```python
    encoder = keras_lgvq.layers.vqgan.ResNetEncoder(
        image_size=32, hidden_dim=32, filters=32,
        channel_multipliers=(1, 2), num_res_blocks=1)
    features = encoder(np.zeros((2, 32, 32, 3), "float32"))  # (2, 16, 16, 32)
    ```
    """

    def __init__(
        self,
        image_size,
        hidden_dim,
        filters=128,
        channel_multipliers=(1, 1, 2, 2, 4),
        num_res_blocks=2,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        multipliers, factor = _check_resnet_config(
            image_size, filters, channel_multipliers, dropout
        )
        self.image_size = image_size
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.filters = filters
        self.channel_multipliers = multipliers
        self.num_res_blocks = check_int("num_res_blocks", num_res_blocks)
        self.dropout = float(dropout)
        self.downsample_factor = factor
        policy = self.dtype_policy

        layers = [
            keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=False,
                kernel_initializer=torch_conv_kernel_initializer(),
                dtype=policy,
                name="conv_in",
            )
        ]
        for i, m in enumerate(multipliers):
            for j in range(num_res_blocks):
                layers.append(
                    ResnetBlock(
                        filters * m,
                        dropout=dropout,
                        dtype=policy,
                        name=f"level_{i}_block_{j}",
                    )
                )
            if i != len(multipliers) - 1:
                # TF-style 2x2 average pool (the grid sides are even here,
                # so "same" and "valid" agree).
                layers.append(
                    keras.layers.AveragePooling2D(
                        2, dtype=policy, name=f"level_{i}_downsample"
                    )
                )
        for j in range(num_res_blocks):
            layers.append(
                ResnetBlock(
                    filters * multipliers[-1],
                    dropout=dropout,
                    dtype=policy,
                    name=f"final_block_{j}",
                )
            )
        # Assigned first so that the weight order follows the call order.
        self.body = layers
        self.norm_out = group_norm(name="norm_out", dtype=policy)
        self.conv_out = torch_conv2d(
            hidden_dim,
            1,
            filters * multipliers[-1],
            name="conv_out",
            dtype=policy,
        )

    @property
    def grid_size(self):
        return self.image_size // self.downsample_factor

    def build(self, input_shape):
        _check_images(input_shape, self.image_size, "images")
        shape = build_in_order(self.body, tuple(input_shape))
        self.norm_out.build(shape)
        self.conv_out.build(shape)

    def call(self, images, training=False, return_layer_outputs=False):
        _check_images(images.shape, self.image_size, "images")
        x = images
        for layer in self.body:
            if isinstance(layer, ResnetBlock):
                x = layer(x, training=training)
            else:
                x = layer(x)
        x = self.conv_out(swish(self.norm_out(x)))
        if return_layer_outputs:
            return x, [x]
        return x

    def compute_output_shape(self, input_shape):
        g = self.grid_size
        return (input_shape[0], g, g, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "hidden_dim": self.hidden_dim,
                "filters": self.filters,
                "channel_multipliers": list(self.channel_multipliers),
                "num_res_blocks": self.num_res_blocks,
                "dropout": self.dropout,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_lgvq")
class ResNetDecoder(keras.layers.Layer):
    """LQAE's ResNet image decoder (official `ResNetDecoder`), NHWC.

    `conv_in` (3x3, `hidden_dim -> filters * channel_multipliers[-1]`),
    `num_res_blocks` `ResnetBlock`s, then for each level from the last to
    the first `num_res_blocks` blocks with `filters * channel_multipliers[i]`
    channels and, except at level 0, a nearest-neighbour x2 upsample with a
    3x3 conv (`Upsample`); then GroupNorm -> swish -> `conv_out` (3x3,
    `-> out_channels`). No output activation. The block deviations are those
    of `ResNetEncoder`.

    Args:
        image_size: int. Output height = width.
        hidden_dim: int. Width of the input grid.
        filters: int. Base width (official: 128).
        channel_multipliers: sequence of ints (official: `(1, 1, 2, 2, 4)`).
        num_res_blocks: int. Residual blocks per level (official: 2).
        out_channels: int. Image channels. Defaults to `3`.
        dropout: float in [0, 1).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(B, g, g, hidden_dim)`.
        training: bool.

    Returns:
        Float tensor `(B, image_size, image_size, out_channels)`.

    Examples:

    ```python
    decoder = keras_lgvq.layers.vqgan.ResNetDecoder(
        image_size=32, hidden_dim=32, filters=32,
        channel_multipliers=(1, 2), num_res_blocks=1)
    images = decoder(np.zeros((2, 16, 16, 32), "float32"))  # (2, 32, 32, 3)
    ```
    """

    def __init__(
        self,
        image_size,
        hidden_dim,
        filters=128,
        channel_multipliers=(1, 1, 2, 2, 4),
        num_res_blocks=2,
        out_channels=3,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        multipliers, factor = _check_resnet_config(
            image_size, filters, channel_multipliers, dropout
        )
        self.image_size = image_size
        self.hidden_dim = check_int("hidden_dim", hidden_dim)
        self.filters = filters
        self.channel_multipliers = multipliers
        self.num_res_blocks = check_int("num_res_blocks", num_res_blocks)
        self.out_channels = check_int("out_channels", out_channels)
        self.dropout = float(dropout)
        self.downsample_factor = factor
        policy = self.dtype_policy
        top = filters * multipliers[-1]

        layers = [
            torch_conv2d(top, 3, hidden_dim, name="conv_in", dtype=policy)
        ]
        for j in range(num_res_blocks):
            layers.append(
                ResnetBlock(
                    top, dropout=dropout, dtype=policy, name=f"mid_block_{j}"
                )
            )
        for i in reversed(range(len(multipliers))):
            for j in range(num_res_blocks):
                layers.append(
                    ResnetBlock(
                        filters * multipliers[i],
                        dropout=dropout,
                        dtype=policy,
                        name=f"level_{i}_block_{j}",
                    )
                )
            if i > 0:
                layers.append(
                    Upsample(dtype=policy, name=f"level_{i}_upsample")
                )
        self.body = layers
        self.norm_out = group_norm(name="norm_out", dtype=policy)
        self.conv_out = torch_conv2d(
            out_channels,
            3,
            filters * multipliers[0],
            name="conv_out",
            dtype=policy,
        )

    @property
    def grid_size(self):
        return self.image_size // self.downsample_factor

    def _check(self, shape):
        shape = tuple(shape)
        g = self.grid_size
        if len(shape) != 4 or tuple(shape[1:]) != (g, g, self.hidden_dim):
            raise ValueError(
                f"`inputs` must be a (batch, {g}, {g}, {self.hidden_dim}) "
                f"grid for image_size={self.image_size} and "
                f"channel_multipliers={self.channel_multipliers}. Received "
                f"shape: {shape}"
            )

    def build(self, input_shape):
        self._check(input_shape)
        shape = build_in_order(self.body, tuple(input_shape))
        self.norm_out.build(shape)
        self.conv_out.build(shape)

    def call(self, inputs, training=False):
        self._check(inputs.shape)
        x = inputs
        for layer in self.body:
            if isinstance(layer, ResnetBlock):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return self.conv_out(swish(self.norm_out(x)))

    def compute_output_shape(self, input_shape):
        size = self.image_size
        return (input_shape[0], size, size, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "hidden_dim": self.hidden_dim,
                "filters": self.filters,
                "channel_multipliers": list(self.channel_multipliers),
                "num_res_blocks": self.num_res_blocks,
                "out_channels": self.out_channels,
                "dropout": self.dropout,
            }
        )
        return config

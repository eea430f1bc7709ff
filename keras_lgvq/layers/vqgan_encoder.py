"""The taming-transformers VQGAN encoder as a channels-last Keras layer."""

import keras

from keras_lgvq.layers.vqgan_blocks import AttentionBlock
from keras_lgvq.layers.vqgan_blocks import Downsample
from keras_lgvq.layers.vqgan_blocks import ResnetBlock
from keras_lgvq.layers.vqgan_blocks import check_vqgan_config
from keras_lgvq.layers.vqgan_blocks import group_norm
from keras_lgvq.layers.vqgan_blocks import swish
from keras_lgvq.layers.vqgan_blocks import torch_conv2d


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQGANEncoder(keras.layers.Layer):
    """The taming-transformers VQGAN encoder (Esser et al., 2021), NHWC.

    `conv_in` (3x3, `in_channels -> ch`), then for each level `i`
    `num_res_blocks` `ResnetBlock`s with `ch * ch_mult[i]` channels (each
    followed by an `AttentionBlock` when the level's resolution is in
    `attn_resolutions`) and a `Downsample` except after the last level, then
    a middle `ResnetBlock -> AttentionBlock -> ResnetBlock`, and finally
    GroupNorm -> swish -> `conv_out` (3x3, `-> z_channels`).

    The input is `(B, H, W, in_channels)` with `H` and `W` divisible by
    `f = 2 ** (len(ch_mult) - 1)`; the output is
    `(B, H / f, W / f, z_channels)`. `resolution` only decides where the
    attention blocks go (as in taming): level `i` has resolution
    `resolution // 2 ** i`, so inputs of another size run the same layers.
    Every entry of `attn_resolutions` must be one of those level
    resolutions, otherwise a `ValueError` is raised (taming ignores it).

    Sublayer names mirror taming's `state_dict` keys with `.` replaced by
    `_`: `conv_in`, `down_{i}_block_{j}`, `down_{i}_attn_{j}`,
    `down_{i}_downsample`, `mid_block_1`, `mid_attn_1`, `mid_block_2`,
    `norm_out`, `conv_out` (block and level indices are 0-based as in
    taming). Convs use PyTorch's default initialisation.

    Args:
        resolution: int. Nominal input side length (taming: 256).
        in_channels: int. Input image channels (3).
        ch: int. Base channel count (taming: 128); multiple of 32.
        ch_mult: tuple of ints. Channel multiplier per level (taming:
            `(1, 1, 2, 2, 4)`); `ch * m` must be a multiple of 32.
        num_res_blocks: int. Residual blocks per level (taming: 2).
        attn_resolutions: tuple of ints. Level resolutions that get
            attention after each residual block (taming: `(16,)`).
        z_channels: int. Output (latent) channels (taming: 256).
        dropout: float. Dropout rate inside the residual blocks.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Examples:

    ```python
    encoder = keras_lgvq.layers.vqgan_encoder.VQGANEncoder(
        resolution=32, ch=32, ch_mult=(1, 2), num_res_blocks=1,
        attn_resolutions=(16,), z_channels=8,
    )
    z = encoder(np.zeros((2, 32, 32, 3), "float32"))  # (2, 16, 16, 8)
    ```
    """

    def __init__(
        self,
        resolution=256,
        in_channels=3,
        ch=128,
        ch_mult=(1, 1, 2, 2, 4),
        num_res_blocks=2,
        attn_resolutions=(16,),
        z_channels=256,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        ch_mult, attn_resolutions, factor = check_vqgan_config(
            resolution,
            ch,
            ch_mult,
            num_res_blocks,
            attn_resolutions,
            z_channels,
            dropout,
            in_channels,
            "in_channels",
        )

        # === Config ===
        self.resolution = resolution
        self.in_channels = in_channels
        self.ch = ch
        self.ch_mult = ch_mult
        self.num_res_blocks = num_res_blocks
        self.attn_resolutions = attn_resolutions
        self.z_channels = z_channels
        self.dropout = dropout
        self.downsample_factor = factor

        # === Layers ===
        dtype = self.dtype_policy
        conv_in = torch_conv2d(ch, 3, in_channels, name="conv_in", dtype=dtype)
        layers = [conv_in]
        curr_res = resolution
        num_levels = len(ch_mult)
        for i, mult in enumerate(ch_mult):
            for j in range(num_res_blocks):
                layers.append(
                    ResnetBlock(
                        ch * mult,
                        dropout=dropout,
                        name=f"down_{i}_block_{j}",
                        dtype=dtype,
                    )
                )
                if curr_res in attn_resolutions:
                    layers.append(
                        AttentionBlock(name=f"down_{i}_attn_{j}", dtype=dtype)
                    )
            if i != num_levels - 1:
                layers.append(
                    Downsample(name=f"down_{i}_downsample", dtype=dtype)
                )
                curr_res //= 2
        block_in = ch * ch_mult[-1]
        layers += [
            ResnetBlock(
                block_in, dropout=dropout, name="mid_block_1", dtype=dtype
            ),
            AttentionBlock(name="mid_attn_1", dtype=dtype),
            ResnetBlock(
                block_in, dropout=dropout, name="mid_block_2", dtype=dtype
            ),
        ]
        # Everything before `norm_out`, in call order. Assigned first so
        # that the weight order follows the call order.
        self.body = layers
        self.conv_in = conv_in
        self.norm_out = group_norm(name="norm_out", dtype=dtype)
        self.conv_out = torch_conv2d(
            z_channels, 3, block_in, name="conv_out", dtype=dtype
        )

    def _check_input_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                "`inputs` must be 4-D (batch, height, width, channels). "
                f"Received shape: {input_shape}"
            )
        if input_shape[-1] != self.in_channels:
            raise ValueError(
                f"`inputs` must have `in_channels`={self.in_channels} "
                f"channels (last axis). Received shape: {input_shape}"
            )
        f = self.downsample_factor
        for size in input_shape[1:3]:
            if size is not None and size % f:
                raise ValueError(
                    f"`inputs` height and width must be divisible by the "
                    f"downsampling factor {f}. Received shape: {input_shape}"
                )
        return input_shape

    def build(self, input_shape):
        shape = self._check_input_shape(input_shape)
        # Build every sublayer from shapes alone so that weights exist
        # without running a forward pass (cheap parameter counting).
        for layer in self.body:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.norm_out.build(shape)
        self.conv_out.build(shape)

    def call(self, inputs, training=None):
        if not keras.backend.is_float_dtype(inputs.dtype):
            raise ValueError(
                "`inputs` must be a float tensor. "
                f"Received dtype: {inputs.dtype}"
            )
        # `build` checks only the first shape; later calls are checked here.
        self._check_input_shape(inputs.shape)
        x = inputs
        for layer in self.body:
            x = layer(x, training=training)
        x = self.norm_out(x)
        x = swish(x)
        return self.conv_out(x)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = self._check_input_shape(input_shape)
        f = self.downsample_factor
        return (
            b,
            None if h is None else h // f,
            None if w is None else w // f,
            self.z_channels,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "resolution": self.resolution,
                "in_channels": self.in_channels,
                "ch": self.ch,
                "ch_mult": self.ch_mult,
                "num_res_blocks": self.num_res_blocks,
                "attn_resolutions": self.attn_resolutions,
                "z_channels": self.z_channels,
                "dropout": self.dropout,
            }
        )
        return config

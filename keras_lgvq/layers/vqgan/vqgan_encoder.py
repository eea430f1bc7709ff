"""The taming-transformers VQGAN encoder as a channels-last Keras layer."""

import keras

from keras_lgvq.layers.vqgan.vqgan_blocks import build_in_order
from keras_lgvq.layers.vqgan.vqgan_blocks import check_vqgan_config
from keras_lgvq.layers.vqgan.vqgan_blocks import check_vqgan_input
from keras_lgvq.layers.vqgan.vqgan_blocks import group_norm
from keras_lgvq.layers.vqgan.vqgan_blocks import resized_shape
from keras_lgvq.layers.vqgan.vqgan_blocks import swish
from keras_lgvq.layers.vqgan.vqgan_blocks import torch_conv2d
from keras_lgvq.layers.vqgan.vqgan_blocks import vqgan_config
from keras_lgvq.layers.vqgan.vqgan_blocks import vqgan_level_layers
from keras_lgvq.layers.vqgan.vqgan_blocks import vqgan_mid_layers


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
    encoder = keras_lgvq.layers.vqgan.vqgan_encoder.VQGANEncoder(
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
        block_in = ch * ch_mult[-1]
        layers = (
            [conv_in]
            + vqgan_level_layers(
                "down",
                ch,
                ch_mult,
                num_res_blocks,
                resolution,
                attn_resolutions,
                dropout,
                dtype,
            )
            + vqgan_mid_layers(block_in, dropout, dtype)
        )
        # Everything before `norm_out`, in call order. Assigned first so
        # that the weight order follows the call order.
        self.body = layers
        self.conv_in = conv_in
        self.norm_out = group_norm(name="norm_out", dtype=dtype)
        self.conv_out = torch_conv2d(
            z_channels, 3, block_in, name="conv_out", dtype=dtype
        )

    def _check_input_shape(self, input_shape, dtype=None):
        return check_vqgan_input(
            input_shape,
            "inputs",
            "channels",
            "in_channels",
            self.in_channels,
            factor=self.downsample_factor,
            dtype=dtype,
        )

    def build(self, input_shape):
        shape = build_in_order(self.body, self._check_input_shape(input_shape))
        self.norm_out.build(shape)
        self.conv_out.build(shape)

    def call(self, inputs, training=None):
        # `build` checks only the first shape; later calls are checked here.
        self._check_input_shape(inputs.shape, inputs.dtype)
        x = inputs
        for layer in self.body:
            x = layer(x, training=training)
        x = self.norm_out(x)
        x = swish(x)
        return self.conv_out(x)

    def compute_output_shape(self, input_shape):
        shape = self._check_input_shape(input_shape)
        f = self.downsample_factor
        return resized_shape(shape, lambda n: n // f, self.z_channels)

    def get_config(self):
        config = super().get_config()
        config.update(vqgan_config(self, "in_channels"))
        return config

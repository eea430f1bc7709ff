"""The taming-transformers VQGAN decoder as a channels-last Keras layer."""

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
class VQGANDecoder(keras.layers.Layer):
    """The taming-transformers VQGAN decoder (Esser et al., 2021), NHWC.

    `conv_in` (3x3, `z_channels -> ch * ch_mult[-1]`), a middle
    `ResnetBlock -> AttentionBlock -> ResnetBlock`, then the levels in
    reverse order, each with `num_res_blocks + 1` `ResnetBlock`s of
    `ch * ch_mult[i]` channels (each followed by an `AttentionBlock` when the
    level's resolution is in `attn_resolutions`) and an `Upsample` except at
    level 0, and finally GroupNorm -> swish -> `conv_out` (3x3,
    `-> out_channels`).

    The input is a latent `(B, h, w, z_channels)`; the output is
    `(B, h * f, w * f, out_channels)` with `f = 2 ** (len(ch_mult) - 1)`.
    Level `i` has nominal resolution `resolution // 2 ** i`; that only
    decides where attention goes, as in taming. Every entry of
    `attn_resolutions` must be one of the level resolutions, otherwise a
    `ValueError` is raised.

    For the adaptive GAN weight (gradients w.r.t. the last layer) the final
    conv is exposed as `conv_out` (use `decoder.conv_out.kernel`), and
    `features(z)` returns the tensor fed to it, so that
    `decoder(z) == decoder.conv_out(decoder.features(z))`.

    Sublayer names mirror taming's `state_dict` keys with `.` replaced by
    `_`: `conv_in`, `mid_block_1`, `mid_attn_1`, `mid_block_2`,
    `up_{i}_block_{j}`, `up_{i}_attn_{j}`, `up_{i}_upsample`, `norm_out`,
    `conv_out` (0-based; `i` is the level index, so `up_0` is the
    full-resolution level that runs last). Convs use PyTorch's default
    initialisation.

    Args:
        resolution: int. Nominal output side length (taming: 256).
        out_channels: int. Output image channels (3).
        ch: int. Base channel count (taming: 128).
        ch_mult: tuple of ints. Channel multiplier per level (taming:
            `(1, 1, 2, 2, 4)`); `ch * m` must be a multiple of 32.
        num_res_blocks: int. The decoder uses `num_res_blocks + 1` residual
            blocks per level (taming: 2, i.e. 3 blocks).
        attn_resolutions: tuple of ints. Level resolutions that get
            attention after each residual block (taming: `(16,)`).
        z_channels: int. Input (latent) channels (taming: 256).
        dropout: float. Dropout rate inside the residual blocks.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Examples:

    ```python
    decoder = keras_lgvq.layers.vqgan.vqgan_decoder.VQGANDecoder(
        resolution=32, ch=32, ch_mult=(1, 2), num_res_blocks=1,
        attn_resolutions=(16,), z_channels=8,
    )
    z = np.zeros((2, 16, 16, 8), "float32")
    x = decoder(z)  # (2, 32, 32, 3)
    h = decoder.features(z)  # (2, 32, 32, 32), input of decoder.conv_out
    ```
    """

    def __init__(
        self,
        resolution=256,
        out_channels=3,
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
            out_channels,
            "out_channels",
            check_ch=False,
        )

        # === Config ===
        self.resolution = resolution
        self.out_channels = out_channels
        self.ch = ch
        self.ch_mult = ch_mult
        self.num_res_blocks = num_res_blocks
        self.attn_resolutions = attn_resolutions
        self.z_channels = z_channels
        self.dropout = dropout
        self.upsample_factor = factor

        # === Layers ===
        dtype = self.dtype_policy
        block_in = ch * ch_mult[-1]
        conv_in = torch_conv2d(
            block_in, 3, z_channels, name="conv_in", dtype=dtype
        )
        layers = (
            [conv_in]
            + vqgan_mid_layers(block_in, dropout, dtype)
            + vqgan_level_layers(
                "up",
                ch,
                ch_mult,
                num_res_blocks + 1,
                resolution,
                attn_resolutions,
                dropout,
                dtype,
            )
        )
        # Everything before `norm_out`, in call order. Assigned first so
        # that the weight order follows the call order.
        self.body = layers
        self.conv_in = conv_in
        self.norm_out = group_norm(name="norm_out", dtype=dtype)
        self.conv_out = torch_conv2d(
            out_channels, 3, ch * ch_mult[0], name="conv_out", dtype=dtype
        )

    def _check_input_shape(self, input_shape, dtype=None):
        return check_vqgan_input(
            input_shape,
            "z",
            "z_channels",
            "z_channels",
            self.z_channels,
            dtype=dtype,
        )

    def build(self, input_shape):
        shape = build_in_order(self.body, self._check_input_shape(input_shape))
        self.norm_out.build(shape)
        self.conv_out.build(shape)

    def features(self, z, training=False):
        """Decoder activations right before `conv_out`.

        Runs everything up to and including the final GroupNorm and swish.

        Args:
            z: tensor of shape `(B, h, w, z_channels)`.
            training: bool. Whether dropout is active.

        Returns:
            A tensor of shape `(B, h * f, w * f, ch * ch_mult[0])`.
        """
        if not self.built:
            self.build(tuple(z.shape))
        return self._features(z, training=training)

    def _features(self, z, training=None):
        # `build` checks only the first shape; later calls are checked here.
        self._check_input_shape(z.shape, z.dtype)
        x = z
        for layer in self.body:
            x = layer(x, training=training)
        return swish(self.norm_out(x))

    def call(self, z, training=None):
        return self.conv_out(self._features(z, training=training))

    def compute_output_shape(self, input_shape):
        shape = self._check_input_shape(input_shape)
        f = self.upsample_factor
        return resized_shape(shape, lambda n: n * f, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(vqgan_config(self, "out_channels"))
        return config

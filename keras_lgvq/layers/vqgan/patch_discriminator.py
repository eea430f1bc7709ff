import keras

from keras_lgvq.utils.validation import check_int


class _BatchNormalization(keras.layers.BatchNormalization):
    """Core BatchNormalization whose moving statistics average over replicas.

    Core Keras creates `moving_mean`/`moving_variance` with
    `aggregation="none"`, which lets MirroredStrategy replicas drift apart;
    `"mean"` keeps them in sync (keras-notes section 3/4).
    """

    def add_weight(self, *args, **kwargs):
        if kwargs.get("trainable") is False:
            kwargs.setdefault("aggregation", "mean")
        return super().add_weight(*args, **kwargs)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class PatchDiscriminator(keras.layers.Layer):
    """A PatchGAN discriminator that scores overlapping image patches.

    This is taming-transformers' `NLayerDiscriminator` (the pix2pix
    PatchGAN) used by VQGAN and LG-VQ, channels-last. It stacks 4x4
    convolutions with PyTorch-style padding of 1 pixel on each side:

    - conv stride 2 to `ndf` channels (with bias) and LeakyReLU(0.2);
    - for `n = 1 .. n_layers - 1`: conv stride 2 to
      `ndf * min(2**n, 8)` channels, BatchNorm, LeakyReLU(0.2);
    - conv stride 1 to `ndf * min(2**n_layers, 8)` channels, BatchNorm,
      LeakyReLU(0.2);
    - conv stride 1 to a single logit per patch (with bias).

    A 256x256 input gives a `(batch, 30, 30, 1)` logit map with the
    default `n_layers=3` (70x70 receptive field per logit).

    Initialisation follows taming's `weights_init`: conv kernels
    N(0, 0.02), BatchNorm gamma N(1, 0.02) and beta 0. Conv biases start
    at zero (taming keeps PyTorch's default uniform bias). BatchNorm uses
    epsilon 1e-5 and momentum 0.9 (PyTorch `momentum=0.1`); unlike
    PyTorch, Keras updates the moving variance with the biased batch
    variance. Calling with `training=True` normalises with batch statistics
    and updates the moving statistics, as a PyTorch module in train mode.

    Args:
        input_channels: int. Number of image channels expected on the last
            axis. Defaults to `3`.
        ndf: int. Channels of the first convolution. Defaults to `64`.
        n_layers: int. Number of stride-2 convolutions (at least 1).
            Defaults to `3`.
        use_batch_norm: bool. Whether the middle convolutions are followed
            by BatchNorm (and have no bias). With `False` they have a bias
            and no normalisation. Defaults to `True`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name` and `dtype`.

    Examples:

    ```python
    disc = keras_lgvq.layers.vqgan.patch_discriminator.PatchDiscriminator()
    images = np.random.uniform(-1, 1, (2, 256, 256, 3)).astype("float32")
    logits = disc(images, training=True)  # (2, 30, 30, 1)
    ```
    """

    def __init__(
        self,
        input_channels=3,
        ndf=64,
        n_layers=3,
        use_batch_norm=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (
            ("input_channels", input_channels),
            ("ndf", ndf),
            ("n_layers", n_layers),
        ):
            check_int(arg, value)
        if not isinstance(use_batch_norm, bool):
            raise ValueError(
                f"`use_batch_norm` must be a bool. Received: {use_batch_norm!r}"
            )

        # === Config ===
        self.input_channels = input_channels
        self.ndf = ndf
        self.n_layers = n_layers
        self.use_batch_norm = use_batch_norm

        # === Layers ===
        # (filters, stride, normalised) for every 4x4 convolution.
        specs = [(ndf, 2, False)]
        for n in range(1, n_layers):
            specs.append((ndf * min(2**n, 8), 2, use_batch_norm))
        specs.append((ndf * min(2**n_layers, 8), 1, use_batch_norm))
        specs.append((1, 1, False))

        self.sequence = []
        for i, (filters, stride, normalised) in enumerate(specs):
            last = i == len(specs) - 1
            # PyTorch padding=1 on each side, then a "valid" convolution.
            self.sequence.append(
                keras.layers.ZeroPadding2D(
                    1,
                    data_format="channels_last",
                    dtype=self.dtype_policy,
                    name=f"pad_{i}",
                )
            )
            self.sequence.append(
                keras.layers.Conv2D(
                    filters,
                    4,
                    strides=stride,
                    padding="valid",
                    data_format="channels_last",
                    # A following BatchNorm makes a bias redundant.
                    use_bias=not normalised,
                    kernel_initializer=keras.initializers.RandomNormal(
                        0.0, 0.02
                    ),
                    bias_initializer="zeros",
                    # The logits conv computes in the variables' dtype
                    # (float32 under a mixed policy), as Keras advises for
                    # a model's output layer. It also keeps torch off its
                    # CPU bf16 fallback, whose backward refuses this
                    # one-filter kernel where oneDNN lacks bf16 (AVX2-only
                    # CPUs: "slow_conv2d: grad_weight must be contiguous").
                    dtype=(
                        self.dtype_policy.variable_dtype
                        if last
                        else self.dtype_policy
                    ),
                    name=f"conv_{i}",
                )
            )
            if normalised:
                self.sequence.append(
                    _BatchNormalization(
                        axis=-1,
                        # Global-batch statistics under tf.distribute, so N
                        # replicas train like one (only TF supports it).
                        synchronized=keras.backend.backend() == "tensorflow",
                        momentum=0.9,
                        epsilon=1e-5,
                        gamma_initializer=keras.initializers.RandomNormal(
                            1.0, 0.02
                        ),
                        beta_initializer="zeros",
                        dtype=self.dtype_policy,
                        name=f"batch_norm_{i}",
                    )
                )
            if not last:
                self.sequence.append(
                    keras.layers.LeakyReLU(
                        negative_slope=0.2,
                        dtype=self.dtype_policy,
                        name=f"leaky_relu_{i}",
                    )
                )

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "`PatchDiscriminator` expects inputs of shape (batch, height, "
                f"width, {self.input_channels}). Received shape: {input_shape}"
            )
        if input_shape[-1] != self.input_channels:
            raise ValueError(
                f"Input has {input_shape[-1]} channels on the last axis but "
                f"`input_channels={self.input_channels}`. Inputs must be "
                "channels-last."
            )
        for size in input_shape[1:3]:
            if size is None:
                continue
            out = size
            for _ in range(self.n_layers):
                out = (out + 2 - 4) // 2 + 1
            out = out + 2 - 4 + 1  # two stride-1 convolutions: -1 each
            out = out + 2 - 4 + 1
            if out < 1:
                raise ValueError(
                    f"Input spatial size {size} is too small for "
                    f"`n_layers={self.n_layers}`: the logit map would be "
                    "empty."
                )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        shape = input_shape
        for layer in self.sequence:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.sequence:
            if isinstance(layer, keras.layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input_shape(input_shape)
        shape = input_shape
        for layer in self.sequence:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_channels": self.input_channels,
                "ndf": self.ndf,
                "n_layers": self.n_layers,
                "use_batch_norm": self.use_batch_norm,
            }
        )
        return config

"""The taming VQGAN tokenizer: encoder, quantizer and decoder."""

import keras
import keras_hub
from keras import ops

from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from keras_lgvq.layers.vqgan.vqgan_decoder import VQGANDecoder
from keras_lgvq.layers.vqgan.vqgan_encoder import VQGANEncoder
from keras_lgvq.utils.validation import check_code_range
from keras_lgvq.utils.validation import check_images


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQGANBackbone(keras_hub.models.Backbone):
    """A VQGAN image tokenizer (Esser et al., 2021), as in taming-transformers.

    Images in [-1, 1] go through the convolutional encoder, a 1x1
    `quant_conv`, the vector quantizer, a 1x1 `post_quant_conv` and the
    decoder. The functional model maps images to reconstructions;
    `encode` / `decode` move between images and code indices, and `encode_decode`
    returns every intermediate a training step needs.

    Any quantizer with the `VectorQuantizer` interface can be passed in
    (EMA, CVQ, a codebook built by a network as in VQCT, or a frozen
    language-model table as in LQAE); by default it is taming's quantizer
    with the legacy beta placement the paper presets use.

    Args:
        resolution: int. Training image size (height = width).
        in_channels: int. Image channels.
        ch: int. Base channel count.
        ch_mult: tuple of ints. Channel multiplier per resolution level; the
            downsampling factor is `2 ** (len(ch_mult) - 1)`.
        num_res_blocks: int. Residual blocks per encoder level (the decoder
            uses one more).
        attn_resolutions: tuple of ints. Feature resolutions with attention.
        z_channels: int. Encoder output channels.
        dropout: float. Dropout rate in the residual blocks.
        num_embeddings: int. Codebook size K (ignored when `quantizer` is
            given).
        embedding_dim: int. Code dimension D.
        beta: float. Commitment weight of the default quantizer (with a
            `quantizer` given, the config reports that quantizer's).
        legacy_beta: bool. taming's swapped beta placement for the default
            quantizer (the paper presets use it; with a `quantizer` given,
            the config reports that quantizer's).
        quantizer: optional `keras.layers.Layer` with the `VectorQuantizer`
            interface, replacing the default one.
        dtype: string or `keras.mixed_precision.DTypePolicy`.

    Examples:

    ```python
    backbone = keras_lgvq.models.VQGANBackbone(
        resolution=64, ch=32, ch_mult=(1, 2, 2), attn_resolutions=(16,),
        z_channels=32, num_embeddings=128, embedding_dim=32,
    )
    images = keras.random.uniform((2, 64, 64, 3), -1, 1)
    indices = backbone.encode(images)  # (2, 16, 16) int32
    reconstruction = backbone.decode(indices)  # (2, 64, 64, 3)
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
        num_embeddings=1024,
        embedding_dim=256,
        beta=0.25,
        legacy_beta=True,
        quantizer=None,
        dtype=None,
        **kwargs,
    ):
        ch_mult = tuple(ch_mult)
        attn_resolutions = tuple(attn_resolutions)
        if isinstance(quantizer, dict):
            quantizer = keras.layers.deserialize(quantizer)
        architecture = dict(
            resolution=resolution,
            ch=ch,
            ch_mult=ch_mult,
            num_res_blocks=num_res_blocks,
            attn_resolutions=attn_resolutions,
            z_channels=z_channels,
            dropout=dropout,
        )
        # === Layers ===
        self.encoder = VQGANEncoder(
            in_channels=in_channels, dtype=dtype, name="encoder", **architecture
        )
        self.quant_conv = keras.layers.Conv2D(
            embedding_dim, 1, dtype=dtype, name="quant_conv"
        )
        if quantizer is None:
            quantizer = VectorQuantizer(
                num_embeddings,
                embedding_dim,
                beta=beta,
                legacy_beta=legacy_beta,
                dtype=dtype,
                name="quantizer",
            )
        self.quantizer = quantizer
        self.post_quant_conv = keras.layers.Conv2D(
            z_channels, 1, dtype=dtype, name="post_quant_conv"
        )
        self.decoder = VQGANDecoder(
            out_channels=in_channels, dtype=dtype, name="decoder", **architecture
        )

        # === Functional Model ===
        images = keras.Input(
            shape=(resolution, resolution, in_channels), name="images"
        )
        z = self.quant_conv(self.encoder(images))
        quantized = self.quantizer(z)["quantized"]
        reconstruction = self.decoder(self.post_quant_conv(quantized))
        super().__init__(
            inputs=images, outputs=reconstruction, dtype=dtype, **kwargs
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
        self.num_embeddings = quantizer.num_embeddings
        self.embedding_dim = embedding_dim
        # With a quantizer passed in, the config reports that quantizer's
        # own beta placement (a CVQ preset's config must not read
        # `legacy_beta: true` from the default it replaced).
        self.beta = getattr(quantizer, "beta", beta)
        self.legacy_beta = getattr(quantizer, "legacy_beta", legacy_beta)

    @property
    def downsample_factor(self):
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def grid_size(self):
        """Side of the code grid at `resolution`."""
        return self.resolution // self.downsample_factor

    @property
    def index_shape(self):
        """Shape of one image's code indices, `(grid, grid)`; tokenizers with
        a trailing index axis (VQCT) add it here."""
        return (self.grid_size, self.grid_size)

    @property
    def sub_codebooks(self):
        """None: one codebook, one id per position. Tokenizers with a
        trailing index axis (VQCT) describe its slots here, see
        `keras_lgvq.utils.code_layout`."""
        return None

    @property
    def quantizer_log_names(self):
        """Extra scalar outputs of the quantizer a trainer logs (VQCT: each
        sub-codebook's loss, perplexity and usage); none here."""
        return ()

    @property
    def ready_to_run(self):
        """Whether the tokenizer can run now. Always True here; a VQCT
        tokenizer being deserialized waits for its prior, which arrives
        with the weights."""
        return True

    def encode_decode(self, images, training=False):
        """Runs the tokenizer and returns every intermediate.

        Returns a dict with `reconstruction`, `quantized` (the
        straight-through code grid, the tensor language guidance attaches
        to), `indices`, `decoder_features` (the decoder's last activation,
        before `decoder.conv_out`), and the quantizer's `loss`,
        `codebook_loss`, `commitment_loss`, `perplexity` and `usage`.

        Images must be `resolution` x `resolution` (a ValueError otherwise,
        when the size is known statically): another size would give a
        code grid the guidance is not built for.
        """
        check_images(images, self.in_channels, "images", self.resolution)
        z = self.quant_conv(self.encoder(images, training=training))
        outputs = dict(self.quantizer(z, training=training))
        h = self.post_quant_conv(outputs["quantized"])
        features = self.decoder.features(h, training=training)
        outputs["decoder_features"] = features
        outputs["reconstruction"] = self.decoder.conv_out(features)
        return outputs

    def encode(self, images):
        """Maps images in [-1, 1] to code indices `(B, h, w)` int32."""
        check_images(images, self.in_channels, "images", self.resolution)
        z = self.quant_conv(self.encoder(images))
        return self.quantizer(z)["indices"]

    def decode(self, indices):
        """Maps code indices `(B, h, w)` to images in about [-1, 1]."""
        indices = ops.convert_to_tensor(indices)
        if len(indices.shape) != 3:
            raise ValueError(
                "`indices` must be a (batch, height, width) integer grid; "
                f"got shape {tuple(indices.shape)}."
            )
        check_code_range(indices, self.num_embeddings, "indices")
        codes = self.quantizer.indices_to_codes(indices)
        return self.decoder(self.post_quant_conv(codes))

    # === Presets ===

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds the tokenizer of a built-in preset or a preset directory.

        Names resolve as for every model of the package
        (`keras_lgvq.models.presets.resolve_preset`): a directory (written
        by `save_to_preset` of this backbone or of a `VQGAN` / `LGVQ`) is
        read with keras-hub's loader, weights included; a built-in name
        builds the preset's architecture and quantizer, untrained unless the
        preset ships trained weights in the package (`scenes_lgvq_trained`,
        `scenes_vqgan_trained`), which `load_weights=True` loads.

        Args:
            preset: string. A built-in preset name or a local directory.
            load_weights: bool. Load a directory's weights, or the
                weights a built-in preset ships.
            **kwargs: backbone or quantizer fields that override the
                preset's (e.g. `resolution=128`); the preset's other
                settings, including its quantizer options, are kept.

        Examples:

        ```python
        backbone = keras_lgvq.models.VQGANBackbone.from_preset("cub")
        backbone.count_params()
        backbone = keras_lgvq.models.VQGANBackbone.from_preset("./trained")
        ```
        """
        from keras_lgvq.models import presets

        kind, value = presets.resolve_preset(preset, cls.__name__)
        if kind == "directory":
            return super().from_preset(
                value, load_weights=load_weights, **kwargs
            )
        # The preset names its tokenizer class (VQCT presets build a
        # VQCTBackbone), so `VQGANBackbone.from_preset` builds any of them.
        target = preset_backbone_class(value)
        if not issubclass(target, cls):
            raise ValueError(
                f"This preset builds a {target.__name__}, which is not a "
                f"{cls.__name__}; use {target.__name__}.from_preset."
            )
        backbone = target._from_spec(value, **kwargs)
        if load_weights:
            # Presets with trained weights in the package (no-op otherwise).
            from keras_lgvq.models.vqgan.vqgan_presets import load_shipped_weights

            load_shipped_weights(backbone, value)
        return backbone

    @classmethod
    def preset_override_names(cls, spec):
        """The keyword overrides `_from_spec` takes for this preset spec:
        its backbone and quantizer fields."""
        return set(spec["backbone"]) | set(spec.get("quantizer") or {})

    @classmethod
    def _from_spec(cls, spec, **overrides):
        """A backbone from a preset spec, with field overrides."""
        backbone_args = dict(spec["backbone"])
        quantizer_args = dict(spec.get("quantizer") or {})
        valid = set(backbone_args) | set(quantizer_args) | {"in_channels"}
        unknown = sorted(set(overrides) - valid - {"dtype", "name"})
        if unknown:
            raise ValueError(
                f"Unknown preset override(s) {unknown} for {cls.__name__}. "
                f"Valid backbone / quantizer fields: {sorted(valid)}."
            )
        for key, value in overrides.items():
            if key in quantizer_args:
                quantizer_args[key] = value
            if key in backbone_args or key not in quantizer_args:
                backbone_args[key] = value
        if spec.get("quantizer"):
            backbone_args["quantizer"] = VectorQuantizer(
                backbone_args["num_embeddings"],
                backbone_args["embedding_dim"],
                dtype=backbone_args.get("dtype"),
                name="quantizer",
                **quantizer_args,
            )
        return cls(**backbone_args)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "resolution": self.resolution,
                "in_channels": self.in_channels,
                "ch": self.ch,
                "ch_mult": list(self.ch_mult),
                "num_res_blocks": self.num_res_blocks,
                "attn_resolutions": list(self.attn_resolutions),
                "z_channels": self.z_channels,
                "dropout": self.dropout,
                "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim,
                "beta": self.beta,
                "legacy_beta": self.legacy_beta,
                "quantizer": keras.layers.serialize(self.quantizer),
            }
        )
        return config


def preset_backbone_class(spec):
    """The tokenizer class a preset spec builds.

    A spec names it in `backbone_class` (the registered keras_lgvq class
    name, e.g. `"VQCTBackbone"`); without the field it is `VQGANBackbone`.
    Trainers (`VQGAN`, `LGVQ`, ...) build their backbone through this, so
    language guidance attaches to every tokenizer family the same way.

    Args:
        spec: a preset dict (`keras_lgvq.models.presets.get_preset`).

    Returns:
        A subclass of `VQGANBackbone`.

    Examples:

    ```python
    spec = keras_lgvq.models.presets.get_preset("scenes_vqct_lg")
    preset_backbone_class(spec)  # VQCTBackbone
    ```
    """
    name = spec.get("backbone_class")
    if name is None:
        return VQGANBackbone
    # Importing the models package registers every family's classes.
    import keras_lgvq.models  # noqa: F401

    target = keras.saving.get_registered_object(f"keras_lgvq>{name}")
    if not isinstance(target, type) or not issubclass(target, VQGANBackbone):
        raise ValueError(
            f"The preset's `backbone_class` {name!r} is not a registered "
            "keras_lgvq tokenizer class (a VQGANBackbone subclass such as "
            "'VQCTBackbone')."
        )
    return target

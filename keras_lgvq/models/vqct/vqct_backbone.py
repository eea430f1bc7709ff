"""The VQCT tokenizer: the taming VQGAN with a language-transferred codebook."""

import os

import keras
import keras_hub
from keras import ops

from keras_lgvq.layers.quantizers.vqct_quantizer import VQCTQuantizer
from keras_lgvq.layers.vqgan.vqgan_decoder import VQGANDecoder
from keras_lgvq.layers.vqgan.vqgan_encoder import VQGANEncoder
from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone
from keras_lgvq.utils.code_layout import SubCodebook
from keras_lgvq.utils.code_layout import flatten_code_ids
from keras_lgvq.utils.code_layout import unflatten_code_ids
from keras_lgvq.utils.validation import check_code_range

# Files a VQCT prior directory holds (`python -m keras_lgvq.priors.vqct`).
PRIOR_FILES = ("vqct_prior.json", "vqct_vectors.safetensors")
# Per-sub-codebook quantizer outputs a trainer logs next to VQGAN's terms.
SUBCODEBOOK_LOGS = (
    "adjective_loss",
    "noun_loss",
    "adjective_perplexity",
    "noun_perplexity",
    "adjective_usage",
    "noun_usage",
)


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQCTBackbone(VQGANBackbone):
    """The VQCT image tokenizer (Zhang et al., CVPR 2024).

    The encoder, `quant_conv`, `post_quant_conv` and decoder of
    `VQGANBackbone`, with a `keras_lgvq.layers.VQCTQuantizer`: the latent
    (`quantizer.embedding_dim` channels, VQCT: 512) is split into an
    adjective half, replaced by the mean of its `top_k` nearest adjective
    codes, and a noun half, replaced by its nearest noun code; a GCN
    computes both codebooks from frozen word vectors on every call.

    **Index layout**: `encode` returns int32 `(B, h, w, top_k + 1)`:
    `[..., :top_k]` adjective ids (nearest first) in `[0, num_adjectives)`,
    `[..., top_k]` the noun id in `[0, num_nouns)`, each local to its
    sub-codebook. `decode` takes exactly this layout. `sub_codebooks`
    describes it to the rest of the package (usage metrics, evaluation,
    figures, code caches: `keras_lgvq.utils.code_layout`), and
    `flatten_indices` gives the documented single-integer id of each code
    choice: adjective ids unchanged, noun ids offset by `num_adjectives`
    (the row in the concatenated codebook `[adjectives; nouns]`, in
    `[0, num_embeddings)`); `unflatten_indices` inverts it.

    The prior (word vectors, graph) lives in the quantizer's non-trainable
    weights, so `.keras` files and `save_to_preset` directories carry it;
    the config holds only sizes.

    Args:
        quantizer: a `VQCTQuantizer` (or its serialized config), e.g.
            `VQCTQuantizer.from_prior(prior_dir, embedding_dim=512)`. Its
            `embedding_dim` sets the width of `quant_conv`.
        resolution: int. Training image size (height = width).
        in_channels: int. Image channels.
        ch: int. Base channel count.
        ch_mult: tuple of ints. Channel multiplier per resolution level.
        num_res_blocks: int. Residual blocks per encoder level.
        attn_resolutions: tuple of ints. Feature resolutions with attention.
        z_channels: int. Encoder output channels.
        dropout: float. Dropout rate in the residual blocks.
        dtype: string or `keras.mixed_precision.DTypePolicy`.

    Examples:

    ```python
    quantizer = keras_lgvq.layers.VQCTQuantizer.from_prior(
        "priors/scenes_minilm", embedding_dim=64, name="quantizer")
    backbone = keras_lgvq.models.VQCTBackbone(
        quantizer, resolution=64, ch=32, ch_mult=(1, 2, 2),
        attn_resolutions=(), z_channels=64)
    indices = backbone.encode(images)  # (B, 16, 16, 3): adj, adj, noun
    reconstruction = backbone.decode(indices)

    backbone = keras_lgvq.models.VQCTBackbone.from_preset("scenes_vqct")
    ```
    """

    def __init__(
        self,
        quantizer,
        resolution=256,
        in_channels=3,
        ch=128,
        ch_mult=(1, 1, 2, 2, 4),
        num_res_blocks=2,
        attn_resolutions=(16,),
        z_channels=256,
        dropout=0.0,
        dtype=None,
        **kwargs,
    ):
        ch_mult = tuple(ch_mult)
        attn_resolutions = tuple(attn_resolutions)
        if isinstance(quantizer, dict):
            quantizer = keras.layers.deserialize(quantizer)
        if not isinstance(quantizer, VQCTQuantizer):
            raise ValueError(
                "`quantizer` must be a keras_lgvq.layers.VQCTQuantizer (build "
                "one with `VQCTQuantizer.from_prior(prior_dir, "
                "embedding_dim=...)`). Received: "
                f"{type(quantizer).__name__}. For a learned codebook use "
                "`VQGANBackbone`."
            )
        architecture = dict(
            resolution=resolution,
            ch=ch,
            ch_mult=ch_mult,
            num_res_blocks=num_res_blocks,
            attn_resolutions=attn_resolutions,
            z_channels=z_channels,
            dropout=dropout,
        )
        embedding_dim = quantizer.embedding_dim
        # === Layers === (VQGANBackbone's, whose constructor expects a
        # single-codebook quantizer with `num_embeddings`.)
        self.encoder = VQGANEncoder(
            in_channels=in_channels, dtype=dtype, name="encoder", **architecture
        )
        self.quant_conv = keras.layers.Conv2D(
            embedding_dim, 1, dtype=dtype, name="quant_conv"
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
        keras_hub.models.Backbone.__init__(
            self, inputs=images, outputs=reconstruction, dtype=dtype, **kwargs
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
        self.embedding_dim = embedding_dim
        self.beta = quantizer.beta
        self.legacy_beta = quantizer.legacy_beta

    # === Code layout ===

    @property
    def top_k(self):
        """Adjective ids per position (`indices[..., :top_k]`)."""
        return self.quantizer.top_k

    @property
    def num_adjectives(self):
        return self.quantizer.num_adjectives

    @property
    def num_nouns(self):
        return self.quantizer.num_nouns

    @property
    def num_embeddings(self):
        """All codes, adjectives then nouns (the paper's "6207")."""
        return self.quantizer.num_adjectives + self.quantizer.num_nouns

    @property
    def index_depth(self):
        """Size of the trailing index axis: `top_k + 1`."""
        return self.quantizer.top_k + 1

    @property
    def has_prior(self):
        """Whether the quantizer holds a prior (given or loaded)."""
        return bool(self.quantizer._has_prior)

    @property
    def index_shape(self):
        """`(grid, grid, top_k + 1)`: adjective ids, then the noun id."""
        return (self.grid_size, self.grid_size, self.index_depth)

    @property
    def sub_codebooks(self):
        """The slots of the trailing index axis: `top_k` adjective ids, then
        one noun id (`keras_lgvq.utils.code_layout.SubCodebook`s)."""
        return (
            SubCodebook("adjective", self.num_adjectives, self.top_k),
            SubCodebook("noun", self.num_nouns, 1),
        )

    @property
    def quantizer_log_names(self):
        """Each sub-codebook's loss, perplexity and usage."""
        return SUBCODEBOOK_LOGS

    @property
    def ready_to_run(self):
        """False while the quantizer has no prior yet (deserializing: the
        prior arrives with the weights)."""
        return self.has_prior

    def flatten_indices(self, indices):
        """`encode` indices -> flattened ids (nouns offset by
        `num_adjectives`), same shape, int64 numpy, in
        `[0, num_embeddings)`.

        Args:
            indices: int array `(..., top_k + 1)` in the layout of `encode`.

        Examples:

        ```python
        ids = backbone.flatten_indices(backbone.encode(images))
        np.bincount(ids.ravel(), minlength=backbone.num_embeddings)
        ```
        """
        return flatten_code_ids(indices, self.sub_codebooks)

    def unflatten_indices(self, ids):
        """Flattened ids -> `encode` indices (int32 numpy); the inverse of
        `flatten_indices`.

        Args:
            ids: int array `(..., top_k + 1)` of flattened ids.
        """
        return unflatten_code_ids(ids, self.sub_codebooks)

    def decode(self, indices):
        """Maps `(B, h, w, top_k + 1)` indices to images in about [-1, 1].

        Args:
            indices: int tensor or array in the layout of `encode`:
                `[..., :top_k]` adjective ids in `[0, num_adjectives)`,
                `[..., top_k]` the noun id in `[0, num_nouns)`.
        """
        indices = ops.convert_to_tensor(indices)
        shape = tuple(indices.shape)
        depth = self.index_depth
        if len(shape) != 4 or shape[-1] != depth:
            raise ValueError(
                "`indices` must be a (batch, height, width, top_k + 1) = "
                f"(batch, height, width, {depth}) integer grid: {self.top_k} "
                "adjective id(s), then the noun id, as `encode` returns. "
                f"Got shape {shape}."
            )
        check_code_range(
            indices[..., : self.top_k],
            self.num_adjectives,
            f"indices[..., :{self.top_k}] (adjective ids)",
        )
        check_code_range(
            indices[..., self.top_k],
            self.num_nouns,
            f"indices[..., {self.top_k}] (noun ids)",
        )
        codes = self.quantizer.indices_to_codes(indices)
        codes = ops.cast(codes, self.post_quant_conv.compute_dtype)
        return self.decoder(self.post_quant_conv(codes))

    # === Presets ===

    @classmethod
    def preset_override_names(cls, spec):
        """Backbone and quantizer fields, `in_channels`, `dtype` and `prior`
        (a prior directory or official `.pkl` replacing the preset's)."""
        names = super().preset_override_names(spec)
        return names | {"in_channels", "dtype", "prior"}

    @classmethod
    def _from_spec(cls, spec, prior=None, **overrides):
        """A backbone from a VQCT preset spec.

        Args:
            spec: dict with `backbone`, `quantizer` and `prior` entries.
            prior: optional prior directory or official `.pkl` replacing
                the preset's.
            **overrides: backbone or quantizer fields.
        """
        backbone_args = dict(spec["backbone"])
        quantizer_args = dict(spec["quantizer"])
        valid = set(backbone_args) | set(quantizer_args) | {"in_channels"}
        unknown = sorted(set(overrides) - valid - {"dtype", "name"})
        if unknown:
            raise ValueError(
                f"Unknown preset override(s) {unknown} for {cls.__name__}. "
                f"Valid backbone / quantizer fields: {sorted(valid)}, and "
                "`prior=` a prior directory."
            )
        for key, value in overrides.items():
            if key in quantizer_args:
                quantizer_args[key] = value
            else:
                backbone_args[key] = value
        source = prior if prior is not None else prior_path(spec)
        quantizer = VQCTQuantizer.from_prior(
            source,
            dtype=backbone_args.get("dtype"),
            name="quantizer",
            **quantizer_args,
        )
        return cls(quantizer=quantizer, **backbone_args)

    def get_config(self):
        config = keras_hub.models.Backbone.get_config(self)
        config.update(
            {
                "quantizer": keras.layers.serialize(self.quantizer),
                "resolution": self.resolution,
                "in_channels": self.in_channels,
                "ch": self.ch,
                "ch_mult": list(self.ch_mult),
                "num_res_blocks": self.num_res_blocks,
                "attn_resolutions": list(self.attn_resolutions),
                "z_channels": self.z_channels,
                "dropout": self.dropout,
            }
        )
        return config


def prior_path(spec):
    """The prior directory a VQCT preset uses; a clear error if absent.

    Packaged priors (`keras_lgvq/priors/data/<name>/`) ship with the wheel;
    the others are looked up in the keras_lgvq cache
    (`$KERAS_LGVQ_HOME/vqct_priors/<name>/`, default
    `~/.cache/keras_lgvq/vqct_priors/<name>/`), where the command in the
    preset's `prior["build"]` writes them.

    Args:
        spec: a VQCT preset dict (its `prior` entry: `name`, `packaged`,
            `build`).

    Returns:
        The directory path.

    Raises:
        FileNotFoundError: a prior file is missing; the message names the
            file and the command that builds it, and `prior=` as the
            alternative.
    """
    from keras_lgvq.utils.cache import cache_dir

    entry = spec["prior"]
    if entry.get("packaged"):
        import keras_lgvq.priors

        root = os.path.join(os.path.dirname(keras_lgvq.priors.__file__), "data")
    else:
        root = cache_dir("vqct_priors")
    directory = os.path.join(root, entry["name"])
    missing = [
        os.path.join(directory, name)
        for name in PRIOR_FILES
        if not os.path.isfile(os.path.join(directory, name))
    ]
    if missing:
        command = entry["build"].format(out=directory)
        raise FileNotFoundError(
            f"The VQCT prior {entry['name']!r} is missing: no {missing[0]}"
            f"{' (nor ' + ', '.join(missing[1:]) + ')' if missing[1:] else ''}"
            ". VQCT's codebook is computed from this prior, so the model "
            f"cannot be built without it. Build it with:\n  {command}\nor "
            "pass `prior=` an existing prior directory (or the official "
            "big_nlp_word_knowledge_clip.pkl)."
        )
    return directory

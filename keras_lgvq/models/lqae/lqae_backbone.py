"""The LQAE tokenizer: ViT encoder, frozen-vocabulary quantizer, frozen
masked LM and ViT decoder."""

import keras
import keras_hub
from keras import ops

from keras_lgvq import backend as lgvq_backend
from keras_lgvq.layers.quantizers.frozen_vocabulary_quantizer import (
    README_COMMITMENT_WEIGHT,
)
from keras_lgvq.layers.quantizers.frozen_vocabulary_quantizer import (
    FrozenVocabularyQuantizer,
)
from keras_lgvq.layers.vit.patch_embedding import INIT_STDDEV
from keras_lgvq.layers.vit.transformer_stack import check_block_type
from keras_lgvq.layers.vit.vit_decoder import ViTDecoder
from keras_lgvq.layers.vit.vit_encoder import ViTEncoder
from keras_lgvq.layers.vqgan.resnet_autoencoder import ResNetDecoder
from keras_lgvq.layers.vqgan.resnet_autoencoder import ResNetEncoder
from keras_lgvq.utils.validation import check_code_range
from keras_lgvq.utils.validation import check_images
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number

# What the decoder reads (lqae-spec §1.3).
DECODER_INPUTS = ("hidden_states", "predicted_tokens", "quantized")
# Image encoder / decoder families (lqae-spec §1.1).
ENCODER_TYPES = ("vit", "resnet")
# Rounding slack of the [-1, 1] image check (`x / 127.5 - 1` is exact, a
# resize or an augmentation may overshoot by a little).
_RANGE_TOLERANCE = 1e-3


def check_image_range(images, name="images"):
    """Raises a ValueError if concrete `images` fall outside [-1, 1].

    Runs on the host side when the values exist (eager calls, numpy
    inputs); inside a traced function (`tf.function`, `jax.jit`) there are
    no values to check, so `LQAE.fit` checks array inputs before training.

    Args:
        images: float tensor or array.
        name: string. Argument name used in the message.
    """
    if isinstance(images, keras.KerasTensor):
        # Symbolic (a functional model being traced, e.g. the evaluation's
        # tokenizer pass): there are no values to check.
        return
    values = lgvq_backend.concrete_numpy(images)
    if values is None or values.size == 0:
        return
    low, high = float(values.min()), float(values.max())
    if low < -1.0 - _RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
        raise ValueError(
            f"`{name}` must be in [-1, 1], the package's image range (LQAE "
            "works on `(images + 1) / 2` in [0, 1] inside, as the official "
            f"code). Received values from {low:.4g} to {high:.4g}. Scale "
            "uint8 images with `images / 127.5 - 1` and [0, 1] images with "
            "`2 * images - 1`."
        )


def _deserialize_language_model(language_model):
    from keras_lgvq.language_models.masked_lm import MaskedLanguageModel

    if language_model is None or isinstance(language_model, keras.layers.Layer):
        return language_model
    if isinstance(language_model, dict):
        return keras.layers.deserialize(language_model)
    if isinstance(language_model, str):
        return MaskedLanguageModel.from_name_or_path(
            language_model, name="language_model"
        )
    raise ValueError(
        "`language_model` must be a keras_lgvq.language_models."
        "MaskedLanguageModel, a name or directory it loads from "
        "('splade-tiny', 'minilm', a Hugging Face or keras-hub BERT / RoBERTa "
        f"directory), or None. Received: {type(language_model).__name__}"
    )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class LQAEBackbone(keras_hub.models.Backbone):
    """The LQAE image tokenizer (Liu et al., 2023; lqae-spec §1).

    Images go through a ViT encoder (`keras_lgvq.layers.ViTEncoder`; or the
    official code's ResNet option, `encoder_type="resnet"`), an
    optional linear projection to the language model's width, and a
    `FrozenVocabularyQuantizer` whose codebook is the frozen word-piece
    embedding table of a BERT-family masked LM: every patch becomes a token
    id of the LM's vocabulary. The LM (`keras_lgvq.language_models.
    MaskedLanguageModel`, frozen) reads the sequence of raw token
    embeddings (some replaced by its mask embedding during training, see
    `keras_lgvq.models.LQAE`) and a ViT decoder reconstructs the image from
    (`decoder_input`):

    - `"hidden_states"`: the LM's last hidden states (the README run);
    - `"predicted_tokens"`: the embeddings of the LM's predicted tokens
      through a softmax straight-through estimator,
      `softmax(logits) E + sg(E[argmax] - softmax(logits) E)` (the code
      default);
    - `"quantized"`: the quantized grid itself, skipping the LM (the VQAE
      baseline, with a learned `VectorQuantizer` and no LM).

    **Pixel range.** Like every tokenizer of the package, `encode` takes and
    `decode` returns images in [-1, 1]; inside, the encoder sees
    `(images + 1) / 2` in [0, 1] and the decoder's raw output `y` is the [0,
    1] image (the official pixel space, where LQAE's MSE is computed), so
    `reconstruction = 2 y - 1`. Images outside [-1, 1] raise a ValueError.

    **Public methods** mirror `VQGANBackbone`: `encode(images)` → token ids
    `(B, g, g)` int32, `decode(ids)` → images, `encode_decode(images,
    training, token_mask)` → every intermediate; plus `forward_latents`
    (the part after the encoder, for gradient checks) and
    `image_representations` (encoder and LM layer outputs for probes).

    A backbone built from a preset whose language model is missing
    (`imagenet_lqae` without local RoBERTa-base weights) has the
    architecture but no LM: every call that needs the LM or its table
    raises a ValueError naming what is missing (`missing_language_model`).

    Args:
        image_size: int. Input height = width.
        patch_size: int. Patch side; the token grid is
            `g = image_size // patch_size`.
        hidden_dim: int. ViT width (encoder and decoder).
        encoder_num_layers: int. Encoder blocks.
        encoder_num_heads: int. Encoder attention heads.
        decoder_num_layers: int. Decoder blocks.
        decoder_num_heads: int. Decoder attention heads.
        intermediate_dim: int. Feed-forward width of every block.
        in_channels: int. Image channels. Defaults to `3`.
        block_type: string. `"lqae"` (the official block) or `"standard"`
            (keras-hub's pre-LN ViT block). Defaults to `"lqae"`.
        dropout: float. ViT dropout (official: 0). Defaults to `0.0`.
        encoder_type: string. `"vit"` (the README run) or `"resnet"`: the
            official code's convolutional option
            (`vit_encoder_decoder=False`), `keras_lgvq.layers.vqgan.
            ResNetEncoder` / `ResNetDecoder` built from the VQGAN blocks.
            With `"resnet"`, `patch_size` must equal the downsampling factor
            `2 ** (len(resnet_channel_multipliers) - 1)`, the ViT sizes
            (`*_num_layers`, `*_num_heads`, `intermediate_dim`,
            `block_type`) are unused, `dropout` goes to the residual
            blocks, and the encoder's probe layer outputs are its output
            grid alone. Defaults to `"vit"`.
        resnet_filters: int. Base width of the ResNet option (official:
            128). Defaults to `128`.
        resnet_channel_multipliers: sequence of ints. Width multiplier per
            level of the ResNet option (official: `(1, 1, 2, 2, 4)`, a 16 x
            16 grid at 256 px). Defaults to `(1, 1, 2, 2, 4)`.
        resnet_num_res_blocks: int. Residual blocks per level of the ResNet
            option (official: 2). Defaults to `2`.
        language_model: `MaskedLanguageModel`, a name or directory it loads
            from, its serialized config, or None (the VQAE baseline, or a
            missing LM). Its word embeddings become the codebook.
        quantizer: optional quantizer layer with the `VectorQuantizer`
            interface (or its config). None builds a
            `FrozenVocabularyQuantizer` over the LM's table. VQAE passes a
            learned `VectorQuantizer`.
        decoder_input: string. One of `"hidden_states"`,
            `"predicted_tokens"`, `"quantized"`. Defaults to
            `"hidden_states"`.
        project_to_language_model: bool. When `hidden_dim` differs from the
            code width (the LM's hidden size), add bias-free Dense
            projections `hidden_dim -> code width` before the quantizer and
            `code width -> hidden_dim` before the decoder. Without it,
            differing widths are an error. Defaults to `False`.
        commitment_weight: float. Commitment weight of the default
            quantizer. Defaults to `0.005` (README run).
        exclude_special_tokens: bool. Never pick the LM's special tokens
            (`[PAD]`, `[MASK]`, ... / `<s>`, `<mask>`, ...) as image tokens;
            the official code allows them. Defaults to `False`.
        missing_language_model: string or None. Set by presets whose LM is
            not available: the message raised when the LM is needed.
        dtype: string or `keras.mixed_precision.DTypePolicy`.
        **kwargs: Standard `keras.Model` arguments (`name`, ...).

    Examples:

    ```python
    lm = keras_lgvq.language_models.MaskedLanguageModel.from_name_or_path(
        "splade-tiny")
    backbone = keras_lgvq.models.LQAEBackbone(
        image_size=64, patch_size=8, hidden_dim=128, encoder_num_layers=2,
        encoder_num_heads=4, decoder_num_layers=2, decoder_num_heads=4,
        intermediate_dim=256, language_model=lm)
    ids = backbone.encode(images)          # (B, 8, 8) word-piece ids
    reconstruction = backbone.decode(ids)  # (B, 64, 64, 3) in about [-1, 1]
    lm.detokenize(np.reshape(ids, (len(ids), -1)))  # images as text

    backbone = keras_lgvq.models.LQAEBackbone.from_preset("scenes_lqae")
    ```
    """

    def __init__(
        self,
        image_size=256,
        patch_size=16,
        hidden_dim=768,
        encoder_num_layers=12,
        encoder_num_heads=12,
        decoder_num_layers=12,
        decoder_num_heads=12,
        intermediate_dim=3072,
        in_channels=3,
        block_type="lqae",
        dropout=0.0,
        encoder_type="vit",
        resnet_filters=128,
        resnet_channel_multipliers=(1, 1, 2, 2, 4),
        resnet_num_res_blocks=2,
        language_model=None,
        quantizer=None,
        decoder_input="hidden_states",
        project_to_language_model=False,
        commitment_weight=README_COMMITMENT_WEIGHT,
        exclude_special_tokens=False,
        missing_language_model=None,
        dtype=None,
        **kwargs,
    ):
        check_int("image_size", image_size)
        check_int("patch_size", patch_size)
        check_int("hidden_dim", hidden_dim)
        check_int("in_channels", in_channels)
        check_block_type(block_type)
        if encoder_type not in ENCODER_TYPES:
            raise ValueError(
                f"`encoder_type` must be one of {ENCODER_TYPES}: the ViT "
                "encoder / decoder (README run) or the official code's "
                f"ResNet option. Received: encoder_type={encoder_type!r}"
            )
        if encoder_type == "resnet":
            try:
                resnet_channel_multipliers = tuple(
                    int(m) for m in resnet_channel_multipliers
                )
            except (TypeError, ValueError):
                # ResNetEncoder names the argument and what it expects.
                resnet_channel_multipliers = ()
            factor = 2 ** (len(resnet_channel_multipliers) - 1)
            if resnet_channel_multipliers and patch_size != factor:
                raise ValueError(
                    "With `encoder_type='resnet'` the token grid is "
                    "`image_size / 2 ** (len(resnet_channel_multipliers) - "
                    f"1)`, so `patch_size` must be {factor} for "
                    f"resnet_channel_multipliers="
                    f"{resnet_channel_multipliers}. Received: "
                    f"patch_size={patch_size}. Pass patch_size={factor} or "
                    "change the number of levels."
                )
        commitment_weight = check_number(
            "commitment_weight", commitment_weight, low=0.0
        )
        if decoder_input not in DECODER_INPUTS:
            raise ValueError(
                f"`decoder_input` must be one of {DECODER_INPUTS}: the LM's "
                "last hidden states (README run), the LM's predicted-token "
                "embeddings (straight-through, code default), or the "
                "quantized grid (no LM, VQAE). Received: "
                f"decoder_input={decoder_input!r}"
            )
        if missing_language_model is not None and not isinstance(
            missing_language_model, str
        ):
            raise ValueError(
                "`missing_language_model` must be a message string or None. "
                f"Received: {missing_language_model!r}"
            )
        if image_size % patch_size:
            raise ValueError(
                f"`image_size`={image_size} must be a multiple of "
                f"`patch_size`={patch_size}."
            )
        language_model = _deserialize_language_model(language_model)
        if isinstance(quantizer, dict):
            quantizer = keras.layers.deserialize(quantizer)
        if language_model is not None and missing_language_model is not None:
            raise ValueError(
                "Pass a `language_model` or `missing_language_model`, not both."
            )
        grid = image_size // patch_size
        policy = dtype

        # === Language model and codebook ===
        if quantizer is None:
            if language_model is None:
                raise ValueError(
                    "LQAEBackbone needs a `language_model` (its word "
                    "embeddings are the codebook), or a `quantizer` (e.g. a "
                    "learned `VectorQuantizer` for the VQAE baseline)."
                )
            quantizer = FrozenVocabularyQuantizer(
                language_model.vocabulary_size,
                language_model.hidden_dim,
                embedding_table=language_model.token_embedding_matrix(),
                commitment_weight=commitment_weight,
                excluded_token_ids=(
                    language_model.special_token_ids
                    if exclude_special_tokens
                    else ()
                ),
                # The LM's own table: rebuilt from the LM, not saved.
                save_embedding_table=False,
                name="quantizer",
            )
        code_dim = quantizer.embedding_dim
        uses_lm = decoder_input != "quantized"
        if language_model is not None:
            if code_dim != language_model.hidden_dim or (
                quantizer.num_embeddings != language_model.vocabulary_size
            ):
                raise ValueError(
                    "The quantizer's codebook "
                    f"({quantizer.num_embeddings} x {code_dim}) must be the "
                    "language model's token table "
                    f"({language_model.vocabulary_size} x "
                    f"{language_model.hidden_dim})."
                )
            if grid * grid > language_model.max_sequence_length:
                raise ValueError(
                    f"image_size={image_size} with patch_size={patch_size} "
                    f"gives {grid * grid} tokens, more than the language "
                    f"model's {language_model.max_sequence_length} positions."
                    " Use a larger patch or smaller images."
                )
            if not uses_lm:
                raise ValueError(
                    "`decoder_input='quantized'` is the VQAE baseline: the "
                    "decoder reads the quantized grid and no language model "
                    "runs. Drop `language_model` (and pass a learned "
                    "`quantizer`), or use 'hidden_states' / "
                    "'predicted_tokens'."
                )
        elif uses_lm and missing_language_model is None:
            raise ValueError(
                f"`decoder_input`={decoder_input!r} reads the language "
                "model's outputs, but no `language_model` was given. Pass "
                "one, or use `decoder_input='quantized'` (VQAE)."
            )
        if hidden_dim != code_dim and not project_to_language_model:
            raise ValueError(
                f"The ViT width `hidden_dim`={hidden_dim} differs from the "
                f"code width {code_dim} (the language model's hidden size / "
                "the codebook's `embedding_dim`). Pass "
                "`project_to_language_model=True` to add linear projections "
                f"({hidden_dim} -> {code_dim} before the quantizer, "
                f"{code_dim} -> {hidden_dim} before the decoder), or set "
                f"`hidden_dim={code_dim}` as the paper does."
            )

        # === Layers ===
        if encoder_type == "resnet":
            resnet = dict(
                image_size=image_size,
                hidden_dim=hidden_dim,
                filters=resnet_filters,
                channel_multipliers=resnet_channel_multipliers,
                num_res_blocks=resnet_num_res_blocks,
                dropout=dropout,
                dtype=policy,
            )
            self.encoder = ResNetEncoder(name="encoder", **resnet)
        else:
            vit = dict(
                image_size=image_size,
                patch_size=patch_size,
                hidden_dim=hidden_dim,
                intermediate_dim=intermediate_dim,
                block_type=block_type,
                dropout=dropout,
                dtype=policy,
            )
            self.encoder = ViTEncoder(
                num_layers=encoder_num_layers,
                num_heads=encoder_num_heads,
                name="encoder",
                **vit,
            )
        self.quantizer = quantizer
        self.language_model = language_model
        if encoder_type == "resnet":
            self.decoder = ResNetDecoder(
                out_channels=in_channels, name="decoder", **resnet
            )
        else:
            self.decoder = ViTDecoder(
                num_layers=decoder_num_layers,
                num_heads=decoder_num_heads,
                out_channels=in_channels,
                name="decoder",
                **vit,
            )
        self.pre_quant_projection = None
        self.post_quant_projection = None
        if hidden_dim != code_dim:
            init = keras.initializers.RandomNormal(stddev=INIT_STDDEV)
            self.pre_quant_projection = keras.layers.Dense(
                code_dim,
                use_bias=False,
                kernel_initializer=init,
                dtype=policy,
                name="pre_quant_projection",
            )
            self.post_quant_projection = keras.layers.Dense(
                hidden_dim,
                use_bias=False,
                kernel_initializer=init,
                dtype=policy,
                name="post_quant_projection",
            )

        # === Functional Model ===
        # The graph is the unmasked forward pass (what `decode(encode(x))`
        # computes). `call` is overridden by the same code in eager form,
        # which also covers the predicted-token decoder input and a missing
        # LM: the graph holds every layer (so all variables are tracked and
        # saved) with the LM's hidden states as the decoder input.
        images = keras.Input(
            shape=(image_size, image_size, in_channels), name="images"
        )
        pixels = (images + 1.0) * 0.5
        z = self.encoder(pixels)
        if self.pre_quant_projection is not None:
            z = self.pre_quant_projection(z)
        codes = self.quantizer(z)["quantized"]
        if language_model is not None:
            sequence = ops.reshape(codes, (-1, grid * grid, code_dim))
            hidden = language_model(sequence)["hidden_states"]
            codes = ops.reshape(hidden, (-1, grid, grid, code_dim))
        if self.post_quant_projection is not None:
            codes = self.post_quant_projection(codes)
        reconstruction = self.decoder(codes) * 2.0 - 1.0
        super().__init__(
            inputs=images, outputs=reconstruction, dtype=dtype, **kwargs
        )

        # === Config ===
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.encoder_num_layers = encoder_num_layers
        self.encoder_num_heads = encoder_num_heads
        self.decoder_num_layers = decoder_num_layers
        self.decoder_num_heads = decoder_num_heads
        self.intermediate_dim = intermediate_dim
        self.in_channels = in_channels
        self.block_type = block_type
        self.dropout = dropout
        self.encoder_type = encoder_type
        self.resnet_filters = resnet_filters
        self.resnet_channel_multipliers = tuple(resnet_channel_multipliers)
        self.resnet_num_res_blocks = resnet_num_res_blocks
        self.decoder_input = decoder_input
        self.project_to_language_model = bool(project_to_language_model)
        self.commitment_weight = commitment_weight
        self.exclude_special_tokens = bool(exclude_special_tokens)
        self.missing_language_model = missing_language_model
        self.code_dim = code_dim

        if (
            language_model is not None
            and isinstance(quantizer, FrozenVocabularyQuantizer)
            and not quantizer.has_embedding_table
        ):
            # Re-created from a config (the table is not in it): take the
            # table from the LM; saved weights, if any, load over it.
            quantizer.set_embedding_table(
                language_model.token_embedding_matrix()
            )

    # === Geometry (VQGANBackbone's names) ===

    @property
    def resolution(self):
        """Image side, as `VQGANBackbone.resolution`."""
        return self.image_size

    @property
    def grid_size(self):
        """Side of the token grid."""
        return self.image_size // self.patch_size

    @property
    def downsample_factor(self):
        return self.patch_size

    @property
    def index_shape(self):
        """Shape of one image's token ids, `(grid, grid)`."""
        return (self.grid_size, self.grid_size)

    @property
    def num_embeddings(self):
        """Codebook size (the LM's vocabulary size for LQAE)."""
        return self.quantizer.num_embeddings

    @property
    def embedding_dim(self):
        return self.code_dim

    @property
    def has_language_model(self):
        return self.language_model is not None

    @property
    def mask_token_id(self):
        """The LM's mask token id (masking uses its embedding)."""
        return self._require_language_model().mask_token_id

    def _require_language_model(self):
        if self.language_model is None:
            raise ValueError(
                self.missing_language_model
                or "This LQAEBackbone has no language model (a VQAE "
                "baseline); build one with `language_model=`."
            )
        return self.language_model

    def check_ready(self):
        """Raises the `missing_language_model` ValueError of a backbone
        built without its language model (before any computation)."""
        if self.missing_language_model is not None and not getattr(
            self.quantizer, "has_embedding_table", True
        ):
            raise ValueError(self.missing_language_model)

    # === Forward ===

    def _encode_latents(self, images, training=False):
        check_images(images, self.in_channels, "images")
        check_image_range(images, "images")
        self.check_ready()
        images = ops.convert_to_tensor(images)
        pixels = (ops.cast(images, self.compute_dtype) + 1.0) * 0.5
        features = self.encoder(pixels, training=training)
        latents = features
        if self.pre_quant_projection is not None:
            latents = self.pre_quant_projection(features)
        return features, latents

    def _token_mask(self, token_mask, batch):
        if token_mask is None:
            return None
        token_mask = ops.convert_to_tensor(token_mask)
        length = self.grid_size * self.grid_size
        shape = tuple(token_mask.shape)
        valid = (len(shape) == 3 and tuple(shape[1:]) == self.index_shape) or (
            len(shape) == 2 and shape[1] == length
        )
        if not valid:
            raise ValueError(
                "`token_mask` must be a boolean (batch, "
                f"{self.grid_size}, {self.grid_size}) grid or (batch, "
                f"{length}) sequence, True where a token is replaced by the "
                f"mask embedding. Received shape: {shape}"
            )
        return ops.reshape(ops.cast(token_mask, "bool"), (-1, length))

    def _run_language_model(self, codes, token_mask):
        """LM outputs on a `(B, L, D)` code sequence, masked where True."""
        lm = self._require_language_model()
        sequence = ops.cast(codes, "float32")
        if token_mask is not None:
            table = ops.convert_to_tensor(self.quantizer.codebook)
            mask_embedding = ops.stop_gradient(
                ops.cast(ops.take(table, lm.mask_token_id, axis=0), "float32")
            )
            sequence = ops.where(
                ops.expand_dims(token_mask, -1), mask_embedding, sequence
            )
        return lm(sequence, training=False)

    def _predicted_token_embeddings(self, logits):
        """`softmax(l) E + sg(E[argmax l] - softmax(l) E)` (official STE)."""
        table = ops.stop_gradient(
            ops.cast(ops.convert_to_tensor(self.quantizer.codebook), "float32")
        )
        probs = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        soft = ops.matmul(probs, table)
        hard = ops.take(table, ops.argmax(logits, axis=-1), axis=0)
        return soft + ops.stop_gradient(hard - soft)

    def forward_latents(self, latents, token_mask=None, training=False):
        """Everything after the encoder: quantizer, LM, decoder.

        Args:
            latents: float tensor `(B, g, g, code_dim)` (the encoder output
                after the optional projection).
            token_mask: optional bool `(B, g, g)` or `(B, g * g)`; True
                positions are replaced by the LM's mask embedding before the
                LM reads the sequence.
            training: bool.

        Returns:
            The quantizer's dict (`quantized`, `indices`, `loss`,
            `commitment_loss`, `perplexity`, `usage`, ...) plus
            `reconstruction` (`(B, H, W, C)` in about [-1, 1]) and, when
            the LM runs, `lm_hidden_states` `(B, L, D)`, `lm_logits`
            `(B, L, V)` and `lm_layer_outputs`.
        """
        latents = ops.convert_to_tensor(latents)
        outputs = dict(self.quantizer(latents, training=training))
        quantized = outputs["quantized"]
        # The batch axis is -1 in reshapes: it is None (symbolic) when a
        # functional model is traced over this method (evaluation).
        batch = -1
        grid = self.grid_size
        width = self.code_dim
        if self.decoder_input != "quantized":
            sequence = ops.reshape(quantized, (batch, grid * grid, width))
            lm_out = self._run_language_model(
                sequence, self._token_mask(token_mask, batch)
            )
            outputs["lm_hidden_states"] = lm_out["hidden_states"]
            outputs["lm_logits"] = lm_out["logits"]
            outputs["lm_layer_outputs"] = lm_out["layer_outputs"]
        if self.decoder_input == "hidden_states":
            decoder_in = outputs["lm_hidden_states"]
        elif self.decoder_input == "predicted_tokens":
            decoder_in = self._predicted_token_embeddings(outputs["lm_logits"])
        else:
            decoder_in = quantized
        decoder_in = ops.reshape(
            ops.cast(decoder_in, self.compute_dtype), (batch, grid, grid, width)
        )
        if self.post_quant_projection is not None:
            decoder_in = self.post_quant_projection(decoder_in)
        pixels = self.decoder(decoder_in, training=training)
        outputs["reconstruction"] = pixels * 2.0 - 1.0
        return outputs

    def encode_decode(self, images, training=False, token_mask=None):
        """Runs the tokenizer and returns every intermediate.

        Args:
            images: float `(B, H, W, C)` in [-1, 1].
            training: bool.
            token_mask: optional bool `(B, g, g)`: tokens replaced by the
                LM's mask embedding (the `LQAE` trainer draws it).

        Returns:
            The dict of `forward_latents` plus `encoder_features` (the ViT
            output) and `latents` (after the projection).
        """
        features, latents = self._encode_latents(images, training=training)
        outputs = self.forward_latents(
            latents, token_mask=token_mask, training=training
        )
        outputs["encoder_features"] = features
        outputs["latents"] = latents
        return outputs

    def call(self, images, training=False):
        return self.encode_decode(images, training=training)["reconstruction"]

    def encode(self, images):
        """Maps images in [-1, 1] to token ids `(B, g, g)` int32."""
        _, latents = self._encode_latents(images)
        return self.quantizer(latents)["indices"]

    def decode(self, indices):
        """Maps token ids `(B, g, g)` to images in about [-1, 1].

        The ids are looked up in the codebook (the LM's raw embeddings),
        read by the LM without masking and decoded, as the official
        validation does.
        """
        indices = ops.convert_to_tensor(indices)
        if len(indices.shape) != 3 or tuple(indices.shape[1:]) != (
            self.index_shape
        ):
            raise ValueError(
                "`indices` must be a (batch, "
                f"{self.grid_size}, {self.grid_size}) integer grid of token "
                f"ids; got shape {tuple(indices.shape)}."
            )
        check_code_range(indices, self.num_embeddings, "indices")
        self.check_ready()
        codes = self.quantizer.indices_to_codes(indices)
        batch = -1
        grid = self.grid_size
        width = self.code_dim
        if self.decoder_input == "quantized":
            decoder_in = codes
        else:
            lm_out = self._run_language_model(
                ops.reshape(codes, (batch, grid * grid, width)), None
            )
            if self.decoder_input == "hidden_states":
                decoder_in = lm_out["hidden_states"]
            else:
                decoder_in = self._predicted_token_embeddings(lm_out["logits"])
        decoder_in = ops.reshape(
            ops.cast(decoder_in, self.compute_dtype), (batch, grid, grid, width)
        )
        if self.post_quant_projection is not None:
            decoder_in = self.post_quant_projection(decoder_in)
        return self.decoder(decoder_in) * 2.0 - 1.0

    def image_representations(self, images):
        """Encoder and LM layer outputs of unmasked images (for probes).

        As the official `forward_image_representation`: every encoder
        block's output and every LM hidden state (embedding output first),
        with no masking.

        Args:
            images: float `(B, H, W, C)` in [-1, 1].

        Returns:
            A dict with `encoder_layer_outputs` (list of `(B, L,
            hidden_dim)`), `lm_layer_outputs` (list of `(B, L, D)`, absent
            without an LM) and `indices` `(B, g, g)`.
        """
        check_images(images, self.in_channels, "images")
        check_image_range(images, "images")
        self.check_ready()
        images = ops.convert_to_tensor(images)
        pixels = (ops.cast(images, self.compute_dtype) + 1.0) * 0.5
        features, layers = self.encoder(pixels, return_layer_outputs=True)
        batch = ops.shape(features)[0]
        length = self.grid_size * self.grid_size
        flat = [ops.reshape(x, (batch, length, -1)) for x in layers]
        latents = features
        if self.pre_quant_projection is not None:
            latents = self.pre_quant_projection(features)
        quantized = self.quantizer(latents)
        result = {
            "encoder_layer_outputs": flat,
            "indices": quantized["indices"],
        }
        if self.language_model is not None:
            sequence = ops.reshape(quantized["quantized"], (batch, length, -1))
            lm_out = self._run_language_model(sequence, None)
            result["lm_layer_outputs"] = list(lm_out["layer_outputs"])
        return result

    # === Presets ===

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds the tokenizer of a built-in preset or a preset directory.

        Names resolve as for every model of the package
        (`keras_lgvq.models.presets.resolve_preset`): a directory written by
        `save_to_preset` (of this backbone or of an `LQAE`) is read with
        keras-hub's loader, weights included; a built-in name builds the
        preset's architecture, untrained unless the preset ships trained
        weights (`scenes_lqae_trained`).

        Args:
            preset: string. A built-in preset name or a local directory.
            load_weights: bool. Load a directory's or a shipped preset's
                weights.
            **kwargs: backbone fields that override the preset's (e.g.
                `image_size=32`), and `language_model=` a
                `MaskedLanguageModel` or a name / directory (e.g. a local
                RoBERTa-base for `imagenet_lqae`).

        Examples:

        ```python
        backbone = keras_lgvq.models.LQAEBackbone.from_preset("scenes_lqae")
        backbone = keras_lgvq.models.LQAEBackbone.from_preset(
            "imagenet_lqae", language_model="/data/roberta-base")
        ```
        """
        from keras_lgvq.models import presets

        kind, value = presets.resolve_preset(preset, cls.__name__)
        if kind == "directory":
            return super().from_preset(
                value, load_weights=load_weights, **kwargs
            )
        from keras_lgvq.models.lqae.lqae_presets import backbone_from_spec

        backbone = backbone_from_spec(cls, value, **kwargs)
        if load_weights:
            # Presets with trained weights in the package (no-op otherwise).
            from keras_lgvq.models.vqgan.vqgan_presets import load_shipped_weights

            load_shipped_weights(backbone, value)
        return backbone

    def get_config(self):
        config = super().get_config()
        language_model = None
        if self.language_model is not None:
            language_model = keras.layers.serialize(self.language_model)
        config.update(
            {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "hidden_dim": self.hidden_dim,
                "encoder_num_layers": self.encoder_num_layers,
                "encoder_num_heads": self.encoder_num_heads,
                "decoder_num_layers": self.decoder_num_layers,
                "decoder_num_heads": self.decoder_num_heads,
                "intermediate_dim": self.intermediate_dim,
                "in_channels": self.in_channels,
                "block_type": self.block_type,
                "dropout": self.dropout,
                "encoder_type": self.encoder_type,
                "resnet_filters": self.resnet_filters,
                "resnet_channel_multipliers": list(
                    self.resnet_channel_multipliers
                ),
                "resnet_num_res_blocks": self.resnet_num_res_blocks,
                "language_model": language_model,
                "quantizer": keras.layers.serialize(self.quantizer),
                "decoder_input": self.decoder_input,
                "project_to_language_model": self.project_to_language_model,
                "commitment_weight": self.commitment_weight,
                "exclude_special_tokens": self.exclude_special_tokens,
                "missing_language_model": self.missing_language_model,
            }
        )
        return config

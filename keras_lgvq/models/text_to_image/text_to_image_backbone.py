"""The masked-token text-to-image transformer over a code grid."""

import keras
import keras_hub
from keras import ops

from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number


@keras.saving.register_keras_serializable(package="keras_lgvq")
class NullTextToken(keras.layers.Layer):
    """Prepends one learned, always-visible token to a text sequence.

    Cross-attention needs at least one visible key: when a caption is
    dropped (classifier-free guidance) or absent (unconditional sampling,
    completion without a caption), every text position is masked and the
    code tokens attend to this learned "no caption" slot alone. With a
    caption they attend to it and to the caption's tokens.

    Args:
        hidden_dim: int. Width of the projected text features.
        **kwargs: `keras.layers.Layer` arguments.

    Examples:

    ```python
    layer = NullTextToken(hidden_dim=64)
    text, mask = layer(keras.random.normal((2, 30, 64)), ops.ones((2, 30)))
    text.shape  # (2, 31, 64); mask[:, 0] is True
    ```
    """

    def __init__(self, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim)

    def build(self, text_shape, mask_shape=None):
        self.token = self.add_weight(
            shape=(1, 1, self.hidden_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="token",
        )
        self.built = True

    def call(self, text, mask):
        batch = ops.shape(text)[0]
        token = ops.cast(ops.convert_to_tensor(self.token), text.dtype)
        token = ops.broadcast_to(token, (batch, 1, self.hidden_dim))
        visible = ops.ones((batch, 1), dtype="bool")
        return (
            ops.concatenate([token, text], axis=1),
            ops.concatenate([visible, ops.cast(mask, "bool")], axis=1),
        )

    def compute_output_shape(self, text_shape, mask_shape=None):
        length = None if text_shape[1] is None else text_shape[1] + 1
        return (
            (text_shape[0], length, self.hidden_dim),
            (text_shape[0], length),
        )

    def get_config(self):
        config = super().get_config()
        config["hidden_dim"] = self.hidden_dim
        return config


@keras.saving.register_keras_serializable(package="keras_lgvq")
class TextToImageBackbone(keras_hub.models.Backbone):
    """Bidirectional transformer over a tokenizer's code grid (MaskGIT/Muse).

    Code ids (the `num_codes` codebook entries plus one mask id,
    `mask_id = num_codes`) are embedded with a `ReversibleEmbedding` (its
    transpose gives the output logits, see
    `keras_lgvq.models.text_to_image.TextToImage`) plus learned position
    embeddings. Each of the `num_layers` blocks is a pre-norm
    `keras_hub.layers.TransformerDecoder` used without a causal mask:
    self-attention over all code positions, cross-attention to the
    caption's per-token features (projected to `hidden_dim`, with a learned
    always-visible "no caption" token in front, see `NullTextToken`) and an
    MLP. The output is the final layer-normalised sequence `(B, N, hidden)`.

    Inputs (a dict):
        code_ids: int `(B, N)` with `N = grid_size ** 2`, values in
            `[0, num_codes]` (`num_codes` marks masked positions).
        text_features: float `(B, L, text_dim)` per-token caption features
            from a text prior (any L).
        text_mask: bool `(B, L)`, True at caption tokens the codes may see;
            an all-False row is an unconditional (no caption) input.

    Args:
        num_codes: int. Codebook size K of the tokenizer.
        grid_size: int. Side of the tokenizer's square code grid.
        text_dim: int. Width of the text prior's token features.
        hidden_dim: int. Transformer width.
        num_layers: int. Number of transformer blocks.
        num_heads: int. Attention heads (must divide `hidden_dim`).
        intermediate_dim: int or None. MLP width; default `4 * hidden_dim`.
        dropout: float in [0, 1). Dropout of embeddings, attention and MLP.
        layer_norm_epsilon: float. Layer-norm epsilon.
        dtype: string or `keras.mixed_precision.DTypePolicy`.

    Examples:

    ```python
    backbone = keras_lgvq.models.TextToImageBackbone(
        num_codes=256, grid_size=16, text_dim=384, hidden_dim=128,
        num_layers=4, num_heads=4)
    features = backbone({
        "code_ids": ops.full((2, 256), 256, "int32"),  # all masked
        "text_features": keras.random.normal((2, 30, 384)),
        "text_mask": ops.ones((2, 30), "bool"),
    })  # (2, 256, 128)
    ```
    """

    def __init__(
        self,
        num_codes,
        grid_size,
        text_dim,
        hidden_dim=256,
        num_layers=4,
        num_heads=4,
        intermediate_dim=None,
        dropout=0.0,
        layer_norm_epsilon=1e-5,
        dtype=None,
        **kwargs,
    ):
        num_codes = check_int("num_codes", num_codes, low=2)
        grid_size = check_int("grid_size", grid_size)
        text_dim = check_int("text_dim", text_dim)
        hidden_dim = check_int("hidden_dim", hidden_dim)
        num_layers = check_int("num_layers", num_layers)
        num_heads = check_int("num_heads", num_heads)
        if hidden_dim % num_heads:
            raise ValueError(
                f"`num_heads` must divide `hidden_dim`; received "
                f"hidden_dim={hidden_dim}, num_heads={num_heads}."
            )
        intermediate_dim = check_int(
            "intermediate_dim", intermediate_dim, allow_none=True
        ) or 4 * hidden_dim
        dropout = check_number("dropout", dropout, 0.0, 1.0, high_open=True)
        sequence_length = grid_size * grid_size
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)

        # === Layers ===
        self.token_embedding = keras_hub.layers.ReversibleEmbedding(
            input_dim=num_codes + 1,
            output_dim=hidden_dim,
            tie_weights=True,
            embeddings_initializer=initializer,
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            sequence_length=sequence_length,
            initializer=initializer,
            dtype=dtype,
            name="position_embedding",
        )
        self.embeddings_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.text_projection = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=initializer,
            dtype=dtype,
            name="text_projection",
        )
        self.null_text = NullTextToken(
            hidden_dim, dtype=dtype, name="null_text"
        )
        self.transformer_layers = [
            keras_hub.layers.TransformerDecoder(
                intermediate_dim=intermediate_dim,
                num_heads=num_heads,
                dropout=dropout,
                activation="gelu",
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=initializer,
                normalize_first=True,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="output_norm"
        )

        # === Functional Model ===
        code_ids = keras.Input(
            shape=(sequence_length,), dtype="int32", name="code_ids"
        )
        text_features = keras.Input(
            shape=(None, text_dim), dtype="float32", name="text_features"
        )
        text_mask = keras.Input(shape=(None,), dtype="bool", name="text_mask")
        tokens = self.token_embedding(code_ids)
        x = self.position_embedding(tokens) + tokens
        x = self.embeddings_dropout(self.embeddings_norm(x))
        text = self.text_projection(text_features)
        text, memory_mask = self.null_text(text, text_mask)
        for layer in self.transformer_layers:
            # Bidirectional: every code position sees every other one.
            x = layer(
                x,
                encoder_sequence=text,
                encoder_padding_mask=memory_mask,
                use_causal_mask=False,
            )
        sequence_output = self.output_norm(x)
        super().__init__(
            inputs={
                "code_ids": code_ids,
                "text_features": text_features,
                "text_mask": text_mask,
            },
            outputs=sequence_output,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.num_codes = num_codes
        self.grid_size = grid_size
        self.text_dim = text_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

    @property
    def mask_id(self):
        """The input id of a masked code position (`num_codes`)."""
        return self.num_codes

    @property
    def sequence_length(self):
        """Code positions per image (`grid_size ** 2`)."""
        return self.grid_size * self.grid_size

    # === Presets ===

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Builds the backbone of a built-in preset or a preset directory.

        Names resolve as for every model of the package
        (`keras_lgvq.models.presets.resolve_preset`): a directory (written
        by `save_to_preset` of this backbone or of a `TextToImage`) is read
        with keras-hub's loader, weights included; a built-in name builds
        the preset's architecture, untrained, except a name that ships a
        trained generator (`scenes_lgvq_text_to_image`), whose trained
        backbone is returned.

        Args:
            preset: string. A built-in preset name or a local directory.
            load_weights: bool. Load a directory's (or a shipped
                generator's) weights.
            **kwargs: fields overriding the preset's (e.g. `num_codes=512`,
                `grid_size=8`, `num_layers=2`).

        Examples:

        ```python
        backbone = keras_lgvq.models.TextToImageBackbone.from_preset(
            "text_to_image_celeba_hq")
        backbone.count_params()
        ```
        """
        from keras_lgvq.models import presets

        kind, value = presets.resolve_preset(preset, cls.__name__)
        if kind == "directory":
            return super().from_preset(
                value, load_weights=load_weights, **kwargs
            )
        if value.get("shipped_model"):
            if kwargs:
                raise ValueError(
                    f"Preset {preset!r} ships a trained generator; its "
                    f"backbone cannot take overrides {sorted(kwargs)} (build "
                    "`text_to_image_scenes` for another architecture)."
                )
            from keras_lgvq.models.text_to_image.text_to_image import TextToImage

            # The trained backbone of the shipped generator (its text
            # prior is not needed for that).
            return TextToImage.from_preset(
                preset, text_prior=None, load_weights=load_weights
            ).backbone
        return cls._from_spec(value, **kwargs)

    @classmethod
    def _from_spec(cls, spec, **overrides):
        args = dict(spec["backbone"])
        valid = set(args) | {"dtype", "name"}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ValueError(
                f"Unknown preset override(s) {unknown} for {cls.__name__}. "
                f"Valid fields: {sorted(valid)}."
            )
        args.update(overrides)
        return cls(**args)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_codes": self.num_codes,
                "grid_size": self.grid_size,
                "text_dim": self.text_dim,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config

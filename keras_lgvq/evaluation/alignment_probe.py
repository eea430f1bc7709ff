"""The alignment probe: text heads trained on a tokenizer's frozen codes.

A fresh code transformer (retrieval, InfoNCE against frozen sentence
features) and a fresh masked text decoder (masked-word prediction) read the
constant code grid, so any tokenizer, with or without language guidance, is
measured on equal terms. `keras_lgvq.evaluation.train_alignment_probe`
trains one; `keras_lgvq.evaluation.evaluate_model` scores it.
"""

import keras
from keras import ops

from keras_lgvq.layers import CodeTransformer
from keras_lgvq.layers import GlobalSemanticAlignment
from keras_lgvq.layers import MaskedTextDecoder
from keras_lgvq.utils.tensors import l2_normalize
from keras_lgvq.utils.token_embeddings import TokenEmbeddingsMixin
from keras_lgvq.utils.validation import check_int


@keras.saving.register_keras_serializable(package="keras_lgvq")
class AlignmentProbe(TokenEmbeddingsMixin, keras.Model):
    """Retrieval and masked-word heads trained on a tokenizer's frozen codes.

    Measures how much text-relevant information a code grid carries, for
    any tokenizer, with or without language guidance: a fresh
    `CodeTransformer` over the (constant) quantized grid, trained with
    InfoNCE against the frozen sentence features (its CLS output is the
    retrieval embedding), and a fresh `MaskedTextDecoder` that reads the
    code tokens to predict masked caption tokens. The probe is **leak-free**:
    the decoder's text input is the text prior's features of the caption
    *with the masked tokens replaced by [MASK]* (precomputed by
    `prepare_split`), so it cannot read the answer from contextual features
    of the unmasked caption (LG-VQ spec §9). InfoNCE here is symmetric with
    a learnable temperature (CLIP-style), which trains a probe much faster
    than LG-VQ's faithful τ = 1 loss.

    The quantized grid enters through `ops.stop_gradient`, so training
    changes only the probe (the tokenizer is not even an input).

    Args:
        code_dim: int. Width of the quantized grid.
        num_tokens: int. Grid positions `h * w`.
        text_dim: int. Width of the per-token text features.
        vocabulary_size: int. Text vocabulary size.
        sentence_dim: int or None. Width of the sentence feature (default
            `text_dim`); a bias-free projection is added when it differs.
        sequence_length: int. Caption length L.
        vit_layers: int. Code-transformer blocks.
        vit_heads: int. Code-transformer heads.
        decoder_layers: int. Masked-text decoder layers.
        decoder_intermediate_dim: int. Decoder FFN width.
        dropout: float. Decoder dropout.
        mtp_weight: float. Weight of the masked-token loss (InfoNCE has 1).
        keep_mask_features: bool. At masked positions, keep the text
            prior's feature of the `[MASK]` token (a BERT-style MLM input,
            which trains in far fewer steps) instead of LG-VQ's learned
            mask vectors. Either way the answer is not visible.
        label_smoothing: float. Of the masked-token cross-entropy (LG-VQ
            trains its head with 0.1; plain cross-entropy fits a probe
            faster).
        seed: int or None. Seed of the decoder's dropout.
        **kwargs: `keras.Model` arguments.

    Examples:

    ```python
    probe = keras_lgvq.evaluation.AlignmentProbe(
        code_dim=64, num_tokens=256, text_dim=384, vocabulary_size=30522)
    probe.set_token_embeddings(prior.token_embeddings)
    probe.compile(optimizer=keras.optimizers.Adam(1e-3))
    probe.fit(batches, epochs=4)  # dicts: see `call`
    vectors = probe.embed_image(quantized)
    ```
    """

    def __init__(
        self,
        code_dim,
        num_tokens,
        text_dim,
        vocabulary_size,
        sentence_dim=None,
        sequence_length=30,
        vit_layers=2,
        vit_heads=1,
        decoder_layers=2,
        decoder_intermediate_dim=512,
        dropout=0.1,
        mtp_weight=1.0,
        keep_mask_features=True,
        label_smoothing=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        code_dim = check_int("code_dim", code_dim)
        num_tokens = check_int("num_tokens", num_tokens)
        text_dim = check_int("text_dim", text_dim)
        vocabulary_size = check_int("vocabulary_size", vocabulary_size)
        sequence_length = check_int("sequence_length", sequence_length)
        sentence_dim = sentence_dim or text_dim
        self.code_dim = code_dim
        self.num_tokens = num_tokens
        self.text_dim = text_dim
        self.vocabulary_size = vocabulary_size
        self.sentence_dim = int(sentence_dim)
        self.sequence_length = sequence_length
        self.vit_layers = vit_layers
        self.vit_heads = vit_heads
        self.decoder_layers = decoder_layers
        self.decoder_intermediate_dim = decoder_intermediate_dim
        self.dropout = float(dropout)
        self.mtp_weight = float(mtp_weight)
        self.keep_mask_features = bool(keep_mask_features)
        self.label_smoothing = float(label_smoothing)
        self.seed = seed

        self.code_transformer = CodeTransformer(
            width=code_dim,
            output_dim=text_dim,
            num_tokens=num_tokens,
            num_layers=vit_layers,
            num_heads=vit_heads,
            name="code_transformer",
        )
        self.projection = None
        if self.sentence_dim != text_dim:
            self.projection = keras.layers.Dense(
                self.sentence_dim, use_bias=False, name="projection"
            )
        self.gsa = GlobalSemanticAlignment(
            symmetric=True, learnable_temperature=True, name="gsa"
        )
        self.mtp = MaskedTextDecoder(
            hidden_dim=text_dim,
            vocabulary_size=vocabulary_size,
            num_layers=decoder_layers,
            intermediate_dim=decoder_intermediate_dim,
            dropout=dropout,
            sequence_length=sequence_length,
            self_attention_mask=True,
            label_smoothing=label_smoothing,
            seed=seed,
            name="mtp",
        )
        self.add_token_embeddings()

    def build(self, input_shape=None):
        if self.built:
            return
        grid = (None, self.num_tokens, self.code_dim)
        self.code_transformer.build(grid)
        if self.projection is not None:
            self.projection.build((None, self.text_dim))
        self.gsa.build((None, self.sentence_dim))
        self.mtp.build(
            (None, self.sequence_length, self.text_dim),
            (None, 1 + self.num_tokens, self.text_dim),
        )
        if self.keep_mask_features:
            # Unused then: freeze so optimizers do not warn about it.
            self.mtp.mask_vectors.trainable = False
        self.built = True

    def _tokens(self, quantized, training=False):
        quantized = ops.stop_gradient(ops.cast(quantized, "float32"))
        return self.code_transformer(quantized, training=training)

    def _embedding(self, tokens):
        embedding = tokens[:, 0]
        if self.projection is not None:
            embedding = self.projection(embedding)
        return embedding

    def _decoder_hidden(self, features, padding_mask, mask, memory, training):
        # The decoder without its vocabulary head, so training can score
        # only the masked positions (the (B, L, V) logits over a 30k
        # vocabulary would dominate the probe's cost). By default the
        # [MASK] token's own text feature is kept instead of a learned mask
        # vector; either way the answer is not visible.
        return self.mtp.hidden_states(
            features,
            padding_mask,
            mask,
            memory,
            training=training,
            use_mask_vectors=not self.keep_mask_features,
        )

    def call(self, inputs, training=False):
        """Returns `{"gsa_loss", "mtp_loss"}` for a batch dict.

        `inputs`: `quantized` `(B, h, w, D)`, `sentence_feature` `(B, E)`,
        `masked_features` `(B, L, text_dim)` (features of the masked
        caption), `padding_mask` `(B, L)`, `mask` `(B, L)`, `token_ids`
        `(B, L)`, and the masked positions gathered into `M` slots:
        `slots` int `(B, M)` and `slot_valid` bool `(B, M)` (see
        `mask_slots`). The masked-token loss is the decoder's (optionally
        label-smoothed) cross-entropy over the valid slots, i.e. over the
        masked tokens.
        """
        tokens = self._tokens(inputs["quantized"], training=training)
        gsa_loss = self.gsa(self._embedding(tokens), inputs["sentence_feature"])
        hidden = self._decoder_hidden(
            inputs["masked_features"],
            inputs["padding_mask"],
            inputs["mask"],
            tokens,
            training,
        )
        slots = ops.cast(inputs["slots"], "int32")
        hidden = ops.take_along_axis(hidden, slots[..., None], axis=1)
        logits = self.mtp.head(
            hidden, ops.convert_to_tensor(self.token_embeddings)
        )
        targets = ops.take_along_axis(
            ops.cast(inputs["token_ids"], "int32"), slots, axis=1
        )
        valid = inputs["slot_valid"]
        mtp_loss = self.mtp.loss(logits, targets, valid, valid)
        return {"gsa_loss": gsa_loss, "mtp_loss": mtp_loss}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        return y_pred["gsa_loss"] + self.mtp_weight * y_pred["mtp_loss"]

    def embed_image(self, quantized):
        """L2-normalised retrieval embeddings `(B, sentence_dim)`."""
        embedding = self._embedding(self._tokens(quantized))
        return l2_normalize(ops.cast(embedding, "float32"))

    def visual_tokens(self, quantized):
        """Per-position code-transformer outputs `(B, N, text_dim)`."""
        return self._tokens(quantized)[:, 1:]

    def predict_masked(self, quantized, masked_features, padding_mask, mask):
        """Logits `(B, L, vocabulary_size)` at every position (dropout off)."""
        hidden = self._decoder_hidden(
            masked_features, padding_mask, mask, self._tokens(quantized), False
        )
        return self.mtp.head(
            hidden, ops.convert_to_tensor(self.token_embeddings)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "code_dim": self.code_dim,
                "num_tokens": self.num_tokens,
                "text_dim": self.text_dim,
                "vocabulary_size": self.vocabulary_size,
                "sentence_dim": self.sentence_dim,
                "sequence_length": self.sequence_length,
                "vit_layers": self.vit_layers,
                "vit_heads": self.vit_heads,
                "decoder_layers": self.decoder_layers,
                "decoder_intermediate_dim": self.decoder_intermediate_dim,
                "dropout": self.dropout,
                "mtp_weight": self.mtp_weight,
                "keep_mask_features": self.keep_mask_features,
                "label_smoothing": self.label_smoothing,
                "seed": self.seed,
            }
        )
        return config

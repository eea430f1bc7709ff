"""LG-VQ language guidance: the three text losses around a quantized grid."""

import keras
from keras import ops

from keras_lgvq.layers.guidance.code_transformer import CodeTransformer
from keras_lgvq.layers.guidance.global_semantic_alignment import GlobalSemanticAlignment
from keras_lgvq.layers.guidance.masked_text_decoder import MaskedTextDecoder
from keras_lgvq.layers.guidance.relationship_alignment import RelationshipAlignment
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number
from keras_lgvq.utils.validation import check_text_batch

TEXT_KEYS = ("token_ids", "padding_mask", "token_features", "sentence_feature")


@keras.saving.register_keras_serializable(package="keras_lgvq")
class LanguageGuidance(keras.layers.Layer):
    """LG-VQ's language guidance: GSA, MTP and RAS losses on a code grid.

    Attach it to any VQ model: feed it the **straight-through** quantized
    grid `z + stop_gradient(z_q - z)` and the frozen text prior's outputs,
    and add `outputs["loss"] = alpha * gsa + beta * mtp + gamma * ras` to the
    generator loss (LG-VQ spec §6). Because all three losses consume the
    straight-through grid, they reach the encoder but give the codebook no
    gradient (spec §9 item 5), exactly as in the official code.

    Components (spec §3-§5):

    - `CodeTransformer`: a CLIP-style ViT of width `code_dim` over the grid,
      projected to `text_dim`. Its CLS output is the global image embedding,
      its other outputs the visual tokens; all `1 + N` are the MTP memory.
    - `GlobalSemanticAlignment` (L_gsa): InfoNCE between the CLS output and
      the sentence feature. When `sentence_dim != text_dim` (a prior whose
      sentence feature is not in the token-feature width), the CLS output
      goes through an extra bias-free `Dense(sentence_dim)`
      (~ N(0, text_dim^-0.5), like CLIP's `text_projection`) before GSA and
      in `embed_image`; with CLIP (512/512) and MiniLM (384/384) there is
      none, as in the official code.
    - `MaskedTextDecoder` (L_mtp): samples the mask, decodes the masked
      token features against the code tokens, label-smoothed CE.
    - `RelationshipAlignment` (L_ras): code-code vs word-word cosine
      relations.

    Flags for the official code's bugs (spec §9); all default to faithful:

    - `mtp_self_attention_mask`: mask padding keys in the MTP decoder
      self-attention (official: no mask, because of a shape bug).
    - `mtp_leak_free`: the official MTP feeds features of the *unmasked*
      caption, which leak the masked words through CLIP's contextual
      features. With this flag the masked ids are replaced by
      `mask_token_id` and `text_encoder(masked_ids, padding_mask)
      ["token_features"]` is recomputed, so the decoder cannot read the
      answer. It therefore needs the text encoder at call time and cannot
      run on cached features. GSA and RAS still use the unmasked features.
    - `gsa_symmetric`, `gsa_learnable_temperature`: two-directional InfoNCE
      and a CLIP-style learnable logit scale (official: image-to-text only,
      τ = 1).

    Data parallelism (`tf.distribute`; JAX's `keras.distribution` and one
    device always see the global batch): by default the batch-level terms
    span the **global** batch, so 2 replicas x B/2 make the update of
    1 x B. `global_batch_contrastive` gathers the InfoNCE negatives from
    every replica; `global_batch_masking` draws one mask ratio and the
    token mask for the global batch and normalises L_mtp by its masked-token
    count. Set either to `False` for what per-GPU DDP code (the official
    Lightning code on several GPUs) computes: in-replica negatives, masks
    drawn and losses normalised per replica. L_ras is a mean over equal
    per-replica shares and needs no flag.

    Cost of the masked-token head: in training the MTP head scores only
    the masked positions (a static buffer of
    `ceil(mtp_max_masked_fraction * B * L)` rows; a batch with more masked
    tokens takes the full path), not all `B x L x V` logits; the loss and
    gradients are the same (`MaskedTextDecoder.scored_loss`).
    `mtp_full_logits=True` restores the full computation, and
    `mtp_vocabulary_subset` restricts the training softmax to given token
    ids (an approximation, off by default; see `MaskedTextDecoder`).

    Text inputs are checked (`keras_lgvq.utils.validation.check_text_batch`):
    ids in `[0, vocabulary_size)`, at most `sequence_length` tokens, and a
    padding mask that is a prefix of ones with at least one real token per
    row; a ValueError names the problem.

    Args:
        code_dim: int. Channel width of the quantized grid (codebook dim).
        text_dim: int. Width of the per-token text features and of the
            token-embedding matrix (512 for CLIP ViT-B/32).
        vocabulary_size: int. Text vocabulary size (49408 for CLIP).
        num_tokens: int. Grid positions `N = h * w` (256 for f=16 at 256 px).
        sentence_dim: int or `None`. Width of the sentence feature; defaults
            to `text_dim`.
        alpha: float. Weight of L_gsa. Defaults to 1e-3.
        beta: float. Weight of L_mtp. Defaults to 1e-3.
        gamma: float. Weight of L_ras. Defaults to 1e-3.
        vit_layers: int. Code-transformer blocks. Defaults to 2.
        vit_heads: int. Code-transformer heads. Defaults to 1.
        decoder_layers: int. MTP decoder layers. Defaults to 2.
        decoder_heads: int. MTP decoder heads. Defaults to 1.
        decoder_intermediate_dim: int. MTP FFN width. Defaults to 512.
        dropout: float. MTP decoder dropout. Defaults to 0.1.
        sequence_length: int. Caption length `L`. Defaults to 30.
        mtp_self_attention_mask: bool. See above. Defaults to `False`.
        mtp_leak_free: bool. See above. Defaults to `False`.
        mask_token_id: int or `None`. Id written at masked positions when
            `mtp_leak_free=True` (required then).
        gsa_symmetric: bool. See above. Defaults to `False`.
        gsa_learnable_temperature: bool. See above. Defaults to `False`.
        gsa_mask_duplicate_captions: bool. Leave in-batch candidates whose
            caption (token ids) equals the anchor's out of the InfoNCE
            denominator: with class-style captions they are false
            negatives (`GlobalSemanticAlignment(mask_duplicate_captions)`;
            not in the paper). Defaults to `False`.
        seed: int or `None`. Seed of the MTP mask sampler and dropout.
        global_batch_contrastive: bool. InfoNCE negatives from the global
            batch under `tf.distribute` (see above). Defaults to `True`.
        global_batch_masking: bool. One MTP mask draw and normalisation for
            the global batch under `tf.distribute`. Defaults to `True`.
        mtp_max_masked_fraction: float in (0, 1] or `None`. Size of the
            MTP head's static buffer of scored positions as a fraction of
            `B x L` (speed only, never the value). Defaults to `None`
            (the decoder's `mask_ratio_max`, 0.3).
        mtp_vocabulary_subset: sequence of int ids or `None`. Restrict the
            MTP training softmax to these ids, e.g. the training captions'
            ids from `keras_lgvq.utils.caption_vocabulary.
            caption_token_ids` (an approximation of the paper's loss).
            Defaults to `None` (the whole vocabulary).
        mtp_full_logits: bool. Compute the MTP loss from all
            `(B, L, vocabulary_size)` logits (the unoptimised path, for
            benchmarks). Defaults to `False`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        quantized: float tensor `(B, h, w, code_dim)` or `(B, N, code_dim)`,
            the straight-through quantized grid.
        text: dict with `token_ids` int32 `(B, L)`, `padding_mask` bool
            `(B, L)`, `token_features` float `(B, L, text_dim)` and
            `sentence_feature` float `(B, sentence_dim)`; start token at
            position 0, end token at `sum(padding_mask) - 1`.
        token_embeddings: float tensor `(vocabulary_size, text_dim)`, the
            frozen token-embedding matrix (never a weight of this layer).
        text_encoder: callable or `None`. Needed only with
            `mtp_leak_free=True`: `text_encoder(token_ids, padding_mask)`
            must return a dict with `token_features`.
        training: bool. Enables decoder dropout.
        return_mtp_logits: bool. Also return the MTP logits of every
            position (`B x L x vocabulary_size`, costly; the loss never
            needs them). Defaults to `False`.

    Returns:
        Dict with scalar `loss`, `gsa_loss`, `mtp_loss`, `ras_loss`,
        `image_embedding` `(B, sentence_dim)` (unnormalised CLS output, for
        retrieval) and `mtp_mask` bool `(B, L)`; with `return_mtp_logits`
        also `mtp_logits` float32 `(B, L, vocabulary_size)`.

    Examples:

    Attach to a VQGAN (CUB weights α = β = γ = 1e-3):

    ```python
    backbone = keras_lgvq.models.VQGANBackbone()  # f=16, K=1024, D=256
    guidance = keras_lgvq.layers.guidance.language_guidance.LanguageGuidance(
        code_dim=256, text_dim=512, vocabulary_size=49408, num_tokens=16 * 16
    )
    prior = keras_lgvq.text_priors.get("clip")  # frozen; or cached features
    token_ids, padding_mask = prior.tokenize(captions)
    text = dict(prior(token_ids, padding_mask), token_ids=token_ids)
    # In the generator step:
    outputs = backbone.encode_decode(images, training=True)
    lg = guidance(
        outputs["quantized"],  # straight-through grid (B, 16, 16, 256)
        text,
        prior.token_embeddings,
        training=True,
    )
    generator_loss = rec_loss + outputs["loss"] + lg["loss"]
    ```

    With the CVQ quantizer only the backbone's quantizer changes:

    ```python
    cvq = keras_lgvq.layers.quantizers.vector_quantizer.VectorQuantizer(
        1024, 256, reinit="cvq", contrastive_weight=1.0
    )
    backbone = keras_lgvq.models.VQGANBackbone(quantizer=cvq)
    ```

    Retrieval and masked-word evaluation:

    ```python
    image_vectors = guidance.embed_image(quantized)  # L2-normalised
    logits = guidance.predict_masked(quantized, text, mask, token_embeddings)
    ```
    """

    def __init__(
        self,
        code_dim,
        text_dim,
        vocabulary_size,
        num_tokens,
        sentence_dim=None,
        alpha=1e-3,
        beta=1e-3,
        gamma=1e-3,
        vit_layers=2,
        vit_heads=1,
        decoder_layers=2,
        decoder_heads=1,
        decoder_intermediate_dim=512,
        dropout=0.1,
        sequence_length=30,
        mtp_self_attention_mask=False,
        mtp_leak_free=False,
        mask_token_id=None,
        gsa_symmetric=False,
        gsa_learnable_temperature=False,
        gsa_mask_duplicate_captions=False,
        seed=None,
        global_batch_contrastive=True,
        global_batch_masking=True,
        mtp_max_masked_fraction=None,
        mtp_vocabulary_subset=None,
        mtp_full_logits=False,
        **kwargs,
    ):
        # Sublayers choose their own precision (losses and logits float32).
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if sentence_dim is None:
            sentence_dim = text_dim
        for name, value in (
            ("code_dim", code_dim),
            ("text_dim", text_dim),
            ("vocabulary_size", vocabulary_size),
            ("num_tokens", num_tokens),
            ("sentence_dim", sentence_dim),
        ):
            check_int(name, value)
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            # NaN compares False with 0, so a plain `< 0` let it through.
            check_number(name, value, 0.0)
        if mtp_leak_free:
            if (
                not isinstance(mask_token_id, int)
                or isinstance(mask_token_id, bool)
                or not 0 <= mask_token_id < vocabulary_size
            ):
                raise ValueError(
                    "`mtp_leak_free=True` needs `mask_token_id`, an int in "
                    f"[0, vocabulary_size={vocabulary_size}). Received: "
                    f"mask_token_id={mask_token_id}"
                )

        # === Config ===
        self.code_dim = code_dim
        self.text_dim = text_dim
        self.vocabulary_size = vocabulary_size
        self.num_tokens = num_tokens
        self.sentence_dim = sentence_dim
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.vit_layers = vit_layers
        self.vit_heads = vit_heads
        self.decoder_layers = decoder_layers
        self.decoder_heads = decoder_heads
        self.decoder_intermediate_dim = decoder_intermediate_dim
        self.dropout = float(dropout)
        self.sequence_length = sequence_length
        self.mtp_self_attention_mask = bool(mtp_self_attention_mask)
        self.mtp_leak_free = bool(mtp_leak_free)
        self.mask_token_id = mask_token_id
        self.gsa_symmetric = bool(gsa_symmetric)
        self.gsa_learnable_temperature = bool(gsa_learnable_temperature)
        self.gsa_mask_duplicate_captions = bool(gsa_mask_duplicate_captions)
        self.seed = seed
        self.global_batch_contrastive = bool(global_batch_contrastive)
        self.global_batch_masking = bool(global_batch_masking)

        # === Layers ===
        self.code_transformer = CodeTransformer(
            width=code_dim,
            output_dim=text_dim,
            num_tokens=num_tokens,
            num_layers=vit_layers,
            num_heads=vit_heads,
            dtype=self.dtype_policy,
            name="code_transformer",
        )
        self.gsa_projection = None
        if sentence_dim != text_dim:
            self.gsa_projection = keras.layers.Dense(
                sentence_dim,
                use_bias=False,
                kernel_initializer=keras.initializers.RandomNormal(
                    stddev=text_dim**-0.5
                ),
                dtype=self.dtype_policy,
                name="gsa_projection",
            )
        self.gsa = GlobalSemanticAlignment(
            symmetric=gsa_symmetric,
            learnable_temperature=gsa_learnable_temperature,
            global_batch=self.global_batch_contrastive,
            mask_duplicate_captions=self.gsa_mask_duplicate_captions,
            dtype=self.dtype_policy,
            name="gsa",
        )
        self.mtp = MaskedTextDecoder(
            hidden_dim=text_dim,
            vocabulary_size=vocabulary_size,
            num_layers=decoder_layers,
            num_heads=decoder_heads,
            intermediate_dim=decoder_intermediate_dim,
            dropout=dropout,
            sequence_length=sequence_length,
            self_attention_mask=mtp_self_attention_mask,
            seed=seed,
            global_batch=self.global_batch_masking,
            max_masked_fraction=mtp_max_masked_fraction,
            vocabulary_subset=mtp_vocabulary_subset,
            full_logits=mtp_full_logits,
            dtype=self.dtype_policy,
            name="mtp",
        )
        self.ras = RelationshipAlignment(
            text_dim, dtype=self.dtype_policy, name="ras"
        )

    def build(self, quantized_shape):
        self.code_transformer.build(quantized_shape)
        if self.gsa_projection is not None:
            self.gsa_projection.build((None, self.text_dim))
        self.gsa.build((None, self.sentence_dim))
        self.mtp.build(
            (None, self.sequence_length, self.text_dim),
            (None, 1 + self.num_tokens, self.text_dim),
        )
        self.ras.build((None, self.num_tokens, self.code_dim))

    # --- helpers -----------------------------------------------------------

    def _check_text(self, text):
        if not isinstance(text, dict):
            raise ValueError(
                f"`text` must be a dict with keys {TEXT_KEYS}. Received: "
                f"{type(text).__name__}"
            )
        missing = [k for k in TEXT_KEYS if k not in text]
        if missing:
            raise ValueError(
                f"`text` is missing keys {missing}; expected {TEXT_KEYS}."
            )
        if text["sentence_feature"].shape[-1] != self.sentence_dim:
            raise ValueError(
                "`text['sentence_feature']` must have last dimension "
                f"sentence_dim={self.sentence_dim}. Received: shape="
                f"{text['sentence_feature'].shape}"
            )
        check_text_batch(
            text["token_ids"],
            text["padding_mask"],
            self.vocabulary_size,
            self.sequence_length,
        )

    def _global_embedding(self, tokens):
        embedding = tokens[:, 0]
        if self.gsa_projection is not None:
            embedding = self.gsa_projection(embedding)
        return embedding

    def _flatten(self, quantized):
        return ops.reshape(quantized, (-1, self.num_tokens, self.code_dim))

    def _mtp_features(self, text, mask, text_encoder):
        if not self.mtp_leak_free:
            return text["token_features"]
        if text_encoder is None:
            raise ValueError(
                "`mtp_leak_free=True` re-encodes the masked caption, so "
                "`text_encoder` must be passed to this call (a callable "
                "`text_encoder(token_ids, padding_mask)` returning a dict "
                "with 'token_features'). Cached text features come from the "
                "unmasked caption and would leak the masked tokens; use "
                "`mtp_leak_free=False` with cached features."
            )
        token_ids = ops.cast(text["token_ids"], "int32")
        masked_ids = ops.where(
            ops.cast(mask, "bool"),
            ops.full_like(token_ids, self.mask_token_id),
            token_ids,
        )
        outputs = text_encoder(masked_ids, text["padding_mask"])
        return ops.stop_gradient(outputs["token_features"])

    # --- public API ----------------------------------------------------------

    def call(
        self,
        quantized,
        text,
        token_embeddings,
        text_encoder=None,
        training=False,
        return_mtp_logits=False,
    ):
        self._check_text(text)
        token_ids = text["token_ids"]
        padding_mask = ops.cast(text["padding_mask"], "bool")

        tokens = self.code_transformer(quantized, training=training)
        image_embedding = self._global_embedding(tokens)
        gsa_loss = self.gsa(
            image_embedding, text["sentence_feature"], token_ids=token_ids
        )

        mask = self.mtp.sample_mask(token_ids, padding_mask)
        features = self._mtp_features(text, mask, text_encoder)
        hidden = self.mtp.hidden_states(
            features, padding_mask, mask, memory=tokens, training=training
        )
        # Scores the masked positions only (the full B x L x V logits are
        # built only when asked for).
        mtp_loss = self.mtp.scored_loss(
            hidden, token_ids, mask, padding_mask, token_embeddings
        )

        ras_loss = self.ras(
            self._flatten(quantized),
            tokens[:, 1:],
            text["token_features"],
            padding_mask,
        )
        loss = (
            self.alpha * gsa_loss + self.beta * mtp_loss + self.gamma * ras_loss
        )
        outputs = {
            "loss": loss,
            "gsa_loss": gsa_loss,
            "mtp_loss": mtp_loss,
            "ras_loss": ras_loss,
            "image_embedding": ops.cast(image_embedding, "float32"),
            "mtp_mask": mask,
        }
        if return_mtp_logits:
            outputs["mtp_logits"] = self.mtp.head(hidden, token_embeddings)
        return outputs

    def embed_image(self, quantized):
        """L2-normalised global image embedding `(B, sentence_dim)`.

        Args:
            quantized: float tensor `(B, h, w, code_dim)` or
                `(B, N, code_dim)`.

        Returns:
            float32 tensor of unit vectors, comparable by dot product with
            L2-normalised sentence features (image-text retrieval).
        """
        tokens = self.code_transformer(quantized, training=False)
        embedding = ops.cast(self._global_embedding(tokens), "float32")
        sq_norm = ops.sum(ops.square(embedding), axis=-1, keepdims=True)
        return embedding * ops.rsqrt(sq_norm + 1e-12)

    def predict_masked(
        self, quantized, text, mask, token_embeddings, text_encoder=None
    ):
        """MTP logits for a given mask (Mask-1 / Mask-3 recall evaluation).

        Args:
            quantized: float tensor, the quantized grid.
            text: dict as in `call`.
            mask: bool tensor `(B, L)`, True at the tokens to predict.
            token_embeddings: float tensor `(vocabulary_size, text_dim)`.
            text_encoder: callable or `None`; required when
                `mtp_leak_free=True`, as in `call`.

        Returns:
            float32 logits `(B, L, vocabulary_size)` (dropout off).
        """
        self._check_text(text)
        tokens = self.code_transformer(quantized, training=False)
        features = self._mtp_features(text, mask, text_encoder)
        return self.mtp(
            features,
            ops.cast(text["padding_mask"], "bool"),
            mask,
            memory=tokens,
            token_embeddings=token_embeddings,
            training=False,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "code_dim": self.code_dim,
                "text_dim": self.text_dim,
                "vocabulary_size": self.vocabulary_size,
                "num_tokens": self.num_tokens,
                "sentence_dim": self.sentence_dim,
                "alpha": self.alpha,
                "beta": self.beta,
                "gamma": self.gamma,
                "vit_layers": self.vit_layers,
                "vit_heads": self.vit_heads,
                "decoder_layers": self.decoder_layers,
                "decoder_heads": self.decoder_heads,
                "decoder_intermediate_dim": self.decoder_intermediate_dim,
                "dropout": self.dropout,
                "sequence_length": self.sequence_length,
                "mtp_self_attention_mask": self.mtp_self_attention_mask,
                "mtp_leak_free": self.mtp_leak_free,
                "mask_token_id": self.mask_token_id,
                "gsa_symmetric": self.gsa_symmetric,
                "gsa_learnable_temperature": self.gsa_learnable_temperature,
                "gsa_mask_duplicate_captions": (
                    self.gsa_mask_duplicate_captions
                ),
                "seed": self.seed,
                "global_batch_contrastive": self.global_batch_contrastive,
                "global_batch_masking": self.global_batch_masking,
                "mtp_max_masked_fraction": self.mtp.max_masked_fraction,
                "mtp_vocabulary_subset": (
                    None
                    if self.mtp.vocabulary_subset is None
                    else list(self.mtp.vocabulary_subset)
                ),
                "mtp_full_logits": self.mtp.full_logits,
            }
        )
        return config

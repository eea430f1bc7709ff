"""LG-VQ: a VQ tokenizer trained with language guidance (NeurIPS 2024)."""

import keras
import numpy as np
from keras import ops

from keras_lgvq.layers.guidance.language_guidance import LanguageGuidance
from keras_lgvq.models.vqgan.vqgan import VQGAN
from keras_lgvq.models.vqgan.vqgan import _deserialize
from keras_lgvq.models.vqgan.vqgan import _serialize
from keras_lgvq.utils.tensors import l2_normalize
from keras_lgvq.utils.token_embeddings import TokenEmbeddingsMixin
from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX
from keras_lgvq.utils.validation import check_text_batch
from keras_lgvq.utils.validation import text_batch_problems


@keras.saving.register_keras_serializable(package="keras_lgvq")
class LGVQ(TokenEmbeddingsMixin, VQGAN):
    """A VQGAN (or CVQ) tokenizer with LG-VQ's three text losses.

    The generator loss of `keras_lgvq.models.VQGAN` gets
    `alpha * L_gsa + beta * L_mtp + gamma * L_ras` from a
    `keras_lgvq.layers.LanguageGuidance` attached to the backbone's
    straight-through quantized grid; the text comes from a frozen text prior
    run on the fly, or from cached features in the batch
    (`token_features`, `sentence_feature`), in which case the train step
    never runs the text encoder. Each text loss is logged separately.

    Batches are dicts with `images` and either `captions` (tokenized by the
    prior when the dataset is prepared), `token_ids` + `padding_mask`, or
    cached features. The frozen token-embedding matrix used by the masked
    text head is kept as a non-trainable weight (`token_embeddings`), so a
    model trained from cached features needs no text encoder at all. It
    starts as zeros: `fit` refuses to run until it is set (a text prior
    sets it; without one call `set_token_embeddings`), since the masked
    text loss cannot learn from an all-zero table.

    Caption batches are checked before any step uses them: ids in
    `[0, vocabulary_size)`, at most `sequence_length` tokens, a padding
    mask that is a prefix of ones with a real token in every row. In-memory
    arrays are checked by `fit` / `evaluate`, `tf.data` batches in the
    input pipeline (host side, so also under `jax.jit`), and eager or
    TensorFlow-graph steps at the model boundary; each failure is a
    ValueError naming the problem.

    Under data parallelism (`keras_lgvq.backend.distribution_scope`) the
    InfoNCE negatives, the mask draw and the masked-token normalisation
    span the global batch (`LanguageGuidance`'s `global_batch_contrastive`
    and `global_batch_masking`, both on by default).

    Args:
        backbone: `keras_lgvq.models.VQGANBackbone` or compatible.
        text_prior: `keras_lgvq.text_priors.TextPrior`, a name/path for
            `keras_lgvq.text_priors.get`, or None (cached features only;
            then `text_dim`, `vocabulary_size` are required and the token
            embeddings must be set with `set_token_embeddings`).
        guidance: `keras_lgvq.layers.LanguageGuidance`, or a dict of its
            keyword arguments (alpha, beta, gamma, bug-fix flags, ...); the
            dimensions are filled in from the backbone and text prior.
        text_dim: int. Token-feature width when there is no prior.
        sentence_dim: int. Sentence-feature width when there is no prior.
        vocabulary_size: int. Text vocabulary size when there is no prior.
        sequence_length: int. Caption length in tokens (LG-VQ: 30).
        **kwargs: `keras_lgvq.models.VQGAN` arguments (discriminator,
            perceptual loss, GAN weights).

    Examples:

    ```python
    model = keras_lgvq.LGVQ.from_preset("scenes")
    model.compile(learning_rate=1e-3)
    ds = keras_lgvq.datasets.make_dataset(
        "scenes", split="train", batch_size=16, text_prior=model.text_prior)
    model.fit(ds, epochs=1)
    model.save("scenes_lgvq.keras")
    ```
    """

    def __init__(
        self,
        backbone,
        text_prior=None,
        guidance=None,
        text_dim=None,
        sentence_dim=None,
        vocabulary_size=None,
        sequence_length=30,
        **kwargs,
    ):
        super().__init__(backbone, **kwargs)
        if isinstance(text_prior, str):
            from keras_lgvq import text_priors

            text_prior = text_priors.get(
                text_prior, sequence_length=sequence_length
            )
        text_prior = _deserialize(text_prior)
        if text_prior is not None:
            text_dim = text_prior.hidden_dim
            sentence_dim = text_prior.sentence_dim
            vocabulary_size = text_prior.vocabulary_size
            sequence_length = text_prior.sequence_length
        elif text_dim is None or vocabulary_size is None:
            raise ValueError(
                "Without a `text_prior`, LGVQ needs `text_dim` and "
                "`vocabulary_size` (the cached features' dimensions)."
            )
        sentence_dim = sentence_dim or text_dim
        self.text_prior = text_prior
        self.text_dim = int(text_dim)
        self.sentence_dim = int(sentence_dim)
        self.vocabulary_size = int(vocabulary_size)
        self.sequence_length = int(sequence_length)

        if isinstance(guidance, dict) and "class_name" in guidance:
            guidance = keras.layers.deserialize(guidance)
        if guidance is None or isinstance(guidance, dict):
            options = dict(guidance or {})
            if text_prior is not None:
                options.setdefault("mask_token_id", text_prior.mask_token_id)
            guidance = LanguageGuidance(
                code_dim=self.backbone.embedding_dim,
                text_dim=self.text_dim,
                sentence_dim=self.sentence_dim,
                vocabulary_size=self.vocabulary_size,
                num_tokens=self.backbone.grid_size**2,
                sequence_length=self.sequence_length,
                name="guidance",
                **options,
            )
        self.guidance = guidance
        self.add_token_embeddings()
        if text_prior is not None:
            self.set_token_embeddings(text_prior.token_embeddings)

    # === Logging ===

    def log_names(self):
        return super().log_names() + [
            "lg_loss",
            "gsa_loss",
            "mtp_loss",
            "ras_loss",
        ]

    # === Training hooks ===

    def _text_inputs(self, batch):
        if "token_ids" not in batch or "padding_mask" not in batch:
            raise ValueError(
                "LGVQ batches need text: `token_ids` and `padding_mask` "
                "(from `make_dataset(..., text_prior=...)` or captions "
                "tokenized by the model's prior), optionally with cached "
                f"`token_features` / `sentence_feature`. Got {sorted(batch)}."
            )
        # Before the prior or any lookup sees them: an out-of-range id is
        # clamped silently by JAX's gather.
        check_text_batch(
            batch["token_ids"],
            batch["padding_mask"],
            self.vocabulary_size,
            self.sequence_length,
        )
        token_ids = ops.cast(batch["token_ids"], "int32")
        padding_mask = ops.cast(batch["padding_mask"], "bool")
        if "token_features" in batch and "sentence_feature" in batch:
            token_features = batch["token_features"]
            sentence_feature = batch["sentence_feature"]
        elif self.text_prior is None:
            raise ValueError(
                "This LGVQ has no text prior, so batches must carry cached "
                "`token_features` and `sentence_feature` (see "
                "keras_lgvq.text_priors.build_feature_cache)."
            )
        else:
            out = self.text_prior(token_ids, padding_mask)
            token_features = out["token_features"]
            sentence_feature = out["sentence_feature"]
        return {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "token_features": ops.stop_gradient(
                ops.cast(token_features, "float32")
            ),
            "sentence_feature": ops.stop_gradient(
                ops.cast(sentence_feature, "float32")
            ),
        }

    def _guidance_logs(self, batch, quantized, training):
        out = self.guidance(
            quantized,
            self._text_inputs(batch),
            token_embeddings=ops.convert_to_tensor(self.token_embeddings),
            text_encoder=self.text_prior,
            training=training,
        )
        logs = {
            "lg_loss": out["loss"],
            "gsa_loss": out["gsa_loss"],
            "mtp_loss": out["mtp_loss"],
            "ras_loss": out["ras_loss"],
        }
        return out["loss"], logs

    def _extra_generator_losses(self, batch, outputs, training):
        return self._guidance_logs(batch, outputs["quantized"], training)

    def _extra_evaluation_losses(self, batch, outputs):
        # Image-only evaluation batches are fine: text losses need text.
        if "token_ids" not in batch:
            return 0.0, {}
        return self._guidance_logs(batch, outputs["quantized"], False)

    def _check_ready_to_fit(self):
        embeddings = ops.convert_to_numpy(self.token_embeddings)
        if not np.any(embeddings):
            raise ValueError(
                "This LGVQ's `token_embeddings` are all zeros: they were "
                "never set, so the masked-text head would score every token "
                "alike and L_mtp would stay at ln(vocabulary_size). Call "
                "`model.set_token_embeddings(prior.token_embeddings)` with "
                "the text prior the captions were tokenized with (a model "
                "built with `text_prior=` does this itself)."
            )
        if not np.all(np.isfinite(embeddings)):
            raise ValueError(
                "This LGVQ's `token_embeddings` hold NaN or Inf values; set "
                "them from the text prior with `set_token_embeddings`."
            )

    def _check_host_data(self, x):
        super()._check_host_data(x)
        if isinstance(x, dict) and "token_ids" in x:
            if "padding_mask" not in x:
                raise ValueError(
                    "Batches with `token_ids` also need `padding_mask`. "
                    f"Received keys {sorted(x)}."
                )
            ids = np.asarray(ops.convert_to_numpy(x["token_ids"]))
            if ids.ndim == 2 and ids.shape[1] > self.sequence_length:
                raise ValueError(
                    f"`token_ids` has length {ids.shape[1]}, more than "
                    f"sequence_length={self.sequence_length}."
                )
            problems = text_batch_problems(
                ids,
                np.asarray(ops.convert_to_numpy(x["padding_mask"])),
                self.vocabulary_size,
            )
            if problems:
                raise ValueError(TEXT_CHECK_PREFIX + " ".join(problems))

    def _build_extra(self, images):
        grid = self.backbone.grid_size
        if not self.guidance.built:
            self.guidance.build((None, grid, grid, self.backbone.embedding_dim))

    def _filter_inputs(self, x):
        import tensorflow as tf

        if (
            self.text_prior is not None
            and isinstance(x, tf.data.Dataset)
            and isinstance(x.element_spec, dict)
            and "captions" in x.element_spec
            and "token_ids" not in x.element_spec
        ):
            tokenize = self.text_prior.tokenize

            def add_tokens(batch):
                token_ids, padding_mask = tokenize(batch["captions"])
                return {
                    **batch,
                    "token_ids": token_ids,
                    "padding_mask": padding_mask,
                }

            x = x.map(add_tokens, num_parallel_calls=tf.data.AUTOTUNE)
        if (
            isinstance(x, tf.data.Dataset)
            and isinstance(x.element_spec, dict)
            and "token_ids" in x.element_spec
        ):
            from keras_lgvq.datasets.pipeline import validate_text_batch

            # Host side: runs in tf.data for every backend, so a batch that
            # a jitted step could not reject never reaches it.
            vocabulary_size = self.vocabulary_size
            sequence_length = self.sequence_length
            x = x.map(
                lambda batch: validate_text_batch(
                    batch, vocabulary_size, sequence_length
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        return super()._filter_inputs(x)

    # === Inference ===

    def embed_image(self, images):
        """L2-normalised global image embeddings (the GSA space)."""
        quantized = self.backbone.encode_decode(images)["quantized"]
        return self.guidance.embed_image(quantized)

    def embed_text(self, token_ids, padding_mask):
        """L2-normalised sentence features of the text prior."""
        if self.text_prior is None:
            raise ValueError("This LGVQ has no text prior to embed text.")
        out = self.text_prior(token_ids, padding_mask)
        return l2_normalize(ops.cast(out["sentence_feature"], "float32"))

    def _export_endpoints(self):
        endpoints = super()._export_endpoints()
        endpoints["embed_image"] = ("images", self.embed_image)
        return endpoints

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "text_prior": _serialize(self.text_prior),
                "guidance": keras.layers.serialize(self.guidance),
                "text_dim": self.text_dim,
                "sentence_dim": self.sentence_dim,
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
            }
        )
        return config

    @classmethod
    def _from_spec(cls, spec, text_prior="auto", **kwargs):
        if "guidance" not in spec or "text" not in spec:
            from keras_lgvq.models import presets

            guided = [
                name
                for name in presets.list_presets(cls.__name__)
                if "guidance" in presets.PRESETS[name]
            ]
            raise ValueError(
                "This preset has no language guidance (no `guidance` / "
                "`text` entries): build it with `VQGAN.from_preset` (or "
                f"`VQCT.from_preset`), or pick a preset with guidance for "
                f"{cls.__name__}: {guided}."
            )
        text = spec["text"]
        if text_prior == "auto":
            text_prior = _load_prior_or_warn(
                text["text_prior"], text["sequence_length"]
            )
        options = dict(spec["guidance"])
        options.update(kwargs.pop("guidance", None) or {})
        if (
            text_prior is None
            and options.get("mtp_leak_free")
            and "mask_token_id" in text
        ):
            # Built without its prior (asset missing): the preset records
            # the prior's [MASK] id so a leak-free MTP still builds.
            options.setdefault("mask_token_id", text["mask_token_id"])
        return super()._from_spec(
            spec,
            text_prior=text_prior,
            guidance=options,
            text_dim=text["text_dim"],
            sentence_dim=text["sentence_dim"],
            vocabulary_size=text["vocabulary_size"],
            sequence_length=text["sequence_length"],
            **kwargs,
        )


def _load_prior_or_warn(name, sequence_length):
    """The preset's text prior from local files only, or None with a warning.

    Offline first: a paper preset never downloads CLIP. It is used when a
    keras-hub or Hugging Face CLIP directory sits in the keras_lgvq cache
    under the preset's prior name (or `text_prior=` names a directory).
    """
    import os
    import warnings

    from keras_lgvq import text_priors
    from keras_lgvq.utils.cache import cache_dir

    source = name
    if name != "minilm":
        source = os.path.join(cache_dir("text_priors"), name)
    try:
        if name != "minilm" and not os.path.isdir(source):
            raise FileNotFoundError(f"no local copy at {source}")
        return text_priors.get(source, sequence_length=sequence_length)
    # Only a missing asset becomes the documented warning; a corrupt or
    # incompatible prior is an error the user must see.
    except FileNotFoundError as error:
        warnings.warn(
            f"The text prior {name!r} is not available offline, so this LGVQ "
            "is built without one: it can train from cached features after "
            "`set_token_embeddings`. To train on the fly, pass `text_prior=` "
            "a local CLIP or BERT directory, or put a keras-hub/Hugging Face "
            f"copy of it at {source}. Reason: {error}",
            stacklevel=3,
        )
        return None

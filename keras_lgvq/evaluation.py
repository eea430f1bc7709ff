"""Evaluate a VQ tokenizer: fidelity, codebook use and alignment probes.

The driver behind `recipes/evaluate.py` and `recipes/scenes_compare.py`.
Everything that does not depend on the model (images, captions, frozen
text features, the masks of the masked-word protocol) is computed once by
`prepare_split` and shared, so two tokenizers are scored on identical
inputs. `evaluate_model` then runs one tokenizer over the evaluation split
and returns a JSON-ready dict of every metric of `keras_lgvq.metrics` that
applies:

- fidelity: PSNR and SSIM (reconstructions clipped to [-1, 1]), LPIPS and
  rFID only when their ImageNet weights are on disk (otherwise recorded as
  unavailable, with the reason);
- codebook usage and perplexity over the whole evaluation split;
- alignment measured by **probes** trained on the model's frozen codes
  under a fixed budget (`AlignmentProbe`: a fresh code transformer with
  InfoNCE for image-text retrieval and a fresh masked text decoder for
  masked-word recall; linear probes for the scene attributes), so a
  tokenizer without language guidance is measured on equal terms;
- for an `LGVQ`, its own guidance heads beside the probes.
"""

import time

import keras
import numpy as np
from keras import ops

from keras_lgvq.layers.guidance.code_transformer import CodeTransformer
from keras_lgvq.layers.guidance.global_semantic_alignment import GlobalSemanticAlignment
from keras_lgvq.layers.guidance.masked_text_decoder import MaskedTextDecoder
from keras_lgvq.metrics.codebook_usage import CodebookUsage
from keras_lgvq.metrics.image_quality import PSNR
from keras_lgvq.metrics.image_quality import SSIM
from keras_lgvq.metrics.linear_probe import code_features
from keras_lgvq.metrics.linear_probe import linear_probe_accuracy
from keras_lgvq.metrics.masked_word_recall import masked_word_recall_at_1
from keras_lgvq.metrics.masked_word_recall import select_masked_positions
from keras_lgvq.metrics.relation_mse import code_word_relation_mse
from keras_lgvq.metrics.relation_mse import match_codes_to_words
from keras_lgvq.metrics.retrieval import image_to_text_recall
from keras_lgvq.metrics.retrieval import text_to_image_recall

# Rows per masked-word chunk. The Mask-1 / Mask-3 positions are drawn chunk
# by chunk from one seeded stream (as `masked_word_recall_at_1` does), so
# `prepare_split` and `evaluate_model` must chunk identically.
MASK_CHUNK = 32
# Last maskable position in the paper's protocol (official `select_tokenize`).
MASK_MAX_POSITION = 28
ATTRIBUTES = ("shape", "color", "size", "fill")
# MTP mask-ratio distribution (LG-VQ spec §4.1) for the probe's training masks.
_RATIO_MEAN, _RATIO_STD, _RATIO_MIN, _RATIO_MAX = 0.5, 0.1, 0.1, 0.3

DEFAULT_PROBE_CONFIG = dict(
    epochs=4,
    batch_size=32,
    learning_rate=1e-3,
    vit_layers=2,
    vit_heads=1,
    decoder_layers=2,
    decoder_intermediate_dim=512,
    dropout=0.1,
    linear_epochs=200,
    linear_learning_rate=1e-2,
    linear_grid=2,
    jit_compile="auto",
)


def _progbar(total, verbose, unit="images"):
    if not verbose or not total:
        return None
    return keras.utils.Progbar(total, verbose=1, unit_name=unit)


def _numpy(value):
    return np.asarray(ops.convert_to_numpy(value))


def _iterate(dataset):
    if hasattr(dataset, "as_numpy_iterator"):
        return dataset.as_numpy_iterator()
    return iter(dataset)


def _decode_strings(values):
    out = []
    for value in np.asarray(values).reshape(-1):
        out.append(
            value.decode("utf-8") if isinstance(value, bytes) else str(value)
        )
    return out


# === Shared, model-independent inputs ===


def _truncated_normal_ratios(rng, count):
    """Per-caption mask ratios from N(0.5, 0.1) truncated to [0.1, 0.3]."""
    from statistics import NormalDist

    dist = NormalDist(_RATIO_MEAN, _RATIO_STD)
    low, high = dist.cdf(_RATIO_MIN), dist.cdf(_RATIO_MAX)
    u = rng.uniform(low, high, size=count)
    ratios = np.array([dist.inv_cdf(float(x)) for x in u])
    return np.clip(ratios, _RATIO_MIN, _RATIO_MAX)


def _maskable(padding_mask):
    """Valid caption tokens that are neither the start nor the end token."""
    length = padding_mask.shape[1]
    positions = np.arange(length)[None, :]
    end = padding_mask.sum(axis=1, keepdims=True) - 1
    return padding_mask & (positions > 0) & (positions != end)


def sample_training_masks(padding_mask, seed=0):
    """MTP-style random masks for training a masked-word probe.

    Each caption gets a ratio drawn from the MTP distribution (normal
    (0.5, 0.1) truncated to [0.1, 0.3], LG-VQ spec §4.1) and each maskable
    token (not start, end or padding) is masked with that probability; a
    caption that draws no mask gets one random maskable token, so every row
    trains the decoder.

    Args:
        padding_mask: bool array `(N, L)`, True at real tokens.
        seed: int. Seed of the draw.

    Returns:
        bool array `(N, L)`, True at masked tokens.

    Examples:

    ```python
    mask = keras_lgvq.evaluation.sample_training_masks(padding_mask, seed=0)
    ```
    """
    padding_mask = np.asarray(padding_mask, bool)
    if padding_mask.ndim != 2:
        raise ValueError(
            "`padding_mask` must be a bool array (N, L). Received shape "
            f"{padding_mask.shape}"
        )
    rng = np.random.default_rng(seed)
    maskable = _maskable(padding_mask)
    ratios = _truncated_normal_ratios(rng, padding_mask.shape[0])
    mask = (rng.random(padding_mask.shape) < ratios[:, None]) & maskable
    empty = ~mask.any(axis=1) & maskable.any(axis=1)
    if empty.any():
        keys = np.where(maskable, rng.random(padding_mask.shape), -1.0)
        pick = np.argmax(keys, axis=1)
        rows = np.nonzero(empty)[0]
        mask[rows, pick[rows]] = True
    return mask


def protocol_masks(token_ids, padding_mask, num_masked, seed=0):
    """The Mask-1 / Mask-3 positions `evaluate_model` will score.

    Drawn exactly as `keras_lgvq.metrics.masked_word_recall_at_1` draws
    them when fed `MASK_CHUNK`-row chunks in order with the same seed.

    Args:
        token_ids: int array `(N, L)`.
        padding_mask: bool array `(N, L)`.
        num_masked: int. 1 or 3.
        seed: int. Seed of the draw.

    Returns:
        bool array `(N, L)`.

    Examples:

    ```python
    mask3 = keras_lgvq.evaluation.protocol_masks(ids, pad, 3, seed=0)
    ```
    """
    rng = np.random.default_rng(seed)
    pieces = []
    for start in range(0, token_ids.shape[0], MASK_CHUNK):
        rows = slice(start, start + MASK_CHUNK)
        pieces.append(
            select_masked_positions(
                token_ids[rows],
                padding_mask=padding_mask[rows],
                num_masked=num_masked,
                seed=rng,
                max_position=MASK_MAX_POSITION,
            )
        )
    return np.concatenate(pieces) if pieces else np.zeros_like(padding_mask)


def _encode_text(text_prior, token_ids, padding_mask, verbose, what):
    """Frozen text features in chunks, with a progress bar."""
    count = token_ids.shape[0]
    bar = _progbar(count, verbose, "captions")
    if bar is not None:
        print(f"Text features ({what}):")
    token_features, sentence = [], []
    chunk = 256
    for start in range(0, count, chunk):
        out = text_prior.encode_tokens(
            token_ids[start : start + chunk],
            padding_mask[start : start + chunk],
            batch_size=64,
        )
        # float16 halves the memory of (N, L, D) features; the models read
        # them back as float32 (the feature cache stores them the same way).
        token_features.append(out["token_features"].astype("float16"))
        sentence.append(out["sentence_feature"].astype("float32"))
        if bar is not None:
            bar.update(min(start + chunk, count))
    return np.concatenate(token_features), np.concatenate(sentence)


def prepare_split(
    dataset,
    text_prior=None,
    max_images=None,
    seed=0,
    protocol_mask_counts=(1, 3),
    training_masks=False,
    verbose=1,
):
    """Materialise an evaluation or probe split, shared by every model.

    Reads the batches once and keeps numpy arrays: `images` (float32 in
    [-1, 1]), `captions` (one per image, as sampled by the pipeline),
    `token_ids`, `padding_mask`, the scene attributes when the batches
    carry them, and, with a `text_prior`, the frozen `token_features` /
    `sentence_feature` of each caption. It also fixes the masks:

    - `protocol_mask_counts`: for each k (1 and 3 by default) the Mask-k
      positions (`protocol_masks`) and the text features of the caption
      with those tokens replaced by `[MASK]` (`masked_features_k`), which
      the leak-free probes read;
    - `training_masks=True`: MTP-style random masks for probe training
      (`train_mask`, `masked_features_train`).

    Args:
        dataset: `tf.data.Dataset` or iterable of dict batches with
            `images`, `captions` and (or, with a prior, instead of
            captions) `token_ids` + `padding_mask`; optionally `shape`,
            `color`, `size`, `fill` `(B, 3)` and `num_objects` `(B,)`
            (`make_dataset(..., include_attributes=True)`).
        text_prior: `keras_lgvq.text_priors.TextPrior` or None. Needed for
            the alignment probes and the masked-word protocol.
        max_images: int or None. Stop after this many images.
        seed: int. Seed of the masks.
        protocol_mask_counts: tuple of ints. Mask-k protocols to prepare.
        training_masks: bool. Also draw probe-training masks.
        verbose: int. Progress bars when > 0.

    Returns:
        A dict of numpy arrays and metadata (see above), with `num_images`.

    Examples:

    ```python
    prior = keras_lgvq.text_priors.get("minilm")
    ds = keras_lgvq.datasets.make_dataset(
        "scenes", split="test", batch_size=32, text_prior=prior,
        include_attributes=True)
    split = keras_lgvq.evaluation.prepare_split(ds, prior, max_images=512)
    ```
    """
    if max_images is not None and (
        not isinstance(max_images, int) or max_images < 1
    ):
        raise ValueError(
            f"`max_images` must be a positive int or None. Received: "
            f"{max_images!r}"
        )
    keys = ("images", "token_ids", "padding_mask", "num_objects") + ATTRIBUTES
    parts = {}
    captions = []
    count = 0
    bar = _progbar(max_images, verbose)
    if bar is not None:
        print("Reading images:")
    for batch in _iterate(dataset):
        if not isinstance(batch, dict) or "images" not in batch:
            raise ValueError(
                "`dataset` must yield dict batches with an 'images' entry. "
                f"Received: {type(batch).__name__}"
            )
        take = len(batch["images"])
        if max_images is not None:
            take = min(take, max_images - count)
        for key in keys:
            if key in batch:
                parts.setdefault(key, []).append(np.asarray(batch[key])[:take])
        if "captions" in batch:
            captions += _decode_strings(batch["captions"])[:take]
        count += take
        if bar is not None:
            bar.update(min(count, max_images))
        if max_images is not None and count >= max_images:
            break
    if count == 0:
        raise ValueError("`dataset` yielded no images.")
    split = {k: np.concatenate(v) for k, v in parts.items()}
    split["images"] = split["images"].astype("float32")
    split["num_images"] = count
    split["captions"] = captions if len(captions) == count else None
    split["mask_seed"] = int(seed)
    if text_prior is None:
        return split
    if "token_ids" not in split:
        if split["captions"] is None:
            raise ValueError(
                "With a `text_prior`, batches need `captions` or "
                "`token_ids` + `padding_mask`."
            )
        ids, mask = text_prior.tokenize(split["captions"])
        split["token_ids"], split["padding_mask"] = _numpy(ids), _numpy(mask)
    split["token_ids"] = split["token_ids"].astype("int32")
    split["padding_mask"] = split["padding_mask"].astype(bool)
    ids, pad = split["token_ids"], split["padding_mask"]
    split["token_features"], split["sentence_feature"] = _encode_text(
        text_prior, ids, pad, verbose, "captions"
    )
    mask_token = int(text_prior.mask_token_id)
    split["mask_token_id"] = mask_token
    wanted = [(f"mask_{k}", protocol_masks(ids, pad, k, seed)) for k in (
        protocol_mask_counts or ()
    )]
    if training_masks:
        wanted.append(("train_mask", sample_training_masks(pad, seed)))
    for name, mask in wanted:
        split[name] = mask
        masked_ids = np.where(mask, mask_token, ids).astype("int32")
        suffix = name[len("mask_") :] if name.startswith("mask_") else "train"
        split[f"masked_features_{suffix}"] = _encode_text(
            text_prior, masked_ids, pad, verbose, f"{name}, masked"
        )[0]
    return split


# === The alignment probe ===


@keras.saving.register_keras_serializable(package="keras_lgvq")
class AlignmentProbe(keras.Model):
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
        for name, value in (
            ("code_dim", code_dim),
            ("num_tokens", num_tokens),
            ("text_dim", text_dim),
            ("vocabulary_size", vocabulary_size),
            ("sequence_length", sequence_length),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or (
                value < 1
            ):
                raise ValueError(
                    f"`{name}` must be a positive int. Received: {value!r}"
                )
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
        self.token_embeddings = self.add_weight(
            shape=(vocabulary_size, text_dim),
            initializer="zeros",
            trainable=False,
            name="token_embeddings",
        )

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

    def set_token_embeddings(self, matrix):
        """Sets the frozen `(vocabulary_size, text_dim)` embedding matrix."""
        matrix = np.array(_numpy(matrix), dtype="float32")
        expected = (self.vocabulary_size, self.text_dim)
        if matrix.shape != expected:
            raise ValueError(
                f"Token embeddings must have shape {expected}. Received: "
                f"{matrix.shape}"
            )
        self.token_embeddings.assign(matrix)

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
        embedding = ops.cast(embedding, "float32")
        norm = ops.sqrt(ops.sum(ops.square(embedding), -1, keepdims=True))
        return embedding / (norm + 1e-12)

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


def mask_slots(mask):
    """Gather masked positions into fixed slots: `(slots, slot_valid)`.

    Args:
        mask: bool array `(N, L)`, True at masked tokens.

    Returns:
        `slots` int32 `(N, M)` with the masked positions of each row first
        (padded with position 0) and `slot_valid` bool `(N, M)`, where `M`
        is the largest number of masked tokens in a row (at least 1).

    Examples:

    ```python
    slots, valid = keras_lgvq.evaluation.mask_slots(mask)
    ```
    """
    mask = np.asarray(mask, bool)
    width = max(int(mask.sum(axis=1).max(initial=0)), 1)
    # Stable sort puts masked positions first, in order.
    order = np.argsort(~mask, axis=1, kind="stable")[:, :width]
    valid = np.take_along_axis(mask, order, axis=1)
    slots = np.where(valid, order, 0).astype("int32")
    return slots, valid


class _ProbeBatches(keras.utils.PyDataset):
    """Seeded minibatches of probe inputs (a fresh permutation each epoch)."""

    def __init__(self, arrays, batch_size, seed):
        super().__init__()
        self.arrays = arrays
        self.batch_size = batch_size
        self.count = len(arrays["quantized"])
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(self.count)

    def __len__(self):
        # Whole batches only: InfoNCE needs negatives, and fixed shapes
        # avoid a retrace for the last batch.
        return max(self.count // self.batch_size, 1)

    def __getitem__(self, index):
        start = index * self.batch_size
        rows = self.order[start : start + self.batch_size]
        batch = {}
        for key, array in self.arrays.items():
            value = array[rows]
            if value.dtype == np.float16:
                value = value.astype("float32")
            batch[key] = value
        return (batch,)

    def on_epoch_end(self):
        self.order = self.rng.permutation(self.count)


def train_alignment_probe(
    quantized,
    split,
    token_embeddings,
    config=None,
    seed=0,
    verbose=1,
):
    """Train an `AlignmentProbe` on frozen codes; every model gets the same.

    Args:
        quantized: float array `(N, h, w, D)`. The model's quantized grid of
            the probe split's images.
        split: dict from `prepare_split(..., training_masks=True)` with a
            text prior.
        token_embeddings: array `(vocabulary_size, text_dim)`. The text
            prior's frozen token embeddings.
        config: dict or None. Overrides of `DEFAULT_PROBE_CONFIG`.
        seed: int. Seeds the weights, dropout and batch order.
        verbose: int. Keras progress bar when > 0.

    Returns:
        `(probe, info)`: the trained `AlignmentProbe` and a dict of its
        budget (epochs, steps, batch size, learning rate), final loss and
        seconds.

    Examples:

    ```python
    probe, info = keras_lgvq.evaluation.train_alignment_probe(
        codes, probe_split, prior.token_embeddings)
    ```
    """
    config = {**DEFAULT_PROBE_CONFIG, **(config or {})}
    needed = ("sentence_feature", "masked_features_train", "train_mask")
    missing = [k for k in needed if k not in split]
    if missing:
        raise ValueError(
            "The probe split needs text features and training masks "
            "(`prepare_split(..., text_prior=prior, training_masks=True)`); "
            f"missing {missing}."
        )
    quantized = np.asarray(quantized, "float32")
    if quantized.ndim != 4 or quantized.shape[0] != split["num_images"]:
        raise ValueError(
            "`quantized` must be (N, h, w, D) with N = the split's "
            f"{split['num_images']} images. Received: {quantized.shape}"
        )
    token_embeddings = _numpy(token_embeddings)
    batch_size = min(int(config["batch_size"]), split["num_images"])
    keras.utils.set_random_seed(seed)
    probe = AlignmentProbe(
        code_dim=quantized.shape[-1],
        num_tokens=quantized.shape[1] * quantized.shape[2],
        text_dim=token_embeddings.shape[1],
        vocabulary_size=token_embeddings.shape[0],
        sentence_dim=split["sentence_feature"].shape[-1],
        sequence_length=split["token_ids"].shape[1],
        vit_layers=config["vit_layers"],
        vit_heads=config["vit_heads"],
        decoder_layers=config["decoder_layers"],
        decoder_intermediate_dim=config["decoder_intermediate_dim"],
        dropout=config["dropout"],
        seed=seed,
    )
    probe.build()
    probe.set_token_embeddings(token_embeddings)
    probe.compile(
        optimizer=keras.optimizers.Adam(config["learning_rate"]),
        jit_compile=config["jit_compile"],
    )
    slots, slot_valid = mask_slots(split["train_mask"])
    batches = _ProbeBatches(
        {
            "slots": slots,
            "slot_valid": slot_valid,
            "quantized": quantized,
            "sentence_feature": split["sentence_feature"],
            "masked_features": split["masked_features_train"],
            "padding_mask": split["padding_mask"],
            "mask": split["train_mask"],
            "token_ids": split["token_ids"],
        },
        batch_size,
        seed,
    )
    start = time.time()
    if verbose:
        print(
            f"Alignment probe: {config['epochs']} epochs x {len(batches)} "
            f"steps of {batch_size}"
        )
    history = probe.fit(
        batches, epochs=int(config["epochs"]), verbose=1 if verbose else 0
    )
    info = {
        "epochs": int(config["epochs"]),
        "steps": int(config["epochs"]) * len(batches),
        "batch_size": batch_size,
        "learning_rate": float(config["learning_rate"]),
        "train_images": int(split["num_images"]),
        "final_loss": float(history.history["loss"][-1]),
        "seconds": round(time.time() - start, 2),
        "infonce": "symmetric, learnable temperature",
        "masked_text_input": (
            "leak-free: text features of the caption with [MASK] at the "
            "hidden tokens; the [MASK] features are kept; plain "
            "cross-entropy"
        ),
    }
    return probe, info


# === Running a tokenizer ===


def _lgvq_guidance(model):
    return getattr(model, "guidance", None)


def _tokenizer_model(backbone, with_reconstruction):
    """A compiled functional view of `backbone.encode_decode` for `predict`."""
    res, channels = backbone.resolution, backbone.in_channels
    inputs = keras.Input((res, res, channels), dtype="float32")
    out = backbone.encode_decode(inputs, training=False)
    outputs = {"quantized": out["quantized"], "indices": out["indices"]}
    if with_reconstruction:
        outputs["reconstruction"] = out["reconstruction"]
    model = keras.Model(inputs, outputs)
    model.compile(jit_compile="auto")
    return model


def _forward_chunks(backbone, images, batch_size, with_reconstruction):
    """Yields `(start, outputs)` per chunk, compiled when possible."""
    chunk = 8 * batch_size
    try:
        model = _tokenizer_model(backbone, with_reconstruction)
    except Exception:  # A backbone without symbolic support: run eagerly.
        model = None
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk]
        if model is not None:
            yield start, model.predict(x, batch_size=batch_size, verbose=0)
            continue
        pieces = []
        for i in range(0, len(x), batch_size):
            out = backbone.encode_decode(
                ops.convert_to_tensor(x[i : i + batch_size]), training=False
            )
            keys = ["quantized", "indices"] + (
                ["reconstruction"] if with_reconstruction else []
            )
            pieces.append({k: _numpy(out[k]) for k in keys})
        yield start, {
            k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]
        }


def run_tokenizer(model, images, batch_size=32, metrics=True, verbose=1):
    """Quantize (and reconstruct) images; accumulate fidelity and usage.

    The forward pass runs through a compiled functional view of
    `model.backbone.encode_decode` (`keras.Model.predict`), falling back to
    eager calls for backbones that cannot be traced symbolically.

    Args:
        model: a `VQGAN` / `LGVQ` (anything with `backbone.encode_decode`).
        images: float array `(N, H, W, 3)` in [-1, 1].
        batch_size: int. Images per forward pass.
        metrics: bool. Also compute PSNR, SSIM and codebook statistics.
        verbose: int. Progress bar when > 0.

    Returns:
        dict with `quantized` `(N, h, w, D)` float32, `indices` `(N, h, w)`
        int32, and with `metrics`: `psnr`, `ssim`, `usage`, `perplexity`,
        `histogram` `(K,)` and `reconstructions` of the first 32 images.

    Examples:

    ```python
    out = keras_lgvq.evaluation.run_tokenizer(model, split["images"])
    ```
    """
    backbone = model.backbone
    images = np.asarray(images, "float32")
    count = len(images)
    psnr, ssim = PSNR(data_range=2.0), SSIM(data_range=2.0)
    usage = CodebookUsage(num_embeddings=backbone.num_embeddings)
    quantized, indices, recon = [], [], []
    bar = _progbar(count, verbose)
    for start, out in _forward_chunks(backbone, images, batch_size, metrics):
        quantized.append(np.asarray(out["quantized"], "float32"))
        idx = np.asarray(out["indices"]).astype("int32")
        indices.append(idx)
        if metrics:
            x = images[start : start + len(idx)]
            # Scored as images are displayed: clipped to the data range.
            x_hat = np.clip(np.asarray(out["reconstruction"], "float32"), -1, 1)
            for i in range(0, len(x), batch_size):
                rows = slice(i, i + batch_size)
                psnr.update_state(x[rows], x_hat[rows])
                ssim.update_state(x[rows], x_hat[rows])
            usage.update_state(idx)
            if sum(len(r) for r in recon) < 32:
                recon.append(x_hat[:32])
        if bar is not None:
            bar.update(min(start + len(idx), count))
    result = {
        "quantized": np.concatenate(quantized),
        "indices": np.concatenate(indices),
    }
    if metrics:
        result.update(
            psnr=float(_numpy(psnr.result())),
            ssim=float(_numpy(ssim.result())),
            usage=float(_numpy(usage.usage())),
            perplexity=float(_numpy(usage.perplexity())),
            histogram=_numpy(usage.histogram()).astype("int64"),
            reconstructions=np.concatenate(recon)[:32],
        )
    return result


def _unavailable(error):
    text = " ".join(str(error).split()) or repr(error)
    if len(text) > 400:
        text = text[:397] + "..."
    return {"available": False, "reason": text}


def perceptual_metrics(images, reconstruct, lpips_weights="auto",
                       inception_weights=None, batch_size=16):
    """LPIPS and rFID when their ImageNet weights exist, else the reason.

    Nothing is downloaded and no random-weight stand-in is ever reported:
    a missing file gives `{"available": False, "reason": ...}`.

    Args:
        images: float array `(N, H, W, 3)` in [-1, 1].
        reconstruct: callable `images -> reconstructions` (clipped).
        lpips_weights: str or None. VGG16 weights for LPIPS (`"auto"`
            searches Keras's cache).
        inception_weights: str or None. Inception-v3 weights for rFID
            (None searches the default places).
        batch_size: int. Images per pass.

    Returns:
        `{"lpips": ..., "rfid": ...}`; each a dict with `available` and
        either `value` or `reason`.

    Examples:

    ```python
    keras_lgvq.evaluation.perceptual_metrics(images, lambda x: model(x))
    ```
    """
    from keras_lgvq.losses.lpips import LPIPS
    from keras_lgvq.metrics.frechet_inception_distance import (
        FrechetInceptionDistance,
    )
    from keras_lgvq.metrics.lpips_metric import LPIPSMetric

    results = {}
    metrics = {}
    try:
        metrics["lpips"] = LPIPSMetric(LPIPS(vgg_weights=lpips_weights))
    except (FileNotFoundError, ValueError) as error:
        results["lpips"] = _unavailable(error)
    try:
        metrics["rfid"] = FrechetInceptionDistance(weights=inception_weights)
    except (FileNotFoundError, ValueError) as error:
        results["rfid"] = _unavailable(error)
    if metrics:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            x_hat = reconstruct(x)
            for metric in metrics.values():
                metric.update_state(x, x_hat)
        for name, metric in metrics.items():
            value = float(_numpy(metric.result()))
            results[name] = {"available": True, "value": value}
        if "rfid" in metrics:
            results["rfid"]["num_images"] = int(len(images))
    return results


# === Alignment measurements ===


def _batched(fn, count, batch_size=64):
    outs = []
    for start in range(0, count, batch_size):
        outs.append(_numpy(fn(slice(start, start + batch_size))))
    return np.concatenate(outs)


def _retrieval(image_emb, sentence):
    owner = np.arange(len(image_emb))
    return {
        "image_to_text": image_to_text_recall(image_emb, sentence, owner),
        "text_to_image": text_to_image_recall(image_emb, sentence, owner),
    }


def _mask_recall(split, predict_logits, num_masked):
    """Mask-k Recall@1 on the precomputed protocol masks."""
    key = f"mask_{num_masked}"
    ids, pad = split["token_ids"], split["padding_mask"]
    batches = []
    for s in range(0, len(ids), MASK_CHUNK):
        rows = np.arange(s, min(s + MASK_CHUNK, len(ids)))
        batches.append(
            {"token_ids": ids[rows], "padding_mask": pad[rows], "rows": rows}
        )

    def predict_fn(batch, mask):
        rows = batch["rows"]
        if not np.array_equal(mask, split[key][rows]):
            raise RuntimeError(
                "Mask-k positions differ from those `prepare_split` drew; "
                "the split must be prepared with the same seed and chunking."
            )
        return predict_logits(rows, mask, num_masked)

    recall, correct, total = masked_word_recall_at_1(
        predict_fn,
        batches,
        num_masked=num_masked,
        seed=split["mask_seed"],
        max_position=MASK_MAX_POSITION,
        return_counts=True,
    )
    return {"recall_at_1": recall, "correct": correct, "masked_tokens": total}


def _relation(split, visual_fn, code_fn, batch_size=64):
    """Code-word relation MSE ("all" and "valid" reductions) over a split."""
    totals = {"all": 0.0, "valid": 0.0}
    count = split["num_images"]
    for start in range(0, count, batch_size):
        rows = slice(start, start + batch_size)
        words = split["token_features"][rows].astype("float32")
        pad = split["padding_mask"][rows]
        matched, scores = match_codes_to_words(
            words, visual_fn(rows), code_fn(rows)
        )
        n = len(words)
        for reduction in totals:
            value = code_word_relation_mse(
                words, matched, pad, match_scores=scores, reduction=reduction
            )
            totals[reduction] += float(_numpy(value)) * n
    return {k: v / count for k, v in totals.items()}


def attribute_probes(train_codes, train_split, test_codes, test_split,
                     num_embeddings, config=None, seed=0):
    """Linear-probe accuracy (%) of scene attributes from frozen codes.

    Features: `keras_lgvq.metrics.code_features` (bag of codes plus code
    vectors mean-pooled on a `linear_grid` x `linear_grid` partition).
    Shape, colour, size and fill are probed on single-object images (with
    several objects the attribute of "the" object is undefined); the object
    count on every image.

    Args:
        train_codes: dict from `run_tokenizer` for the probe-training split.
        train_split: dict from `prepare_split` with attributes.
        test_codes: dict from `run_tokenizer` for the evaluation split.
        test_split: dict from `prepare_split` with attributes.
        num_embeddings: int. Codebook size K.
        config: dict or None. Overrides of `DEFAULT_PROBE_CONFIG`.
        seed: int. Seed of the probes.

    Returns:
        dict attribute -> accuracy in %, plus `chance` and image counts.

    Examples:

    ```python
    keras_lgvq.evaluation.attribute_probes(tr, tr_split, te, te_split, 256)
    ```
    """
    from keras_lgvq.datasets import scenes

    config = {**DEFAULT_PROBE_CONFIG, **(config or {})}
    if "num_objects" not in train_split or "num_objects" not in test_split:
        raise ValueError(
            "Attribute probes need `num_objects` and the attribute arrays "
            "(`make_dataset(..., include_attributes=True)`)."
        )

    def features(codes):
        return code_features(
            indices=codes["indices"],
            num_embeddings=num_embeddings,
            codes=codes["quantized"],
            grid=min(config["linear_grid"], codes["indices"].shape[1]),
        )

    f_train, f_test = features(train_codes), features(test_codes)
    single_train = train_split["num_objects"] == 1
    single_test = test_split["num_objects"] == 1
    classes = {
        "shape": len(scenes.SHAPES),
        "color": len(scenes.COLORS),
        "size": len(scenes.SIZES),
        "fill": len(scenes.FILLS),
    }
    kwargs = dict(
        epochs=int(config["linear_epochs"]),
        learning_rate=float(config["linear_learning_rate"]),
        seed=seed,
    )
    results, chance = {}, {}
    for name, k in classes.items():
        if single_train.sum() < 2 or single_test.sum() < 1:
            results[name] = None
            continue
        results[name] = linear_probe_accuracy(
            f_train[single_train],
            train_split[name][single_train, 0],
            f_test[single_test],
            test_split[name][single_test, 0],
            num_classes=k,
            **kwargs,
        )
        labels = test_split[name][single_test, 0]
        chance[name] = float(100.0 * np.bincount(labels).max() / len(labels))
    count_train = train_split["num_objects"] - 1
    count_test = test_split["num_objects"] - 1
    results["num_objects"] = linear_probe_accuracy(
        f_train, count_train, f_test, count_test,
        num_classes=scenes.MAX_OBJECTS, **kwargs,
    )
    chance["num_objects"] = float(
        100.0 * np.bincount(count_test).max() / len(count_test)
    )
    results["chance_majority"] = chance
    results["train_images_single_object"] = int(single_train.sum())
    results["test_images_single_object"] = int(single_test.sum())
    results["feature_dim"] = int(f_train.shape[1])
    return results


def _top_k(scores, k):
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def evaluate_model(
    model,
    eval_split,
    probe_split=None,
    text_prior=None,
    probe_config=None,
    lpips_weights="auto",
    inception_weights=None,
    batch_size=32,
    seed=0,
    verbose=1,
    return_artifacts=False,
):
    """Every metric that applies to a tokenizer, as a JSON-ready dict.

    Args:
        model: a trained `VQGAN` or `LGVQ`.
        eval_split: dict from `prepare_split` (evaluation images).
        probe_split: dict from `prepare_split(..., training_masks=True)` or
            None. Images the probes are trained on; None skips the probes
            (and the linear attribute probes).
        text_prior: `TextPrior` or None. Supplies the frozen token
            embeddings of the masked-word probe (an `LGVQ`'s own
            `token_embeddings` are used when None) and the text encoder of a
            leak-free `LGVQ` head.
        probe_config: dict or None. Overrides of `DEFAULT_PROBE_CONFIG`.
        lpips_weights: str or None. See `perceptual_metrics`.
        inception_weights: str or None. See `perceptual_metrics`.
        batch_size: int. Images per forward pass.
        seed: int. Seed of the probes (the same for every model).
        verbose: int. Progress bars when > 0.
        return_artifacts: bool. Also return arrays for figures.

    Returns:
        The results dict, or `(results, artifacts)` with `return_artifacts`
        (`reconstructions`, `images`, `histogram`, retrieval rankings).

    Examples:

    ```python
    results = keras_lgvq.evaluation.evaluate_model(
        model, eval_split, probe_split, text_prior=prior)
    results["psnr"], results["retrieval_probe"]["image_to_text"]["R@1"]
    ```
    """
    config = {**DEFAULT_PROBE_CONFIG, **(probe_config or {})}
    timings = {}
    start = time.time()
    backbone = model.backbone
    guidance = _lgvq_guidance(model)
    results = {
        "model": type(model).__name__,
        "language_guidance": guidance is not None,
        "num_eval_images": int(eval_split["num_images"]),
        "codebook_size": int(backbone.num_embeddings),
        "code_grid": [int(backbone.grid_size)] * 2,
        "image_size": int(backbone.resolution),
    }
    if verbose:
        print(f"[{results['model']}] encoding the evaluation images")
    codes = run_tokenizer(
        model, eval_split["images"], batch_size, True, verbose
    )
    results.update(
        psnr=codes["psnr"],
        ssim=codes["ssim"],
        codebook_usage=codes["usage"],
        codebook_perplexity=codes["perplexity"],
        codes_used=int((codes["histogram"] > 0).sum()),
    )

    def reconstruct(x):
        out = backbone.encode_decode(ops.convert_to_tensor(x), training=False)
        return ops.clip(ops.cast(out["reconstruction"], "float32"), -1, 1)

    results.update(
        perceptual_metrics(
            eval_split["images"], reconstruct, lpips_weights, inception_weights
        )
    )
    timings["tokenize_and_fidelity"] = time.time() - start
    artifacts = {
        "eval_images": eval_split["images"],
        "images": eval_split["images"][:32],
        "reconstructions": codes["reconstructions"],
        "histogram": codes["histogram"],
    }
    quantized = codes["quantized"]
    has_text = "sentence_feature" in eval_split
    sentence = eval_split.get("sentence_feature")

    # --- LG-VQ's own heads -------------------------------------------------
    if guidance is not None and has_text:
        t0 = time.time()
        token_embeddings = ops.convert_to_tensor(model.token_embeddings)
        encoder = getattr(model, "text_prior", None) or text_prior
        own_emb = _batched(
            lambda r: guidance.embed_image(quantized[r]), len(quantized)
        )
        own = {"retrieval": _retrieval(own_emb, sentence)}

        def own_logits(rows, mask, k):
            text = {
                "token_ids": eval_split["token_ids"][rows],
                "padding_mask": eval_split["padding_mask"][rows],
                "token_features": eval_split["token_features"][rows].astype(
                    "float32"
                ),
                "sentence_feature": sentence[rows],
            }
            return guidance.predict_masked(
                quantized[rows], text, mask, token_embeddings,
                text_encoder=encoder,
            )

        own["masked_word"] = {
            f"mask{k}": _mask_recall(eval_split, own_logits, k)
            for k in (1, 3)
            if f"mask_{k}" in eval_split
        }
        own["masked_word"]["leak_free"] = bool(guidance.mtp_leak_free)
        n_tok = backbone.grid_size**2
        own["relation_mse"] = _relation(
            eval_split,
            lambda r: guidance.code_transformer(quantized[r])[:, 1:],
            lambda r: guidance.ras.code_features(
                ops.reshape(quantized[r], (-1, n_tok, quantized.shape[-1]))
            ),
        )
        results["own_heads"] = own
        artifacts["own_image_embeddings"] = own_emb
        timings["own_heads"] = time.time() - t0
    elif guidance is None:
        results["own_heads"] = {
            "available": False,
            "reason": "no language guidance: the model has no text heads",
        }

    # --- Probes on frozen codes --------------------------------------------
    if probe_split is not None:
        t0 = time.time()
        if verbose:
            print(f"[{results['model']}] encoding the probe-training images")
        train_codes = run_tokenizer(
            model, probe_split["images"], batch_size, False, verbose
        )
        if "num_objects" in probe_split and "num_objects" in eval_split:
            results["attribute_probe"] = attribute_probes(
                train_codes, probe_split, codes, eval_split,
                backbone.num_embeddings, config, seed,
            )
        timings["attribute_probes"] = time.time() - t0
        if has_text and "sentence_feature" in probe_split:
            t0 = time.time()
            if text_prior is not None:
                token_embeddings = text_prior.token_embeddings
            elif guidance is not None:
                token_embeddings = model.token_embeddings
            else:
                raise ValueError(
                    "The masked-word probe needs the text prior's token "
                    "embeddings: pass `text_prior`."
                )
            probe, info = train_alignment_probe(
                train_codes["quantized"], probe_split, token_embeddings,
                config, seed, verbose,
            )
            emb = _batched(
                lambda r: probe.embed_image(quantized[r]), len(quantized)
            )
            results["retrieval_probe"] = _retrieval(emb, sentence)

            def probe_logits(rows, mask, k):
                return probe.predict_masked(
                    quantized[rows],
                    eval_split[f"masked_features_{k}"][rows],
                    eval_split["padding_mask"][rows],
                    mask,
                )

            results["masked_word_probe"] = {
                f"mask{k}": _mask_recall(eval_split, probe_logits, k)
                for k in (1, 3)
                if f"mask_{k}" in eval_split
            }
            results["masked_word_probe"]["leak_free"] = True
            # Reference: always answer the most frequent masked token of the
            # probe's training captions (what an unconditioned probe learns
            # first).
            train_targets = probe_split["token_ids"][probe_split["train_mask"]]
            majority = int(np.bincount(train_targets).argmax())
            for k in (1, 3):
                entry = results["masked_word_probe"].get(f"mask{k}")
                if entry:
                    hidden = eval_split["token_ids"][eval_split[f"mask_{k}"]]
                    entry["majority_token_baseline"] = float(
                        100.0 * np.mean(hidden == majority)
                    )
            n_tok = backbone.grid_size**2
            results["relation_mse_probe"] = _relation(
                eval_split,
                lambda r: probe.visual_tokens(quantized[r]),
                lambda r: np.reshape(
                    quantized[r], (-1, n_tok, quantized.shape[-1])
                ),
            )
            results["probe_training"] = info
            artifacts["probe_image_embeddings"] = emb
            timings["alignment_probe"] = time.time() - t0
    if has_text:
        artifacts["sentence_feature"] = sentence
        scores = {}
        for key in ("probe_image_embeddings", "own_image_embeddings"):
            if key in artifacts:
                img = artifacts[key]
                img = img / np.maximum(
                    np.linalg.norm(img, axis=1, keepdims=True), 1e-12
                )
                txt = sentence / np.maximum(
                    np.linalg.norm(sentence, axis=1, keepdims=True), 1e-12
                )
                sim = txt[:8] @ img.T
                scores[key] = {
                    "text_to_image_top5": _top_k(sim, 5),
                    "image_to_text_top3": _top_k(img[:8] @ txt.T, 3),
                }
        artifacts["retrieval_rankings"] = scores
        artifacts["captions"] = eval_split.get("captions")
    results["seconds"] = {k: round(v, 2) for k, v in timings.items()}
    results["seconds"]["total"] = round(time.time() - start, 2)
    if return_artifacts:
        return results, artifacts
    return results


def flatten_metrics(results):
    """The headline numbers of `evaluate_model` as a flat `{name: value}`.

    Args:
        results: dict from `evaluate_model`.

    Returns:
        An ordered dict of floats (or None when not applicable), used by
        the side-by-side tables of the recipes.

    Examples:

    ```python
    keras_lgvq.evaluation.flatten_metrics(results)["psnr"]
    ```
    """
    flat = {
        "psnr": results.get("psnr"),
        "ssim": results.get("ssim"),
        "codebook_usage_pct": (
            100.0 * results["codebook_usage"]
            if results.get("codebook_usage") is not None
            else None
        ),
        "codebook_perplexity": results.get("codebook_perplexity"),
    }
    for name in ("lpips", "rfid"):
        entry = results.get(name) or {}
        flat[name] = entry.get("value") if entry.get("available") else None
    for source, prefix in (
        (results.get("retrieval_probe"), "probe"),
        ((results.get("own_heads") or {}).get("retrieval"), "own"),
    ):
        for direction, tag in (
            ("image_to_text", "i2t"),
            ("text_to_image", "t2i"),
        ):
            for k in (1, 5, 10):
                value = None
                if source:
                    value = source[direction][f"R@{k}"]
                flat[f"retrieval_{tag}_R@{k}_{prefix}"] = value
    for source, prefix in (
        (results.get("masked_word_probe"), "probe"),
        ((results.get("own_heads") or {}).get("masked_word"), "own"),
    ):
        for k in (1, 3):
            entry = (source or {}).get(f"mask{k}")
            flat[f"mask{k}_recall_{prefix}"] = (
                entry["recall_at_1"] if entry else None
            )
    flat["relation_mse_probe"] = (results.get("relation_mse_probe") or {}).get(
        "all"
    )
    flat["relation_mse_own"] = (
        ((results.get("own_heads") or {}).get("relation_mse")) or {}
    ).get("all")
    probes = results.get("attribute_probe") or {}
    for name in ATTRIBUTES + ("num_objects",):
        flat[f"attr_{name}_acc"] = probes.get(name)
    # References: what a model with no information scores.
    n = results.get("num_eval_images")
    for k in (1, 5, 10):
        flat[f"chance_retrieval_R@{k}"] = (
            min(100.0, 100.0 * k / n) if n else None
        )
    for k in (1, 3):
        entry = (results.get("masked_word_probe") or {}).get(f"mask{k}")
        flat[f"baseline_mask{k}"] = (
            entry.get("majority_token_baseline") if entry else None
        )
    chance = probes.get("chance_majority") or {}
    for name in ATTRIBUTES + ("num_objects",):
        flat[f"chance_attr_{name}"] = chance.get(name)
    return flat


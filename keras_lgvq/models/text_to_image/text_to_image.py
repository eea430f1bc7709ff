"""Text-to-image generation and image completion over a frozen tokenizer's
codes: masked-token training and iterative parallel decoding (MaskGIT)."""

import json
import math
import os
import warnings
import zipfile

import keras
import numpy as np
from keras import ops

from keras_lgvq.backend.nonfinite_skipping import NonFiniteStepSkipping
from keras_lgvq.datasets.code_batch_checks import validate_code_batch
from keras_lgvq.models.checked_input_fit import CheckedInputFit
from keras_lgvq.models.text_to_image.text_to_image_backbone import TextToImageBackbone
from keras_lgvq.utils.validation import CODE_CHECK_PREFIX
from keras_lgvq.utils.validation import check_code_range
from keras_lgvq.utils.validation import check_int
from keras_lgvq.utils.validation import check_number
from keras_lgvq.version import __version__

MASK_SCHEDULES = ("cosine", "linear")
# Batch keys the model consumes; strings and bookkeeping are dropped before
# they reach JAX or torch.
INPUT_KEYS = ("codes", "token_features", "padding_mask", "token_ids", "mask")
_TOKENIZER_INTERFACE = ("encode", "decode", "grid_size", "num_embeddings")
# Confidence given to positions that are already decided (never re-masked).
_DECIDED = 1e9


def mask_ratio(progress, schedule="cosine"):
    """Fraction of code positions masked at `progress` in [0, 1].

    `cosine`: `cos(pi / 2 * progress)` (MaskGIT's schedule: 1 at 0, 0 at 1);
    `linear`: `1 - progress`. Used for training (a uniform `progress` per
    example) and for sampling (`progress = (step + 1) / steps`).

    Args:
        progress: float, numpy array or tensor in [0, 1].
        schedule: string. One of `MASK_SCHEDULES`.

    Examples:

    ```python
    mask_ratio(0.5)  # 0.7071
    ```
    """
    if schedule not in MASK_SCHEDULES:
        raise ValueError(
            f"`schedule` must be one of {MASK_SCHEDULES}; received "
            f"{schedule!r}."
        )
    if isinstance(progress, (float, int, np.ndarray, np.floating)):
        progress = np.asarray(progress, "float64")
        if schedule == "cosine":
            return np.cos(0.5 * np.pi * progress)
        return 1.0 - progress
    if schedule == "cosine":
        return ops.cos(0.5 * math.pi * progress)
    return 1.0 - progress


def masked_code_loss(logits, targets, mask):
    """Mean cross-entropy over masked positions only.

    Args:
        logits: float `(B, N, K)`.
        targets: int `(B, N)` code ids in `[0, K)`.
        mask: bool `(B, N)`, True where the input was masked.

    Returns:
        Scalar float32: `sum(ce * mask) / max(sum(mask), 1)`.

    Examples:

    ```python
    loss = masked_code_loss(out["logits"], codes, out["mask"])
    ```
    """
    logits = ops.cast(logits, "float32")
    log_probs = ops.log_softmax(logits, axis=-1)
    targets = ops.cast(targets, "int32")
    picked = ops.take_along_axis(
        log_probs, ops.expand_dims(targets, -1), axis=-1
    )[..., 0]
    weights = ops.cast(mask, "float32")
    total = ops.sum(-picked * weights)
    return total / ops.maximum(ops.sum(weights), 1.0)


def _is_tokenizer(obj):
    return all(hasattr(obj, name) for name in _TOKENIZER_INTERFACE)


def _keras_file_class(path):
    """The `registered_name` recorded in a `.keras` file (no loading)."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"`tokenizer`={path!r} is not a `.keras` file (not a zip "
            "archive). Pass a tokenizer saved with `model.save('x.keras')` "
            "by keras_lgvq (VQGAN, LGVQ, VQGANBackbone) or a preset "
            "directory."
        )
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise ValueError(
                f"`tokenizer`={path!r} has no config.json: it is not a "
                "Keras `.keras` file."
            )
        config = json.loads(archive.read("config.json"))
    return config.get("registered_name") or config.get("class_name")


def load_tokenizer(tokenizer):
    """A frozen image tokenizer of the package from a model or a path.

    Accepts a tokenizer backbone (`VQGANBackbone` or any layer with
    `encode`, `decode`, `grid_size`, `num_embeddings`), a trainer model that
    holds one as `.backbone` (`VQGAN`, `LGVQ`, ...), a `.keras` file saved by
    keras_lgvq (loaded with `safe_mode=True`), a preset directory written
    by `save_to_preset`, or the name of a built-in preset that ships trained
    tokenizer weights in the package (`scenes_lgvq_trained`,
    `scenes_vqgan_trained`, `scenes_cvq_lg_trained`, `scenes_vqct_trained`,
    `scenes_lqae_trained`). An existing path wins over a preset name.

    Args:
        tokenizer: a model, a layer, a path, or a shipped preset name.

    Returns:
        The tokenizer backbone, with `trainable = False`.

    Raises:
        ValueError: the argument is not a keras_lgvq tokenizer.
        FileNotFoundError: the path does not exist.

    Examples:

    ```python
    tokenizer = load_tokenizer("runs/scenes/lgvq/model.keras")
    tokenizer.grid_size, tokenizer.num_embeddings  # (16, 256)
    tokenizer = load_tokenizer("scenes_lgvq_trained")  # shipped weights
    ```
    """
    if isinstance(tokenizer, os.PathLike):
        tokenizer = os.fspath(tokenizer)
    if isinstance(tokenizer, str):
        path = os.path.expanduser(tokenizer)
        if not os.path.exists(path):
            return _load_shipped_tokenizer(tokenizer)
        if os.path.isdir(path):
            from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

            if not os.path.exists(os.path.join(path, "config.json")):
                raise ValueError(
                    f"`tokenizer`={path!r} is a directory without "
                    "config.json, not a preset written by `save_to_preset`."
                )
            tokenizer = VQGANBackbone.from_preset(path)
        else:
            registered = str(_keras_file_class(path))
            if not registered.startswith("keras_lgvq>"):
                raise ValueError(
                    f"`tokenizer`={path!r} holds a {registered}, not a "
                    "keras_lgvq tokenizer (VQGANBackbone, VQGAN, LGVQ, ...)."
                )
            # Register every serializable class a tokenizer file may hold
            # (an LGVQ file holds its text prior's config).
            import keras_lgvq.layers  # noqa: F401
            import keras_lgvq.models  # noqa: F401
            import keras_lgvq.text_priors  # noqa: F401

            tokenizer = keras.saving.load_model(
                path, compile=False, safe_mode=True
            )
    if not _is_tokenizer(tokenizer) and _is_tokenizer(
        getattr(tokenizer, "backbone", None)
    ):
        tokenizer = tokenizer.backbone
    if not _is_tokenizer(tokenizer):
        missing = [
            n for n in _TOKENIZER_INTERFACE if not hasattr(tokenizer, n)
        ]
        raise ValueError(
            "`tokenizer` must be a keras_lgvq image tokenizer (a "
            "VQGANBackbone, a VQGAN / LGVQ holding one as `.backbone`, or a "
            f"path to one); received a {type(tokenizer).__name__}, which "
            f"lacks {missing}."
        )
    tokenizer.trainable = False
    return tokenizer


def _shipped_tokenizer_presets():
    from keras_lgvq.models import presets

    return sorted(
        name
        for name, spec in presets.PRESETS.items()
        if spec.get("shipped_weights")
    )


def _load_shipped_tokenizer(name):
    """The tokenizer of a built-in preset with trained weights in the
    package; a clear error for anything else that is not a path."""
    from keras_lgvq.models import presets

    shipped = _shipped_tokenizer_presets()
    if name not in presets.PRESETS:
        raise FileNotFoundError(
            f"`tokenizer`={name!r} is neither an existing file or directory "
            f"nor a preset with shipped weights ({shipped}). Pass a "
            "tokenizer's `.keras` file, its `save_to_preset` directory or "
            "one of those names."
        )
    if name not in shipped:
        raise ValueError(
            f"`tokenizer`={name!r} is a built-in preset without trained "
            "weights in the package: its codes would be random. Train it "
            "(e.g. recipes/scenes.py) and pass the saved model, or use a "
            f"preset with shipped weights: {shipped}."
        )
    if "LQAEBackbone" in presets.preset_classes(name):
        # Its codes are the frozen LM's word-piece ids (the LM asset).
        from keras_lgvq.models.lqae.lqae_backbone import LQAEBackbone

        tokenizer = LQAEBackbone.from_preset(name)
    else:
        from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

        tokenizer = VQGANBackbone.from_preset(name)
    tokenizer.trainable = False
    return tokenizer


def check_single_id_codes(tokenizer):
    """Raises unless `tokenizer` gives one code id per grid position.

    The text-to-image generator predicts one id per position; VQCT's codes
    are `(adjective ids ..., noun id)` per position (`index_shape` with a
    trailing axis), which it cannot generate.
    """
    index_shape = tuple(getattr(tokenizer, "index_shape", ()) or ())
    if len(index_shape) > 2:
        raise ValueError(
            f"`tokenizer` ({type(tokenizer).__name__}) gives codes of shape "
            f"(B,) + {index_shape}: several ids per grid position (VQCT: "
            "adjective ids, then a noun id). The text-to-image generator "
            "predicts one code id per position: use a single-codebook "
            "tokenizer (VQGAN, LG-VQ, CVQ)."
        )


def _as_caption_list(captions):
    """Validates captions: a str or a sequence of str -> list of str."""
    if isinstance(captions, str):
        return [captions]
    if isinstance(captions, np.ndarray) and captions.dtype.kind in "USO":
        captions = captions.reshape(-1).tolist()
    if not isinstance(captions, (list, tuple)) or not captions:
        raise ValueError(
            "`captions` must be a str or a non-empty list of str; received "
            f"{type(captions).__name__}."
        )
    out = []
    for i, caption in enumerate(captions):
        if isinstance(caption, bytes):
            caption = caption.decode("utf-8")
        if not isinstance(caption, str):
            raise ValueError(
                f"`captions`[{i}] must be a str; received "
                f"{type(caption).__name__}: {caption!r:.60}."
            )
        out.append(caption)
    return out


# `generate_codes`'s sampling arguments and their defaults when neither the
# call nor the model's `sampling` sets them.
SAMPLING_DEFAULTS = dict(
    steps=12,
    guidance_scale=3.0,
    temperature=1.0,
    top_k=None,
    remask_temperature=4.5,
)


def _check_sampling(sampling, num_codes):
    """Validated copy of a model's sampling defaults (a dict or None)."""
    if sampling is None:
        return {}
    if not isinstance(sampling, dict):
        raise ValueError(
            "`sampling` must be a dict of generate_codes arguments (e.g. "
            f"{{'remask_temperature': 50.0}}) or None; received {sampling!r}."
        )
    unknown = sorted(set(sampling) - set(SAMPLING_DEFAULTS))
    if unknown:
        raise ValueError(
            f"`sampling` has unknown keys {unknown}; allowed: "
            f"{sorted(SAMPLING_DEFAULTS)}."
        )
    values = dict(sampling)
    if "steps" in values:
        values["steps"] = check_int("sampling['steps']", values["steps"])
    if "guidance_scale" in values:
        values["guidance_scale"] = check_number(
            "sampling['guidance_scale']", values["guidance_scale"], 0.0
        )
    if "temperature" in values:
        values["temperature"] = check_number(
            "sampling['temperature']", values["temperature"], 0.0,
            low_open=True,
        )
    if "remask_temperature" in values:
        values["remask_temperature"] = check_number(
            "sampling['remask_temperature']",
            values["remask_temperature"],
            0.0,
        )
    if values.get("top_k") is not None:
        values["top_k"] = check_int("sampling['top_k']", values["top_k"])
        if values["top_k"] > num_codes:
            raise ValueError(
                f"`sampling['top_k']` must be <= num_codes={num_codes}; "
                f"received {values['top_k']}."
            )
    return values


class _Untracked:
    """Holds objects Keras must not track (the compiled decoding steps)."""

    def __init__(self):
        self.steps = {}


class TokenizerCall(keras.Model):
    """A tokenizer method as a model, so `predict_on_batch` compiles it
    (XLA on TensorFlow and JAX) without backend-specific code.

    Args:
        tokenizer: a tokenizer backbone.
        method: `"encode"` or `"decode"`.

    Examples:

    ```python
    encode = TokenizerCall(tokenizer, "encode")
    codes = encode.predict_on_batch(images)  # numpy (B, h, w)
    ```
    """

    def __init__(self, tokenizer, method):
        if method not in ("encode", "decode"):
            raise ValueError(
                f"`method` must be 'encode' or 'decode'; received {method!r}."
            )
        super().__init__(name=f"tokenizer_{method}")
        self.tokenizer = tokenizer
        self.method = method

    def call(self, inputs):
        return getattr(self.tokenizer, self.method)(inputs)


class _DecodingStep(keras.Model):
    """One parallel-decoding step as a model, so `predict_on_batch` compiles
    it (XLA on TensorFlow and JAX) on every backend without backend code.

    `mode`: `"cond"` (caption only), `"uncond"` (no caption) or `"guided"`
    (both in one doubled batch, combined with the guidance scale).
    """

    def __init__(self, generator, mode, top_k):
        super().__init__(name=f"decoding_step_{mode}")
        self.generator = generator
        self.mode = mode
        self.top_k = top_k

    def call(self, inputs):
        g = self.generator
        codes = ops.cast(inputs["codes"], "int32")
        features = inputs["text_features"]
        text_mask = ops.cast(inputs["text_mask"], "bool")
        if self.mode == "guided":
            logits = g.guided_logits(
                codes, features, text_mask, inputs["guidance_scale"]
            )
        else:
            if self.mode == "uncond":
                text_mask = ops.zeros_like(text_mask)
            logits = g.code_logits(codes, features, text_mask)
        return g.decoding_update(
            codes,
            logits,
            temperature=inputs["temperature"],
            uniform=inputs["uniform"],
            gumbel=inputs["gumbel"],
            noise_scale=inputs["noise_scale"],
            num_masked=inputs["num_masked"],
            top_k=self.top_k,
        )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class TextToImage(CheckedInputFit, NonFiniteStepSkipping, keras.Model):
    """Text-to-image generator and image completer over a frozen tokenizer.

    A MaskGIT / Muse-style masked-token model (VQ-Diffusion with mask-only
    corruption is the same family): a `TextToImageBackbone` reads the code
    grid with some positions replaced by a mask id and the caption's
    per-token features, and predicts the codes at every position (logits
    through the transposed code embedding plus a bias).

    Training (`fit`): each example gets a mask ratio `cos(pi/2 * u)`,
    `u ~ U(0, 1)` (at least one position), that many positions chosen
    uniformly are masked, and the loss is the cross-entropy on the masked
    positions only. A fraction `caption_dropout` of the captions is dropped
    (all caption tokens hidden), which trains the unconditional model used
    by classifier-free guidance. Batches are dicts with `codes` (int
    `(B, h, w)` from the frozen tokenizer, e.g. a
    `keras_lgvq.datasets.code_cache`) and either cached `token_features` +
    `padding_mask`, or `token_ids` + `padding_mask` (the text prior runs in
    the step), or no text (an unconditional model). The image encoder never
    runs in training.

    Sampling (`generate_codes`, `generate`, `complete`): iterative parallel
    decoding. Start with every unknown position masked; at step `t` of `T`
    predict all positions, sample a code for each masked one (temperature,
    optional top-k), score it by its log-probability plus Gumbel noise
    scaled by `remask_temperature * (1 - (t + 1) / T)`, keep the most
    confident and re-mask the `floor(U * cos(pi/2 * (t + 1) / T))` least
    confident (U: positions to fill); all positions are decided after `T`
    steps. Guided logits are `uncond + s * (cond - uncond)`: `s = 0` is the
    unconditional model, `s = 1` the conditional one, `s > 1` strengthens
    the caption. Noise is drawn on the host from
    `numpy.random.SeedSequence([seed, sample_index])`, so results depend
    only on the seed and the sample's index (not on the batch size or the
    backend's random generator). Known codes (completion) are never
    changed.

    Args:
        backbone: `keras_lgvq.models.TextToImageBackbone`.
        tokenizer: optional frozen tokenizer (see `load_tokenizer`: a
            `VQGANBackbone`, a `VQGAN` / `LGVQ`, or a path). Needed to decode
            codes to images and to encode images for completion; its
            codebook size and grid must match the backbone.
        text_prior: optional `keras_lgvq.text_priors.TextPrior` or a name
            for `keras_lgvq.text_priors.get` (e.g. `"minilm"`). Needed for
            `captions=` in sampling and for `token_ids` batches; its
            `hidden_dim` must equal the backbone's `text_dim`.
        caption_dropout: float in [0, 1). Fraction of training captions
            dropped for classifier-free guidance (default 0.1).
        mask_schedule: string. `"cosine"` (default) or `"linear"`.
        seed: int or None. Seed of the training masks and caption dropout.
        sampling: optional dict, this model's defaults for the sampling
            arguments of `generate_codes` (`steps`, `guidance_scale`,
            `temperature`, `top_k`, `remask_temperature`); unset ones
            take `SAMPLING_DEFAULTS`. `from_preset` sets the preset's
            measured settings (e.g. `remask_temperature=50` for the scenes
            generators). Saved with the model.
        **kwargs: `keras.Model` arguments (`name`, `dtype`).

    Examples:

    ```python
    backbone = keras_lgvq.models.TextToImageBackbone(
        num_codes=256, grid_size=16, text_dim=384, hidden_dim=128,
        num_layers=4, num_heads=4)
    model = keras_lgvq.models.TextToImage(
        backbone, tokenizer="runs/scenes/lgvq/model.keras",
        text_prior="minilm")
    model.compile(optimizer=keras.optimizers.AdamW(3e-4))
    model.fit(code_dataset, epochs=10)   # batches of codes + text features
    images = model.generate(["a red star above a blue circle"] * 4, seed=0)
    completed = model.complete(codes, known_mask, captions=captions)
    ```
    """

    def __init__(
        self,
        backbone,
        tokenizer=None,
        text_prior=None,
        caption_dropout=0.1,
        mask_schedule="cosine",
        seed=None,
        sampling=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.layers.deserialize(backbone)
        if not isinstance(backbone, TextToImageBackbone):
            raise ValueError(
                "`backbone` must be a TextToImageBackbone; received "
                f"{type(backbone).__name__}."
            )
        if isinstance(tokenizer, dict):
            tokenizer = keras.layers.deserialize(tokenizer)
        if tokenizer is not None:
            tokenizer = load_tokenizer(tokenizer)
            check_single_id_codes(tokenizer)
            if int(tokenizer.num_embeddings) != backbone.num_codes:
                raise ValueError(
                    f"`tokenizer` has {tokenizer.num_embeddings} codes but "
                    f"the backbone predicts num_codes={backbone.num_codes}; "
                    "build the backbone with the tokenizer's codebook size."
                )
            if int(tokenizer.grid_size) != backbone.grid_size:
                raise ValueError(
                    f"`tokenizer` makes {tokenizer.grid_size}x"
                    f"{tokenizer.grid_size} code grids but the backbone has "
                    f"grid_size={backbone.grid_size}; the grid sizes must "
                    "match."
                )
        if isinstance(text_prior, str):
            from keras_lgvq import text_priors

            text_prior = text_priors.get(text_prior)
        if isinstance(text_prior, dict):
            text_prior = keras.layers.deserialize(text_prior)
        if text_prior is not None:
            if not hasattr(text_prior, "tokenize"):
                raise ValueError(
                    "`text_prior` must be a keras_lgvq TextPrior, a name for "
                    "`keras_lgvq.text_priors.get`, or None; received "
                    f"{type(text_prior).__name__}."
                )
            if int(text_prior.hidden_dim) != backbone.text_dim:
                raise ValueError(
                    f"`text_prior` features have width "
                    f"{text_prior.hidden_dim} but the backbone expects "
                    f"text_dim={backbone.text_dim}."
                )
        if mask_schedule not in MASK_SCHEDULES:
            raise ValueError(
                f"`mask_schedule` must be one of {MASK_SCHEDULES}; received "
                f"{mask_schedule!r}."
            )
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.text_prior = text_prior
        self.caption_dropout = check_number(
            "caption_dropout", caption_dropout, 0.0, 1.0, high_open=True
        )
        self.mask_schedule = mask_schedule
        self.seed = seed
        self.sampling = _check_sampling(sampling, backbone.num_codes)
        self.seed_generator = keras.random.SeedGenerator(seed)
        hidden = backbone.hidden_dim
        # MaskGIT's MLM head: dense + GELU + layer norm, then the transposed
        # code embedding and a per-code bias.
        self.head_dense = keras.layers.Dense(
            hidden,
            activation="gelu",
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=0.02
            ),
            dtype=backbone.dtype_policy,
            name="head_dense",
        )
        self.head_norm = keras.layers.LayerNormalization(
            epsilon=backbone.layer_norm_epsilon,
            dtype=backbone.dtype_policy,
            name="head_norm",
        )
        self.head_dense.build((None, None, hidden))
        self.head_norm.build((None, None, hidden))
        self.output_bias = self.add_weight(
            shape=(backbone.num_codes,),
            initializer="zeros",
            name="output_bias",
        )
        self.masked_accuracy = keras.metrics.Mean(name="masked_accuracy")
        self._untracked = _Untracked()
        # Every weight exists now (the backbone is functional, the head was
        # built above), so the model is usable and loadable at once.
        self.built = True

    # === Properties ===

    @property
    def num_codes(self):
        return self.backbone.num_codes

    @property
    def grid_size(self):
        return self.backbone.grid_size

    @property
    def mask_id(self):
        return self.backbone.mask_id

    # === Forward passes ===

    def code_logits(self, code_ids, text_features, text_mask, training=False):
        """Logits `(B, N, K)` float32 of every position's code.

        Args:
            code_ids: int `(B, N)` (or `(B, h, w)`), `mask_id` where masked.
            text_features: float `(B, L, text_dim)`.
            text_mask: bool `(B, L)`; an all-False row means no caption.
            training: bool.
        """
        code_ids = ops.cast(code_ids, "int32")
        if len(code_ids.shape) == 3:
            code_ids = ops.reshape(code_ids, (ops.shape(code_ids)[0], -1))
        hidden = self.backbone(
            {
                "code_ids": code_ids,
                "text_features": ops.cast(text_features, "float32"),
                "text_mask": ops.cast(text_mask, "bool"),
            },
            training=training,
        )
        hidden = self.head_norm(self.head_dense(hidden))
        logits = self.backbone.token_embedding(hidden, reverse=True)
        logits = ops.cast(logits[..., : self.num_codes], "float32")
        return logits + ops.cast(self.output_bias, "float32")

    def guided_logits(self, code_ids, text_features, text_mask, guidance_scale):
        """Classifier-free guidance: `uncond + s * (cond - uncond)`.

        Both passes run in one doubled batch. `s = 0` gives exactly the
        unconditional logits (caption hidden), `s = 1` the conditional ones.

        Args:
            code_ids: int `(B, N)`.
            text_features: float `(B, L, text_dim)`.
            text_mask: bool `(B, L)`.
            guidance_scale: float or float `(B,)`, >= 0.
        """
        code_ids = ops.cast(code_ids, "int32")
        text_mask = ops.cast(text_mask, "bool")
        batch = ops.shape(code_ids)[0]
        logits = self.code_logits(
            ops.concatenate([code_ids, code_ids], axis=0),
            ops.concatenate([text_features, text_features], axis=0),
            ops.concatenate([text_mask, ops.zeros_like(text_mask)], axis=0),
        )
        cond, uncond = logits[:batch], logits[batch:]
        scale = ops.cast(guidance_scale, "float32")
        if len(scale.shape) == 1:
            scale = scale[:, None, None]
        return uncond + scale * (cond - uncond)

    def decoding_update(
        self,
        codes,
        logits,
        temperature,
        uniform,
        gumbel,
        noise_scale,
        num_masked,
        top_k=None,
    ):
        """One parallel-decoding update from given logits (pure ops).

        Every masked position (`codes == mask_id`) gets a code sampled from
        `softmax(logits / temperature)` (restricted to the `top_k` largest
        when given) by inverse-CDF with `uniform`; its confidence is the
        sampled code's log-probability (before the top-k filter) plus
        `noise_scale * gumbel`. Decided
        positions keep their code. Then the `num_masked` least confident
        of the newly sampled positions are masked again.

        Args:
            codes: int `(B, N)`.
            logits: float `(B, N, K)`.
            temperature: float `(B,)` > 0.
            uniform: float `(B, N)` in [0, 1), sampling noise.
            gumbel: float `(B, N)`, standard Gumbel noise.
            noise_scale: float `(B,)`, weight of `gumbel`.
            num_masked: int `(B,)`, positions left masked after the update
                (at most the number masked before it).
            top_k: int or None.

        Returns:
            int32 `(B, N)` codes.
        """
        codes = ops.cast(codes, "int32")
        logits = ops.cast(logits, "float32")
        logits = logits / ops.cast(temperature, "float32")[:, None, None]
        # Confidence comes from the whole distribution (a top-k filter
        # would give the top-1 code probability 1 everywhere).
        full_log_probs = ops.log_softmax(logits, axis=-1)
        if top_k is not None:
            kth = ops.top_k(logits, top_k, sorted=True)[0][..., -1:]
            logits = ops.where(logits < kth, -1e30, logits)
        log_probs = ops.log_softmax(logits, axis=-1)
        cdf = ops.cumsum(ops.exp(log_probs), axis=-1)
        threshold = ops.cast(uniform, "float32")[..., None] * cdf[..., -1:]
        sampled = ops.sum(ops.cast(cdf <= threshold, "int32"), axis=-1)
        sampled = ops.minimum(sampled, self.num_codes - 1)
        # Never pick a code the top-k filter removed (cdf rounding).
        sampled = ops.where(
            ops.take_along_axis(logits, sampled[..., None], axis=-1)[..., 0]
            <= -1e29,
            ops.argmax(logits, axis=-1),
            sampled,
        )
        sampled = ops.cast(sampled, "int32")
        chosen = ops.take_along_axis(
            full_log_probs, sampled[..., None], axis=-1
        )
        confidence = chosen[..., 0] + ops.cast(noise_scale, "float32")[
            :, None
        ] * ops.cast(gumbel, "float32")
        masked = ops.equal(codes, self.mask_id)
        confidence = ops.where(masked, confidence, _DECIDED)
        candidate = ops.where(masked, sampled, codes)
        ranks = ops.argsort(ops.argsort(confidence, axis=-1), axis=-1)
        remask = ranks < ops.cast(num_masked, "int32")[:, None]
        return ops.where(remask, self.mask_id, candidate)

    def _text_inputs(self, inputs, batch):
        if "token_features" in inputs:
            if "padding_mask" not in inputs:
                raise ValueError(
                    "Batches with `token_features` need their `padding_mask`."
                )
            features = inputs["token_features"]
            mask = inputs["padding_mask"]
        elif "token_ids" in inputs:
            if self.text_prior is None:
                raise ValueError(
                    "Batches carry `token_ids` but this TextToImage has no "
                    "text prior: pass cached `token_features` (see "
                    "keras_lgvq.text_priors.build_feature_cache) or build "
                    "it with `text_prior=`."
                )
            out = self.text_prior(
                inputs["token_ids"], inputs.get("padding_mask")
            )
            features, mask = out["token_features"], out["padding_mask"]
        else:
            # No caption at all: an unconditional model.
            features = ops.zeros((batch, 1, self.backbone.text_dim))
            mask = ops.zeros((batch, 1), "bool")
        return (
            ops.stop_gradient(ops.cast(features, "float32")),
            ops.cast(mask, "bool"),
        )

    def training_mask(self, batch, seed=None):
        """Random training masks `(B, N)` bool from the mask schedule.

        Each row masks `clip(ceil(ratio * N), 1, N)` positions chosen
        uniformly, with `ratio = mask_ratio(u)`, `u ~ U(0, 1)`.

        Args:
            batch: int. Rows.
            seed: int, `keras.random.SeedGenerator` or None (the model's).
        """
        seed = self.seed_generator if seed is None else seed
        length = self.backbone.sequence_length
        progress = keras.random.uniform((batch,), seed=seed)
        ratio = mask_ratio(progress, self.mask_schedule)
        count = ops.clip(ops.ceil(ratio * length), 1, length)
        scores = keras.random.uniform((batch, length), seed=seed)
        ranks = ops.argsort(ops.argsort(scores, axis=-1), axis=-1)
        return ranks < ops.cast(count, "int32")[:, None]

    def call(self, inputs, training=False):
        """The training forward pass: masks codes, returns logits and mask.

        Args:
            inputs: dict with `codes` int `(B, h, w)` or `(B, N)`, text (see
                the class docstring) and optionally `mask` bool `(B, N)` to
                use instead of a random mask.
            training: bool. Caption dropout applies only in training.

        Returns:
            dict: `logits` float32 `(B, N, K)` and `mask` bool `(B, N)`.
        """
        if not isinstance(inputs, dict) or "codes" not in inputs:
            keys = sorted(inputs) if isinstance(inputs, dict) else type(inputs)
            raise ValueError(
                "TextToImage batches must be dicts with `codes` (the frozen "
                "tokenizer's code grids; see keras_lgvq.datasets.code_cache) "
                f"and optional text; received {keys}."
            )
        codes = ops.cast(inputs["codes"], "int32")
        batch = ops.shape(codes)[0]
        codes = ops.reshape(codes, (batch, self.backbone.sequence_length))
        if "mask" in inputs:
            mask = ops.reshape(
                ops.cast(inputs["mask"], "bool"),
                (batch, self.backbone.sequence_length),
            )
        else:
            mask = self.training_mask(batch)
        features, text_mask = self._text_inputs(inputs, batch)
        if training and self.caption_dropout > 0:
            keep = keras.random.uniform(
                (batch,), seed=self.seed_generator
            ) >= self.caption_dropout
            text_mask = ops.logical_and(text_mask, keep[:, None])
        masked_codes = ops.where(mask, self.mask_id, codes)
        logits = self.code_logits(
            masked_codes, features, text_mask, training=training
        )
        return {"logits": logits, "mask": mask}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        codes = ops.reshape(
            ops.cast(x["codes"], "int32"),
            (-1, self.backbone.sequence_length),
        )
        loss = masked_code_loss(y_pred["logits"], codes, y_pred["mask"])
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        codes = ops.reshape(
            ops.cast(x["codes"], "int32"),
            (-1, self.backbone.sequence_length),
        )
        predicted = ops.cast(ops.argmax(y_pred["logits"], axis=-1), "int32")
        self.masked_accuracy.update_state(
            ops.cast(ops.equal(predicted, codes), "float32"),
            sample_weight=ops.cast(y_pred["mask"], "float32"),
        )
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def build(self, input_shape=None):
        self.built = True

    # === Data ===

    def _filter_inputs(self, x):
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset) and isinstance(
            x.element_spec, dict
        ):
            spec = x.element_spec
            if (
                "captions" in spec
                and "token_ids" not in spec
                and "token_features" not in spec
                and self.text_prior is not None
            ):
                tokenize = self.text_prior.tokenize

                def add_tokens(batch):
                    ids, mask = tokenize(batch["captions"])
                    return {**batch, "token_ids": ids, "padding_mask": mask}

                x = x.map(add_tokens, num_parallel_calls=tf.data.AUTOTUNE)
                spec = x.element_spec
            keys = [k for k in INPUT_KEYS if k in spec]
            num_codes = self.num_codes
            length = self.backbone.sequence_length

            def keep_and_check(batch):
                # Host-side: a jitted step cannot raise on a bad id (JAX
                # gathers it silently and trains on a NaN loss).
                return validate_code_batch(
                    {k: batch[k] for k in keys}, num_codes, length
                )

            return x.map(keep_and_check, num_parallel_calls=tf.data.AUTOTUNE)
        if isinstance(x, dict):
            x = {k: v for k, v in x.items() if k in INPUT_KEYS}
            if "codes" in x:
                self._check_batch_codes(x["codes"])
        return x

    def _check_batch_codes(self, codes):
        """Refuses in-memory training codes that do not fit the model."""
        values = np.asarray(ops.convert_to_numpy(codes))
        if values.ndim < 2 or int(np.prod(values.shape[1:])) != (
            self.backbone.sequence_length
        ):
            raise ValueError(
                f"{CODE_CHECK_PREFIX}each `codes` row must hold "
                f"sequence_length={self.backbone.sequence_length} ids (a "
                f"{self.grid_size}x{self.grid_size} grid); got an array of "
                f"shape {values.shape}. The codes come from another "
                "tokenizer or grid size."
            )
        check_code_range(values, self.num_codes, name="codes")

    # === Tokenizer ===

    def _require_tokenizer(self, what):
        if self.tokenizer is None:
            raise ValueError(
                f"{what} needs the image tokenizer: build the TextToImage "
                "with `tokenizer=` (a VQGANBackbone, VQGAN, LGVQ or a path)."
            )
        return self.tokenizer

    def encode_images(self, images, batch_size=64):
        """Code grids `(B, h, w)` int32 of images in [-1, 1] (numpy).

        Args:
            images: float `(B, H, W, 3)` in [-1, 1].
            batch_size: int. Images per tokenizer call.
        """
        self._require_tokenizer("encode_images")
        batch_size = check_int("batch_size", batch_size)
        images = np.asarray(images, "float32")
        encode = self._tokenizer_call("encode")
        out = [
            np.asarray(encode.predict_on_batch(images[i : i + batch_size]),
                       "int32")
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out, axis=0)

    def _tokenizer_call(self, method):
        key = ("tokenizer", method)
        if key not in self._untracked.steps:
            call = TokenizerCall(self.tokenizer, method)
            call.compile(jit_compile=self._sampling_jit())
            self._untracked.steps[key] = call
        return self._untracked.steps[key]

    def _sampling_jit(self):
        return getattr(self, "jit_compile", "auto") if self.compiled else (
            "auto"
        )

    def decode_codes(self, codes, batch_size=64):
        """Images `(B, H, W, 3)` float32 in about [-1, 1] from code grids.

        Args:
            codes: int `(B, h, w)` in `[0, num_codes)`.
            batch_size: int. Grids per tokenizer call.
        """
        self._require_tokenizer("decode_codes")
        batch_size = check_int("batch_size", batch_size)
        codes = self._check_codes(codes, "codes")
        decode = self._tokenizer_call("decode")
        out = [
            np.asarray(decode.predict_on_batch(codes[i : i + batch_size]),
                       "float32")
            for i in range(0, len(codes), batch_size)
        ]
        return np.concatenate(out, axis=0)

    # === Sampling ===

    def _check_codes(self, codes, name, where=None):
        codes = self._check_grid(codes, name)
        checked = codes if where is None else codes[where]
        if checked.size and (
            checked.min() < 0 or checked.max() >= self.num_codes
        ):
            raise ValueError(
                f"`{name}` holds code ids outside [0, {self.num_codes}) "
                f"(found {int(checked.min())}..{int(checked.max())}); they "
                "must come from a tokenizer with this codebook size."
            )
        return codes.astype("int32")

    def _check_grid(self, codes, name):
        codes = np.asarray(ops.convert_to_numpy(codes))
        grid = self.grid_size
        if codes.ndim != 3 or codes.shape[1:] != (grid, grid):
            raise ValueError(
                f"`{name}` must be code grids of shape (batch, {grid}, "
                f"{grid}) (the tokenizer's grid); received shape "
                f"{codes.shape}."
            )
        if codes.dtype.kind not in "iu":
            raise ValueError(
                f"`{name}` must hold integer code ids; received dtype "
                f"{codes.dtype}."
            )
        return codes

    def encode_captions(self, captions, batch_size=64):
        """Per-token text features of captions with the model's text prior.

        Args:
            captions: str or list of str.
            batch_size: int. Captions per text-prior call.

        Returns:
            dict of numpy arrays: `token_features` `(B, L, D)` float32 and
            `padding_mask` `(B, L)` bool.
        """
        captions = _as_caption_list(captions)
        if self.text_prior is None:
            raise ValueError(
                "`captions` need a text prior: build the TextToImage with "
                "`text_prior=` or pass cached `text_features=`."
            )
        out = self.text_prior.encode(captions, batch_size=batch_size)
        return {
            "token_features": np.asarray(out["token_features"], "float32"),
            "padding_mask": np.asarray(out["padding_mask"], bool),
        }

    def _check_text_features(self, text_features):
        if not isinstance(text_features, dict) or not {
            "token_features",
            "padding_mask",
        } <= set(text_features):
            raise ValueError(
                "`text_features` must be a dict with `token_features` "
                "(B, L, text_dim) and `padding_mask` (B, L); received "
                f"{type(text_features).__name__}."
            )
        features = np.asarray(
            ops.convert_to_numpy(text_features["token_features"]), "float32"
        )
        mask = np.asarray(
            ops.convert_to_numpy(text_features["padding_mask"]), bool
        )
        if (
            features.ndim != 3
            or features.shape[-1] != self.backbone.text_dim
            or mask.shape != features.shape[:2]
        ):
            raise ValueError(
                "`text_features` must hold `token_features` of shape "
                f"(B, L, {self.backbone.text_dim}) and a matching "
                f"`padding_mask` (B, L); received {features.shape} and "
                f"{mask.shape}."
            )
        return {"token_features": features, "padding_mask": mask}

    def _decoding_step(self, mode, top_k):
        key = (mode, top_k)
        if key not in self._untracked.steps:
            step = _DecodingStep(self, mode, top_k)
            step.compile(jit_compile=self._sampling_jit())
            self._untracked.steps[key] = step
        return self._untracked.steps[key]

    def generate_codes(
        self,
        captions=None,
        text_features=None,
        num_samples=None,
        samples_per_caption=1,
        steps=None,
        guidance_scale=None,
        temperature=None,
        top_k=None,
        remask_temperature=None,
        seed=0,
        batch_size=32,
        known_codes=None,
        known_mask=None,
        verbose=0,
    ):
        """Samples code grids by iterative parallel decoding.

        Args:
            captions: str or list of str (needs the text prior), or None.
            text_features: dict of cached `token_features` `(B, L, D)` and
                `padding_mask` `(B, L)` instead of `captions`.
            num_samples: int. Samples without a caption (unconditional);
                ignored when text or `known_codes` set the batch.
            samples_per_caption: int. Samples per caption (caption-major
                order: all samples of caption 0 first).
            steps: int >= 1. Decoding steps (MaskGIT: 8-12).
            guidance_scale: float >= 0. 0: unconditional, 1: conditional,
                > 1: classifier-free guidance.
            temperature: float > 0. Sampling temperature.
            top_k: int in [1, num_codes] or None. Sample among the top-k
                codes only (`num_codes`: no restriction).
            remask_temperature: float >= 0. Scale of the Gumbel noise on the
                confidences (annealed to 0 over the steps).

            `steps`, `guidance_scale`, `temperature`, `top_k` and
            `remask_temperature` left at None take the model's `sampling`
            defaults, then `SAMPLING_DEFAULTS` (12, 3.0, 1.0, None, 4.5).
            seed: int. The samples depend only on `seed` and their index.
            batch_size: int. Samples decoded together.
            known_codes: optional int `(B, h, w)`: codes of a partial grid
                (completion); only positions in `known_mask` are read.
            known_mask: bool `(B, h, w)` or `(h, w)`, True where
                `known_codes` is given. Those codes are never changed.
            verbose: int. 1 shows a progress bar.

        Returns:
            numpy int32 `(num, h, w)` code grids.
        """
        given = dict(
            steps=steps,
            guidance_scale=guidance_scale,
            temperature=temperature,
            top_k=top_k,
            remask_temperature=remask_temperature,
        )
        values = {**SAMPLING_DEFAULTS, **self.sampling}
        values.update({k: v for k, v in given.items() if v is not None})
        steps, guidance_scale, temperature, top_k, remask_temperature = (
            values[k] for k in given
        )
        steps = check_int("steps", steps)
        guidance_scale = check_number("guidance_scale", guidance_scale, 0.0)
        temperature = check_number(
            "temperature", temperature, 0.0, low_open=True
        )
        remask_temperature = check_number(
            "remask_temperature", remask_temperature, 0.0
        )
        top_k = check_int("top_k", top_k, allow_none=True)
        if top_k is not None and top_k > self.num_codes:
            raise ValueError(
                f"`top_k` must be <= num_codes={self.num_codes}; received "
                f"{top_k}."
            )
        samples_per_caption = check_int(
            "samples_per_caption", samples_per_caption
        )
        batch_size = check_int("batch_size", batch_size)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"`seed` must be an int; received {seed!r}.")
        if captions is not None and text_features is not None:
            raise ValueError("Pass `captions` or `text_features`, not both.")

        # === Text ===
        if captions is not None:
            text = self.encode_captions(captions)
        elif text_features is not None:
            text = self._check_text_features(text_features)
        else:
            text = None
        if text is not None and samples_per_caption > 1:
            text = {
                k: np.repeat(v, samples_per_caption, axis=0)
                for k, v in text.items()
            }

        # === Known codes (completion) ===
        length = self.backbone.sequence_length
        grid = self.grid_size
        if (known_codes is None) != (known_mask is None):
            raise ValueError(
                "Pass `known_codes` and `known_mask` together (completion)."
            )
        if known_codes is not None:
            known_mask = np.asarray(ops.convert_to_numpy(known_mask))
            if known_mask.dtype != bool:
                raise ValueError(
                    "`known_mask` must be boolean; received dtype "
                    f"{known_mask.dtype}."
                )
            raw = self._check_grid(known_codes, "known_codes")
            if known_mask.shape == (grid, grid):
                known_mask = np.broadcast_to(known_mask, raw.shape)
            if known_mask.shape != raw.shape:
                raise ValueError(
                    "`known_mask` must have the shape of `known_codes` "
                    f"{raw.shape} or ({grid}, {grid}); received "
                    f"{known_mask.shape}."
                )
            known_codes = self._check_codes(raw, "known_codes", known_mask)
            total = len(known_codes)
            if text is not None and len(text["token_features"]) != total:
                raise ValueError(
                    f"{len(text['token_features'])} captions (after "
                    f"samples_per_caption) for {total} `known_codes` grids; "
                    "pass one caption per grid."
                )
            known_codes = known_codes.reshape(total, length)
            known_mask = known_mask.reshape(total, length)
        elif text is not None:
            total = len(text["token_features"])
        else:
            total = check_int("num_samples", num_samples)

        if text is None:
            mode = "uncond"
        elif guidance_scale == 1.0:
            mode = "cond"
        else:
            # Any other scale, 0 included, goes through the guided formula.
            mode = "guided"
        step_model = self._decoding_step(mode, top_k)
        progress = None
        if verbose:
            progress = keras.utils.Progbar(total, unit_name="sample")
        results = []
        for start in range(0, total, batch_size):
            stop = min(total, start + batch_size)
            results.append(
                self._decode_batch(
                    step_model,
                    start,
                    stop,
                    text,
                    known_codes,
                    known_mask,
                    steps,
                    guidance_scale,
                    temperature,
                    remask_temperature,
                    seed,
                )
            )
            if progress is not None:
                progress.update(stop)
        return np.concatenate(results, axis=0).reshape(total, grid, grid)

    def _decode_batch(
        self,
        step_model,
        start,
        stop,
        text,
        known_codes,
        known_mask,
        steps,
        guidance_scale,
        temperature,
        remask_temperature,
        seed,
    ):
        length = self.backbone.sequence_length
        batch = stop - start
        if known_codes is None:
            fixed = np.zeros((batch, length), bool)
            codes = np.full((batch, length), self.mask_id, "int32")
        else:
            fixed = known_mask[start:stop]
            codes = np.where(fixed, known_codes[start:stop], self.mask_id)
            codes = codes.astype("int32")
        if text is None:
            features = np.zeros((batch, 1, self.backbone.text_dim), "float32")
            text_mask = np.zeros((batch, 1), bool)
        else:
            features = text["token_features"][start:stop]
            text_mask = text["padding_mask"][start:stop]
        # Per-sample noise streams: results do not depend on batching.
        noise = np.stack(
            [
                np.random.Generator(
                    np.random.PCG64(np.random.SeedSequence([int(seed), i]))
                ).random((steps, 2, length))
                for i in range(start, stop)
            ],
            axis=1,
        )
        to_fill = length - fixed.sum(axis=1)
        row = np.ones((batch,), "float32")
        for t in range(steps):
            masked_now = (codes == self.mask_id).sum(axis=1)
            if not masked_now.any():
                break
            if t == steps - 1:
                num_masked = np.zeros((batch,), "int32")
            else:
                target = np.floor(
                    to_fill * mask_ratio((t + 1) / steps)
                ).astype("int64")
                # Decide at least one position per step and never un-decide.
                num_masked = np.clip(target, 0, np.maximum(masked_now - 1, 0))
            uniform = np.minimum(noise[t, :, 0], 1.0 - 1e-7)
            gumbel = -np.log(
                -np.log(np.clip(noise[t, :, 1], 1e-20, 1.0 - 1e-7))
            )
            inputs = {
                "codes": codes,
                "text_features": features,
                "text_mask": text_mask,
                "guidance_scale": row * guidance_scale,
                "temperature": row * temperature,
                "uniform": uniform.astype("float32"),
                "gumbel": gumbel.astype("float32"),
                "noise_scale": row
                * (remask_temperature * (1.0 - (t + 1) / steps)),
                "num_masked": num_masked.astype("int32"),
            }
            codes = np.asarray(step_model.predict_on_batch(inputs), "int32")
        if known_codes is not None:
            # Known codes are never masked, so this is a no-op kept as a
            # guarantee of the contract.
            codes = np.where(fixed, known_codes[start:stop], codes)
        return codes

    def generate(self, captions=None, batch_size=32, **kwargs):
        """Samples images `(B, H, W, 3)` float32 in about [-1, 1].

        `generate_codes` (same arguments) followed by the tokenizer's
        decoder.
        """
        codes = self.generate_codes(
            captions, batch_size=batch_size, **kwargs
        )
        return self.decode_codes(codes, batch_size=batch_size)

    def complete(self, codes, known_mask, captions=None, **kwargs):
        """Fills the unknown positions of partial code grids.

        Args:
            codes: int `(B, h, w)`; only positions in `known_mask` are read.
            known_mask: bool `(B, h, w)` or `(h, w)`, True where known (e.g.
                the top half). Those codes are returned unchanged.
            captions: optional captions (one per grid), or pass
                `text_features=`; without text the completion is
                unconditional.
            **kwargs: `generate_codes` arguments (steps, guidance_scale,
                temperature, top_k, seed, ...).

        Returns:
            numpy int32 `(B, h, w)` completed grids.

        Examples:

        ```python
        known = np.zeros((16, 16), bool)
        known[:8] = True  # top half
        filled = model.complete(codes, known, captions=captions, seed=0)
        ```
        """
        return self.generate_codes(
            captions, known_codes=codes, known_mask=known_mask, **kwargs
        )

    # === Saving and presets ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "tokenizer": None
                if self.tokenizer is None
                else keras.layers.serialize(self.tokenizer),
                "text_prior": None
                if self.text_prior is None
                else keras.layers.serialize(self.text_prior),
                "caption_dropout": self.caption_dropout,
                "mask_schedule": self.mask_schedule,
                "seed": self.seed,
                "sampling": dict(self.sampling) or None,
            }
        )
        return config

    @classmethod
    def from_preset(
        cls,
        preset,
        tokenizer=None,
        text_prior="auto",
        load_weights=True,
        **kwargs,
    ):
        """Builds a generator from a built-in preset or a preset directory.

        Names resolve as for every model of the package
        (`keras_lgvq.models.presets.resolve_preset`). A built-in name builds
        the architecture untrained; its codebook size and grid come from
        `tokenizer` when given (else from the preset). A built-in name that
        ships a trained generator (`scenes_lgvq_text_to_image`,
        `scenes_vqgan_text_to_image`; `keras_lgvq.models.captioning.
        shipped`) loads it with its shipped tokenizer preset and its text
        prior attached, no training, no download (`load_weights=False`: the
        same architecture, untrained). A directory written by
        `save_to_preset` restores the trained generator (and its
        tokenizer).

        Args:
            preset: string. A built-in name (`list_presets("TextToImage")`)
                or a local directory.
            tokenizer: optional tokenizer (model, layer or path, see
                `load_tokenizer`); replaces a directory's own. Not allowed
                with a shipped preset (its weights fit its own tokenizer).
            text_prior: `"auto"` (the preset's prior when it is available
                offline; a shipped model's own), a `TextPrior`, a name, or
                None.
            load_weights: bool. Load a directory's or a shipped preset's
                weights.
            **kwargs: backbone fields (`num_layers=2`, ...) and constructor
                arguments (`caption_dropout=0.2`, ...) overriding the
                preset's (constructor arguments only, for a shipped one).

        Raises:
            FileNotFoundError: a shipped preset whose files are not
                installed (the message names the command that makes them).

        Examples:

        ```python
        model = keras_lgvq.models.TextToImage.from_preset(
            "text_to_image_scenes", tokenizer="runs/lgvq/model.keras")
        big = keras_lgvq.models.TextToImage.from_preset(
            "text_to_image_celeba_hq")  # 19 layers, width 1024
        trained = keras_lgvq.models.TextToImage.from_preset(
            "scenes_lgvq_text_to_image")  # shipped weights
        ```
        """
        from keras_lgvq.models import presets

        kind, value = presets.resolve_preset(preset, cls.__name__)
        if kind == "directory":
            return cls._from_directory(
                value, tokenizer, text_prior, load_weights, **kwargs
            )
        if value.get("shipped_model"):
            from keras_lgvq.models.captioning.shipped import load_shipped_model

            kwargs.setdefault("sampling", value.get("sampling"))
            if text_prior != "auto":
                kwargs["text_prior"] = text_prior
            return load_shipped_model(
                cls, value, tokenizer, load_weights, **kwargs
            )
        return cls._from_spec(value, tokenizer, text_prior, **kwargs)

    @classmethod
    def _from_spec(cls, spec, tokenizer=None, text_prior="auto", **kwargs):
        backbone_args = dict(spec["backbone"])
        if tokenizer is not None:
            tokenizer = load_tokenizer(tokenizer)
            backbone_args["num_codes"] = int(tokenizer.num_embeddings)
            backbone_args["grid_size"] = int(tokenizer.grid_size)
        overrides = {
            k: kwargs.pop(k) for k in list(kwargs) if k in backbone_args
        }
        backbone_args.update(overrides)
        if text_prior == "auto":
            text_prior = _prior_or_warn(spec["text"])
        elif isinstance(text_prior, str):
            from keras_lgvq import text_priors

            text_prior = text_priors.get(
                text_prior, sequence_length=spec["text"]["sequence_length"]
            )
        if text_prior is not None:
            backbone_args["text_dim"] = int(text_prior.hidden_dim)
        backbone = TextToImageBackbone(**backbone_args)
        options = dict(spec.get("model", {}))
        options["sampling"] = spec.get("sampling")
        options.update(kwargs)
        return cls(
            backbone=backbone,
            tokenizer=tokenizer,
            text_prior=text_prior,
            **options,
        )

    @classmethod
    def _from_directory(
        cls, preset, tokenizer=None, text_prior="auto", load_weights=True,
        **kwargs,
    ):
        from keras_lgvq.models import presets

        if not os.path.exists(os.path.join(preset, presets.TASK_CONFIG_FILE)):
            raise ValueError(
                f"{preset!r} holds a backbone only (no "
                f"{presets.TASK_CONFIG_FILE}): load it with "
                "`TextToImageBackbone.from_preset` and pass it to the "
                "TextToImage constructor."
            )
        config = presets.read_json(preset, presets.TASK_CONFIG_FILE)
        registered = config.get("registered_name", config.get("class_name"))
        target = keras.saving.get_registered_object(registered)
        if target is None or not issubclass(target, cls):
            raise ValueError(
                f"{preset!r} holds a {registered}, not a {cls.__name__}."
            )
        backbone = TextToImageBackbone.from_preset(
            preset, load_weights=load_weights
        )
        config["config"]["backbone"] = backbone
        replace_tokenizer = tokenizer is not None
        if replace_tokenizer:
            config["config"]["tokenizer"] = load_tokenizer(tokenizer)
        if text_prior != "auto":
            config["config"]["text_prior"] = text_prior
        config["config"].update(kwargs)
        model = keras.saving.deserialize_keras_object(config)
        if load_weights:
            skip = list(model.backbone._flatten_layers())
            if replace_tokenizer:
                skip += list(model.tokenizer._flatten_layers())
            keras.saving.load_weights(
                model,
                os.path.join(preset, presets.TASK_WEIGHTS_FILE),
                objects_to_skip=skip,
            )
        return model

    def save_to_preset(self, preset_dir):
        """Writes the generator in keras-hub's preset layout.

        `config.json` + `model.weights.h5` hold the backbone (keras-hub's
        saver); `task.json` + `task.weights.h5` the head and the frozen
        tokenizer. Reload with `TextToImage.from_preset(preset_dir)`.

        Args:
            preset_dir: string. Directory to create or overwrite files in.

        Examples:

        ```python
        model.save_to_preset("runs/t2i/preset")
        model = keras_lgvq.models.TextToImage.from_preset("runs/t2i/preset")
        ```
        """
        from keras_lgvq.models import presets

        presets.save_task_preset(
            self,
            preset_dir,
            metadata={
                "class_name": type(self).__name__,
                "keras_lgvq_version": __version__,
                "task_parameter_count": self.count_params(),
            },
        )


def _prior_or_warn(text):
    """The preset's text prior when it is available offline, else None."""
    from keras_lgvq import text_priors

    name = text["text_prior"]
    if name == "minilm":
        return text_priors.get(name, sequence_length=text["sequence_length"])
    from keras_lgvq.utils.cache import cache_dir

    source = os.path.join(cache_dir("text_priors"), name)
    if os.path.isdir(source):
        return text_priors.get(source, sequence_length=text["sequence_length"])
    warnings.warn(
        f"The preset's text prior {name!r} is not available offline (no "
        f"copy at {source}); the generator is built without one and samples "
        "from cached `text_features=` only. Pass `text_prior=` a local "
        "directory to caption on the fly.",
        stacklevel=3,
    )
    return None

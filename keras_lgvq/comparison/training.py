"""Training one system of the comparison.

`build_model` makes the row's model from its preset (smoke-sized under
`--smoke`, with the text prior and guidance when it is language-guided),
`train_system` trains it on the shared scenes pipeline (same batches,
steps and seed for every row) and returns the model with a JSON-ready
record: parameters, the per-step losses, the initial-backbone checksum
(equal for a guided row and its twin) and `system_setup`, what the report
states about the system.
"""

import keras
import numpy as np
from keras import ops

from keras_lgvq.comparison.budgets import SMOKE_HEADS
from keras_lgvq.comparison.data import scenes_sizes
from keras_lgvq.comparison.systems import MODEL_NAMES
from keras_lgvq.comparison.systems import MODELS

# Logged values drawn in training_curves.png (LG-VQ adds its text losses,
# VQCT its sub-codebook terms, LQAE its masked-LM loss).
CURVE_KEYS = (
    "loss",
    "rec_loss",
    "vq_loss",
    "perplexity",
    "lg_loss",
    "gsa_loss",
    "mtp_loss",
    "ras_loss",
    "adjective_loss",
    "noun_loss",
    "mlm_loss",
)


def image_size_of(kind, settings):
    """The training / evaluation image size of row `kind` in this run.

    Args:
        kind: str. `MODELS` key.
        settings: dict from `resolve_settings`.

    Examples:

    ```python
    image_size_of("lqae", settings)   # 32 under --smoke
    ```
    """
    spec = MODELS[kind]
    if settings["smoke"] and spec.smoke_overrides is not None:
        return spec.smoke_overrides().get("image_size", settings["image_size"])
    return settings["image_size"]


def build_model(kind, text_prior, settings):
    """The model of `MODELS[kind]` from its preset, built.

    Args:
        kind: str. `MODELS` key.
        text_prior: the scenes `TextPrior` (given to guided rows).
        settings: dict from `resolve_settings`.

    Returns:
        The built, uncompiled trainer (`LGVQ`, `VQGAN`, `VQCT`, `LQAE`...).

    Examples:

    ```python
    model = build_model("vqgan", prior, resolve_settings({"smoke": True}))
    ```
    """
    from keras_lgvq import models

    spec = MODELS[kind]
    kwargs = {}
    if spec.family == "vqgan" and not settings["discriminator"]:
        kwargs["discriminator"] = None
    if spec.backbone is not None:
        kwargs["backbone"] = spec.backbone(settings["smoke"])
    elif settings["smoke"]:
        if spec.smoke_backbone is not None:
            kwargs["backbone"] = spec.smoke_backbone()
        else:
            kwargs.update(spec.smoke_overrides())
    if spec.guided:
        guidance = {}
        if settings["leak_free_mtp"]:
            guidance["mtp_leak_free"] = True
        if settings["smoke"]:
            guidance.update(SMOKE_HEADS)
        if guidance:
            kwargs["guidance"] = guidance
        kwargs["text_prior"] = text_prior
    model_class = getattr(models, spec.model_class)
    model = model_class.from_preset(spec.preset, **kwargs)
    model.build()
    return model


def system_setup(kind, model):
    """What the report states about one system.

    Args:
        kind: str. `MODELS` key.
        model: its built trainer.

    Returns:
        dict: preset, trainer, tokenizer class, codebook size, code grid,
        quantizer, CVQ re-initialisation, discriminator, LPIPS (and its
        weight), optimiser family, language guidance and, for guided rows,
        whether MTP is leak-free.

    Examples:

    ```python
    system_setup("lgvq", model)["optimizer"]   # "Adam"
    ```
    """
    spec = MODELS[kind]
    backbone = model.backbone
    quantizer = getattr(backbone, "quantizer", None)
    setup = {
        "preset": spec.preset,
        "trainer": spec.model_class,
        "backbone": type(backbone).__name__,
        "codebook_size": int(backbone.num_embeddings),
        "code_grid": int(backbone.grid_size),
        "quantizer": type(quantizer).__name__ if quantizer else None,
        "cvq_reinit": getattr(quantizer, "reinit", "none") == "cvq",
        "discriminator": getattr(model, "discriminator", None) is not None,
        "lpips": getattr(model, "perceptual_loss", None) is not None,
        "perceptual_weight": float(getattr(model, "perceptual_weight", 0.0)),
        "optimizer": "AdamW (LQAE)" if spec.family == "lqae" else "Adam",
        "language_guidance": spec.guided,
    }
    guidance = getattr(model, "guidance", None)
    if guidance is not None:
        setup["mtp_leak_free"] = bool(guidance.mtp_leak_free)
    return setup


def backbone_checksum(model):
    """Sum of |w| over the tokenizer's weights (float64).

    Equal for a guided row and its twin at the start of training: they
    share the initial backbone.

    Args:
        model: a trainer with a `backbone`.

    Examples:

    ```python
    backbone_checksum(model)   # e.g. 5231.77
    ```
    """
    return float(
        sum(
            np.abs(ops.convert_to_numpy(w)).astype("float64").sum()
            for w in model.backbone.weights
        )
    )


class StepLog(keras.callbacks.Callback):
    """Records the logged values after every training step.

    Keras's loss trackers are running means that restart each epoch, so
    these are the numbers its progress bar shows, step by step.

    Examples:

    ```python
    log = StepLog()
    model.fit(data, callbacks=[log])
    log.log["loss"]   # {"steps": [1, 2, ...], "values": [...]}
    ```
    """

    def __init__(self):
        super().__init__()
        self.step = 0
        self.log = {}

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        for key, value in (logs or {}).items():
            entry = self.log.setdefault(key, {"steps": [], "values": []})
            entry["steps"].append(self.step)
            entry["values"].append(float(value))


def compile_system(kind, model, settings):
    """Compile row `kind`'s model for the run; returns its learning rate.

    VQGAN-family rows get the `scenes` preset's Adam settings (or the
    overrides); LQAE rows their own recipe (AdamW with warm-up and cosine
    decay over the run's steps).

    Args:
        kind: str. `MODELS` key.
        model: its built trainer.
        settings: dict from `resolve_settings`.

    Examples:

    ```python
    compile_system("lqae", model, settings)   # the scenes_lqae rate
    ```
    """
    spec = MODELS[kind]
    if spec.family == "lqae":
        from keras_lgvq.models.presets import get_preset

        training = get_preset(spec.preset)["training"]
        total = settings["total_steps"]
        model.compile(
            learning_rate=training["learning_rate"],
            weight_decay=training["weight_decay"],
            beta_1=training["beta_1"],
            beta_2=training["beta_2"],
            warmup_steps=min(training["warmup_steps"], max(total // 5, 1)),
            total_steps=total,
            jit_compile=settings["jit_compile"],
        )
        return training["learning_rate"]
    model.compile(
        learning_rate=settings["learning_rate"],
        beta_1=settings["beta_1"],
        beta_2=settings["beta_2"],
        jit_compile=settings["jit_compile"],
    )
    return settings["learning_rate"]


# One caption-feature cache per (prior, split: image size, sizes,
# data_dir) in a process: the rows and seeds of a run share it, each
# adding its draws.
_CAPTION_CACHES = {}
# Batches counted beyond the steps trained. A model not built yet would
# read one batch to build (Keras' symbolic build), but the rows' models are
# built before `fit`, and an input pipeline's read-ahead past the last step
# never surfaces (a fit of exactly whole passes with no margin runs on all
# three backends: tests/comparison/training_cache_test.py). A margin of 1
# would cost a whole extra pass on the default run (480 steps = 3 passes
# of 160): 8,810 distinct captions to encode instead of ~6,900.
DRAW_MARGIN_BATCHES = 0


def training_data_kwargs(settings, image_size, seed):
    """The `make_dataset` arguments of a row's training pipeline (shared by
    the pipeline and the replay of its caption draws)."""
    return dict(
        split="train",
        batch_size=settings["batch_size"],
        image_size=int(image_size),
        seed=int(seed),
        data_dir=settings["data_dir"],
        **scenes_sizes(settings["train_size"], settings["eval_size"]),
    )


def training_caption_cache(text_prior, settings, image_size, seed):
    """The frozen prior's features of the captions a row's training draws,
    each distinct caption encoded once
    (`keras_lgvq.text_priors.CaptionFeatureCache`).

    The draws are replayed with `keras_lgvq.datasets.drawn_captions` (the
    pipeline's own caption sampling, whole passes, for
    `settings["total_steps"]` batches plus `DRAW_MARGIN_BATCHES`, without
    decoding an image), so the cache holds what the run draws, not every
    caption of the split.
    Rows and seeds sharing an image size share one cache, each adding its
    own draws. Guided rows read the features from the batch instead of
    running the prior on the caption in every step (a leak-free MTP still
    runs it on the masked caption). Token features are stored as float16,
    as in every feature cache of the package. Call it under the TF global
    seed the row's pipeline is built under (`train_system` does).

    Args:
        text_prior: the scenes `TextPrior`.
        settings: dict from `resolve_settings`.
        image_size: int. The row's scene size (the split it trains on).
        seed: int. The row's seed (its pipeline's draws).

    Examples:

    ```python
    keras.utils.set_random_seed(0)
    cache = training_caption_cache(prior, settings, 64, seed=0)
    len(cache)   # distinct captions drawn
    ```
    """
    from keras_lgvq.datasets import drawn_captions
    from keras_lgvq.text_priors import CaptionFeatureCache

    kwargs = training_data_kwargs(settings, image_size, seed)
    # The split's identity: every pipeline argument but the seed and batch.
    split = {k: v for k, v in kwargs.items() if k not in ("seed", "batch_size")}
    key = (id(text_prior), tuple(sorted(split.items())))
    # An id can be reused once its prior is gone: the entry keeps its prior.
    if key not in _CAPTION_CACHES or _CAPTION_CACHES[key][0] is not text_prior:
        _CAPTION_CACHES[key] = (text_prior, CaptionFeatureCache(text_prior))
    cache = _CAPTION_CACHES[key][1]
    cache.add(
        drawn_captions(
            "scenes",
            steps=settings["total_steps"] + DRAW_MARGIN_BATCHES,
            **kwargs,
        )
    )
    return cache


def train_system(kind, text_prior, settings, seed, watch=None):
    """Train row `kind` with `seed` on the shared scenes pipeline.

    Args:
        kind: str. `MODELS` key.
        text_prior: the scenes `TextPrior` (captions for every row; only
            guided rows read them).
        settings: dict from `resolve_settings`.
        seed: int. Seed of the weights and the batches.
        watch: `Stopwatch` or None. Its phase `train_<kind>` (per seed
            with several seeds) gets the time.

    Returns:
        `(model, info)`: the trained model and a JSON-ready dict (seed,
        parameters, steps, learning rate, `initial_backbone_abs_sum`,
        `setup`, `history`, `step_history`, `wall_s`, `cpu_s`).

    Examples:

    ```python
    model, info = train_system("vqgan", prior, settings, seed=0)
    ```
    """
    from keras_lgvq.comparison.progress import Stopwatch
    from keras_lgvq.datasets import make_dataset

    watch = watch or Stopwatch()
    keras.utils.set_random_seed(seed)
    image_size = image_size_of(kind, settings)
    # Guided rows read the frozen prior's features of the captions they
    # draw from a cache (`--text-cache`, `budgets.text_cache_enabled`).
    feature_cache = None
    if MODELS[kind].guided and settings["text_cache"]:
        with watch.phase("text_cache"):
            feature_cache = training_caption_cache(
                text_prior, settings, image_size, seed
            )
    # The same pipeline (same seed, same captions) for every model; the
    # unguided ones simply ignore the text.
    dataset = make_dataset(
        "scenes",
        text_prior=text_prior,
        feature_cache=feature_cache,
        **training_data_kwargs(settings, image_size, seed),
    )
    # Seeded again: preparing the data may draw from the global generators
    # (a first run builds the scenes set and the caption cache, later runs
    # read them), and the first run on a machine then started from other
    # weights than every later one.
    keras.utils.set_random_seed(seed)
    model = build_model(kind, text_prior, settings)
    checksum = backbone_checksum(model)
    learning_rate = compile_system(kind, model, settings)
    seeds_note = f", seed {seed}" if len(settings["seeds"]) > 1 else ""
    print(
        f"\n== Training {MODEL_NAMES[kind]}{seeds_note}: {settings['epochs']} "
        f"epoch(s) x {settings['steps_per_epoch']} steps of "
        f"{settings['batch_size']} images ({model.count_params():,} "
        "parameters incl. frozen text priors / language models)"
    )
    step_log = StepLog()
    phase = f"train_{kind}" + (f"_s{seed}" if seeds_note else "")
    with watch.phase(phase):
        history = model.fit(
            dataset.repeat(),
            epochs=settings["epochs"],
            steps_per_epoch=settings["steps_per_epoch"],
            verbose=settings["verbose"],
            callbacks=[step_log],
        )
    info = {
        "seed": int(seed),
        "parameters": int(model.count_params()),
        "trainable_parameters": int(
            sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        ),
        "steps": settings["total_steps"],
        "batch_size": settings["batch_size"],
        "learning_rate": learning_rate,
        "images_seen": settings["total_steps"] * settings["batch_size"],
        "initial_backbone_abs_sum": checksum,
        "setup": {
            **system_setup(kind, model),
            "cached_text_features": feature_cache is not None,
        },
        "history": {
            k: [float(x) for x in v] for k, v in history.history.items()
        },
        "step_history": {
            k: step_log.log[k] for k in CURVE_KEYS if k in step_log.log
        },
        "wall_s": round(watch.phases[phase]["wall_s"], 1),
        "cpu_s": round(watch.phases[phase]["cpu_s"], 1),
    }
    return model, info

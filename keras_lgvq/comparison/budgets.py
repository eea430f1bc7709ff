"""Budgets of the scenes comparison and the settings of one run.

`BUDGETS` holds the sizes of the three budgets (`default`, `quick`,
`smoke`); `resolve_settings` merges the chosen budget with the user's
overrides into the one settings dict every other module of
`keras_lgvq.comparison` reads. `result_fingerprint` is the part of the
settings a finished (system, seed) result depends on: a resumed run must
match it.
"""

import argparse

import keras

BUDGETS = {
    "default": dict(
        train_size=2560,
        epochs=3,
        eval_size=512,
        probe_size=1536,
        probe_epochs=4,
        probe_batch_size=32,
        linear_epochs=200,
        image_size=64,
    ),
    "quick": dict(
        train_size=768,
        epochs=1,
        eval_size=256,
        probe_size=384,
        probe_epochs=3,
        probe_batch_size=32,
        linear_epochs=60,
        image_size=64,
    ),
    # CI: the whole code path in seconds; the numbers mean nothing.
    "smoke": dict(
        train_size=32,
        epochs=1,
        batch_size=8,
        eval_size=16,
        probe_size=32,
        probe_epochs=1,
        probe_batch_size=16,
        linear_epochs=5,
        image_size=32,
    ),
}

# LQAE downstream (lqae-spec §3) per budget: the attributes classified, the
# few-shot protocol of `few_shot_classification` (2-way 1-shot, one query
# per class) and its episode count. At smoke size one episode per
# attribute keeps the SmolLM2 prompting to a few forward passes.
DOWNSTREAM_BUDGETS = {
    "default": dict(
        attributes=("shape", "color", "size", "fill", "num_objects"),
        num_ways=2,
        num_shots=1,
        num_queries=1,
        num_episodes=20,
    ),
    "quick": dict(
        attributes=("shape", "color", "size", "fill", "num_objects"),
        num_ways=2,
        num_shots=1,
        num_queries=1,
        num_episodes=10,
    ),
    "smoke": dict(
        attributes=("shape", "color", "size", "fill", "num_objects"),
        num_ways=2,
        num_shots=1,
        num_queries=1,
        num_episodes=1,
    ),
}

# The captioning downstream task of the LG-VQ / VQGAN-family rows
# (`keras_lgvq.comparison.captioning`) per budget: sizes of
# `captioning_downstream_scenes` (None: its defaults) and `settings`
# overrides of its `CAPTIONING_DEFAULTS` (None: none). The default budget
# takes both as they are: the image and the blind captioner, 750 steps
# each over the compact decoder vocabulary (one such training took 57 CPU-s
# in `recipes/ship_scenes_stage2.py`), plus encoding, decoding and
# scoring (the default run with captioning: 18.5 min on a quiet 2-core
# CPU, captioning 3.7 min of it). `--quick` has none: its 5 minutes
# hold the tokenizers' headline metrics only (pass the default budget for
# captions). `--smoke` runs the whole captioning path on a handful of
# images with a one-block decoder of width 32, scored without Java (the
# Python PTB tokenizer; METEOR left out with the reason): a Java start per
# scorer would cost more than the captioners. `use_java` None: Java when it
# works (METEOR scored).
CAPTIONING_BUDGETS = {
    "default": dict(sizes=None, settings=None, use_java=None),
    "quick": None,
    "smoke": dict(
        sizes=dict(
            train_images=16,
            validation_images=4,
            eval_images=8,
            captions_per_image=1,
        ),
        settings=dict(
            decoder="scratch",
            decoder_width=32,
            decoder_layers=1,
            mapper="pooled",
            mapper_width=32,
            prefix_length=4,
            max_caption_length=8,
            batch_size=8,
            epochs=1,
            beam_size=1,
        ),
        use_java=False,
    ),
}

# The VQA downstream task of the LG-VQ / VQGAN-family rows
# (`keras_lgvq.comparison.vqa`) per budget: sizes of `vqa_downstream_scenes`
# (None: its defaults, the recipe's measured CPU default) and `settings`
# overrides of its `VQA_DEFAULTS` (None: none). Its defaults train two
# models of 10 epochs over 8,000 questions per row (15 min for both on 2
# cores, recipes/vqa.py): more than the 11.5 min the default run
# (18.5 min) has left of its 30, so the default budget runs it only with
# `--all` (`VQA_ONLY_WITH_ALL`), hours anyway. `--quick` has none;
# `--smoke` runs the whole path on a handful of scenes with a one-block
# decoder of width 16.
VQA_BUDGETS = {
    "default": dict(sizes=None, settings=None),
    "quick": None,
    "smoke": dict(
        sizes=dict(
            train_images=8,
            validation_images=2,
            eval_images=4,
            questions_per_image=2,
        ),
        settings=dict(
            decoder="scratch",
            decoder_width=16,
            decoder_layers=1,
            mapper="pooled",
            mapper_width=8,
            prefix_length=4,
            batch_size=8,
            epochs=1,
        ),
    ),
}
# Budgets whose VQA task runs only with `--all`.
VQA_ONLY_WITH_ALL = ("default",)

# The text-to-image task of the single-code VQGAN-family rows
# (`keras_lgvq.comparison.text_to_image`) per budget: `sizes` of
# `text_to_image_downstream_scenes` (None: its defaults, `T2I_SIZES`),
# `settings` overrides of its `T2I_DEFAULTS` and `judge` overrides of
# `JUDGE_DEFAULTS` (None: none). The defaults are recipes/text_to_image.py's
# CPU default: about 15 minutes per row on 2 cores plus a few minutes once
# for the judge, more than the 11.5 min the default run (18.5 min) has
# left of its 30, so the default budget runs it only with `--all`
# (`TEXT_TO_IMAGE_ONLY_WITH_ALL`). `--quick` has none; `--smoke` runs the
# whole path with a one-block generator of width 16 and a judge trained on
# 64 scenes for one epoch.
TEXT_TO_IMAGE_BUDGETS = {
    "default": dict(sizes=None, settings=None, judge=None),
    "quick": None,
    "smoke": dict(
        sizes=dict(
            train_images=32,
            captions_per_image=1,
            validation_images=8,
            eval_images=8,
            held_out_images=2,
            completion_images=4,
            figure_captions=2,
            samples_per_caption=2,
        ),
        settings=dict(
            train_steps=4,
            batch_size=8,
            sampling_steps=4,
            generator=dict(hidden_dim=16, num_layers=1, num_heads=2,
                           intermediate_dim=32),
        ),
        judge=dict(images=64, epochs=1),
    ),
}
# Budgets whose text-to-image task runs only with `--all`.
TEXT_TO_IMAGE_ONLY_WITH_ALL = ("default",)

# The options of a run and their defaults: the command line of
# `recipes/scenes_compare.py` has one flag per key (`--train-size` for
# `train_size`, ...); `None` takes the budget's value.
DEFAULT_OPTIONS = dict(
    quick=False,
    smoke=False,
    out="runs/scenes_compare",
    models=None,
    all=False,
    seeds=1,
    epochs=None,
    train_size=None,
    steps_per_epoch=None,
    batch_size=None,
    learning_rate=None,
    eval_size=None,
    probe_size=None,
    probe_epochs=None,
    probe_batch_size=None,
    linear_epochs=None,
    bootstrap_resamples=2000,
    seed=0,
    data_dir=None,
    with_discriminator=False,
    leak_free_mtp=False,
    text_cache="on",
    jit_compile="auto",
    verbose=1,
    no_save=False,
    no_resume=False,
    no_captioning=False,
    captioning_lm="smollm2",
    no_vqa=False,
    no_text_to_image=False,
)

SMOKE_BACKBONE = dict(
    resolution=32,
    ch=32,
    ch_mult=(1, 1, 1),
    num_res_blocks=1,
    attn_resolutions=(),
    z_channels=32,
    num_embeddings=64,
    embedding_dim=16,
)
# The VQCT tokenizer of `--smoke`: SMOKE_BACKBONE's architecture with a
# 16-d latent (two 8-d halves) and the packaged scenes prior.
SMOKE_VQCT = dict(
    resolution=32,
    ch=32,
    ch_mult=(1, 1, 1),
    num_res_blocks=1,
    attn_resolutions=(),
    z_channels=32,
    embedding_dim=16,
    hidden_dim=8,
)
# One-layer text heads (LG-VQ's guidance and the probes) for `--smoke`.
SMOKE_HEADS = dict(vit_layers=1, decoder_layers=1, decoder_intermediate_dim=64)
# The scenes LQAE / VQAE ViT at 32 px with one encoder / decoder layer.
SMOKE_LQAE = dict(image_size=32, encoder_num_layers=1, decoder_num_layers=1)

# Settings a finished (system, seed) result depends on. A rerun in the same
# `--out` must agree on every one of them to reuse it. Left out on purpose:
# the rows and seeds (each result is one row and one seed), the bootstrap
# resamples (the tests are recomputed from the stored per-item values),
# `jit_compile`, `verbose`, `data_dir` and the no-op `--leak-free-mtp`.
FINGERPRINT_KEYS = (
    "backend",
    "mode",
    "smoke",
    "image_size",
    "train_size",
    "epochs",
    "batch_size",
    "steps_per_epoch",
    "total_steps",
    "learning_rate",
    "beta_1",
    "beta_2",
    "eval_size",
    "probe_size",
    "probe_epochs",
    "probe_batch_size",
    "linear_epochs",
    "with_discriminator",
    "downstream",
    "captioning",
    "vqa_task",
    "text_to_image_task",
)


def _options(options):
    """Namespace / dict / None -> a complete dict of `DEFAULT_OPTIONS`."""
    if options is None:
        given = {}
    elif isinstance(options, dict):
        given = dict(options)
    elif isinstance(options, argparse.Namespace):
        given = vars(options)
    else:
        raise ValueError(
            "`options` must be an argparse.Namespace, a dict or None; "
            f"received {type(options).__name__}."
        )
    unknown = sorted(set(given) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(
            f"Unknown comparison option(s) {unknown}; the options are "
            f"{sorted(DEFAULT_OPTIONS)}."
        )
    return {**DEFAULT_OPTIONS, **given}


def resolve_settings(options=None):
    """Merge the chosen budget with the overrides of one run.

    Args:
        options: an `argparse.Namespace` of `recipes/scenes_compare.py`, a
            dict with keys of `DEFAULT_OPTIONS` (missing keys take their
            defaults), or None (the default run).

    Returns:
        dict: the budget's sizes with the overrides applied, plus `mode`
        ("default", "quick" or "smoke"), `models` (the `MODELS` keys),
        `seeds`, `steps_per_epoch`, `total_steps`, the optimiser settings
        of the `scenes` preset, `discriminator` (kept only when the run
        reaches the preset's `disc_start`, or on request), `downstream`
        (the LQAE downstream budget), `captioning` (`captioning_budget`),
        `vqa` (`vqa_budget`), `vqa_task` (the budget's VQA task with
        `--all`, fingerprinted) and `no_vqa`; `text_to_image`
        (`text_to_image_budget`), `text_to_image_task` and
        `no_text_to_image` likewise,
        `out`, `data_dir`, `verbose`, `save`,
        `resume` and `backend`.

    Raises:
        ValueError: a size below 1, `train_size < batch_size`, seeds outside
            1..16, fewer than 100 bootstrap resamples, `--quick` with
            `--smoke`, or bad `--models`.

    Examples:

    ```python
    settings = resolve_settings({"quick": True, "seeds": 3})
    settings["total_steps"], settings["seeds"]   # 48, [0, 1, 2]
    ```
    """
    # The rows import this module's smoke sizes: imported here, not above.
    from keras_lgvq.comparison.systems import MODELS
    from keras_lgvq.comparison.systems import parse_models
    from keras_lgvq.models.presets import get_preset

    args = _options(options)
    if args["quick"] and args["smoke"]:
        raise ValueError("Pass at most one of --quick and --smoke.")
    mode = "default"
    if args["smoke"]:
        mode = "smoke"
    elif args["quick"]:
        mode = "quick"
    models = parse_models(args["models"], bool(args["all"]))
    training = get_preset("scenes")["training"]
    settings = dict(BUDGETS[mode])
    settings.setdefault("batch_size", training["batch_size"])
    seeds = args["seeds"]
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not (
        1 <= seeds <= 16
    ):
        raise ValueError(
            f"--seeds must be an integer from 1 to 16; received {seeds!r}."
        )
    settings.update(
        mode=mode,
        all_rows=bool(args["all"]),
        models=list(models),
        learning_rate=training["learning_rate"],
        beta_1=training["beta_1"],
        beta_2=training["beta_2"],
        seed=args["seed"],
        seeds=[args["seed"] + i for i in range(seeds)],
        bootstrap_resamples=args["bootstrap_resamples"],
    )
    if settings["bootstrap_resamples"] < 100:
        raise ValueError(
            "--bootstrap-resamples must be >= 100; received "
            f"{settings['bootstrap_resamples']}."
        )
    for key in (
        "epochs",
        "train_size",
        "batch_size",
        "learning_rate",
        "eval_size",
        "probe_size",
        "probe_epochs",
        "probe_batch_size",
        "linear_epochs",
    ):
        if args[key] is not None:
            settings[key] = args[key]
    for key in ("epochs", "train_size", "batch_size", "eval_size"):
        if settings[key] < 1:
            raise ValueError(
                f"--{key.replace('_', '-')} must be >= 1; received "
                f"{settings[key]}."
            )
    if settings["train_size"] < settings["batch_size"]:
        raise ValueError(
            f"--train-size ({settings['train_size']}) must be at least "
            f"--batch-size ({settings['batch_size']})."
        )
    steps = args["steps_per_epoch"] or (
        settings["train_size"] // settings["batch_size"]
    )
    settings["steps_per_epoch"] = steps
    settings["total_steps"] = steps * settings["epochs"]
    # The earliest GAN start of the compared models' presets (the LQAE
    # family has no GAN).
    disc_start = min(
        (
            get_preset(MODELS[kind].preset)["model"]["disc_start"]
            for kind in models
            if MODELS[kind].family == "vqgan"
        ),
        default=None,
    )
    settings["disc_start"] = disc_start
    settings["with_discriminator"] = bool(args["with_discriminator"])
    # Before disc_start the GAN terms are multiplied by 0: the discriminator
    # changes nothing but costs ~40% of a VQGAN step, so it is left out.
    settings["discriminator"] = bool(
        disc_start is not None
        and (
            args["with_discriminator"]
            or settings["total_steps"] >= disc_start
        )
    )
    settings["leak_free_mtp"] = bool(args["leak_free_mtp"])
    settings["text_cache_mode"] = args["text_cache"]
    settings["text_cache"] = text_cache_enabled(
        args["text_cache"], settings
    )
    if args["jit_compile"] not in ("auto", "on", "off"):
        raise ValueError(
            "--jit-compile must be 'auto', 'on' or 'off'; received "
            f"{args['jit_compile']!r}."
        )
    settings["jit_compile"] = {"auto": "auto", "on": True, "off": False}[
        args["jit_compile"]
    ]
    settings["smoke"] = mode == "smoke"
    settings["downstream"] = dict(DOWNSTREAM_BUDGETS[mode])
    settings["captioning"] = captioning_budget(
        mode, off=bool(args["no_captioning"]),
        language_model=args["captioning_lm"],
    )
    settings["no_vqa"] = bool(args["no_vqa"])
    settings["vqa"] = vqa_budget(
        mode, off=settings["no_vqa"], all_rows=settings["all_rows"],
        language_model=args["captioning_lm"],
    )
    # The VQA task a stored `vqa.json` holds in this budget, whether this
    # run has it or not: the fingerprint's, so `--all` or `--no-vqa` in
    # the same `--out` reuses the stored tokenizers.
    settings["vqa_task"] = vqa_budget(
        mode, all_rows=True, language_model=args["captioning_lm"],
    )
    settings["no_text_to_image"] = bool(args["no_text_to_image"])
    settings["text_to_image"] = text_to_image_budget(
        mode, off=settings["no_text_to_image"],
        all_rows=settings["all_rows"],
    )
    # As for VQA: the task a stored `text_to_image.json` holds.
    settings["text_to_image_task"] = text_to_image_budget(
        mode, all_rows=True)
    settings.update(
        out=str(args["out"]),
        data_dir=args["data_dir"],
        verbose=int(args["verbose"]),
        save=not args["no_save"],
        resume=not args["no_resume"],
        backend=keras.backend.backend(),
    )
    return settings


def text_cache_enabled(mode, settings):
    """Whether guided rows read their caption features from a cache.

    The cache (`comparison.training.training_caption_cache`) encodes each
    distinct caption the run will draw once, in batches of 256, before
    training; running the prior in the step encodes every draw again, in
    the step's batches. So it never encodes more than the steps would, and
    is on by default whenever a row is guided (`"off"` runs the prior in
    the step, as the paper's code does). Measured at the default run
    (benchmarks/README.md): 6,914 distinct captions of 7,680 draws, 33 s to
    replay and encode, 163 MiB, against 0-40 s of LG-VQ steps saved; rows
    sharing a seed and image size share it.

    Args:
        mode: "on" or "off".
        settings: dict with `models`.

    Examples:

    ```python
    text_cache_enabled("on", resolve_settings({}))   # True
    ```
    """
    from keras_lgvq.comparison.systems import MODELS

    if mode not in ("on", "off"):
        raise ValueError(
            f"--text-cache must be 'on' or 'off'; received {mode!r}."
        )
    guided = any(MODELS[kind].guided for kind in settings["models"])
    return mode == "on" and guided


def _task_budget(budgets, mode, off, only_with_all=(), all_rows=False):
    """The budget entry of a stage-2 task in `mode`, or None when the run
    has no such task.

    Args:
        budgets: dict. Mode -> the task's budget entry (or None).
        mode: str. Must be a key of `budgets`.
        off: bool. The task's `--no-...` flag.
        only_with_all: tuple of str. The modes that run the task only with
            `--all`.
        all_rows: bool. `--all`.

    Examples:

    ```python
    _task_budget(VQA_BUDGETS, "default", False, VQA_ONLY_WITH_ALL)   # None
    ```
    """
    if mode not in budgets:
        raise ValueError(
            f"`mode` must be one of {sorted(budgets)}; received {mode!r}."
        )
    budget = budgets[mode]
    if off or budget is None or (mode in only_with_all and not all_rows):
        return None
    return budget


def _check_language_model(language_model, what):
    """Raise unless `language_model` is a non-empty str (an LM source).

    Args:
        language_model: the value of `--captioning-lm`.
        what: str. The message before `; received ...`.

    Examples:

    ```python
    _check_language_model("smollm2", "--captioning-lm must be ...")
    ```
    """
    if not isinstance(language_model, str) or not language_model:
        raise ValueError(f"{what}; received {language_model!r}.")


def _default_sizes(function, keys, overrides):
    """The defaults of `function`'s size arguments `keys`, read from its
    signature (not copied), updated with `overrides`.

    Args:
        function: callable. The library's `*_downstream_scenes`.
        keys: tuple of str. Its size arguments.
        overrides: dict or None. The budget's sizes.

    Examples:

    ```python
    _default_sizes(vqa_downstream_scenes, ("eval_images",), {})
    ```
    """
    import inspect

    parameters = inspect.signature(function).parameters
    sizes = {key: parameters[key].default for key in keys}
    sizes.update(overrides or {})
    return sizes


def captioning_budget(mode, off=False, language_model="smollm2"):
    """The captioning settings of a budget, complete, or None (no
    captioning).

    Args:
        mode: "default", "quick" or "smoke".
        off: bool. `--no-captioning`: None whatever the budget.
        language_model: str. The LM source of the captioners (the
            pretrained decoder, or the tokenizer of a scratch decoder):
            "smollm2", a `.gguf` path or a keras-hub preset directory.

    Returns:
        None, or a dict: `sizes` (train / validation / eval images and
        captions per image of `captioning_downstream_scenes`), `settings`
        (`CAPTIONING_DEFAULTS` with the budget's overrides) and
        `language_model` and `use_java` (None: METEOR when Java works;
        False: no Java, no METEOR); the whole dict is part of the result
        fingerprint, so a change of `CAPTIONING_DEFAULTS` is a change of
        settings for a resumed run.

    Examples:

    ```python
    captioning_budget("default")["settings"]["epochs"]   # 4
    captioning_budget("quick")                           # None
    ```
    """
    from keras_lgvq.evaluation.captioning_downstream import captioning_downstream_scenes
    from keras_lgvq.evaluation.captioning_downstream import check_captioning_settings

    budget = CAPTIONING_BUDGETS[mode]
    if off or budget is None:
        return None
    _check_language_model(
        language_model,
        "--captioning-lm must be an LM source (\"smollm2\", a .gguf path "
        "or a keras-hub preset directory)")
    return {
        "sizes": _default_sizes(
            captioning_downstream_scenes,
            ("train_images", "validation_images", "eval_images",
             "captions_per_image"),
            budget["sizes"]),
        "settings": check_captioning_settings(budget["settings"]),
        "language_model": language_model,
        "use_java": budget["use_java"],
    }


def vqa_budget(mode, off=False, all_rows=False, language_model="smollm2"):
    """The VQA settings of a budget, complete, or None (no VQA task).

    Args:
        mode: "default", "quick" or "smoke".
        off: bool. `--no-vqa`: None whatever the budget.
        all_rows: bool. `--all`: the default budget runs VQA only then
            (`VQA_ONLY_WITH_ALL`).
        language_model: str. The LM source of the VQA models (a scratch
            decoder's tokenizer, or the pretrained decoder): the run's
            `--captioning-lm`.

    Returns:
        None, or a dict: `sizes` (train / validation / eval images and
        questions per image of `vqa_downstream_scenes`, its defaults with
        the budget's overrides), `settings` (`VQA_DEFAULTS` with the
        budget's overrides, `check_vqa_settings`) and `language_model`.
        With `all_rows=True` and `off=False` it is the result
        fingerprint's `vqa_task`, so a change of `VQA_DEFAULTS` is a change
        of settings for a resumed run.

    Examples:

    ```python
    vqa_budget("default")                       # None: only with --all
    vqa_budget("default", all_rows=True)["settings"]["epochs"]   # 10
    vqa_budget("smoke")["sizes"]["eval_images"]                   # 4
    ```
    """
    from keras_lgvq.evaluation.vqa_downstream import check_vqa_settings
    from keras_lgvq.evaluation.vqa_downstream import vqa_downstream_scenes

    budget = _task_budget(VQA_BUDGETS, mode, off, VQA_ONLY_WITH_ALL,
                          all_rows)
    if budget is None:
        return None
    _check_language_model(
        language_model,
        "--captioning-lm (the VQA models' LM source) must be \"smollm2\", "
        "a .gguf path or a keras-hub preset directory")
    return {
        "sizes": _default_sizes(
            vqa_downstream_scenes,
            ("train_images", "validation_images", "eval_images",
             "questions_per_image"),
            budget["sizes"]),
        "settings": check_vqa_settings(budget["settings"]),
        "language_model": language_model,
    }


def text_to_image_budget(mode, off=False, all_rows=False):
    """The text-to-image settings of a budget, complete, or None (no
    text-to-image task).

    Args:
        mode: "default", "quick" or "smoke".
        off: bool. `--no-text-to-image`: None whatever the budget.
        all_rows: bool. `--all`: the default budget runs it only then
            (`TEXT_TO_IMAGE_ONLY_WITH_ALL`).

    Returns:
        None, or a dict: `sizes` (`T2I_SIZES` with the budget's
        overrides), `settings` (`check_t2i_settings` of the budget's
        overrides: every value filled in) and `judge` (`JUDGE_DEFAULTS`
        with the budget's overrides). With `all_rows=True` and `off=False`
        it is the result fingerprint's `text_to_image_task`, so a change of
        the defaults is a change of settings for a resumed run.

    Examples:

    ```python
    text_to_image_budget("default")                  # None: only with --all
    text_to_image_budget("default", all_rows=True)["settings"]["train_steps"]
    # 1000
    text_to_image_budget("smoke")["sizes"]["eval_images"]   # 8
    ```
    """
    from keras_lgvq.evaluation.text_to_image_downstream import JUDGE_DEFAULTS
    from keras_lgvq.evaluation.text_to_image_downstream import T2I_SIZES
    from keras_lgvq.evaluation.text_to_image_downstream import check_t2i_settings

    budget = _task_budget(TEXT_TO_IMAGE_BUDGETS, mode, off,
                          TEXT_TO_IMAGE_ONLY_WITH_ALL, all_rows)
    if budget is None:
        return None
    return {
        "sizes": {**T2I_SIZES, **(budget["sizes"] or {})},
        "settings": check_t2i_settings(budget["settings"]),
        "judge": {**JUDGE_DEFAULTS, **(budget["judge"] or {})},
    }


def result_fingerprint(settings):
    """The settings a finished (system, seed) result depends on.

    Args:
        settings: dict from `resolve_settings`.

    Returns:
        dict with the `FINGERPRINT_KEYS` of `settings`, JSON-ready (tuples
        as lists), so it compares equal to its own JSON round trip.

    Examples:

    ```python
    result_fingerprint(resolve_settings({"smoke": True}))["train_size"]  # 32
    ```
    """

    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {key: plain(settings[key]) for key in FINGERPRINT_KEYS}

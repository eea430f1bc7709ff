"""Captioning over a frozen tokenizer's codes on the scenes set, in one call.

`captioning_downstream_scenes` trains a ClipCap-style `Captioner` on a
tokenizer's codes of scenes training images and the same model without
image information (the blind baseline: one constant code grid for every
image), captions the test images with both and scores them with BLEU-4,
METEOR, ROUGE-L and CIDEr-D (`keras_lgvq.metrics.evaluate_captions`), plus
per-image scores for a paired bootstrap (`per_image_caption_scores`). Two
tokenizers given the same sizes and seed see identical images, captions
and initial mapper / decoder weights, so their scores compare directly.

The building blocks are shared with `recipes/captioning.py`:
`encode_scenes`, `blind_code_vectors`, `load_language_model`,
`build_captioner` and `generate_captions`.

`CAPTIONING_DEFAULTS` and `CAPTIONING_SIZES` are the measured CPU default:
a pooled mapper (k = 16 regions) into a scratch decoder (width 256, 2
blocks, over SmolLM2's tokenizer; its embedding and tied
output layer cover only the ~144 tokenizer ids of the training captions,
`decoder_vocabulary="compact"`: a modelling choice, exact for captions
inside that vocabulary, that shrinks the saved model from ~55 MB to a few
MB; `"full"` keeps all 49,152 ids), 2,000 training scenes x 2 captions, 3
epochs of batch 16 (750 steps per model), 100 test scenes. With the full
vocabulary (before the compact default), on the shipped
`scenes_lgvq_trained` tokenizer (seed 0) the image model reached CIDEr-D
31.6 vs the blind model's 16.6 (paired bootstrap over the 100 test images:
+15.0, 95 % interval [7.4, 22.4]), ROUGE-L 42.5 vs 40.5 (interval [0.3,
3.7]), corpus BLEU-4 11.4 vs 8.0 (per-image BLEU-4: not significant),
validation loss 1.517 vs 1.551, 50 distinct captions vs 1; 768 CPU-seconds
for both models. On `scenes_vqgan_trained` (one seed, the recipe) the
image model did NOT beat the blind one: it wrote the blind model's single
caption for every test image (validation loss 1.569 vs 1.559). Wall times
and commands: benchmarks/results/stage2_measurements.md. At 200 steps (the
earlier budget) no setting beat the blind model: read the blind row and
the paired tests (`paired_caption_tests`, `result["paired"]`) next to
every result. A scratch decoder costs about a tenth of SmolLM2-135M per step;
`decoder="pretrained"` is the paper's frozen-LM design.
"""

import time

import numpy as np

from keras_lgvq.utils.validation import check_int

# The settings of `build_captioner` / `captioning_downstream_scenes`: a
# pooled mapper (k = 16 regions) into a small decoder trained from scratch,
# measured to beat the blind model at the 15-minute CPU budget
# (benchmarks/results/stage2_measurements.md).
CAPTIONING_DEFAULTS = {
    "decoder": "scratch",
    "decoder_width": 256,
    "decoder_layers": 2,
    # "compact": the scratch decoder's embedding / tied head cover only the
    # tokenizer ids of the training text (+ specials); "full": all 49,152.
    "decoder_vocabulary": "compact",
    "language_model_training": "frozen",
    "lora_rank": None,
    "mapper": "pooled",
    "mapper_width": 256,
    "projection_dim": None,
    "prefix_length": 16,
    "max_caption_length": 32,
    "learning_rate": 1e-3,
    "batch_size": 16,
    "epochs": 3,
    "beam_size": 1,
}
# The scenes sizes of `captioning_downstream_scenes` and the recipe: more
# images rather than more epochs (scenes are procedural, data is free).
CAPTIONING_SIZES = {
    "train_images": 2000,
    "validation_images": 40,
    "eval_images": 100,
    "captions_per_image": 2,
}
# A scratch decoder's vocabulary: the training text's ids, or the whole
# tokenizer's.
DECODER_VOCABULARIES = ("compact", "full")
# Per-image scores returned by `per_image_caption_scores`.
PER_IMAGE_METRICS = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")
# Decimals kept of a per-image (sentence) BLEU-4: 0.1 BLEU points, so the
# scorer's smoothing floor of a caption with no matching 4-gram is 0.
SENTENCE_BLEU_DECIMALS = 3
# Reference captions per scenes image.
SCENES_CAPTIONS_PER_IMAGE = 10
# The decoding batch: the cached decoding loop costs about the same per
# token for 16 or 64 rows.
GENERATION_BATCH = 64


def resolve_tokenizer(tokenizer):
    """A frozen tokenizer backbone from a model, a path or a shipped preset
    name: `keras_lgvq.models.text_to_image.load_tokenizer` (imported here
    lazily; a built-in name without shipped weights is a ValueError).

    Args:
        tokenizer: a tokenizer model or backbone, a path, or a shipped
            preset name.

    Examples:

    ```python
    tokenizer = resolve_tokenizer("scenes_lgvq_trained")
    ```
    """
    from keras_lgvq.models.text_to_image import load_tokenizer

    return load_tokenizer(tokenizer)


def encode_scenes(tokenizer, num_images, split, seed, holdout):
    """Codes and examples of scenes images, at the tokenizer's resolution.

    Args:
        tokenizer: a tokenizer backbone (`load_tokenizer`'s result).
        num_images: int >= 1.
        split: `"train"`, `"validation"` or `"test"`.
        seed: int. The scenes generator's seed.
        holdout: the held-out attribute combinations
            (`scenes.DEFAULT_HOLDOUT`) or None.

    Returns:
        `(codes, examples)`: int32 `(N, h, w)` code grids and the
        generator's example dicts (`image`, `captions`, `image_id`, ...).

    Examples:

    ```python
    codes, examples = encode_scenes(tokenizer, 8, "test", 0, None)
    ```
    """
    from keras import ops

    from keras_lgvq.datasets import scenes

    check_int("num_images", num_images, low=1)
    examples = list(scenes.generate(
        num_images, seed=seed, image_size=int(tokenizer.resolution),
        split=split, holdout=holdout,
    ))
    images = np.stack([e["image"] for e in examples]).astype("float32")
    images = images / 127.5 - 1.0
    codes = np.concatenate([
        np.asarray(ops.convert_to_numpy(tokenizer.encode(images[i:i + 32])))
        for i in range(0, len(images), 32)
    ]).astype("int32")
    return codes, examples


def blind_code_vectors(tokenizer, train_codes, count):
    """The blind baseline's input: one constant code grid for every image.

    The training images' mean code vector at each grid position carries no
    information about any one image. Not all zeros: an exactly zero prefix
    is a fixed point of SmolLM2's residual stream (RMSNorm of zero, zero
    attention values), where the gradient grows by 1/sqrt(eps) per block
    and overflows to NaN (measured on the real LM); a zero mapper input
    gives that zero prefix at initialisation.

    Args:
        tokenizer: the tokenizer backbone.
        train_codes: int `(N, h, w)` training code grids.
        count: int. Rows to return.

    Returns:
        float32 `(count, h * w, D)`, every row the same.

    Examples:

    ```python
    vectors = blind_code_vectors(tokenizer, train_codes, len(test_codes))
    ```
    """
    from keras import ops

    vectors = ops.convert_to_numpy(
        tokenizer.quantizer.indices_to_codes(train_codes))
    vectors = np.asarray(vectors, "float32").reshape(
        len(train_codes), -1, vectors.shape[-1])
    return np.broadcast_to(vectors.mean(axis=0), (count,) + vectors.shape[1:])


def merge_settings(defaults, settings, what):
    """`defaults` updated with `settings`; an unknown key is a clear error.

    Args:
        defaults: dict. Every valid key with its default.
        settings: dict or None. Overrides.
        what: str. Names the settings in the error ("captioning").

    Examples:

    ```python
    merge_settings({"epochs": 1}, {"epochs": 2}, "captioning")  # {"epochs": 2}
    ```
    """
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise ValueError(
            f"Unknown {what} settings {unknown}; valid keys: "
            f"{sorted(defaults)}."
        )
    return dict(defaults, **settings)


def check_captioning_settings(settings):
    """`CAPTIONING_DEFAULTS` updated with `settings`; unknown keys and bad
    values are clear errors.

    Args:
        settings: dict or None. Keys of `CAPTIONING_DEFAULTS`.

    Examples:

    ```python
    check_captioning_settings({"epochs": 2})["epochs"]  # 2
    ```
    """
    out = merge_settings(CAPTIONING_DEFAULTS, settings, "captioning")
    for key in ("decoder_width", "decoder_layers", "mapper_width",
                "prefix_length", "max_caption_length", "batch_size",
                "epochs", "beam_size"):
        check_int(key, out[key], low=1)
    if out["projection_dim"] is not None:
        check_int("projection_dim", out["projection_dim"], low=1)
    if out["decoder_vocabulary"] not in DECODER_VOCABULARIES:
        raise ValueError(
            "`decoder_vocabulary` must be one of "
            f"{list(DECODER_VOCABULARIES)}; received "
            f"{out['decoder_vocabulary']!r}."
        )
    if out["decoder"] not in ("pretrained", "scratch"):
        raise ValueError(
            "`decoder` must be 'pretrained' or 'scratch'; received "
            f"{out['decoder']!r}."
        )
    if out["projection_dim"] is not None and out["mapper"] != "mlp":
        raise ValueError(
            "`projection_dim` is an option of the 'mlp' mapper; received "
            f"mapper={out['mapper']!r}. Drop it or use mapper='mlp'."
        )
    return out


def decoder_vocabulary(settings, source, texts):
    """The `vocabulary_ids` of a scratch decoder under `settings`.

    With `decoder_vocabulary="compact"` (the default) and a scratch
    decoder: `keras_lgvq.language_models.compact_vocabulary(source, texts)`,
    the sorted tokenizer ids of `texts` plus the special ids (144 ids for
    the scenes captions of 300 or 2,000 training images, against SmolLM2's
    49,152). A modelling choice, exact for text inside it: the decoder
    cannot read or write any other token, and text holding one is a
    ValueError. None otherwise (whole vocabulary, or a pretrained LM).

    Args:
        settings: dict from `check_captioning_settings`.
        source: LM source whose tokenizer is used.
        texts: list of str. The text the decoder reads and writes: the
            training (and validation) captions.

    Examples:

    ```python
    ids = decoder_vocabulary(settings, "smollm2", train_captions)
    ```
    """
    if settings["decoder"] != "scratch" or (
        settings["decoder_vocabulary"] != "compact"
    ):
        return None
    from keras_lgvq.language_models import compact_vocabulary

    return compact_vocabulary(source, texts)


def load_language_model(settings, source="smollm2", shared=None,
                        vocabulary_ids=None):
    """The causal LM of one captioner under `settings`.

    A scratch decoder is new for every call (random weights of the
    architecture in `settings`); a pretrained LM that stays frozen is
    `shared` when given (both models may use the same frozen copy), else
    loaded; one that trains (`full`, `lora`) is always a fresh copy, so two
    models never share trained weights.

    Args:
        settings: dict from `check_captioning_settings`.
        source: LM source (`"smollm2"`, a .gguf or a keras-hub preset dir).
        shared: a frozen `CausalLM` to reuse, or None.
        vocabulary_ids: list of int or None. A scratch decoder's compact
            vocabulary (`decoder_vocabulary`); required when `settings`
            ask for a compact scratch decoder, else must be None.

    Examples:

    ```python
    lm = load_language_model(check_captioning_settings(
        {"decoder_vocabulary": "full"}))
    ```
    """
    from keras_lgvq.language_models import load_causal_lm

    compact = (settings["decoder"] == "scratch"
               and settings["decoder_vocabulary"] == "compact")
    if compact and vocabulary_ids is None:
        raise ValueError(
            "A compact scratch decoder (`decoder_vocabulary='compact'`) "
            "needs `vocabulary_ids`: pass `decoder_vocabulary(settings, "
            "source, training_texts)`, or set decoder_vocabulary='full'."
        )
    if not compact and vocabulary_ids is not None:
        raise ValueError(
            "`vocabulary_ids` is for a scratch decoder with "
            "decoder_vocabulary='compact'; received settings decoder="
            f"{settings['decoder']!r}, decoder_vocabulary="
            f"{settings['decoder_vocabulary']!r}."
        )
    if settings["decoder"] == "scratch":
        width = settings["decoder_width"]
        return load_causal_lm(source, trainable=True, scratch={
            "hidden_dim": width,
            "num_layers": settings["decoder_layers"],
            "intermediate_dim": 2 * width,
            "vocabulary_ids": vocabulary_ids,
        })
    if settings["language_model_training"] == "frozen" and shared is not None:
        return shared
    return load_causal_lm(source)


def build_captioner(tokenizer, language_model, settings):
    """A compiled `Captioner` for `tokenizer`'s codes under `settings`.

    Args:
        tokenizer: the frozen tokenizer backbone.
        language_model: a `CausalLM` (`load_language_model`).
        settings: dict from `check_captioning_settings`.

    Examples:

    ```python
    settings = check_captioning_settings({"epochs": 2})
    model = build_captioner(tokenizer, load_language_model(settings),
                            settings)
    ```
    """
    import keras

    from keras_lgvq.models.captioning import Captioner
    from keras_lgvq.models.captioning import build_prefix_mapper

    extra = {"hidden_dim": settings["mapper_width"]}
    if settings["mapper"] == "transformer":
        extra.update(num_layers=2, num_heads=4)
    if settings["mapper"] == "mlp":
        extra["projection_dim"] = settings["projection_dim"]
    mapper = build_prefix_mapper(
        settings["mapper"], num_positions=int(tokenizer.grid_size) ** 2,
        code_dim=int(tokenizer.quantizer.embedding_dim),
        prefix_length=settings["prefix_length"],
        lm_dim=language_model.hidden_dim, name="mapper", **extra,
    )
    if settings["decoder"] == "scratch":
        options = {"decoder": "scratch"}
    else:
        options = {
            "language_model_training": settings["language_model_training"],
            "lora_rank": settings["lora_rank"],
        }
    model = Captioner(mapper, language_model, tokenizer=tokenizer,
                      max_caption_length=settings["max_caption_length"],
                      **options)
    model.compile(
        optimizer=keras.optimizers.Adam(settings["learning_rate"]))
    return model


def generate_captions(model, beam_size=1, **images):
    """Captions of many images, decoded `GENERATION_BATCH` at a time.

    Args:
        model: a trained `Captioner`.
        beam_size: int. 1: greedy.
        **images: `codes=` or `code_vectors=` (numpy, all images).

    Examples:

    ```python
    captions = generate_captions(model, codes=test_codes)
    ```
    """
    (key, values), = images.items()
    out = []
    for i in range(0, len(values), GENERATION_BATCH):
        out += model.generate(beam_size=beam_size,
                              **{key: values[i:i + GENERATION_BATCH]})
    return out


def per_image_caption_scores(references, predictions, use_java=None):
    """Per-image BLEU-4, METEOR, ROUGE-L and CIDEr-D (for paired tests).

    Same tokenization as `evaluate_captions` (PTB through Java when it
    works, else the Python PTB tokenizer). BLEU-4 is pycocoevalcap's
    sentence-level BLEU of each image (its mean is not the corpus BLEU-4);
    ROUGE-L and CIDEr-D average to the corpus scores (CIDEr-D's document
    frequencies come from all `references`); METEOR is the toolkit's
    per-image score, None without Java.

    Args:
        references: list of lists of reference captions.
        predictions: list of generated captions, aligned.
        use_java: as in `evaluate_captions`.

    Returns:
        dict metric -> list of floats (one per image), or None for METEOR
        without Java.

    Examples:

    ```python
    per_image_caption_scores([["a red cube", "red cube"]], ["a red cube"])
    ```
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    from keras_lgvq.metrics import caption_metrics

    keys, refs, preds = caption_metrics._canonical(list(references),
                                                   list(predictions))
    java_ok, reason = caption_metrics.java_status()
    if use_java and not java_ok:
        raise RuntimeError(f"`use_java=True` but Java is unusable: {reason}.")
    with_java = java_ok if use_java is None else bool(use_java)
    if with_java:
        gts, res = caption_metrics._ptb_java(keys, refs, preds)
    else:
        tokenize = caption_metrics.ptb_tokenize_python
        gts = {k: [tokenize(r) for r in rs] for k, rs in zip(keys, refs)}
        res = {k: [tokenize(p)] for k, p in zip(keys, preds)}
    # pycocoevalcap's scorers iterate `gts` keys in their own order: ask
    # for the per-image list in `keys` order by building ordered dicts.
    gts = {k: gts[k] for k in keys}
    res = {k: res[k] for k in keys}
    out = {}
    _, bleu = Bleu(4).compute_score(gts, res, verbose=0)
    # Rounded to 1e-3 (0.1 BLEU points): pycocoevalcap smooths a sentence
    # without a matching 4-gram to ~1e-5 instead of 0, and those
    # length-dependent floors made a paired bootstrap call differences of
    # ~1e-10 between two wrong captions significant.
    out["BLEU-4"] = [round(float(v), SENTENCE_BLEU_DECIMALS)
                     for v in bleu[3]]
    out["ROUGE-L"] = [float(v) for v in Rouge().compute_score(gts, res)[1]]
    out["CIDEr-D"] = [float(v) for v in Cider().compute_score(gts, res)[1]]
    out["METEOR"] = None
    if with_java:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        try:
            out["METEOR"] = [float(v)
                             for v in scorer.compute_score(gts, res)[1]]
        finally:
            # Stop the Java process now rather than at garbage collection.
            scorer.meteor_p.stdin.close()
            scorer.meteor_p.kill()
            scorer.meteor_p.wait()
    return out


def paired_caption_tests(per_image, baseline_per_image):
    """Paired bootstraps of per-image caption scores, model minus baseline.

    Args:
        per_image: dict metric -> list (`per_image_caption_scores` of the
            model).
        baseline_per_image: the same for the baseline (e.g. the blind
            model), on the same images in the same order.

    Returns:
        dict metric -> `keras_lgvq.evaluation.significance.
        paired_bootstrap`'s dict (`difference` of the means, its 95 %
        interval `ci_low` / `ci_high`, `p_value`, `significant`), for each
        of `PER_IMAGE_METRICS` both sides have (METEOR is None without
        Java).

    Examples:

    ```python
    tests = paired_caption_tests(result["image"]["per_image"],
                                 result["blind"]["per_image"])
    tests["CIDEr-D"]["ci_low"] > 0  # the image model is better
    ```
    """
    from keras_lgvq.evaluation.significance import paired_bootstrap

    return {
        metric: paired_bootstrap(per_image[metric],
                                 baseline_per_image[metric])
        for metric in PER_IMAGE_METRICS
        if per_image.get(metric) is not None
        and baseline_per_image.get(metric) is not None
    }


def _train_and_score(tokenizer, settings, language_model, data, val_data,
                     test_inputs, references, use_java):
    model = build_captioner(tokenizer, language_model, settings)
    start = time.time()
    history = model.fit(
        data, validation_data=val_data, batch_size=settings["batch_size"],
        epochs=settings["epochs"], shuffle=True, verbose=0,
    )
    train_s = time.time() - start
    start = time.time()
    predictions = generate_captions(model, settings["beam_size"],
                                    **test_inputs)
    generate_s = time.time() - start
    from keras_lgvq.metrics import evaluate_captions

    scores = evaluate_captions(references, predictions, use_java=use_java)
    per_image = per_image_caption_scores(references, predictions,
                                         use_java=use_java)
    return {
        "scores": scores,
        "per_image": per_image,
        "predictions": predictions,
        "loss": [float(v) for v in history.history["loss"]],
        "val_loss": [float(v) for v in history.history["val_loss"]],
        "seconds": {"train": train_s, "generate": generate_s},
    }


def captioning_downstream_scenes(
    tokenizer,
    train_images=CAPTIONING_SIZES["train_images"],
    validation_images=CAPTIONING_SIZES["validation_images"],
    eval_images=CAPTIONING_SIZES["eval_images"],
    captions_per_image=CAPTIONING_SIZES["captions_per_image"],
    seed=0,
    language_model="smollm2",
    blind=True,
    settings=None,
    use_java=None,
):
    """Trains and scores image and blind captioners over a tokenizer's codes.

    Both models are built from `settings` (defaults `CAPTIONING_DEFAULTS`:
    a pooled mapper into a small decoder trained from scratch over the LM
    source's tokenizer) with the same seed, so they start from the same
    weights; the blind one sees one constant code grid (the training
    images' mean code vectors, `blind_code_vectors`) for every image in
    training, validation and test. Training images come from the scenes
    training split without the held-out attribute combinations; the
    validation loss is measured on the validation split after each epoch;
    captions are generated for the test split (all combinations) and
    scored against each image's 10 reference captions.

    Args:
        tokenizer: a tokenizer model or backbone, `.keras` file or preset
            directory (`keras_lgvq.models.text_to_image.load_tokenizer`).
        train_images: int. Scenes training images.
        validation_images: int. Held-out scenes for the validation loss.
        eval_images: int. Test scenes captioned and scored.
        captions_per_image: int in [1, 10]. Training captions per image
            (each a separate example).
        seed: int. Scenes generator, shuffling and weight seed.
        language_model: LM source or `CausalLM`: the pretrained decoder,
            or the tokenizer of a scratch decoder (default `"smollm2"`).
        blind: bool. Also train and score the blind baseline.
        settings: dict or None. Keys of `CAPTIONING_DEFAULTS` to override.
        use_java: as in `evaluate_captions` (None: Java when it works).

    Returns:
        A JSON-ready dict: `image` and (with `blind`) `blind`, each with
        `scores` (`evaluate_captions`'s dict: BLEU-1..4, METEOR, ROUGE-L,
        CIDEr-D as fractions, CIDEr-D on its own scale), `per_image`
        (`per_image_caption_scores`, aligned with `image_ids`),
        `predictions`, `loss` and `val_loss` per epoch and `seconds`;
        plus `image_ids`, `settings`, `sizes`, `seconds` (total wall)
        and, with `blind`, `paired` (`paired_caption_tests` of the image
        model against the blind one: per-image BLEU-4 / METEOR / ROUGE-L /
        CIDEr-D differences with 95 % bootstrap intervals).

    Examples:

    ```python
    result = captioning_downstream_scenes(
        "runs/compare4/lgvq/preset", train_images=400, seed=0)
    result["image"]["scores"]["CIDEr-D"], result["blind"]["scores"]["CIDEr-D"]
    ```
    """
    import keras

    from keras_lgvq.datasets import scenes
    from keras_lgvq.language_models.causal_lm import CausalLM

    start = time.time()
    settings = check_captioning_settings(settings)
    sizes = {
        "train_images": check_int("train_images", train_images, low=1),
        "validation_images": check_int("validation_images",
                                       validation_images, low=1),
        "eval_images": check_int("eval_images", eval_images, low=1),
        "captions_per_image": check_int("captions_per_image",
                                        captions_per_image, low=1),
    }
    if captions_per_image > SCENES_CAPTIONS_PER_IMAGE:
        raise ValueError(
            f"`captions_per_image`={captions_per_image} exceeds the "
            f"{SCENES_CAPTIONS_PER_IMAGE} captions each scenes image has; "
            f"pass 1 to {SCENES_CAPTIONS_PER_IMAGE}."
        )
    seed = check_int("seed", seed, low=0)
    tokenizer = resolve_tokenizer(tokenizer)
    train_codes, train = encode_scenes(tokenizer, train_images, "train", seed,
                                       scenes.DEFAULT_HOLDOUT)
    val_codes, val = encode_scenes(tokenizer, validation_images,
                                   "validation", seed, scenes.DEFAULT_HOLDOUT)
    test_codes, test = encode_scenes(tokenizer, eval_images, "test", seed,
                                     None)
    reps = captions_per_image
    captions = [e["captions"][j] for e in train for j in range(reps)]
    val_captions = [e["captions"][j] for e in val for j in range(reps)]
    references = [list(e["captions"]) for e in test]
    shared = None
    lm_source = language_model
    if isinstance(language_model, CausalLM):
        if settings["decoder"] == "scratch":
            lm_source = language_model.source
        else:
            shared = language_model
    elif (settings["decoder"] == "pretrained"
          and settings["language_model_training"] == "frozen"):
        shared = load_language_model(settings, language_model)
    # All captions of the training images and the validation captions:
    # the text a compact scratch decoder reads and writes.
    vocabulary_ids = decoder_vocabulary(
        settings, lm_source,
        [c for e in train for c in e["captions"]] + val_captions,
    )
    result = {"image_ids": [e["image_id"] for e in test],
              "settings": settings, "sizes": sizes, "seed": seed,
              "decoder_vocabulary_size": None if vocabulary_ids is None
              else len(vocabulary_ids)}
    for name in ("image", "blind") if blind else ("image",):
        # Seeded before the decoder and the mapper are made: both models
        # (and the models of another tokenizer) start from the same weights
        # and see the batches in the same order.
        keras.utils.set_random_seed(seed)
        lm = load_language_model(settings, lm_source, shared,
                                 vocabulary_ids)
        if name == "image":
            kwargs = {"codes": np.repeat(train_codes, reps, axis=0)}
            val_kwargs = {"codes": np.repeat(val_codes, reps, axis=0)}
            test_inputs = {"codes": test_codes}
        else:
            kwargs = {"code_vectors": blind_code_vectors(
                tokenizer, train_codes, len(captions))}
            val_kwargs = {"code_vectors": blind_code_vectors(
                tokenizer, train_codes, len(val_captions))}
            test_inputs = {"code_vectors": blind_code_vectors(
                tokenizer, train_codes, len(test_codes))}
        data = dict(kwargs, **_tokenize(lm, captions, settings))
        val_data = dict(val_kwargs, **_tokenize(lm, val_captions, settings))
        result[name] = _train_and_score(
            tokenizer, settings, lm, data, val_data, test_inputs,
            references, use_java,
        )
    if blind:
        result["paired"] = paired_caption_tests(result["image"]["per_image"],
                                                result["blind"]["per_image"])
    result["seconds"] = time.time() - start
    return result


def _tokenize(language_model, captions, settings):
    """Caption token ids and masks with the captioner's truncation rule."""
    from keras_lgvq.models.captioning import tokenize_texts

    ids, mask = tokenize_texts(language_model, captions,
                               settings["max_caption_length"],
                               name="captions", append_stop=True)
    return {"token_ids": ids, "padding_mask": mask}

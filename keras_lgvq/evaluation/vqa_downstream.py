"""VQA over a frozen tokenizer's codes on the scenes set, in one call.

`vqa_downstream_scenes` builds CLEVR-style question sets of procedural
scenes (`keras_lgvq.datasets.scenes_questions`: training, validation, test
and held-out-combination questions), trains a `VQAModel` ([image prefix ;
question] through a causal LM, answer classifier) over the tokenizer's
codes and the same model without image information (the blind baseline:
one constant code grid, `blind_code_vectors`), both from the same initial
weights and batches, and scores both on the same questions: accuracy /
WUPS@0.9 / WUPS@0.0 overall and per question type
(`keras_lgvq.metrics.evaluate_vqa`), plus per-question values aligned with
question ids for paired tests. Two tokenizers given the same sizes and
seed see identical questions and initial model weights.

`train_vqa_models` is the dataset-independent part (question sets and
codes in, trained models' scores and answers out), shared with
`recipes/vqa.py`, whose COCO-QA path calls it directly and whose scenes
path calls `vqa_downstream_scenes` with its checkpointing `fit`.

`VQA_DEFAULTS` and `VQA_SIZES` are the recipe's measured CPU default: a
pooled mapper (k = 16 regions) into a scratch decoder (width 256, 2
blocks, over SmolLM2's tokenizer, compact vocabulary of the question
text), 10 epochs of batch 32 at learning rate 3e-4, 2,000 training scenes
x 4 questions, 300 test scenes (15 minutes on 2 CPU cores for both
models; benchmarks/results/stage2_measurements.md).
"""

import contextlib
import time

import numpy as np

from keras_lgvq.utils.validation import check_int

VQA_DEFAULTS = {
    "decoder": "scratch",
    "decoder_width": 256,
    "decoder_layers": 2,
    # "compact": the scratch decoder's embedding covers only the tokenizer
    # ids of the question text (+ specials); "full": the whole tokenizer.
    "decoder_vocabulary": "compact",
    # None: "frozen" for a pretrained LM, "full" for a scratch decoder
    # (which starts from random weights, so it always trains fully).
    "language_model_training": None,
    "lora_rank": None,
    "mapper": "pooled",
    "mapper_width": 256,
    "mapper_layers": 2,
    "projection_dim": None,
    "prefix_length": 16,
    "max_question_length": 16,
    # 3e-4 (was 1e-3): on the shipped LG-VQ tokenizer the image model's
    # test accuracy rose from 30.1 % (level with its blind model) to
    # 41.8 % (benchmarks/results/stage2_measurements.md).
    "learning_rate": 3e-4,
    "batch_size": 32,
    "epochs": 10,
}
VQA_SIZES = {
    "train_images": 2000,
    "validation_images": 40,
    "eval_images": 300,
    "questions_per_image": 4,
}
# Scenes whose question text (no images) joins the training questions in a
# compact decoder vocabulary: the scenes question language has 43 ids,
# which a few training images may not all use.
VOCABULARY_POOL_IMAGES = 1000
# Questions answered per forward pass at evaluation.
ANSWER_BATCH = 64
# The splits scored, in order (held-out: questions about held-out
# attribute combinations only).
EVAL_SPLITS = ("test", "holdout")
# Per-question scores: name in `evaluate_vqa`'s dict.
PER_QUESTION_METRICS = ("accuracy", "WUPS@0.9", "WUPS@0.0")


def check_vqa_settings(settings):
    """`VQA_DEFAULTS` updated with `settings`, `language_model_training`
    resolved; unknown keys and bad values are clear errors.

    Args:
        settings: dict or None. Keys of `VQA_DEFAULTS`.

    Returns:
        dict: the complete settings.

    Examples:

    ```python
    check_vqa_settings({"epochs": 2})["language_model_training"]  # "full"
    ```
    """
    from keras_lgvq.evaluation.captioning_downstream import merge_settings

    out = merge_settings(VQA_DEFAULTS, settings, "VQA")
    for key in ("decoder_width", "decoder_layers", "mapper_width",
                "mapper_layers", "prefix_length", "max_question_length",
                "batch_size", "epochs"):
        check_int(key, out[key], low=1)
    if out["projection_dim"] is not None:
        check_int("projection_dim", out["projection_dim"], low=1)
    if out["lora_rank"] is not None:
        check_int("lora_rank", out["lora_rank"], low=1)
    if isinstance(out["learning_rate"], bool) or not isinstance(
        out["learning_rate"], (int, float)
    ) or not out["learning_rate"] > 0:
        raise ValueError(
            "`learning_rate` must be a number > 0; received "
            f"{out['learning_rate']!r}."
        )
    if out["decoder"] not in ("pretrained", "scratch"):
        raise ValueError(
            "`decoder` must be 'pretrained' or 'scratch'; received "
            f"{out['decoder']!r}."
        )
    if out["decoder_vocabulary"] not in ("compact", "full"):
        raise ValueError(
            "`decoder_vocabulary` must be 'compact' or 'full'; received "
            f"{out['decoder_vocabulary']!r}."
        )
    training = out["language_model_training"]
    if training not in (None, "frozen", "full", "lora"):
        raise ValueError(
            "`language_model_training` must be None, 'frozen', 'full' or "
            f"'lora'; received {training!r}."
        )
    if out["decoder"] == "scratch":
        if training not in (None, "full"):
            raise ValueError(
                "A scratch decoder starts from random weights and trains "
                "fully: `language_model_training` must be None or 'full'; "
                f"received {training!r}."
            )
        out["language_model_training"] = "full"
    elif training is None:
        out["language_model_training"] = "frozen"
    if out["projection_dim"] is not None and out["mapper"] != "mlp":
        raise ValueError(
            "`projection_dim` is an option of the 'mlp' mapper; received "
            f"mapper={out['mapper']!r}. Drop it or use mapper='mlp'."
        )
    return out


def encode_images(tokenizer, images):
    """Codes of uint8 images already at the tokenizer's size.

    Args:
        tokenizer: a tokenizer backbone.
        images: uint8 `(N, H, W, 3)`.

    Returns:
        int32 `(N, h, w)` (or `(N, h, w, S)` for a tokenizer with
        sub-codebooks, e.g. VQCT).

    Examples:

    ```python
    codes = encode_images(tokenizer, np.stack([q["image"] for q in qs]))
    ```
    """
    from keras import ops

    images = np.asarray(images).astype("float32") / 127.5 - 1.0
    return np.concatenate([
        np.asarray(ops.convert_to_numpy(tokenizer.encode(images[i:i + 32])))
        for i in range(0, len(images), 32)
    ]).astype("int32")


def scenes_question_sets(tokenizer, train_images, validation_images,
                         eval_images, questions_per_image, seed):
    """Question records and codes of the scenes splits.

    Args:
        tokenizer: a tokenizer backbone (its `resolution` sets the size).
        train_images: int. Training scenes (without the held-out
            combinations).
        validation_images: int. Validation scenes.
        eval_images: int. Test scenes (and as many for the held-out split).
        questions_per_image: int. Questions drawn per scene.
        seed: int. The scenes generator's seed.

    Returns:
        `(sets, codes)`: split -> question records (with `image`), split ->
        int32 code grids aligned with the records; splits with no question
        are left out.

    Examples:

    ```python
    sets, codes = scenes_question_sets(tokenizer, 20, 4, 8, 2, seed=0)
    ```
    """
    from keras_lgvq.datasets import scenes_questions as sq

    size = int(tokenizer.resolution)
    sets = {
        "train": sq.generate_questions(
            train_images, seed=seed, split="train", image_size=size,
            questions_per_image=questions_per_image),
        "test": sq.generate_questions(
            eval_images, seed=seed, split="test", image_size=size,
            questions_per_image=questions_per_image),
        "holdout": sq.generate_questions(
            eval_images, seed=seed, split="holdout", image_size=size,
            questions_per_image=questions_per_image, balance=False),
        "validation": sq.generate_questions(
            validation_images, seed=seed, split="validation",
            image_size=size, questions_per_image=questions_per_image),
    }
    sets = {k: v for k, v in sets.items() if v}
    codes = {k: encode_images(tokenizer, np.stack([q["image"] for q in v]))
             for k, v in sets.items()}
    return sets, codes


def question_ids(records):
    """Stable ids of question records: `<image_id>#<k>`, the k-th question
    of that image in the list (so two runs with the same seed agree).

    Examples:

    ```python
    question_ids([{"image_id": "test_3"}, {"image_id": "test_3"}])
    # ["test_3#0", "test_3#1"]
    ```
    """
    seen = {}
    out = []
    for record in records:
        image = str(record["image_id"])
        out.append(f"{image}#{seen.get(image, 0)}")
        seen[image] = seen.get(image, 0) + 1
    return out


def question_vocabulary(settings, source, texts, pool_seed=None,
                        questions_per_image=VQA_SIZES["questions_per_image"]):
    """The compact vocabulary of a scratch decoder, or None.

    The tokenizer ids of `texts` (the training and validation questions)
    plus the special ids; with `pool_seed`, also the questions of
    `VOCABULARY_POOL_IMAGES` more training-split scenes (text only), so a
    short run's model still reads every scenes question. Answers go
    through the classifier, not the LM, so they need no ids. None for a
    pretrained LM or `decoder_vocabulary="full"`.

    Args:
        settings: dict from `check_vqa_settings`.
        source: LM source whose tokenizer is used.
        texts: list of str.
        pool_seed: int or None. Scenes seed of the extra question pool.
        questions_per_image: int. Questions per pool scene.

    Examples:

    ```python
    ids = question_vocabulary(settings, "smollm2", questions, pool_seed=0)
    ```
    """
    if settings["decoder"] != "scratch" or (
        settings["decoder_vocabulary"] != "compact"
    ):
        return None
    from keras_lgvq.language_models import compact_vocabulary

    texts = list(texts)
    if pool_seed is not None:
        from keras_lgvq.datasets import scenes_questions as sq

        texts += [q["question"] for q in sq.generate_questions(
            VOCABULARY_POOL_IMAGES, seed=pool_seed, split="train",
            image_size=32, questions_per_image=questions_per_image,
            include_images=False)]
    return compact_vocabulary(source, texts)


def vqa_language_model(settings, source="smollm2", vocabulary_ids=None):
    """The LM of one VQA model: the pretrained `source`, or a new scratch
    decoder over its tokenizer (over `vocabulary_ids` when given).

    Args:
        settings: dict from `check_vqa_settings`.
        source: LM source (`"smollm2"`, a .gguf or a keras-hub preset dir).
        vocabulary_ids: list of int or None (`question_vocabulary`).

    Examples:

    ```python
    lm = vqa_language_model(check_vqa_settings({}), "smollm2", ids)
    ```
    """
    from keras_lgvq.language_models import load_causal_lm

    if settings["decoder"] == "pretrained":
        return load_causal_lm(source)
    width = settings["decoder_width"]
    return load_causal_lm(source, trainable=True, scratch={
        "hidden_dim": width, "num_layers": settings["decoder_layers"],
        "intermediate_dim": 2 * width, "vocabulary_ids": vocabulary_ids})


def question_length(language_model, questions, limit):
    """Tokens per question row: the longest question, at most `limit`.

    Examples:

    ```python
    question_length(lm, ["what color is the star?"], 16)
    ```
    """
    longest = max(len(language_model.encode(q)) for q in questions)
    return max(1, min(int(limit), longest))


def type_prior_answers(train, questions):
    """Each question answered with its type's most frequent training answer
    (ties: the first in sorted order). Uses no image and no model: the
    accuracy a blind model reaches by learning only the answer prior of
    each question type.

    Args:
        train: training records (`type`, `answer`).
        questions: records to answer (`type`).

    Examples:

    ```python
    type_prior_answers(sets["train"], sets["test"])
    ```
    """
    counts = {}
    for q in train:
        per = counts.setdefault(q["type"], {})
        per[q["answer"]] = per.get(q["answer"], 0) + 1
    best = {t: min(per, key=lambda a: (-per[a], a))
            for t, per in counts.items()}
    overall = min(best.values())
    return [best.get(q["type"], overall) for q in questions]


def per_question_scores(predictions, answers, scorer=None):
    """Per-question accuracy and WUPS@0.9 / WUPS@0.0 (their means are
    `evaluate_vqa`'s scores).

    Args:
        predictions: list of str.
        answers: list of str, aligned.
        scorer: a `WupsScorer` or None (a new one).

    Returns:
        dict `PER_QUESTION_METRICS` name -> list of floats.

    Examples:

    ```python
    per_question_scores(["red", "two"], ["red", "three"])["accuracy"]
    # [1.0, 0.0]
    ```
    """
    from keras_lgvq.metrics import vqa_metrics

    if len(predictions) != len(answers):
        raise ValueError(
            f"`predictions` ({len(predictions)}) and `answers` "
            f"({len(answers)}) must have the same length."
        )
    scorer = scorer or vqa_metrics.WupsScorer()
    # The same answer-set rule as `evaluate_vqa`.
    answer_set = vqa_metrics._answer_set
    return {
        "accuracy": [float(answer_set(p) == answer_set(t))
                     for p, t in zip(predictions, answers)],
        "WUPS@0.9": [scorer.wups(p, t, 0.9)
                     for p, t in zip(predictions, answers)],
        "WUPS@0.0": [scorer.wups(p, t, 0.0)
                     for p, t in zip(predictions, answers)],
    }


def _default_fit(settings):
    def fit(model, name, data, validation_data):
        return model.fit(
            data, validation_data=validation_data,
            batch_size=settings["batch_size"], epochs=settings["epochs"],
            shuffle=True, verbose=0,
        )

    return fit


def _no_phase(name):
    return contextlib.nullcontext()


def train_vqa_models(tokenizer, sets, codes, answer_vocabulary,
                     settings=None, seed=0, language_model="smollm2",
                     blind=True, vocabulary_ids=None, fit=None, phase=None):
    """Trains and scores the image VQA model (and the blind one).

    Each model is built after `keras.utils.set_random_seed(seed)`, so both
    start from the same weights; the blind one reads one constant code
    grid (`blind_code_vectors` of the training codes) in training,
    validation and evaluation.

    Args:
        tokenizer: the frozen tokenizer backbone.
        sets: split -> question records (`question`, `answer`, `type`);
            needs `train` and `validation`; `test` / `holdout` are scored.
        codes: split -> int code grids aligned with `sets`.
        answer_vocabulary: list of str. The classifier's classes.
        settings: dict or None. Keys of `VQA_DEFAULTS` to override.
        seed: int. Weight and shuffling seed.
        language_model: str. LM source (pretrained LM or the tokenizer of a
            scratch decoder).
        blind: bool. Also train and score the blind model.
        vocabulary_ids: list of int or None. A compact scratch decoder's
            vocabulary (`question_vocabulary`).
        fit: callable `(model, name, data, validation_data) -> History`
            or None (`model.fit` for `settings["epochs"]` epochs; the
            recipe passes its checkpointing trainer).
        phase: callable name -> context manager timing a phase (`load`,
            `train_<model>`, `evaluate_<model>`), or None.

    Returns:
        dict: `question_tokens`, `splits` (the scored splits), `models`
        (name -> `final_loss`, `loss_history`, `val_loss_history`,
        `seconds` and per split `evaluate_vqa`'s dict) and `answers`
        (name -> split -> predicted answers, aligned with `sets[split]`).

    Examples:

    ```python
    out = train_vqa_models(tokenizer, sets, codes, SCENES_ANSWERS,
                           {"epochs": 1}, seed=0)
    out["models"]["image"]["test"]["accuracy"]
    ```
    """
    import keras

    from keras_lgvq.evaluation.captioning_downstream import blind_code_vectors
    from keras_lgvq.metrics import evaluate_vqa
    from keras_lgvq.metrics.vqa_metrics import load_wordnet
    from keras_lgvq.models.captioning import build_prefix_mapper
    from keras_lgvq.models.vqa import VQAModel

    settings = check_vqa_settings(settings)
    fit = fit or _default_fit(settings)
    phase = phase or _no_phase
    for split in ("train", "validation"):
        if not sets.get(split):
            raise ValueError(
                f"`sets` needs a non-empty '{split}' split; received splits "
                f"{sorted(sets)}."
            )
    eval_splits = [s for s in EVAL_SPLITS if sets.get(s)]
    with phase("load"):
        lm = vqa_language_model(settings, language_model, vocabulary_ids)
    max_length = question_length(
        lm, [q["question"] for v in sets.values() for q in v],
        settings["max_question_length"])
    wordnet = load_wordnet()
    result = {"question_tokens": max_length, "splits": eval_splits,
              "models": {}, "answers": {}}
    for name in ("image", "blind") if blind else ("image",):
        keras.utils.set_random_seed(seed)
        if settings["language_model_training"] != "frozen":
            # A fresh LM per model (a new scratch decoder, seeded above):
            # the image and blind models must not share trained weights.
            with phase("load"):
                lm = vqa_language_model(settings, language_model,
                                        vocabulary_ids)
        extra = {"hidden_dim": settings["mapper_width"]}
        if settings["mapper"] == "transformer":
            extra.update(num_layers=settings["mapper_layers"], num_heads=4)
        if settings["mapper"] == "mlp":
            extra["projection_dim"] = settings["projection_dim"]
        mapper = build_prefix_mapper(
            settings["mapper"], num_positions=int(tokenizer.grid_size) ** 2,
            code_dim=int(tokenizer.quantizer.embedding_dim),
            prefix_length=settings["prefix_length"], lm_dim=lm.hidden_dim,
            name="mapper", **extra)
        model = VQAModel(
            mapper, list(answer_vocabulary), language_model=lm,
            tokenizer=tokenizer, max_question_length=max_length,
            language_model_training=settings["language_model_training"],
            lora_rank=settings["lora_rank"])
        model.compile(
            optimizer=keras.optimizers.Adam(settings["learning_rate"]))

        def image_inputs(split, blind=name == "blind"):
            if blind:
                # Same model, no image information: one constant grid.
                return {"code_vectors": blind_code_vectors(
                    tokenizer, codes["train"], len(sets[split]))}
            return {"codes": codes[split]}

        data, val_data = (
            model.prepare_inputs([q["question"] for q in sets[split]],
                                 [q["answer"] for q in sets[split]],
                                 **image_inputs(split))
            for split in ("train", "validation")
        )
        start = time.time()
        with phase(f"train_{name}"):
            history = fit(model, name, data, val_data)
        seconds = {"train": round(time.time() - start, 1)}
        entry = {"final_loss": float(history.history["loss"][-1]),
                 "loss_history": [float(x) for x in history.history["loss"]],
                 "val_loss_history": [
                     float(x) for x in history.history.get("val_loss", [])]}
        start = time.time()
        with phase(f"evaluate_{name}"):
            for split in eval_splits:
                questions = sets[split]
                inputs = image_inputs(split)
                predictions = []
                for i in range(0, len(questions), ANSWER_BATCH):
                    part = {k: v[i:i + ANSWER_BATCH]
                            for k, v in inputs.items()}
                    predictions += model.answer(
                        [q["question"]
                         for q in questions[i:i + ANSWER_BATCH]], **part)
                entry[split] = evaluate_vqa(
                    predictions, [q["answer"] for q in questions],
                    question_types=[q["type"] for q in questions],
                    wordnet=wordnet)
                result["answers"].setdefault(name, {})[split] = predictions
        seconds["evaluate"] = round(time.time() - start, 1)
        entry["seconds"] = seconds
        result["models"][name] = entry
    return result


def vqa_downstream_scenes(
    tokenizer,
    seed=0,
    language_model="smollm2",
    blind=True,
    settings=None,
    train_images=VQA_SIZES["train_images"],
    validation_images=VQA_SIZES["validation_images"],
    eval_images=VQA_SIZES["eval_images"],
    questions_per_image=VQA_SIZES["questions_per_image"],
    fit=None,
    phase=None,
    return_sets=False,
):
    """Trains and scores image and blind VQA models over a tokenizer's codes.

    Question sets: `scenes_question_sets` (training scenes without the
    held-out attribute combinations; test scenes; held-out-combination
    questions of as many test scenes; validation scenes for the validation
    loss). Answer vocabulary: the `scenes_vqa` preset's (`SCENES_ANSWERS`,
    every answer the generator can give). Models: `train_vqa_models`.

    Args:
        tokenizer: a tokenizer model or backbone, `.keras` file, preset
            directory or shipped preset name (`resolve_tokenizer`).
        seed: int. Scenes, question, shuffling and weight seed.
        language_model: str. LM source (default `"smollm2"`): the
            pretrained LM, or the tokenizer of a scratch decoder.
        blind: bool. Also train and score the blind baseline.
        settings: dict or None. Keys of `VQA_DEFAULTS` to override.
        train_images: int. Training scenes.
        validation_images: int. Validation scenes.
        eval_images: int. Test scenes (and held-out scenes).
        questions_per_image: int. Questions drawn per scene.
        fit: as in `train_vqa_models`.
        phase: as in `train_vqa_models` (adds `load` and `encode`).
        return_sets: bool. Also return `sets` (the question records with
            their uint8 images; not JSON-ready).

    Returns:
        A JSON-ready dict (without `sets`): `image` and (with `blind`)
        `blind`, each with `scores` (split -> `evaluate_vqa`'s dict:
        accuracy, WUPS@0.9, WUPS@0.0 as fractions, `count`, `per_type`),
        `per_question` (split -> `PER_QUESTION_METRICS` name -> list
        aligned with `question_ids[split]`), `answers` (split -> list),
        `loss` / `val_loss` per epoch and `seconds`; plus `question_ids`,
        `questions` (split -> records without images: question, answer,
        type, image_id), `type_prior` (split -> `evaluate_vqa` of
        `type_prior_answers`), `answer_vocabulary`, `question_tokens`,
        `decoder_vocabulary_size`, `settings`, `sizes` (scenes and
        questions per split), `seed` and `seconds` (total wall).

    Examples:

    ```python
    result = vqa_downstream_scenes("runs/scenes/lgvq/preset", seed=0,
                                   train_images=400)
    result["image"]["scores"]["test"]["accuracy"]
    result["blind"]["scores"]["test"]["accuracy"]
    ```
    """
    from keras_lgvq.evaluation.captioning_downstream import resolve_tokenizer
    from keras_lgvq.metrics import evaluate_vqa
    from keras_lgvq.metrics.vqa_metrics import WupsScorer
    from keras_lgvq.metrics.vqa_metrics import load_wordnet
    from keras_lgvq.models.vqa.vqa_presets import SCENES_ANSWERS

    start = time.time()
    settings = check_vqa_settings(settings)
    sizes = {
        "train_images": check_int("train_images", train_images, low=1),
        "validation_images": check_int("validation_images",
                                       validation_images, low=1),
        "eval_images": check_int("eval_images", eval_images, low=1),
        "questions_per_image": check_int("questions_per_image",
                                         questions_per_image, low=1),
    }
    seed = check_int("seed", seed, low=0)
    if not isinstance(language_model, str) or not language_model:
        raise ValueError(
            "`language_model` must be an LM source (\"smollm2\", a .gguf "
            "path or a keras-hub preset directory); received "
            f"{language_model!r}."
        )
    phase = phase or _no_phase
    with phase("load"):
        tokenizer = resolve_tokenizer(tokenizer)
    with phase("encode"):
        sets, codes = scenes_question_sets(
            tokenizer, seed=seed, **sizes)
    vocabulary_ids = question_vocabulary(
        settings, language_model,
        [q["question"] for split in ("train", "validation")
         for q in sets.get(split, [])],
        pool_seed=seed, questions_per_image=questions_per_image)
    trained = train_vqa_models(
        tokenizer, sets, codes, SCENES_ANSWERS, settings, seed=seed,
        language_model=language_model, blind=blind,
        vocabulary_ids=vocabulary_ids, fit=fit, phase=phase)
    splits = trained["splits"]
    scorer = WupsScorer(load_wordnet())
    result = {
        "question_ids": {s: question_ids(sets[s]) for s in splits},
        "questions": {
            s: [{"question": q["question"], "answer": q["answer"],
                 "type": q["type"], "image_id": str(q["image_id"])}
                for q in sets[s]]
            for s in splits
        },
        "type_prior": {},
        "answer_vocabulary": list(SCENES_ANSWERS),
        "question_tokens": trained["question_tokens"],
        "decoder_vocabulary_size": None if vocabulary_ids is None
        else len(vocabulary_ids),
        "settings": settings,
        "sizes": dict(sizes, questions={k: len(v) for k, v in sets.items()}),
        "seed": seed,
    }
    for split in splits:
        truth = [q["answer"] for q in sets[split]]
        result["type_prior"][split] = evaluate_vqa(
            type_prior_answers(sets["train"], sets[split]), truth,
            question_types=[q["type"] for q in sets[split]],
            wordnet=scorer.wordnet)
    for name, entry in trained["models"].items():
        answers = trained["answers"][name]
        result[name] = {
            "scores": {s: entry[s] for s in splits},
            "per_question": {
                s: per_question_scores(
                    answers[s], [q["answer"] for q in sets[s]], scorer)
                for s in splits
            },
            "answers": {s: list(answers[s]) for s in splits},
            "loss": entry["loss_history"],
            "val_loss": entry["val_loss_history"],
            "seconds": entry["seconds"],
        }
    result["seconds"] = time.time() - start
    if return_sets:
        result["sets"] = sets
    return result

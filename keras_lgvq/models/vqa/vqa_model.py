"""Visual question answering over a frozen tokenizer's codes: `[image
prefix ; question tokens]` through a (frozen) causal LM, the last real
position's hidden state into an answer classifier (the LG-VQ paper's
design, downstream-spec §3)."""

import keras
import numpy as np
from keras import ops

from keras_lgvq.models.captioning.captioner import PrefixLanguageModel
from keras_lgvq.models.captioning.captioner import as_text_list
from keras_lgvq.models.captioning.captioner import tokenize_texts
from keras_lgvq.utils.validation import check_int

VQA_INPUT_KEYS = ("codes", "code_vectors", "token_ids", "padding_mask",
                  "answer_ids")


def _check_vocabulary(answer_vocabulary):
    if isinstance(answer_vocabulary, str) or not isinstance(
        answer_vocabulary, (list, tuple)
    ) or len(answer_vocabulary) < 2:
        raise ValueError(
            "`answer_vocabulary` must be a list of at least two distinct "
            f"answer strings; received {answer_vocabulary!r:.80}."
        )
    vocab = list(as_text_list(list(answer_vocabulary), "answer_vocabulary"))
    if len(set(vocab)) != len(vocab):
        raise ValueError("`answer_vocabulary` holds duplicate answers.")
    return vocab


@keras.saving.register_keras_serializable(package="keras_lgvq")
class VQAModel(PrefixLanguageModel):
    """Answer classification from `[image prefix ; question]` with an LM.

    The prefix mapper turns the image's code vectors into `k` vectors in the
    LM's embedding space; the question's tokens follow (right-padded); the
    LM's final hidden state at the last real question token goes through a
    linear classifier over `answer_vocabulary` (the training split's
    answers). The loss is sparse cross-entropy on `answer_ids` (built in;
    plain `compile` / `fit`). The LM is frozen by default
    (`language_model_training`: `"full"` fine-tunes it, `"lora"` trains
    keras-hub LoRA adapters only); the image tokenizer is always frozen.

    The answer vocabulary is part of the config: a saved model answers in
    the vocabulary it was trained with, and `from_preset(...,
    answer_vocabulary=...)` refuses a different one.

    Args:
        mapper: an `MLPPrefixMapper` / `TransformerPrefixMapper` whose
            `lm_dim` is the LM's hidden size.
        answer_vocabulary: list of str. The classifier's classes.
        language_model: a `CausalLM` or its source (default `"smollm2"`).
        tokenizer: optional frozen image tokenizer (for `codes` inputs).
        max_question_length: int. Question tokens kept; a longer question
            keeps its first `max_question_length` tokens.
        language_model_training: `"frozen"` (default), `"full"` or
            `"lora"` (keras-hub LoRA on the attention's query / value
            projections; the rest of the LM stays frozen).
        lora_rank: int or None. LoRA rank for `"lora"` (default 8).
        **kwargs: `keras.Model` arguments, and `prefix_scale` (RMS of the
            prefix vectors; None: the LM's token-embedding RMS, 0: off; see
            `keras_lgvq.models.captioning.captioner.PrefixLanguageModel`).

    Examples:

    ```python
    model = VQAModel(mapper, answer_vocabulary=["no", "yes", "red"],
                     language_model=lm, tokenizer="runs/lgvq/model.keras")
    model.compile(optimizer="adam")
    model.fit(model.prepare_inputs(questions, answers, codes=codes))
    model.answer(questions[:4], codes=codes[:4])
    ```
    """

    input_keys = VQA_INPUT_KEYS

    def __init__(self, mapper, answer_vocabulary, language_model="smollm2",
                 tokenizer=None, max_question_length=24,
                 language_model_training="frozen", lora_rank=None,
                 **kwargs):
        # Checked before the (slow) LM is loaded from a source string.
        answer_vocabulary = _check_vocabulary(answer_vocabulary)
        super().__init__(
            mapper, language_model=language_model, tokenizer=tokenizer,
            language_model_training=language_model_training,
            lora_rank=lora_rank, **kwargs,
        )
        self.answer_vocabulary = _check_vocabulary(answer_vocabulary)
        self._answer_index = {a: i for i, a in
                              enumerate(self.answer_vocabulary)}
        self.max_question_length = check_int(
            "max_question_length", max_question_length
        )
        self.classifier = keras.layers.Dense(
            len(self.answer_vocabulary), name="answer_classifier"
        )
        self.classifier.build((None, self.language_model.hidden_dim))
        self.answer_accuracy = keras.metrics.Mean(name="answer_accuracy")
        self.built = True

    def _id_checks(self):
        return super()._id_checks() + [(
            "answer_ids", len(self.answer_vocabulary), None,
            "Answer ids come from `encode_answers` (`prepare_inputs`) with "
            "this model's answer vocabulary.",
        )]

    def encode_answers(self, answers):
        """Answer strings -> int32 class ids; unknown answers are an error.

        Examples:

        ```python
        model.encode_answers(["yes", "red"])
        ```
        """
        answers = as_text_list(answers, "answers")
        unknown = sorted({a for a in answers if a not in self._answer_index})
        if unknown:
            raise ValueError(
                f"`answers` {unknown[:5]} are not in the model's answer "
                f"vocabulary ({len(self.answer_vocabulary)} answers); "
                "build the vocabulary from the training split's answers."
            )
        return np.asarray([self._answer_index[a] for a in answers], "int32")

    def prepare_inputs(self, questions, answers=None, codes=None,
                       code_vectors=None):
        """A batch dict from questions (and answers) and codes (numpy).

        Args:
            questions: str or list of str, one per image (non-empty).
            answers: optional list of str from the answer vocabulary.
            codes: int `(B, h, w)` (or `(B, h, w, S)`), or code_vectors:
                float `(B, h*w, D)`.

        Examples:

        ```python
        data = model.prepare_inputs(["what color is the star?"], ["red"],
                                    codes=codes[:1])
        ```
        """
        images, count = self._image_inputs(codes, code_vectors)
        ids, mask = tokenize_texts(
            self.language_model, questions, self.max_question_length,
            name="questions", append_stop=False,
        )
        if len(ids) != count:
            raise ValueError(
                f"`questions` has {len(ids)} entries but there are {count} "
                "images; pass one question per image."
            )
        data = {**images, "token_ids": ids, "padding_mask": mask}
        if answers is not None:
            data["answer_ids"] = self.encode_answers(answers)
            if len(data["answer_ids"]) != count:
                raise ValueError("Pass one answer per question.")
        return data

    def call(self, inputs, training=False):
        """Answer logits (float32 `(B, num_answers)`)."""
        for key in ("token_ids", "padding_mask"):
            if key not in inputs:
                raise ValueError(
                    f"VQAModel batches need `{key}` (see `prepare_inputs`); "
                    f"received keys {sorted(inputs)}."
                )
        prefix = self.prefix(inputs, training=training)
        ids = ops.cast(inputs["token_ids"], "int32")
        mask = ops.cast(inputs["padding_mask"], "int32")
        tokens = ops.cast(self.language_model.embed_tokens(ids), prefix.dtype)
        embeds = ops.concatenate([prefix, tokens], axis=1)
        prefix_mask = ops.repeat(
            ops.ones_like(mask[:, :1]), self.prefix_length, axis=1
        )
        hidden = self.language_model.hidden_states(
            embeds, padding_mask=ops.concatenate([prefix_mask, mask], 1),
            training=training,
        )
        # Last real position: prefix plus the question's length, minus one.
        last = self.prefix_length + ops.sum(mask, axis=1) - 1
        picked = ops.take_along_axis(
            hidden, ops.reshape(last, (-1, 1, 1)), axis=1
        )[:, 0, :]
        return ops.cast(self.classifier(picked), "float32")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        if "answer_ids" not in x:
            raise ValueError(
                "Training / evaluation batches need `answer_ids` (see "
                "`prepare_inputs(questions, answers, ...)`)."
            )
        loss = ops.mean(
            keras.losses.sparse_categorical_crossentropy(
                ops.cast(x["answer_ids"], "int32"), y_pred, from_logits=True
            )
        )
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        self.answer_accuracy.update_state(ops.cast(
            ops.equal(predicted, ops.cast(x["answer_ids"], "int32")),
            "float32",
        ))
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def answer(self, questions, codes=None, code_vectors=None):
        """Predicted answer strings.

        Examples:

        ```python
        model.answer(["how many objects are there?"], codes=codes[:1])
        ```
        """
        data = self.prepare_inputs(questions, codes=codes,
                                   code_vectors=code_vectors)
        logits = ops.convert_to_numpy(self(data, training=False))
        return [self.answer_vocabulary[i] for i in logits.argmax(-1)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "answer_vocabulary": list(self.answer_vocabulary),
                "max_question_length": self.max_question_length,
            }
        )
        return config

    @classmethod
    def from_preset(cls, preset, tokenizer=None, language_model=None,
                    load_weights=True, answer_vocabulary=None, **kwargs):
        """A VQA model from a built-in preset or a preset directory.

        A built-in name (`keras_lgvq.models.presets.list_presets(
        "VQAModel")`: `scenes_vqa`, `coco_qa_vqa`) builds an untrained
        mapper and classifier for `tokenizer` (else the preset's tokenizer
        architecture, untrained) and `language_model` (else the preset's),
        over `answer_vocabulary` (else the preset's own, when it has one:
        the scenes answers are fixed; COCO-QA's come from the user's
        training split and must be passed). A directory written by
        `save_to_preset` restores the trained model with the vocabulary it
        was trained with; `answer_vocabulary` is then a check.

        Args:
            preset: string. A built-in name or a local directory.
            tokenizer: optional image tokenizer (model, layer or path).
            language_model: optional `CausalLM` or source (built-in names
                only).
            load_weights: bool. Load a directory's weights.
            answer_vocabulary: optional list of str. For a built-in name,
                the classifier's classes; for a directory, the vocabulary
                the caller expects (a different stored one is an error:
                the classifier's classes would mean other answers).
            **kwargs: mapper fields and constructor overrides.

        Examples:

        ```python
        model = VQAModel.from_preset("scenes_vqa",
                                     tokenizer="runs/lgvq/model.keras")
        model = VQAModel.from_preset("runs/vqa/preset",
                                     answer_vocabulary=vocab)
        ```
        """
        from keras_lgvq.models import presets

        kind, spec = presets.resolve_preset(preset, cls.__name__)
        if kind == "builtin" and spec.get("shipped_model"):
            # A trained model in the package: its answer vocabulary is in
            # its config.
            model = super().from_preset(preset, tokenizer, language_model,
                                        load_weights, **kwargs)
            if answer_vocabulary is not None:
                check_answer_vocabulary(model, answer_vocabulary)
            return model
        if kind == "builtin":
            if "answer_vocabulary" in kwargs:
                raise ValueError("Pass `answer_vocabulary` once.")
            vocabulary = answer_vocabulary or spec.get("answer_vocabulary")
            if vocabulary is None:
                hint = spec.get("vocabulary_hint", "sorted(set(answers))")
                raise ValueError(
                    f"Preset {preset!r} has no fixed answer vocabulary: pass "
                    "`answer_vocabulary=` (the training split's answers, "
                    f"e.g. `{hint}`)."
                )
            return cls._from_spec(spec, tokenizer, language_model,
                                  answer_vocabulary=list(vocabulary),
                                  **kwargs)
        model = super().from_preset(preset, tokenizer, language_model,
                                    load_weights, **kwargs)
        if answer_vocabulary is not None:
            check_answer_vocabulary(model, answer_vocabulary)
        return model


def check_answer_vocabulary(model, answer_vocabulary):
    """Raises unless `model` was trained with exactly this vocabulary.

    Args:
        model: a `VQAModel`.
        answer_vocabulary: list of str, in class order.

    Examples:

    ```python
    check_answer_vocabulary(model, answer_vocabulary(train_questions))
    ```
    """
    expected = _check_vocabulary(answer_vocabulary)
    if list(model.answer_vocabulary) != expected:
        missing = sorted(set(expected) - set(model.answer_vocabulary))
        extra = sorted(set(model.answer_vocabulary) - set(expected))
        raise ValueError(
            "Answer vocabulary mismatch: the model was trained with "
            f"{len(model.answer_vocabulary)} answers, the caller expects "
            f"{len(expected)} (missing from the model: {missing[:5]}, not "
            f"expected: {extra[:5]}, or a different order). Retrain, or "
            "use the model's own `answer_vocabulary`."
        )

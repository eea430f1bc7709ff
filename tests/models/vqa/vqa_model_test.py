"""VQAModel with a tiny GGUF Llama: last-token pooling, frozen parts,
learning, saving, vocabulary checks, bad questions."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.models.captioning import MLPPrefixMapper
from keras_lgvq.models.vqa import VQAModel
from keras_lgvq.models.vqa import check_answer_vocabulary
from tests.models.captioning.tiny_lm import tiny_lm
from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
from tests.models.tiny_configs import tiny_backbone

GRID, CODE_DIM, K = 8, 16, 4
VOCAB = ["blue", "no", "red", "yes"]


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    return write_tiny_lm_gguf(tmp_path_factory.mktemp("lm") / "tiny.gguf")


def _codes(n, seed=0):
    return np.random.default_rng(seed).integers(0, 32, (n, GRID, GRID))


def _model(lm_path, **kwargs):
    lm = tiny_lm(lm_path)
    mapper = MLPPrefixMapper(GRID * GRID, CODE_DIM, K, lm.hidden_dim,
                             hidden_dim=32, name="mapper")
    return VQAModel(mapper, VOCAB, language_model=lm,
                    tokenizer=tiny_backbone(resolution=16,
                                            attn_resolutions=()),
                    max_question_length=8, **kwargs)


def test_classifier_reads_the_last_real_question_token(lm_path):
    model = _model(lm_path)
    data = model.prepare_inputs(["is it red?", "ab"], codes=_codes(2))
    logits = ops.convert_to_numpy(model(data))
    assert logits.shape == (2, len(VOCAB))
    # Independent: run the LM on each unpadded row alone and classify its
    # last hidden state with the classifier's numpy weights.
    lm = model.language_model
    prefix = ops.convert_to_numpy(model.prefix(data))
    w, b = (ops.convert_to_numpy(v) for v in model.classifier.weights)
    for row in range(2):
        n = int(data["padding_mask"][row].sum())
        ids = data["token_ids"][row : row + 1, :n]
        embeds = np.concatenate(
            [prefix[row : row + 1], ops.convert_to_numpy(lm.embed_tokens(ids))],
            axis=1,
        )
        hidden = ops.convert_to_numpy(lm.hidden_states(embeds))[0, -1]
        np.testing.assert_allclose(logits[row], hidden @ w + b, atol=1e-4)


def test_frozen_lm_gets_no_update_and_the_model_learns(lm_path):
    model = _model(lm_path)
    lm_before = [ops.convert_to_numpy(v).copy()
                 for v in model.language_model.weights]
    tok_before = [ops.convert_to_numpy(v).copy()
                  for v in model.tokenizer.weights]
    trainable = {id(v) for v in model.trainable_variables}
    assert trainable == {
        id(v) for v in model.mapper.trainable_weights
    } | {id(v) for v in model.classifier.trainable_weights}
    # Two images, the answer depends on the image and the question.
    codes = np.repeat(_codes(2, seed=1), 2, axis=0)
    questions = ["is it red?", "what color?"] * 2
    answers = ["yes", "red", "no", "blue"]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(model.prepare_inputs(questions, answers, codes=codes),
                        epochs=40, batch_size=4, verbose=0)
    assert history.history["answer_accuracy"][-1] == 1.0
    assert model.answer(questions, codes=codes) == answers
    for before, var in zip(lm_before, model.language_model.weights):
        np.testing.assert_array_equal(before, ops.convert_to_numpy(var))
    for before, var in zip(tok_before, model.tokenizer.weights):
        np.testing.assert_array_equal(before, ops.convert_to_numpy(var))


def test_save_load_and_vocabulary_mismatch(lm_path, tmp_path):
    model = _model(lm_path)
    data = model.prepare_inputs(["is it red?"], codes=_codes(1))
    want = ops.convert_to_numpy(model(data))
    path = str(tmp_path / "vqa.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.answer_vocabulary == VOCAB
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(data)), want,
                               atol=1e-5)
    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    restored = VQAModel.from_preset(preset, answer_vocabulary=VOCAB)
    np.testing.assert_allclose(ops.convert_to_numpy(restored(data)), want,
                               atol=1e-5)
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        VQAModel.from_preset(preset, answer_vocabulary=["no", "yes", "red"])
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        check_answer_vocabulary(loaded, list(reversed(VOCAB)))


def test_bad_questions_answers_and_vocabularies(lm_path):
    model = _model(lm_path)
    codes = _codes(1)
    for bad, match in (([], "non-empty list"), ([""], "empty"),
                       ([None], "must be a str"), (7, "non-empty list")):
        with pytest.raises(ValueError, match=match):
            model.prepare_inputs(bad, codes=codes)
    with pytest.raises(ValueError, match="not in the model's answer"):
        model.prepare_inputs(["is it red?"], ["green"], codes=codes)
    # Too long: the first max_question_length tokens are kept.
    long = "is it red or blue or green or yellow?"
    data = model.prepare_inputs([long], codes=codes)
    assert data["token_ids"][0].tolist() == (
        model.language_model.encode(long)[:8].tolist()
    )
    with pytest.raises(ValueError, match="answer_vocabulary"):
        VQAModel(model.mapper, ["yes"], language_model=model.language_model)
    with pytest.raises(ValueError, match="duplicate"):
        VQAModel(model.mapper, ["yes", "yes"],
                 language_model=model.language_model)

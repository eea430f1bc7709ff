"""Captioning / VQA training batches that do not fit the model are refused,
and refusing them changes nothing.

A code id outside the tokenizer's codebook, a token id outside the LM's
vocabulary or an answer id outside the answer vocabulary would be
gathered silently under a jitted step (JAX clamps the index: a wrong
embedding row or label, no error). In-memory arrays are checked on the
host before `fit`; a `tf.data` pipeline is checked in the pipeline
(`validate_code_batch`, `validate_id_batch`).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.models.captioning import MLPPrefixMapper
from keras_lgvq.models.vqa import VQAModel
from tests.models.captioning.captioner_test import CAPTIONS
from tests.models.captioning.captioner_test import GRID
from tests.models.captioning.captioner_test import _captioner
from tests.models.captioning.captioner_test import _codes
from tests.models.captioning.captioner_test import lm_path  # noqa: F401
from tests.models.captioning.tiny_lm import tiny_lm
from tests.models.tiny_configs import tiny_backbone


def _state(model):
    variables = list(model.variables) + list(model.optimizer.variables)
    return {v.path: keras.ops.convert_to_numpy(v) for v in variables}


def _bad(good, kind, num_codes, vocabulary_size):
    batch = {k: np.array(v) for k, v in good.items()}
    if kind == "code_too_large":
        batch["codes"][1, 0, 0] = num_codes
        return batch, f"< num_codes={num_codes}|in \\[0, {num_codes}\\)"
    if kind == "code_negative":
        batch["codes"][2, 1, 1] = -1
        return batch, ">= 0|in \\[0, "
    if kind == "wrong_grid":
        batch["codes"] = np.zeros((4, GRID + 1, GRID + 1), "int32")
        return batch, f"{GRID * GRID}"
    if kind == "float_codes":
        batch["codes"] = batch["codes"].astype("float32")
        return batch, "integer"
    if kind == "token_too_large":
        batch["token_ids"][0, 1] = vocabulary_size
        return batch, "token_ids"
    raise AssertionError(kind)


KINDS = ["code_too_large", "code_negative", "wrong_grid", "float_codes",
         "token_too_large"]


def test_bad_captioning_batches_are_refused_and_change_nothing(lm_path):  # noqa: F811
    captioner = _captioner(lm_path)
    captioner.compile(optimizer="adam")  # the default, jitted step
    good = captioner.prepare_inputs(CAPTIONS, codes=_codes())
    good = {k: np.asarray(v) for k, v in good.items()}
    captioner.fit(good, batch_size=4, epochs=1, verbose=0)  # builds all
    before = _state(captioner)
    num_codes = captioner.tokenizer.num_embeddings
    vocabulary = captioner.language_model.tokenizer_vocabulary_size
    for kind in KINDS:
        batch, match = _bad(good, kind, num_codes, vocabulary)
        data = tf.data.Dataset.from_tensor_slices(batch).batch(4)
        with pytest.raises(ValueError, match=match):
            captioner.fit(data, epochs=1, verbose=0)
        with pytest.raises(ValueError, match=match):
            captioner.evaluate(data, verbose=0)
        with pytest.raises(ValueError, match=match):
            captioner.fit(batch, batch_size=4, epochs=1, verbose=0)
        after = _state(captioner)
        changed = [p for p in before
                   if not np.array_equal(before[p], after[p])]
        assert not changed, (kind, changed)
    # Still whole (JAX detaches the variables while `fit` runs) and
    # trains on good batches, from tf.data too.
    history = captioner.fit(
        tf.data.Dataset.from_tensor_slices(good).batch(4), epochs=1,
        verbose=0,
    ).history
    assert np.isfinite(history["loss"][-1])
    iterations = captioner.optimizer.iterations
    assert int(keras.ops.convert_to_numpy(iterations)) == 2


def test_bad_answer_ids_are_refused(lm_path):  # noqa: F811
    lm = tiny_lm(lm_path)
    mapper = MLPPrefixMapper(GRID * GRID, 16, 4, lm.hidden_dim,
                             hidden_dim=16, name="mapper")
    vocabulary = ["no", "yes", "red"]
    model = VQAModel(
        mapper, vocabulary, language_model=lm,
        tokenizer=tiny_backbone(resolution=16, attn_resolutions=()),
        max_question_length=8,
    )
    model.compile(optimizer="adam")
    good = model.prepare_inputs(
        ["what?"] * 4, ["no", "yes", "red", "no"], codes=_codes()
    )
    good = {k: np.asarray(v) for k, v in good.items()}
    bad = {**good, "answer_ids": np.array([0, 1, 3, 0], "int32")}
    data = tf.data.Dataset.from_tensor_slices(bad).batch(4)
    for x in (data, bad):
        with pytest.raises(ValueError, match="answer_ids.*3|< 3"):
            model.fit(x, batch_size=None if x is data else 4, epochs=1,
                      verbose=0)
    history = model.fit(good, batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][-1])


def test_vqct_code_slots_are_checked_in_the_pipeline(lm_path):  # noqa: F811
    from keras_lgvq.models.captioning import Captioner
    from tests.models.vqct.tiny_vqct import LATENT
    from tests.models.vqct.tiny_vqct import tiny_vqct_backbone

    tokenizer = tiny_vqct_backbone()
    lm = tiny_lm(lm_path)
    grid = int(tokenizer.grid_size)
    mapper = MLPPrefixMapper(grid * grid, LATENT, 4, lm.hidden_dim,
                             hidden_dim=16, name="mapper")
    captioner = Captioner(mapper, lm, tokenizer=tokenizer,
                          max_caption_length=12)
    captioner.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3))
    codes = np.asarray(keras.ops.convert_to_numpy(
        tokenizer.encode(images.astype("float32"))))
    good = {k: np.asarray(v) for k, v in
            captioner.prepare_inputs(CAPTIONS, codes=codes).items()}
    nouns = tokenizer.sub_codebooks[-1].size
    bad = {**good, "codes": good["codes"].copy()}
    bad["codes"][0, 0, 0, -1] = nouns  # one past the last noun
    data = tf.data.Dataset.from_tensor_slices(bad).batch(4)
    with pytest.raises(ValueError, match=f"noun id\\(s\\) in \\[0, {nouns}\\)"):
        captioner.fit(data, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=f"\\[0, {nouns}\\)"):
        captioner.fit(bad, batch_size=4, epochs=1, verbose=0)
    history = captioner.fit(
        tf.data.Dataset.from_tensor_slices(good).batch(4), epochs=1,
        verbose=0,
    ).history
    assert np.isfinite(history["loss"][-1])

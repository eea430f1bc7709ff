"""Inputs that used to train an LGVQ silently into a wrong state now raise.

Each bad caption batch is tried through every door a user has: in-memory
arrays to `fit`, a `tf.data` pipeline to `fit` (checked on the host side,
so it also holds under `jax.jit`), an eager call at the model boundary
and, on TensorFlow, a traced (`tf.function`) call whose length is dynamic.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.models.lgvq.lgvq import LGVQ
from keras_lgvq.utils.validation import TEXT_CHECK_PREFIX
from keras_lgvq.utils.validation import check_text_batch
from tests.models.tiny_configs import TINY_TEXT
from tests.models.tiny_configs import tiny_backbone
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_text_batch

BACKEND = keras.backend.backend()
VOCAB = TINY_TEXT["vocabulary_size"]


def _bad_batch(kind):
    """A valid tiny batch with one defect; returns (batch, message regex)."""
    batch = tiny_text_batch(4)
    ids = batch["token_ids"].copy()
    mask = batch["padding_mask"].copy()
    if kind == "id_too_large":
        ids[1, 2] = VOCAB
        match = rf"\[0, vocabulary_size={VOCAB}\)"
    elif kind == "negative_id":
        ids[0, 3] = -1
        match = "negative id|>= 0|\\[0, vocabulary_size"
    elif kind == "all_padding":
        ids[2] = 0
        mask[2] = False
        match = "at least one real token"
    elif kind == "not_a_prefix":
        mask[3] = False
        mask[3, 1:4] = True  # left padding
        match = "prefix of ones"
    else:
        raise AssertionError(kind)
    batch["token_ids"], batch["padding_mask"] = ids, mask
    return batch, match


BAD_KINDS = ["id_too_large", "negative_id", "all_padding", "not_a_prefix"]


def test_unset_token_embeddings_refuse_to_fit():
    model = LGVQ(
        backbone=tiny_backbone(),
        discriminator=None,
        text_prior=None,
        guidance=dict(decoder_intermediate_dim=32, seed=0),
        **TINY_TEXT,
    )
    model.compile(learning_rate=1e-3)
    data = tf.data.Dataset.from_tensor_slices(tiny_text_batch(4)).batch(4)
    with pytest.raises(ValueError, match="token_embeddings.*all zeros"):
        model.fit(data, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="set_token_embeddings"):
        model.train_on_batch(next(iter(data)))
    # Setting them is the fix.
    model.set_token_embeddings(
        np.random.default_rng(0).normal(size=(VOCAB, 32)).astype("float32")
    )
    history = model.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["mtp_loss"][-1])


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_captions_in_arrays_raise_in_fit(kind):
    model = tiny_lgvq(discriminator=None)
    model.compile(learning_rate=1e-3)
    batch, match = _bad_batch(kind)
    with pytest.raises(ValueError, match=match):
        model.fit(batch, batch_size=4, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0


def test_bad_captions_in_tf_data_raise_in_fit():
    # The default (jitted on every backend) step: the host-side check in
    # the input pipeline is what stops the batch. One model for every
    # defect: its compiled train / test functions are built once (a
    # refused batch changes no weight, checked below).
    model = tiny_lgvq(discriminator=None)
    model.compile(learning_rate=1e-3)

    def state():
        # Weights, seed-generator states and the optimizers' slots and
        # iteration counters: a refused batch changes none of them (on
        # TensorFlow the counters used to advance, since in a graph they
        # do not wait for the batch).
        variables = list(model.variables) + list(model.optimizer.variables)
        return {v.path: keras.ops.convert_to_numpy(v) for v in variables}

    before = state()
    assert any("seed_generator" in path for path in before)
    assert any(path.endswith("iteration") for path in before)
    for kind in BAD_KINDS:
        batch, _ = _bad_batch(kind)
        data = tf.data.Dataset.from_tensor_slices(batch).batch(4)
        with pytest.raises(ValueError, match=TEXT_CHECK_PREFIX):
            model.fit(data, epochs=1, verbose=0)
        with pytest.raises(ValueError, match=TEXT_CHECK_PREFIX):
            model.evaluate(data, verbose=0)
        after = state()
        changed = [p for p in before if not np.array_equal(before[p], after[p])]
        assert not changed, (kind, changed)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_captions_at_the_model_boundary(kind):
    # An eager call of the generator step (a custom loop): the values exist,
    # so the model boundary itself raises on every backend.
    model = tiny_lgvq(discriminator=None)
    model.compile(learning_rate=1e-3)
    batch, match = _bad_batch(kind)
    batch = {k: keras.ops.convert_to_tensor(v) for k, v in batch.items()}
    with pytest.raises(ValueError, match=match):
        model._generator_step(batch, training=True)


def test_captions_longer_than_sequence_length_raise():
    model = tiny_lgvq(discriminator=None)
    model.compile(learning_rate=1e-3)
    batch = tiny_text_batch(4)
    length = TINY_TEXT["sequence_length"] + 2
    for key in ("token_ids", "padding_mask", "token_features"):
        pad = [(0, 0), (0, 2)] + [(0, 0)] * (batch[key].ndim - 2)
        batch[key] = np.pad(batch[key], pad)
    assert batch["token_ids"].shape[1] == length
    with pytest.raises(ValueError, match="sequence_length"):
        model.fit(batch, batch_size=4, epochs=1, verbose=0)
    data = tf.data.Dataset.from_tensor_slices(batch).batch(4)
    with pytest.raises(ValueError, match="sequence_length"):
        model.fit(data, epochs=1, verbose=0)


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="tf.function graphs (relaxed shapes)"
)
@pytest.mark.parametrize("kind", BAD_KINDS + ["too_long"])
def test_traced_checks_hold_at_a_dynamic_length(kind):
    # A function retraced with a relaxed length has `None` for L: the
    # static checks cannot see it, so they run as graph assertions.
    if kind == "too_long":
        ids = np.ones((2, TINY_TEXT["sequence_length"] + 3), "int32")
        mask = np.ones_like(ids, bool)
    else:
        batch, _ = _bad_batch(kind)
        ids, mask = batch["token_ids"], batch["padding_mask"]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None, None], tf.bool),
        ]
    )
    def check(token_ids, padding_mask):
        check_text_batch(
            token_ids, padding_mask, VOCAB, TINY_TEXT["sequence_length"]
        )
        return tf.reduce_sum(token_ids)

    good = tiny_text_batch(2)
    check(good["token_ids"], good["padding_mask"])  # passes
    with pytest.raises(tf.errors.InvalidArgumentError, match=TEXT_CHECK_PREFIX):
        check(ids, mask)


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="tf.function graphs (relaxed shapes)"
)
def test_mtp_decoder_length_is_checked_at_a_dynamic_length():
    model = tiny_lgvq(discriminator=None)
    model.build()
    mtp = model.guidance.mtp
    length = TINY_TEXT["sequence_length"] + 4

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, 32], tf.float32),
            tf.TensorSpec([None, None], tf.bool),
        ]
    )
    def decode(features, padding_mask):
        memory = tf.zeros([2, 257, 32])
        return mtp.hidden_states(
            features, padding_mask, tf.zeros_like(padding_mask), memory
        )

    decode(tf.zeros([2, 8, 32]), tf.ones([2, 8], tf.bool))
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence_length"):
        decode(tf.zeros([2, length, 32]), tf.ones([2, length], tf.bool))


@pytest.mark.skipif(
    BACKEND == "torch", reason="torch.compile of the whole step is slow"
)
def test_xla_compiled_steps_train_and_still_reject_bad_batches():
    # Graph assertions compile to no-ops under XLA, so the host-side check
    # is what guards a compiled step.
    model = tiny_lgvq(discriminator=None)
    model.compile(learning_rate=1e-3, jit_compile=True)
    good = tf.data.Dataset.from_tensor_slices(tiny_text_batch(4)).batch(4)
    history = model.fit(good, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][-1])
    batch, _ = _bad_batch("id_too_large")
    bad = tf.data.Dataset.from_tensor_slices(batch).batch(4)
    with pytest.raises(ValueError, match=rf"vocabulary_size={VOCAB}"):
        model.fit(bad, epochs=1, verbose=0)

"""`conditionals_are_slow`: True only while tracing an XLA-compiled
TensorFlow graph (where the MTP head then scores every row instead of
branching), False eagerly and on JAX / torch."""

import keras
import numpy as np
import pytest

from keras_lgvq import backend as lgvq_backend

BACKEND = keras.backend.backend()


def test_false_outside_a_compiled_graph():
    assert lgvq_backend.conditionals_are_slow() is False


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.function only")
def test_tensorflow_reports_xla_graphs_only():
    import tensorflow as tf

    seen = {}

    def probe(name):
        def fn(x):
            seen[name] = bool(lgvq_backend.conditionals_are_slow())
            return x + 1.0

        return fn

    tf.function(probe("xla"), jit_compile=True)(tf.constant(1.0))
    tf.function(probe("graph"), jit_compile=False)(tf.constant(1.0))
    assert seen == {"xla": True, "graph": False}


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.function only")
def test_scored_mtp_loss_under_xla_equals_the_full_loss():
    import tensorflow as tf

    from keras_lgvq.layers.guidance.masked_text_decoder import MaskedTextDecoder

    rng = np.random.default_rng(0)
    batch, length, dim, vocab = 4, 10, 16, 50
    layer = MaskedTextDecoder(dim, vocab, num_layers=1, intermediate_dim=16)
    hidden = rng.normal(size=(batch, length, dim)).astype("float32")
    ids = rng.integers(0, vocab, (batch, length)).astype("int32")
    pad = np.ones((batch, length), bool)
    mask = rng.uniform(size=(batch, length)) < 0.2
    emb = rng.normal(size=(vocab, dim)).astype("float32")
    layer.head.build((batch, length, dim))
    full = layer.loss(layer.head(hidden, emb), ids, mask, pad)
    scored = tf.function(layer.scored_loss, jit_compile=True)(
        hidden, ids, mask, pad, emb
    )
    np.testing.assert_allclose(float(scored), float(full), rtol=1e-5)

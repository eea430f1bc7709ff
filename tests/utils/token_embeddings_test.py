import keras
import numpy as np
import pytest

from keras_lgvq.utils.token_embeddings import TokenEmbeddingsMixin


class _Head(TokenEmbeddingsMixin, keras.Model):
    def __init__(self, vocabulary_size, text_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.text_dim = text_dim
        self.add_token_embeddings()


def test_token_embeddings_are_a_frozen_copy():
    head = _Head(5, 3)
    assert not head.token_embeddings.trainable
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(head.token_embeddings), 0.0
    )
    table = np.arange(15, dtype="float32").reshape(5, 3)
    head.set_token_embeddings(table)
    table[0, 0] = 99.0  # the model keeps its own copy
    got = keras.ops.convert_to_numpy(head.token_embeddings)
    assert got[0, 0] == 0.0 and got[4, 2] == 14.0
    assert head.non_trainable_weights[0] is head.token_embeddings
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        head.set_token_embeddings(np.zeros((3, 5), "float32"))

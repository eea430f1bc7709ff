"""The frozen text-prior token-embedding matrix that a model carries."""

import numpy as np
from keras import ops


class TokenEmbeddingsMixin:
    """Adds a frozen `(vocabulary_size, text_dim)` `token_embeddings` weight.

    Models whose heads score text tokens against a text prior's embedding
    table (LG-VQ's MTP head, the evaluation's alignment probe) keep a
    non-trainable copy of that table, so a saved model is self-contained.
    The class using the mixin defines `vocabulary_size` and `text_dim` and
    calls `add_token_embeddings()` in its constructor.

    Examples:

    ```python
    class Head(TokenEmbeddingsMixin, keras.Model):
        def __init__(self, vocabulary_size, text_dim, **kwargs):
            super().__init__(**kwargs)
            self.vocabulary_size, self.text_dim = vocabulary_size, text_dim
            self.add_token_embeddings()

    head = Head(100, 8)
    head.set_token_embeddings(np.zeros((100, 8), "float32"))
    ```
    """

    def add_token_embeddings(self):
        """Creates the zero-initialised, non-trainable weight."""
        self.token_embeddings = self.add_weight(
            shape=(self.vocabulary_size, self.text_dim),
            initializer="zeros",
            trainable=False,
            name="token_embeddings",
        )

    def set_token_embeddings(self, matrix):
        """Sets the frozen `(vocabulary_size, text_dim)` token embeddings.

        Args:
            matrix: array or tensor `(vocabulary_size, text_dim)`, e.g. a
                text prior's `token_embeddings`.
        """
        # A copy: JAX donates state buffers, and the prior's own embedding
        # variable must not share one with this weight.
        matrix = np.array(ops.convert_to_numpy(matrix), dtype="float32")
        expected = (self.vocabulary_size, self.text_dim)
        if tuple(matrix.shape) != expected:
            raise ValueError(
                f"Token embeddings must have shape {expected}. Received: "
                f"{tuple(matrix.shape)}"
            )
        self.token_embeddings.assign(matrix)

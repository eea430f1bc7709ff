import numpy as np
import pytest

from keras_lgvq.utils.caption_vocabulary import caption_token_ids

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


class WordTokenizer:
    """Stand-in tokenizer: [start] words [end], padded with 0 to length 8."""

    def __init__(self):
        self.table = {}
        self.calls = 0

    def tokenize(self, strings):
        self.calls += 1
        ids = np.zeros((len(strings), 8), "int32")
        for row, text in enumerate(strings):
            words = [self.table.setdefault(w, 10 + len(self.table))
                     for w in text.split()]
            tokens = [1] + words[:6] + [2]
            ids[row, : len(tokens)] = tokens
        return ids, ids > 0


def test_collects_the_real_tokens_of_every_caption():
    tokenizer = WordTokenizer()
    captions = ["a red circle", "a blue square", "two red stars", "a circle"]
    ids = caption_token_ids(captions, tokenizer=tokenizer, batch_size=3)
    assert tokenizer.calls == 2  # 3 + 1 captions
    words = {w for c in captions for w in c.split()}
    expected = sorted({1, 2} | {tokenizer.table[w] for w in words})
    np.testing.assert_array_equal(ids, expected)
    assert ids.dtype == np.int32
    assert 0 not in ids  # padding is not a caption token


def test_from_token_ids_and_padding_mask():
    token_ids = np.array([[1, 7, 7, 2, 0], [1, 9, 2, 0, 0]])
    padding_mask = token_ids > 0
    # A masked-out position's id (here 5 under padding) is not collected.
    token_ids[1, 4] = 5
    np.testing.assert_array_equal(
        caption_token_ids(token_ids=token_ids, padding_mask=padding_mask),
        [1, 2, 7, 9],
    )


def test_errors():
    tokenizer = WordTokenizer()
    with pytest.raises(ValueError, match="either"):
        caption_token_ids()
    with pytest.raises(ValueError, match="either"):
        caption_token_ids(["a"], token_ids=np.ones((1, 2), "int32"))
    with pytest.raises(ValueError, match="tokenizer"):
        caption_token_ids(["a"])
    with pytest.raises(ValueError, match="padding_mask"):
        caption_token_ids(token_ids=np.ones((1, 2), "int32"))
    with pytest.raises(ValueError, match="one string"):
        caption_token_ids("a red circle", tokenizer=tokenizer)
    with pytest.raises(ValueError, match="empty"):
        caption_token_ids([], tokenizer=tokenizer)
    with pytest.raises(ValueError, match="batch_size"):
        caption_token_ids(["a"], tokenizer=tokenizer, batch_size=0)
    with pytest.raises(ValueError, match="same shape"):
        caption_token_ids(
            token_ids=np.ones((1, 3), "int32"),
            padding_mask=np.ones((1, 2), bool),
        )
    with pytest.raises(ValueError, match="no real token"):
        caption_token_ids(
            token_ids=np.ones((1, 3), "int32"),
            padding_mask=np.zeros((1, 3), bool),
        )
    with pytest.raises(ValueError, match="integers"):
        caption_token_ids(
            token_ids=np.ones((1, 3), "float32"),
            padding_mask=np.ones((1, 3), bool),
        )

"""recipes/common.drawn_text_cache: the frozen prior's features of the
captions a run draws, per epoch seed, within a size limit."""

import numpy as np
import pytest

from keras_lgvq.callbacks import epoch_seed
from keras_lgvq.datasets import make_dataset
from recipes import common

pytestmark = pytest.mark.host_only

SIZES = dict(train_size=12, validation_size=4, test_size=4)


class _WordPrior:
    """Numpy stand-in for a frozen text prior: word ids, features that
    depend on the ids only."""

    sequence_length = 16
    hidden_dim = 4
    sentence_dim = 3
    vocabulary_size = 1000

    def __init__(self):
        self.words = {}
        self.encoded = 0

    def tokenize(self, captions):
        ids = np.zeros((len(captions), self.sequence_length), np.int32)
        for row, caption in enumerate(captions):
            if isinstance(caption, bytes):
                caption = caption.decode()
            for col, word in enumerate(caption.split()[:16]):
                ids[row, col] = self.words.setdefault(word, len(self.words) + 1)
        return ids, ids > 0

    def encode_tokens(self, token_ids, padding_mask, batch_size=None):
        self.encoded += len(token_ids)
        ids = np.asarray(token_ids, np.float32)
        return {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "token_features": np.repeat(ids[..., None], 4, axis=-1),
            "sentence_feature": np.stack(
                [ids.sum(-1), ids.max(-1), (ids > 0).sum(-1)], -1
            ),
        }


def _epochs(data_dir, count):
    return [
        dict(split="train", training=True, seed=epoch_seed(0, epoch),
             batch_size=4, image_size=32, data_dir=data_dir, **SIZES)
        for epoch in range(count)
    ]


def test_cache_serves_every_epoch_and_encodes_each_caption_once(tmp_path):
    prior = _WordPrior()
    epochs = _epochs(str(tmp_path), 3)
    cache, note = common.drawn_text_cache("auto", prior, "scenes", epochs)
    assert cache is not None and "Text features cached" in note
    # Three passes of 12 scenes: at most 36 draws, each distinct once.
    assert 12 <= len(cache) <= 36 and prior.encoded == len(cache)
    for kwargs in epochs:
        for batch in make_dataset("scenes", feature_cache=cache, **kwargs):
            ids, _ = prior.tokenize(list(batch["captions"].numpy()))
            np.testing.assert_array_equal(batch["token_ids"].numpy(), ids)
    # Steps per epoch past one pass: the repeated epoch's later passes too.
    longer, _ = common.drawn_text_cache(
        "on", _WordPrior(), "scenes", epochs[:1], steps_per_epoch=7
    )
    assert len(longer) > len(
        common.drawn_text_cache("on", _WordPrior(), "scenes", epochs[:1])[0]
    )


def test_auto_leaves_a_cache_over_the_limit_out(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "TEXT_CACHE_AUTO_LIMIT_BYTES", 1000)
    prior = _WordPrior()
    epochs = _epochs(str(tmp_path), 1)
    cache, note = common.drawn_text_cache("auto", prior, "scenes", epochs)
    assert cache is None and "--text-cache on" in note
    assert prior.encoded == 0
    forced, _ = common.drawn_text_cache("on", prior, "scenes", epochs)
    assert forced is not None
    assert common.drawn_text_cache("off", prior, "scenes", epochs)[0] is None
    with pytest.raises(ValueError, match="--text-cache"):
        common.drawn_text_cache("yes", prior, "scenes", epochs)

"""Stand-ins shared by the evaluation tests: a context-free text prior and
tiny captioned batches (no text-prior assets needed)."""

import numpy as np

from tests.models.tiny_configs import TINY_TEXT
from tests.models.tiny_configs import tiny_text_batch

MASK_ID = 39  # unused by the tiny captions (ids 1..14)


class FakePrior:
    """Context-free stand-in for a text prior: features are `table[ids]`."""

    mask_token_id = MASK_ID

    def __init__(self, seed=3):
        rng = np.random.default_rng(seed)
        self.token_embeddings = rng.normal(
            size=(TINY_TEXT["vocabulary_size"], TINY_TEXT["text_dim"])
        ).astype("float32")

    def features(self, token_ids, padding_mask):
        return self.token_embeddings[token_ids] * padding_mask[..., None]

    def encode_tokens(self, token_ids, padding_mask, batch_size=64):
        token_ids = np.asarray(token_ids)
        padding_mask = np.asarray(padding_mask, bool)
        feats = self.features(token_ids, padding_mask)
        sentence = feats.sum(1)
        sentence /= np.linalg.norm(sentence, axis=1, keepdims=True)
        return {
            "token_ids": token_ids,
            "padding_mask": padding_mask,
            "token_features": feats,
            "sentence_feature": sentence.astype("float32"),
        }


def captions(n, seed=0):
    """Padded token rows (SOT, 1-6 words, EOT) for tiny vocabularies."""
    rng = np.random.default_rng(seed)
    length = TINY_TEXT["sequence_length"]
    ids = np.zeros((n, length), "int32")
    for i in range(n):
        words = rng.integers(3, 15, rng.integers(1, length - 1))
        row = [1] + list(words) + [2]
        ids[i, : len(row)] = row
    return ids, ids > 0


def batches(n=24, batch=8, seed=0):
    """Dict batches of tiny images, captions and scene attributes."""
    data = tiny_text_batch(n, seed=seed)
    rng = np.random.default_rng(seed)
    attrs = {
        k: rng.integers(0, c, (n, 3)).astype("int32")
        for k, c in (("shape", 8), ("color", 10), ("size", 3), ("fill", 3))
    }
    attrs["num_objects"] = rng.integers(1, 4, n).astype("int32")
    out = []
    for s in range(0, n, batch):
        b = {
            "images": data["images"][s : s + batch],
            "token_ids": data["token_ids"][s : s + batch],
            "padding_mask": data["padding_mask"][s : s + batch],
        }
        b.update({k: v[s : s + batch] for k, v in attrs.items()})
        out.append(b)
    return out

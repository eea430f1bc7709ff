"""Alignment measured over a split: retrieval, masked-word recall, relations.

The same three measurements score an LG-VQ model's own guidance heads and
an `AlignmentProbe` trained on any tokenizer's frozen codes:

- `retrieval_recalls`: image->text and text->image Recall@1/5/10;
- `split_masked_word_recall`: Mask-k Recall@1 on the positions
  `prepare_split` fixed (`keras_lgvq.evaluation.protocol_masks`);
- `split_relation_mse`: the code-word relation MSE of LG-VQ's RAS loss.
"""

import numpy as np

from keras_lgvq.evaluation.class_captions import grouped_retrieval
from keras_lgvq.evaluation.masking import MASK_CHUNK
from keras_lgvq.evaluation.masking import MASK_MAX_POSITION
from keras_lgvq.metrics import code_word_relation_mse
from keras_lgvq.metrics import image_to_text_recall
from keras_lgvq.metrics import masked_word_recall_at_1
from keras_lgvq.metrics import match_codes_to_words
from keras_lgvq.metrics import text_to_image_recall
from keras_lgvq.utils.tensors import to_numpy


def batched(fn, count, batch_size=64):
    """`fn(rows)` over `slice`s of `count` rows, concatenated as numpy.

    Args:
        fn: callable `slice -> tensor` with the rows on the first axis.
        count: int. Number of rows.
        batch_size: int. Rows per call.

    Returns:
        `np.ndarray` with `count` rows.

    Examples:

    ```python
    emb = batched(lambda r: probe.embed_image(quantized[r]), len(quantized))
    ```
    """
    outs = []
    for start in range(0, count, batch_size):
        outs.append(to_numpy(fn(slice(start, start + batch_size))))
    return np.concatenate(outs)


def retrieval_recalls(image_emb, sentence, caption_groups=None, labels=None):
    """Recall@1/5/10 (%) both ways; image `i` owns caption `i`.

    Args:
        image_emb: float array `(N, E)`.
        sentence: float array `(N, E)`.
        caption_groups: int array `(N,)` or None. One id per distinct
            caption (`keras_lgvq.evaluation.class_captions.caption_groups`).
            When captions repeat, identical captions are one target (see
            `grouped_retrieval`, which also warns); without repeats the
            numbers equal the per-row ones.
        labels: int array `(N,)` or None. Class labels: adds `class_level`
            recalls (needs `caption_groups`).

    Returns:
        `{"image_to_text": {"R@1": ..}, "text_to_image": {"R@1": ..}}`,
        with `captions` (and `class_level`) when `caption_groups` is given.

    Examples:

    ```python
    recalls = retrieval_recalls(image_emb, split["sentence_feature"])
    ```
    """
    if caption_groups is not None:
        return grouped_retrieval(image_emb, sentence, caption_groups, labels)
    if labels is not None:
        raise ValueError("`labels` needs `caption_groups`.")
    owner = np.arange(len(image_emb))
    return {
        "image_to_text": image_to_text_recall(image_emb, sentence, owner),
        "text_to_image": text_to_image_recall(image_emb, sentence, owner),
    }


def split_masked_word_recall(split, predict_logits, num_masked):
    """Mask-k Recall@1 on the masks `prepare_split` fixed for the split.

    Args:
        split: dict from `prepare_split` with `mask_{num_masked}`.
        predict_logits: callable `(rows, mask, num_masked) -> logits`
            `(B, L, V)` for the row indices `rows` with `mask` hidden.
        num_masked: int. 1 or 3.

    Returns:
        `{"recall_at_1": %, "correct": int, "masked_tokens": int}`.

    Examples:

    ```python
    split_masked_word_recall(split, probe_logits, 3)["recall_at_1"]
    ```
    """
    key = f"mask_{num_masked}"
    ids, pad = split["token_ids"], split["padding_mask"]
    batches = []
    for s in range(0, len(ids), MASK_CHUNK):
        rows = np.arange(s, min(s + MASK_CHUNK, len(ids)))
        batches.append(
            {"token_ids": ids[rows], "padding_mask": pad[rows], "rows": rows}
        )

    def predict_fn(batch, mask):
        rows = batch["rows"]
        if not np.array_equal(mask, split[key][rows]):
            raise RuntimeError(
                "Mask-k positions differ from those `prepare_split` drew; "
                "the split must be prepared with the same seed and chunking."
            )
        return predict_logits(rows, mask, num_masked)

    recall, correct, total = masked_word_recall_at_1(
        predict_fn,
        batches,
        num_masked=num_masked,
        seed=split["mask_seed"],
        max_position=MASK_MAX_POSITION,
        return_counts=True,
    )
    return {"recall_at_1": recall, "correct": correct, "masked_tokens": total}


def split_relation_mse(split, visual_fn, code_fn, batch_size=64):
    """Code-word relation MSE ("all" and "valid" reductions) over a split.

    Args:
        split: dict from `prepare_split` with a text prior.
        visual_fn: callable `rows -> (B, N, text_dim)` visual tokens that
            are matched to the words.
        code_fn: callable `rows -> (B, N, D)` code vectors whose relations
            are compared with the words'.
        batch_size: int. Rows per call.

    Returns:
        `{"all": float, "valid": float}`, means over the split's images.

    Examples:

    ```python
    split_relation_mse(split, probe_visual_tokens, code_vectors)["all"]
    ```
    """
    totals = {"all": 0.0, "valid": 0.0}
    count = split["num_images"]
    for start in range(0, count, batch_size):
        rows = slice(start, start + batch_size)
        words = split["token_features"][rows].astype("float32")
        pad = split["padding_mask"][rows]
        matched, scores = match_codes_to_words(
            words, visual_fn(rows), code_fn(rows)
        )
        n = len(words)
        for reduction in totals:
            value = code_word_relation_mse(
                words, matched, pad, match_scores=scores, reduction=reduction
            )
            totals[reduction] += float(to_numpy(value)) * n
    return {k: v / count for k, v in totals.items()}

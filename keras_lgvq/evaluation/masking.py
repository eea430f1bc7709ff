"""The masks of the masked-word protocol and of masked-word probe training.

- `protocol_masks`: the paper's Mask-1 / Mask-3 positions (exactly k tokens
  per caption), drawn exactly as `keras_lgvq.metrics.masked_word_recall_at_1`
  draws them, so a split prepared once scores every model on the same
  positions;
- `sample_training_masks`: MTP-style random masks (per-caption ratio from
  the MTP layer's truncated normal, LG-VQ spec §4.1) to train a probe;
- `mask_slots`: the masked positions gathered into fixed slots, so a probe
  computes its vocabulary logits only where a token is hidden.
"""

import numpy as np
from keras import ops

from keras_lgvq.layers.guidance.masked_text_decoder import MASK_RATIO_MAX
from keras_lgvq.layers.guidance.masked_text_decoder import MASK_RATIO_MEAN
from keras_lgvq.layers.guidance.masked_text_decoder import MASK_RATIO_MIN
from keras_lgvq.layers.guidance.masked_text_decoder import MASK_RATIO_STD
from keras_lgvq.metrics.masked_word_recall import _eligible_positions
from keras_lgvq.metrics.masked_word_recall import select_masked_positions
from keras_lgvq.utils.distributions import truncated_normal_cdf_range
from keras_lgvq.utils.distributions import truncated_normal_inverse_cdf
from keras_lgvq.utils.tensors import to_numpy

# Rows per masked-word chunk. The Mask-1 / Mask-3 positions are drawn chunk
# by chunk from one seeded stream (as `masked_word_recall_at_1` does), so
# `prepare_split` and `evaluate_model` must chunk identically.
MASK_CHUNK = 32
# Last maskable position in the paper's protocol (official `select_tokenize`).
MASK_MAX_POSITION = 28


def _mask_ratios(rng, count):
    """Per-caption ratios from the MTP layer's truncated normal.

    The uniforms come from the seeded numpy generator (so the masks do not
    depend on Keras's global seed); the inverse CDF is the layer's.
    """
    low, high = truncated_normal_cdf_range(
        MASK_RATIO_MEAN, MASK_RATIO_STD, MASK_RATIO_MIN, MASK_RATIO_MAX
    )
    u = rng.uniform(low, high, size=count).astype("float32")
    ratios = truncated_normal_inverse_cdf(
        ops.convert_to_tensor(u),
        MASK_RATIO_MEAN,
        MASK_RATIO_STD,
        MASK_RATIO_MIN,
        MASK_RATIO_MAX,
    )
    return to_numpy(ratios).astype("float64")


def sample_training_masks(padding_mask, seed=0):
    """MTP-style random masks for training a masked-word probe.

    Each caption gets a ratio drawn from the MTP distribution (normal
    (0.5, 0.1) truncated to [0.1, 0.3], LG-VQ spec §4.1; the
    `MaskedTextDecoder` defaults) and each maskable token (not start, end or
    padding) is masked with that probability; a caption that draws no mask
    gets one random maskable token, so every row trains the decoder.

    Args:
        padding_mask: bool array `(N, L)`, True at real tokens.
        seed: int. Seed of the draw.

    Returns:
        bool array `(N, L)`, True at masked tokens.

    Examples:

    ```python
    mask = keras_lgvq.evaluation.sample_training_masks(padding_mask, seed=0)
    ```
    """
    padding_mask = np.asarray(padding_mask, bool)
    if padding_mask.ndim != 2:
        raise ValueError(
            "`padding_mask` must be a bool array (N, L). Received shape "
            f"{padding_mask.shape}"
        )
    rng = np.random.default_rng(seed)
    maskable = _eligible_positions(padding_mask, max_position=None)
    ratios = _mask_ratios(rng, padding_mask.shape[0])
    mask = (rng.random(padding_mask.shape) < ratios[:, None]) & maskable
    empty = ~mask.any(axis=1) & maskable.any(axis=1)
    if empty.any():
        keys = np.where(maskable, rng.random(padding_mask.shape), -1.0)
        pick = np.argmax(keys, axis=1)
        rows = np.nonzero(empty)[0]
        mask[rows, pick[rows]] = True
    return mask


def protocol_masks(token_ids, padding_mask, num_masked, seed=0):
    """The Mask-1 / Mask-3 positions `evaluate_model` will score.

    Drawn exactly as `keras_lgvq.metrics.masked_word_recall_at_1` draws
    them when fed `MASK_CHUNK`-row chunks in order with the same seed.

    Args:
        token_ids: int array `(N, L)`.
        padding_mask: bool array `(N, L)`.
        num_masked: int. 1 or 3.
        seed: int. Seed of the draw.

    Returns:
        bool array `(N, L)`.

    Examples:

    ```python
    mask3 = keras_lgvq.evaluation.protocol_masks(ids, pad, 3, seed=0)
    ```
    """
    rng = np.random.default_rng(seed)
    pieces = []
    for start in range(0, token_ids.shape[0], MASK_CHUNK):
        rows = slice(start, start + MASK_CHUNK)
        pieces.append(
            select_masked_positions(
                token_ids[rows],
                padding_mask=padding_mask[rows],
                num_masked=num_masked,
                seed=rng,
                max_position=MASK_MAX_POSITION,
            )
        )
    return np.concatenate(pieces) if pieces else np.zeros_like(padding_mask)


def mask_slots(mask):
    """Gather masked positions into fixed slots: `(slots, slot_valid)`.

    Args:
        mask: bool array `(N, L)`, True at masked tokens.

    Returns:
        `slots` int32 `(N, M)` with the masked positions of each row first
        (padded with position 0) and `slot_valid` bool `(N, M)`, where `M`
        is the largest number of masked tokens in a row (at least 1).

    Examples:

    ```python
    slots, valid = keras_lgvq.evaluation.mask_slots(mask)
    ```
    """
    mask = np.asarray(mask, bool)
    width = max(int(mask.sum(axis=1).max(initial=0)), 1)
    # Stable sort puts masked positions first, in order.
    order = np.argsort(~mask, axis=1, kind="stable")[:, :width]
    valid = np.take_along_axis(mask, order, axis=1)
    slots = np.where(valid, order, 0).astype("int32")
    return slots, valid

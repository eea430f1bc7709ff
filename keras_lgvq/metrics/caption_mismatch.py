"""The chance level of conditioning accuracy for a given set of images:
the same images judged against other images' captions.

A generator's images differ from real ones (softer objects, fewer of them),
so the chance level of real images judged against shuffled captions is not
the chance level of generated ones. Judging the generated images
themselves against mismatched captions keeps everything but the pairing:
image i against the caption of image `i + k` for `k = 1 .. rolls` (each
caption is used once per roll, so the mismatched checks add up to the same
number as the matched ones). Own-caption accuracy above this level is
conditioning; the paired bootstrap over images
(`keras_lgvq.evaluation.significance.paired_bootstrap` of
`mismatched_per_caption`'s values) says by how much.

```python
detections = classifier.detect(generated)
own = judge_detections(detections, captions)
chance, per_caption = mismatched_caption_accuracy(detections, captions)
own["overall"], chance["overall"]
```
"""

from keras_lgvq.datasets import scenes
from keras_lgvq.metrics.conditioning_accuracy import caption_counts
from keras_lgvq.metrics.conditioning_accuracy import judge_each
from keras_lgvq.metrics.conditioning_accuracy import summarise_judged
from keras_lgvq.utils.validation import check_int

# Mismatched caption lists per image set: 16 x 192 test captions judge
# ~3,000 pairs in well under a second (detection is done once).
DEFAULT_ROLLS = 16


def rolled_captions(captions, offset):
    """The captions shifted by `offset`: image i gets caption `i + offset`.

    Args:
        captions: list of str.
        offset: int in `[1, len(captions) - 1]`.

    Returns:
        list of str, a permutation of `captions` without a fixed point.

    Examples:

    ```python
    rolled_captions(["a", "b", "c"], 1)   # ["b", "c", "a"]
    ```
    """
    captions = list(captions)
    offset = check_int("offset", offset, low=1)
    if offset >= len(captions):
        raise ValueError(
            f"`offset` must be below the number of captions "
            f"({len(captions)}) so that no image keeps its own caption; "
            f"received {offset}."
        )
    return captions[offset:] + captions[:offset]


def mismatched_caption_accuracy(detections, captions, rolls=DEFAULT_ROLLS,
                                holdout=scenes.DEFAULT_HOLDOUT):
    """Conditioning accuracy of images judged against other images'
    captions, pooled over `rolls` caption shifts.

    Args:
        detections: list from `SceneAttributeClassifier.detect`, image i
            made for (or drawn with) `captions[i]`.
        captions: list of str, one per detection (at least 2).
        rolls: int >= 1. Shifts `1 .. rolls` (at most `len(captions) - 1`
            are used).
        holdout: held-out attribute combinations.

    Returns:
        `(summary, per_caption)`: `summary` as `summarise_judged` (pooled
        over every shift) plus `rolls` (the shifts used); `per_caption` a
        dict of lists aligned with the images, the keys of
        `caption_counts` (`passed`, `checks`, `presence_passed`, ...), each
        image's mean over the shifts (floats).

    Examples:

    ```python
    chance, per_caption = mismatched_caption_accuracy(detections, captions)
    chance["overall"], chance["presence"]["color"]["accuracy"]
    ```
    """
    if isinstance(captions, str) or len(captions) < 2:
        raise ValueError(
            "`captions` must be a list of at least 2 captions (each image "
            f"is judged against the others'); received {len(captions)}."
        )
    if len(detections) != len(captions):
        raise ValueError(
            f"{len(detections)} detections for {len(captions)} captions; "
            "pass one caption per image."
        )
    captions = list(captions)
    rolls = min(check_int("rolls", rolls, low=1), len(captions) - 1)
    judged = []
    sums = [{} for _ in captions]
    for offset in range(1, rolls + 1):
        shifted = judge_each(detections, rolled_captions(captions, offset),
                             holdout)
        judged += shifted
        for total, one in zip(sums, shifted):
            for key, value in caption_counts(one).items():
                total[key] = total.get(key, 0) + value
    summary = summarise_judged(judged)
    summary["rolls"] = rolls
    per_caption = {
        key: [total[key] / rolls for total in sums] for key in sums[0]
    }
    return summary, per_caption

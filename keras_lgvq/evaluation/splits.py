"""Model-independent evaluation inputs, materialised once per split.

`prepare_split` reads the images, captions and (for the scenes set) the
object attributes, encodes the captions with the frozen text prior, and
fixes the masks of the masked-word protocol, so that every tokenizer is
scored on identical inputs.
"""

import time

import numpy as np

from keras_lgvq.datasets.scenes import ATTRIBUTES
from keras_lgvq.evaluation._progress import decode_strings
from keras_lgvq.evaluation._progress import iterate
from keras_lgvq.evaluation._progress import progbar
from keras_lgvq.evaluation.masking import protocol_masks
from keras_lgvq.evaluation.masking import sample_training_masks
from keras_lgvq.utils.tensors import to_numpy
from keras_lgvq.utils.validation import check_int


def _encode_text(text_prior, token_ids, padding_mask, verbose, what):
    """Frozen text features in chunks, each distinct row encoded once.

    Identical (token_ids, padding_mask) rows, e.g. a class caption shared by
    many images, give identical features, so only the distinct rows go
    through the encoder and the results are scattered back.

    Returns:
        `(token_features float16, sentence_feature float32, encoded_rows)`.
    """
    keys = np.concatenate(
        [token_ids.astype("int64"), padding_mask.astype("int64")], axis=1
    )
    _, first, inverse = np.unique(
        keys, axis=0, return_index=True, return_inverse=True
    )
    inverse = np.reshape(inverse, (-1,))
    ids, pad = token_ids[first], padding_mask[first]
    count = ids.shape[0]
    bar = progbar(count, verbose, "captions")
    if bar is not None:
        print(f"Text features ({what}): {count} distinct of {len(keys)}")
    token_features, sentence = [], []
    chunk = 256
    for start in range(0, count, chunk):
        out = text_prior.encode_tokens(
            ids[start : start + chunk],
            pad[start : start + chunk],
            batch_size=64,
        )
        # float16 halves the memory of (N, L, D) features; the models read
        # them back as float32 (the feature cache stores them the same way).
        token_features.append(
            np.asarray(out["token_features"]).astype("float16")
        )
        sentence.append(np.asarray(out["sentence_feature"]).astype("float32"))
        if bar is not None:
            bar.update(min(start + chunk, count))
    token_features = np.concatenate(token_features)[inverse]
    sentence = np.concatenate(sentence)[inverse]
    return token_features, sentence, count


def prepare_split(
    dataset,
    text_prior=None,
    max_images=None,
    seed=0,
    protocol_mask_counts=(1, 3),
    training_masks=False,
    verbose=1,
    label_key="label",
    caption_cache=None,
):
    """Materialise an evaluation or probe split, shared by every model.

    Reads the batches once and keeps numpy arrays: `images` (float32 in
    [-1, 1]), `captions` (one per image, as sampled by the pipeline),
    `token_ids`, `padding_mask`, the scene attributes when the batches
    carry them, and, with a `text_prior`, the frozen `token_features` /
    `sentence_feature` of each caption. It also fixes the masks:

    - `protocol_mask_counts`: for each k (1 and 3 by default) the Mask-k
      positions (`protocol_masks`) and the text features of the caption
      with those tokens replaced by `[MASK]` (`masked_features_k`), which
      the leak-free probes read;
    - `training_masks=True`: MTP-style random masks for probe training
      (`train_mask`, `masked_features_train`).

    Args:
        dataset: `tf.data.Dataset` or iterable of dict batches with
            `images`, `captions` and (or, with a prior, instead of
            captions) `token_ids` + `padding_mask`; optionally `shape`,
            `color`, `size`, `fill` `(B, 3)` and `num_objects` `(B,)`
            (`make_dataset(..., include_attributes=True)`).
        text_prior: `keras_lgvq.text_priors.TextPrior` or None. Needed for
            the alignment probes and the masked-word protocol.
        max_images: int or None. Stop after this many images.
        seed: int. Seed of the masks.
        protocol_mask_counts: tuple of ints. Mask-k protocols to prepare.
        training_masks: bool. Also draw probe-training masks.
        verbose: int. Progress bars when > 0.
        label_key: str or None. A batch entry of per-image class labels
            (e.g. `make_dataset(..., extra_fields=("label",))`), kept as
            `labels` for class-level retrieval and zero-shot accuracy;
            string labels become indices into the sorted `label_names`.
        caption_cache: `keras_lgvq.text_priors.CaptionFeatureCache` or None.
            Supplies (and extends) the features of the unmasked captions,
            so captions cached for training are not encoded again.

    Every distinct caption is encoded once: batches that already carry
    `token_features` and `sentence_feature` (a pipeline with a feature
    cache) are kept as they are, otherwise identical token rows share one
    encoder pass; the Mask-k inputs likewise encode each distinct masked
    row once. `text_encoding` counts the rows sent to the encoder and
    `seconds` times the reading and the encoding.

    Returns:
        A dict of numpy arrays and metadata (see above), with `num_images`.

    Examples:

    ```python
    prior = keras_lgvq.text_priors.get("minilm")
    ds = keras_lgvq.datasets.make_dataset(
        "scenes", split="test", batch_size=32, text_prior=prior,
        include_attributes=True)
    split = keras_lgvq.evaluation.prepare_split(ds, prior, max_images=512)
    ```
    """
    max_images = check_int("max_images", max_images, low=1, allow_none=True)
    keys = (
        "images",
        "token_ids",
        "padding_mask",
        "token_features",
        "sentence_feature",
        "num_objects",
    ) + ATTRIBUTES
    if label_key is not None:
        keys += (label_key,)
    seconds = {}
    start_time = time.perf_counter()
    parts = {}
    captions = []
    count = 0
    bar = progbar(max_images, verbose)
    if bar is not None:
        print("Reading images:")
    for batch in iterate(dataset):
        if not isinstance(batch, dict) or "images" not in batch:
            raise ValueError(
                "`dataset` must yield dict batches with an 'images' entry. "
                f"Received: {type(batch).__name__}"
            )
        take = len(batch["images"])
        if max_images is not None:
            take = min(take, max_images - count)
        for key in keys:
            if key in batch:
                value = np.asarray(batch[key])[:take]
                if key == "token_features":
                    value = value.astype("float16")  # as `_encode_text`
                parts.setdefault(key, []).append(value)
        if "captions" in batch:
            captions += decode_strings(batch["captions"])[:take]
        count += take
        if bar is not None:
            bar.update(min(count, max_images))
        if max_images is not None and count >= max_images:
            break
    if count == 0:
        raise ValueError("`dataset` yielded no images.")
    split = {k: np.concatenate(v) for k, v in parts.items()}
    split["images"] = split["images"].astype("float32")
    split["num_images"] = count
    split["captions"] = captions if len(captions) == count else None
    split["mask_seed"] = int(seed)
    if label_key is not None and label_key in split:
        labels = split.pop(label_key)
        if labels.dtype.kind in "OSU" and labels.shape == (count,):
            # String classes: index of each among the sorted names.
            names, labels = np.unique(
                decode_strings(labels), return_inverse=True
            )
            split["label_names"] = [str(n) for n in names]
        if labels.shape != (count,) or not np.issubdtype(
            labels.dtype, np.integer
        ):
            raise ValueError(
                f"`{label_key}` must be one int class label per image; the "
                f"batches give {labels.dtype} of shape {labels.shape}. Pass "
                "`label_key=None` to ignore it."
            )
        split["labels"] = labels.astype("int64")
    seconds["read"] = time.perf_counter() - start_time
    split["seconds"] = seconds
    carried = "token_features" in split and "sentence_feature" in split
    if text_prior is None or not carried:
        split.pop("token_features", None)
        split.pop("sentence_feature", None)
    if text_prior is None:
        return split
    encoded = {"captions": count, "caption_rows": 0, "masked_rows": 0}
    t0 = time.perf_counter()
    if caption_cache is not None and not carried:
        if split["captions"] is None:
            raise ValueError(
                "`caption_cache` looks features up by caption; the batches "
                "carry no `captions`."
            )
        before = caption_cache.encoded_rows
        cached = caption_cache.features(split["captions"])
        encoded["caption_rows"] = caption_cache.encoded_rows - before
        for key in ("token_ids", "padding_mask", "sentence_feature"):
            split[key] = cached[key]
        split["token_features"] = cached["token_features"].astype("float16")
        carried = True
    if "token_ids" not in split:
        if split["captions"] is None:
            raise ValueError(
                "With a `text_prior`, batches need `captions` or "
                "`token_ids` + `padding_mask`."
            )
        ids, mask = text_prior.tokenize(split["captions"])
        split["token_ids"], split["padding_mask"] = to_numpy(ids), to_numpy(
            mask
        )
    split["token_ids"] = split["token_ids"].astype("int32")
    split["padding_mask"] = split["padding_mask"].astype(bool)
    ids, pad = split["token_ids"], split["padding_mask"]
    if carried:
        split["token_features"] = split["token_features"].astype("float16")
        split["sentence_feature"] = split["sentence_feature"].astype(
            "float32"
        )
    else:
        (
            split["token_features"],
            split["sentence_feature"],
            encoded["caption_rows"],
        ) = _encode_text(text_prior, ids, pad, verbose, "captions")
    seconds["text_features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mask_token = int(text_prior.mask_token_id)
    split["mask_token_id"] = mask_token
    wanted = [
        (f"mask_{k}", protocol_masks(ids, pad, k, seed))
        for k in (protocol_mask_counts or ())
    ]
    if training_masks:
        wanted.append(("train_mask", sample_training_masks(pad, seed)))
    for name, mask in wanted:
        split[name] = mask
        masked_ids = np.where(mask, mask_token, ids).astype("int32")
        suffix = name[len("mask_") :] if name.startswith("mask_") else "train"
        features, _, rows = _encode_text(
            text_prior, masked_ids, pad, verbose, f"{name}, masked"
        )
        split[f"masked_features_{suffix}"] = features
        encoded["masked_rows"] += rows
    seconds["masked_text_features"] = time.perf_counter() - t0
    split["text_encoding"] = encoded
    return split

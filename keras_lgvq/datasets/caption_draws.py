"""`drawn_captions`: the captions a training pipeline will draw, without
decoding an image, so a caption-feature cache holds only those."""

from keras_lgvq.utils.validation import check_int


def drawn_captions(name_or_tfds_dataset, steps=None, **make_dataset_kwargs):
    """The captions `make_dataset` draws in the passes its first `steps`
    batches read.

    `make_dataset` samples one caption per image per pass from a seeded,
    pass-varying stream, before shuffling and batching; this replays that
    stream (same arguments, same TF global seed, the pipeline's own code
    with `captions_only=True`) pass by pass. Whole passes: the pipeline
    draws a caption for every example of a pass it starts, the remainder a
    `drop_remainder` batch leaves out included, and a caption-feature
    cache is looked up at the draw. A
    `keras_lgvq.text_priors.CaptionFeatureCache` built from the result
    serves a `fit` over `make_dataset(..., feature_cache=cache).repeat()`
    for `steps` steps, instead of every caption of the split: the cache
    fails the iteration on a caption it lacks, so a replay that drifted
    from the real stream cannot pass silently.

    Build it under the TF global seed the training pipeline is built
    under (`keras.utils.set_random_seed` sets it), and count a batch or two
    more than the steps trained: a model not built yet reads one batch to
    build, and an input pipeline may read ahead.

    Args:
        name_or_tfds_dataset: what `make_dataset` takes.
        steps: int >= 1 or None. Batches of `make_dataset(...).repeat()`
            read (passes repeat with new draws, as in training); None: one
            pass.
        **make_dataset_kwargs: the training pipeline's other arguments
            (`split`, `batch_size`, `image_size`, `seed`, `max_words`,
            `drop_remainder`, builder arguments, ...), without
            `text_prior` and `feature_cache`.

    Returns:
        list of str, one per drawn caption (repeats kept), pass by pass.

    Examples:

    ```python
    keras.utils.set_random_seed(0)
    kwargs = dict(split="train", batch_size=16, image_size=64, seed=0)
    cache = CaptionFeatureCache(prior)
    cache.add(drawn_captions("scenes", steps=480 + 2, **kwargs))
    ds = make_dataset("scenes", feature_cache=cache, **kwargs).repeat()
    model.fit(ds, steps_per_epoch=480)
    ```
    """
    from keras_lgvq.datasets.pipeline import make_dataset

    check_int("steps", steps, 1, allow_none=True)
    for key in ("text_prior", "feature_cache", "captions_only"):
        if key in make_dataset_kwargs:
            raise ValueError(
                f"`drawn_captions` replays the captions only: leave out "
                f"`{key}` (received "
                f"{type(make_dataset_kwargs[key]).__name__})."
            )
    batch_size = make_dataset_kwargs.get("batch_size", 8)
    drop_remainder = make_dataset_kwargs.pop("drop_remainder", None)
    if drop_remainder is None:
        training = make_dataset_kwargs.get("training")
        if training is None:
            split = make_dataset_kwargs.get("split", "train")
            training = str(split).strip().startswith("train")
        drop_remainder = bool(training)
    # Every example of a pass, the remainder included; batches never span
    # passes (the training pipeline repeats after batching).
    ds = make_dataset(
        name_or_tfds_dataset,
        captions_only=True,
        drop_remainder=False,
        **make_dataset_kwargs,
    )
    captions, batches = [], 0
    while True:
        # Each iteration of the dataset is one pass with new draws, as
        # each repetition of `repeat()` is.
        count = 0
        for batch in ds:
            drawn = batch["captions"].numpy()
            captions.extend(c.decode("utf-8") for c in drawn)
            count += len(drawn)
        per_pass = count // batch_size if drop_remainder else -(
            -count // batch_size
        )
        if per_pass == 0:
            raise ValueError(
                f"A pass has {count} examples, fewer than batch_size="
                f"{batch_size} with drop_remainder=True: the training "
                "pipeline would yield no batch. Use a smaller `batch_size` "
                "or more examples."
            )
        batches += per_pass
        if steps is None or batches >= steps:
            return captions

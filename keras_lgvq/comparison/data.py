"""The scenes data every system of the comparison is scored on.

`comparison_splits` builds, once per image size, the shared evaluation
split (test images with captions, attributes and the masked-word protocol)
and the probe-training split: every system is evaluated on identical
inputs (see `keras_lgvq.evaluation.prepare_split`).
"""


def scenes_sizes(train_size, eval_size):
    """Split sizes of the generated scenes set (validation kept small).

    Args:
        train_size: int. Training images.
        eval_size: int. Test images.

    Examples:

    ```python
    scenes_sizes(2560, 512)
    # {"train_size": 2560, "validation_size": 256, "test_size": 512}
    ```
    """
    return dict(
        train_size=int(train_size),
        validation_size=min(256, int(eval_size)),
        test_size=int(eval_size),
    )


def comparison_splits(
    text_prior,
    eval_size,
    probe_size,
    image_size=64,
    train_size=None,
    seed=0,
    data_dir=None,
    verbose=1,
    eval_split_name="test",
):
    """The shared evaluation and probe-training splits of the scenes set.

    Args:
        text_prior: `TextPrior` (MiniLM for the scenes preset).
        eval_size: int. Test images scored.
        probe_size: int. Training images the probes learn from (0: no
            probe split).
        image_size: int. Scene size in pixels.
        train_size: int or None. Size of the generated training split (at
            least `probe_size`).
        seed: int. Caption sampling and mask seed.
        data_dir: str or None. TFDS folder.
        verbose: int. Progress bars.
        eval_split_name: str. The split scored: "test" (the comparison) or
            "validation".

    Returns:
        `(eval_split, probe_split)` dicts from
        `keras_lgvq.evaluation.prepare_split` (`probe_split` None when
        `probe_size` is 0), with the scene attributes.

    Examples:

    ```python
    eval_split, probe_split = comparison_splits(prior, 512, 1536)
    ```
    """
    from keras_lgvq.datasets import make_dataset
    from keras_lgvq.evaluation import prepare_split

    train_size = max(train_size or probe_size, probe_size)
    common = dict(
        batch_size=64,
        image_size=image_size,
        training=False,
        seed=seed,
        text_prior=text_prior,
        include_attributes=True,
        data_dir=data_dir,
        **scenes_sizes(train_size, eval_size),
    )
    eval_ds = make_dataset("scenes", split=eval_split_name, **common)
    eval_split = prepare_split(
        eval_ds, text_prior, max_images=eval_size, seed=seed, verbose=verbose
    )
    probe_split = None
    if probe_size:
        probe_ds = make_dataset("scenes", split="train", **common)
        probe_split = prepare_split(
            probe_ds,
            text_prior,
            max_images=probe_size,
            seed=seed + 1,
            protocol_mask_counts=(),
            training_masks=True,
            verbose=verbose,
        )
    return eval_split, probe_split

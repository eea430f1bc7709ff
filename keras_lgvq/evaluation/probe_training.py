"""Training an `AlignmentProbe` on frozen codes, the same way for every model.

`DEFAULT_PROBE_CONFIG` is the probe budget (epochs, batch size, widths) and
the linear attribute probes' settings; `train_alignment_probe` fits a fresh
probe with a fixed seed, so two tokenizers differ only in their codes.
"""

import time

import keras
import numpy as np

from keras_lgvq.evaluation.alignment_probe import AlignmentProbe
from keras_lgvq.evaluation.masking import mask_slots
from keras_lgvq.utils.tensors import to_numpy
from keras_lgvq.utils.validation import check_int

# The probe budget; `evaluate_model(probe_config=...)` overrides any key.
DEFAULT_PROBE_CONFIG = dict(
    epochs=4,
    # Budget bounds (None: unbounded): at most this many optimizer steps in
    # all, and at most this many probe-training images (the first ones).
    max_steps=None,
    max_train_images=None,
    batch_size=32,
    learning_rate=1e-3,
    vit_layers=2,
    vit_heads=1,
    decoder_layers=2,
    decoder_intermediate_dim=512,
    dropout=0.1,
    linear_epochs=200,
    linear_learning_rate=1e-2,
    linear_grid=2,
    jit_compile="auto",
)


class _ProbeBatches(keras.utils.PyDataset):
    """Seeded minibatches of probe inputs (a fresh permutation each epoch)."""

    def __init__(self, arrays, batch_size, seed, max_batches=None):
        super().__init__()
        self.arrays = arrays
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.count = len(arrays["quantized"])
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(self.count)

    def __len__(self):
        # Whole batches only: InfoNCE needs negatives, and fixed shapes
        # avoid a retrace for the last batch.
        whole = max(self.count // self.batch_size, 1)
        if self.max_batches is not None:
            return min(whole, self.max_batches)
        return whole

    def __getitem__(self, index):
        start = index * self.batch_size
        rows = self.order[start : start + self.batch_size]
        batch = {}
        for key, array in self.arrays.items():
            value = array[rows]
            if value.dtype == np.float16:
                value = value.astype("float32")
            batch[key] = value
        return (batch,)

    def on_epoch_end(self):
        self.order = self.rng.permutation(self.count)


def train_alignment_probe(
    quantized,
    split,
    token_embeddings,
    config=None,
    seed=0,
    verbose=1,
):
    """Train an `AlignmentProbe` on frozen codes; every model gets the same.

    Args:
        quantized: float array `(N, h, w, D)`. The model's quantized grid of
            the probe split's images.
        split: dict from `prepare_split(..., training_masks=True)` with a
            text prior.
        token_embeddings: array `(vocabulary_size, text_dim)`. The text
            prior's frozen token embeddings.
        config: dict or None. Overrides of `DEFAULT_PROBE_CONFIG`; its
            `max_steps` caps the optimizer steps (whole epochs, fewer
            steps per epoch when needed) and `max_train_images` trains on
            the first images only.
        seed: int. Seeds the weights, dropout and batch order.
        verbose: int. Keras progress bar when > 0.

    Returns:
        `(probe, info)`: the trained `AlignmentProbe` and a dict of its
        budget (epochs, steps, batch size, learning rate), final loss and
        seconds.

    Examples:

    ```python
    probe, info = keras_lgvq.evaluation.train_alignment_probe(
        codes, probe_split, prior.token_embeddings)
    ```
    """
    config = {**DEFAULT_PROBE_CONFIG, **(config or {})}
    needed = ("sentence_feature", "masked_features_train", "train_mask")
    missing = [k for k in needed if k not in split]
    if missing:
        raise ValueError(
            "The probe split needs text features and training masks "
            "(`prepare_split(..., text_prior=prior, training_masks=True)`); "
            f"missing {missing}."
        )
    quantized = np.asarray(quantized, "float32")
    if quantized.ndim != 4 or quantized.shape[0] != split["num_images"]:
        raise ValueError(
            "`quantized` must be (N, h, w, D) with N = the split's "
            f"{split['num_images']} images. Received: {quantized.shape}"
        )
    max_steps = check_int(
        "probe_config['max_steps']", config["max_steps"], 1, allow_none=True
    )
    max_images = check_int(
        "probe_config['max_train_images']", config["max_train_images"], 1,
        allow_none=True,
    )
    if max_images is not None and max_images < split["num_images"]:
        quantized = quantized[:max_images]
        split = {
            key: split[key][:max_images]
            for key in needed + ("padding_mask", "token_ids")
        }
        split["num_images"] = max_images
    token_embeddings = to_numpy(token_embeddings)
    batch_size = min(int(config["batch_size"]), split["num_images"])
    keras.utils.set_random_seed(seed)
    probe = AlignmentProbe(
        code_dim=quantized.shape[-1],
        num_tokens=quantized.shape[1] * quantized.shape[2],
        text_dim=token_embeddings.shape[1],
        vocabulary_size=token_embeddings.shape[0],
        sentence_dim=split["sentence_feature"].shape[-1],
        sequence_length=split["token_ids"].shape[1],
        vit_layers=config["vit_layers"],
        vit_heads=config["vit_heads"],
        decoder_layers=config["decoder_layers"],
        decoder_intermediate_dim=config["decoder_intermediate_dim"],
        dropout=config["dropout"],
        seed=seed,
    )
    probe.build()
    probe.set_token_embeddings(token_embeddings)
    probe.compile(
        optimizer=keras.optimizers.Adam(config["learning_rate"]),
        jit_compile=config["jit_compile"],
    )
    slots, slot_valid = mask_slots(split["train_mask"])
    epochs = int(config["epochs"])
    steps_per_epoch = None
    if max_steps is not None:
        # Whole epochs of at most `max_steps` steps in all.
        whole = max(split["num_images"] // batch_size, 1)
        steps_per_epoch = min(max_steps, whole)
        epochs = max(1, min(epochs, max_steps // steps_per_epoch))
    batches = _ProbeBatches(
        {
            "slots": slots,
            "slot_valid": slot_valid,
            "quantized": quantized,
            "sentence_feature": split["sentence_feature"],
            "masked_features": split["masked_features_train"],
            "padding_mask": split["padding_mask"],
            "mask": split["train_mask"],
            "token_ids": split["token_ids"],
        },
        batch_size,
        seed,
        max_batches=steps_per_epoch,
    )
    start = time.time()
    if verbose:
        print(
            f"Alignment probe: {epochs} epochs x {len(batches)} "
            f"steps of {batch_size}"
        )
    history = probe.fit(
        batches, epochs=epochs, verbose=1 if verbose else 0
    )
    info = {
        "epochs": epochs,
        "steps": epochs * len(batches),
        "max_steps": max_steps,
        "batch_size": batch_size,
        "learning_rate": float(config["learning_rate"]),
        "train_images": int(split["num_images"]),
        "final_loss": float(history.history["loss"][-1]),
        "seconds": round(time.time() - start, 2),
        "infonce": "symmetric, learnable temperature",
        "masked_text_input": (
            "leak-free: text features of the caption with [MASK] at the "
            "hidden tokens; the [MASK] features are kept; plain "
            "cross-entropy"
        ),
    }
    return probe, info

"""`ReconstructionImages`: originals and reconstructions in TensorBoard."""

import os

import keras
import numpy as np
from keras import ops


def side_by_side(images, reconstructions):
    """`(N, H, 2W, C)` uint8 pairs (original left) from `[-1, 1]` arrays.

    Args:
        images: array `(N, H, W, C)` in [-1, 1].
        reconstructions: array of the same shape.

    Returns:
        uint8 array `(N, H, 2W, C)`.
    """
    images = np.asarray(images, "float32")
    reconstructions = np.asarray(reconstructions, "float32")
    if images.shape != reconstructions.shape or images.ndim != 4:
        raise ValueError(
            "`images` and `reconstructions` must both have shape "
            f"(N, H, W, C). Received {images.shape} and "
            f"{reconstructions.shape}."
        )
    pairs = np.concatenate([images, reconstructions], axis=2)
    pairs = np.nan_to_num(pairs, nan=-1.0)
    return np.round((np.clip(pairs, -1.0, 1.0) + 1.0) * 127.5).astype(
        "uint8"
    )


class ReconstructionImages(keras.callbacks.Callback):
    """Logs a fixed batch and its reconstructions to TensorBoard each epoch.

    At every epoch end the model reconstructs `images` in inference mode
    and each original is written next to its reconstruction with
    `tf.summary.image` (tensorflow is a dependency of keras_lgvq, so this
    works on every backend) under `log_dir/images`, at step = epoch.

    Args:
        images: array `(N, H, W, C)` in [-1, 1]; e.g. the first validation
            batch. At most `max_images` are used.
        log_dir: string. The TensorBoard log directory (the same as
            `keras.callbacks.TensorBoard`'s).
        name: string. Summary tag.
        max_images: int >= 1.
        reconstruct: callable `(model, images) -> reconstructions` or None.
            None calls `model(images, training=False)` (the
            reconstruction, for `VQGAN` / `LGVQ`).
        write: bool. Whether this process writes.

    Examples:

    ```python
    images = next(iter(val_ds))["images"]
    callback = keras_lgvq.callbacks.ReconstructionImages(images, "runs/x/logs")
    model.fit(train, epochs=3, callbacks=[callback])
    ```
    """

    def __init__(
        self,
        images,
        log_dir,
        name="reconstructions",
        max_images=8,
        reconstruct=None,
        write=True,
    ):
        super().__init__()
        if isinstance(max_images, bool) or not isinstance(max_images, int):
            raise ValueError(
                f"`max_images` must be an int >= 1. Received: {max_images!r}"
            )
        if max_images < 1:
            raise ValueError(
                f"`max_images` must be an int >= 1. Received: {max_images!r}"
            )
        images = np.asarray(ops.convert_to_numpy(images), "float32")
        if images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(
                "`images` must be a non-empty batch (N, H, W, C) in [-1, 1]. "
                f"Received shape {images.shape}."
            )
        if reconstruct is not None and not callable(reconstruct):
            raise ValueError(
                "`reconstruct` must be a callable (model, images) -> "
                f"reconstructions or None. Received: {reconstruct!r}"
            )
        self.images = images[:max_images]
        self.log_dir = log_dir
        self.name = name
        self.max_images = max_images
        self.reconstruct = reconstruct
        self.write = bool(write)
        self._writer = None

    def _reconstructions(self):
        model = self.model
        if self.reconstruct is not None:
            out = self.reconstruct(model, self.images)
        else:
            out = model(self.images, training=False)
        return np.asarray(ops.convert_to_numpy(out), "float32")

    def on_epoch_end(self, epoch, logs=None):
        if not self.write:
            return
        import tensorflow as tf

        pairs = side_by_side(self.images, self._reconstructions())
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "images")
            )
        with self._writer.as_default():
            tf.summary.image(
                self.name,
                pairs,
                step=epoch,
                max_outputs=len(pairs),
                description="Left: original; right: reconstruction.",
            )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

"""Input checks shared by models and layers (static: shapes and dtypes)."""

from keras import backend


def check_images(images, channels, name="images"):
    """Raises a ValueError unless `images` is a 4-D float batch.

    Args:
        images: tensor. Expected `(batch, height, width, channels)` floats in
            [-1, 1].
        channels: int. Expected channel count.
        name: string. Argument name used in the message.
    """
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ValueError(
            f"`{name}` must be a 4-D batch (batch, height, width, channels); "
            f"got shape {shape}. Add a batch axis for a single image."
        )
    if shape[-1] is not None and shape[-1] != channels:
        raise ValueError(
            f"`{name}` must have {channels} channels (channels-last); got "
            f"shape {shape}."
        )
    dtype = backend.standardize_dtype(images.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"`{name}` must be floating point in [-1, 1]; got dtype {dtype}. "
            "Scale uint8 images with `images / 127.5 - 1`."
        )

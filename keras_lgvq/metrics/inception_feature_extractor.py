"""Inception-v3 pool features for FID, from a local weights file only."""

import os
import warnings

import keras
from keras import ops

from keras_lgvq.utils.cache import keras_model_dirs

INCEPTION_WEIGHTS_FILE = (
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/"
    "inception_v3/" + INCEPTION_WEIGHTS_FILE
)


def default_inception_weight_paths():
    """Places searched for the Inception-v3 weights when none is given.

    In order: `$KERAS_LGVQ_HOME/inception/`, `~/.cache/keras_lgvq/inception/`,
    Keras's own cache `$KERAS_HOME/models/` (default `~/.keras/models/`,
    where `keras.applications.InceptionV3(weights="imagenet")` stores the
    file) and `/tmp/.keras/models/` (Keras's fallback cache).

    Returns:
        A list of candidate file paths (they may not exist).

    Examples:

    ```python
    keras_lgvq.metrics.default_inception_weight_paths()
    ```
    """
    roots = []
    if os.environ.get("KERAS_LGVQ_HOME"):
        roots.append(os.path.join(os.environ["KERAS_LGVQ_HOME"], "inception"))
    roots.append(
        os.path.join(
            os.path.expanduser("~"), ".cache", "keras_lgvq", "inception"
        )
    )
    roots.extend(keras_model_dirs())
    return [os.path.join(root, INCEPTION_WEIGHTS_FILE) for root in roots]


def _missing_weights_message(searched):
    where = "\n".join(f"  - {path}" for path in searched)
    return (
        "Inception-v3 ImageNet weights are needed for FID and nothing is "
        "downloaded at run time. Supply them in one of these ways:\n"
        f"  1. On a machine with internet, download {INCEPTION_WEIGHTS_URL}\n"
        "     (or run `keras.applications.InceptionV3(include_top=False, "
        "weights='imagenet')`, which caches it in ~/.keras/models/),\n"
        "     then copy the file to one of the searched places:\n"
        f"{where}\n"
        "  2. Pass the file's path: `weights='/path/to/"
        f"{INCEPTION_WEIGHTS_FILE}'`.\n"
        "For tests only, `allow_random_weights=True` builds an untrained "
        "network; its scores are labelled `fid_random_weights` and are not "
        "comparable with any published FID."
    )


@keras.saving.register_keras_serializable(package="keras_lgvq")
class InceptionFeatureExtractor(keras.layers.Layer):
    """Inception-v3 global-average-pool features (2048-d) for FID.

    Builds `keras.applications.InceptionV3(include_top=False,
    pooling="avg", weights=None)` and loads a local weights file; nothing
    is ever downloaded. Images in `value_range` are mapped to `[-1, 1]`
    (Inception's preprocessing), single-channel images are repeated to
    RGB, and everything is resized bilinearly to `image_size`.

    Note that these are the Keras ImageNet weights, not the TF 2015-12-05
    graph used by pytorch-fid / torch-fidelity, so FIDs from this
    extractor are comparable with each other but not with published
    numbers.

    Args:
        weights: string or None. Path to
            `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5` (or
            any weights file for this architecture). `None` searches
            `default_inception_weight_paths()`.
        allow_random_weights: bool. When no weights file is found, build a
            randomly initialised network instead of raising (tests only;
            `random_weights` is then `True`).
        image_size: int. Side the images are resized to (299 for the
            standard protocol, at least 75).
        value_range: tuple of two floats. Range of the input pixels, e.g.
            `(-1, 1)` or `(0, 255)`.
        **kwargs: forwarded to `keras.layers.Layer`.

    Examples:

    ```python
    extractor = keras_lgvq.metrics.InceptionFeatureExtractor(
        weights="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    features = extractor(images)  # (batch, 2048)
    ```
    """

    def __init__(
        self,
        weights=None,
        allow_random_weights=False,
        image_size=299,
        value_range=(-1.0, 1.0),
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(image_size, int) or image_size < 75:
            raise ValueError(
                "`image_size` must be an int >= 75 (Inception-v3's minimum). "
                f"Received: image_size={image_size!r}"
            )
        if len(value_range) != 2 or not value_range[1] > value_range[0]:
            raise ValueError(
                "`value_range` must be (low, high) with high > low. "
                f"Received: value_range={value_range!r}"
            )
        self.weights_path = weights
        self.allow_random_weights = bool(allow_random_weights)
        self.image_size = image_size
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.feature_dim = 2048

        resolved = self._resolve_weights(weights, self.allow_random_weights)
        self.random_weights = resolved is None
        self.resolved_weights_path = resolved
        self.backbone = keras.applications.InceptionV3(
            include_top=False,
            weights=resolved,
            input_shape=(image_size, image_size, 3),
            pooling="avg",
        )
        self.backbone.trainable = False

    @staticmethod
    def _resolve_weights(weights, allow_random_weights):
        if weights is not None:
            if not os.path.isfile(weights):
                raise FileNotFoundError(
                    f"Inception-v3 weights file not found: {weights!r}.\n"
                    + _missing_weights_message(default_inception_weight_paths())
                )
            return weights
        searched = default_inception_weight_paths()
        for path in searched:
            if os.path.isfile(path):
                return path
        if allow_random_weights:
            warnings.warn(
                "InceptionFeatureExtractor: no weights found, using RANDOM "
                "weights (allow_random_weights=True). FID values are only "
                "a smoke test.",
                stacklevel=3,
            )
            return None
        raise FileNotFoundError(_missing_weights_message(searched))

    def call(self, images):
        images = ops.convert_to_tensor(images)
        if len(images.shape) != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(
                "Expected channels-last images `(batch, H, W, 1 or 3)`. "
                f"Received shape: {tuple(images.shape)}"
            )
        x = ops.cast(images, "float32")
        low, high = self.value_range
        x = (x - low) * (2.0 / (high - low)) - 1.0
        if images.shape[-1] == 1:
            x = ops.repeat(x, 3, axis=-1)
        if tuple(x.shape[1:3]) != (self.image_size, self.image_size):
            x = ops.image.resize(
                x,
                (self.image_size, self.image_size),
                interpolation="bilinear",
                data_format="channels_last",
            )
        return self.backbone(x, training=False)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.feature_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "weights": self.weights_path,
                "allow_random_weights": self.allow_random_weights,
                "image_size": self.image_size,
                "value_range": self.value_range,
            }
        )
        return config

import os
import warnings

import keras
import numpy as np
from keras import ops

from keras_lgvq.losses import lpips_assets
# Module-level name so tests can point the search elsewhere.
from keras_lgvq.utils.cache import keras_model_dirs as _keras_model_dirs

VGG16_NOTOP_FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
# relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (Keras convs carry the ReLU).
VGG_TAPS = (
    "block1_conv2",
    "block2_conv2",
    "block3_conv3",
    "block4_conv3",
    "block5_conv3",
)
# LPIPS `ScalingLayer`: torchvision's ImageNet mean/std in the [-1, 1] range.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
# keras.applications VGG16 ("caffe" weights): BGR, 0-255, mean subtracted.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_NORM_EPS = 1e-10
# sqrt is clamped at this value so an all-zero feature vector has a finite
# gradient; only vectors with |f| < 1e-10 change, by a negligible amount.
_MIN_SQUARED_NORM = 1e-20
_MIN_SIZE = 16  # block5_conv3 sits after four 2x2 poolings.


def _missing_weights_message(searched=None):
    looked = (
        f"Looked for `{VGG16_NOTOP_FILENAME}` in: {', '.join(searched)}. "
        if searched
        else ""
    )
    return (
        "LPIPS needs ImageNet VGG16 weights, and keras_lgvq never downloads "
        f"at run time. {looked}"
        "To supply them, on a machine with internet run\n"
        "    python -c \"import keras; keras.applications.VGG16("
        "include_top=False, weights='imagenet')\"\n"
        f"then copy ~/.keras/models/{VGG16_NOTOP_FILENAME} into "
        "$KERAS_HOME/models/ or ~/.keras/models/ on this machine, or pass "
        "`vgg_weights=<path to the .h5>`. Pass `allow_random_backbone=True` "
        "to run with a random VGG16 (the distance is then not LPIPS)."
    )


def _resolve_vgg_weights(vgg_weights, allow_random_backbone):
    """Return the weights path, or None for a (permitted) random backbone."""
    if vgg_weights is None or vgg_weights == "auto":
        searched = _keras_model_dirs()
        for folder in searched:
            candidate = os.path.join(folder, VGG16_NOTOP_FILENAME)
            if os.path.isfile(candidate):
                return candidate
        if not allow_random_backbone:
            raise FileNotFoundError(_missing_weights_message(searched))
        return None
    if not isinstance(vgg_weights, (str, os.PathLike)):
        raise ValueError(
            "`vgg_weights` must be None, 'auto' or a path to a .h5 file. "
            f"Received: {vgg_weights!r}"
        )
    path = os.fspath(vgg_weights)
    # An explicit path that is missing is an error even when a random
    # backbone is allowed: silently training against noise would be worse.
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"`vgg_weights` file {path} does not exist. "
            + _missing_weights_message()
        )
    if not (path.endswith(".h5") or path.endswith(".hdf5")):
        raise ValueError(
            "`vgg_weights` must be a Keras .h5 weights file (legacy "
            f"keras.applications `{VGG16_NOTOP_FILENAME}` or a Keras 3 "
            f"`.weights.h5`). Received: {path}"
        )
    return path


def _load_heads(heads):
    path = lpips_assets.heads_path() if heads is None else os.fspath(heads)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"LPIPS linear heads not found at {path}. Fetch and convert them "
            "once (needs PyPI) with\n"
            f"    {lpips_assets.FETCH_COMMAND}\n"
            "or offline from a downloaded wheel with\n"
            f"    {lpips_assets.FETCH_COMMAND} --wheel "
            f"{lpips_assets.WHEEL_NAME}\n"
            "or pass `heads=<path to lpips_vgg_v0.1.npz>`."
        )
    with np.load(path, allow_pickle=False) as data:
        arrays = []
        for i, channels in enumerate(lpips_assets.HEAD_CHANNELS):
            key = f"lin{i}"
            if key not in data.files:
                raise ValueError(f"`heads` file {path} has no `{key}` array.")
            array = np.asarray(data[key], dtype="float32").reshape(-1)
            if array.shape != (channels,):
                raise ValueError(
                    f"`heads` array `{key}` in {path} has {array.size} "
                    f"entries, expected {channels}."
                )
            if not np.all(np.isfinite(array)) or np.any(array < 0):
                raise ValueError(
                    f"`heads` array `{key}` in {path} must be finite and "
                    "non-negative."
                )
            arrays.append(array)
    return path, arrays


@keras.saving.register_keras_serializable(package="keras_lgvq")
class LPIPS(keras.layers.Layer):
    """The LPIPS perceptual distance (VGG16, v0.1 heads) as a frozen layer.

    `LPIPS()(x, y)` compares two batches of channels-last RGB images in
    [-1, 1] and returns one distance per image, shape `(batch,)`. It follows
    Zhang et al., "The Unreasonable Effectiveness of Deep Features as a
    Perceptual Metric" (CVPR 2018) as used by taming-transformers / LG-VQ:
    VGG16 activations relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 are
    unit-normalised over channels (eps 1e-10), their squared difference is
    weighted per channel by a learned non-negative 1x1 convolution ("head"),
    averaged over space and summed over the five layers.

    The layer is frozen (no trainable weights, and setting `trainable` on it
    or on an enclosing model has no effect) but differentiable in both
    inputs, so it can be used as a reconstruction loss. Nothing is
    downloaded: the heads come from the `.npz` made once by
    `python -m keras_lgvq.losses.lpips_assets`, and the VGG16 ImageNet
    weights from a local Keras `.h5` file.

    About the backbone: official LPIPS uses torchvision's VGG16, while
    `keras.applications` ships the original Caffe VGG16 weights. They are
    two separately trained networks, so the LPIPS heads (trained on
    torchvision channels) weight Caffe channels that mean something else:
    with the Keras weights this is an LPIPS-style VGG distance, not
    numerically LPIPS. Torchvision VGG16 weights converted into the Keras
    layout can be used with `vgg_preprocessing="lpips"`.

    Dropout: official LPIPS places `Dropout(0.5)` before each head, and
    LG-VQ's training most likely ran it in train mode (lgvq-spec 1.4).
    With `use_dropout=True` it is applied when the layer is called with
    `training=True`; the default (`False`) is the evaluation behaviour.

    Args:
        vgg_weights: string or None. Path to VGG16 `include_top=False`
            weights: the legacy `.h5` that keras.applications saves as
            `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`, or a Keras 3
            `.weights.h5` of a `keras.applications.VGG16(include_top=False)`
            model. `None` or `"auto"` looks for that file in Keras's cache
            (`$KERAS_HOME/models/`, `~/.keras/models/`,
            `/tmp/.keras/models/`). Defaults to `None`.
        heads: string or None. Path to the LPIPS heads `.npz` (keys `lin0`
            to `lin4`). `None` uses `lpips_assets.heads_path()`. Defaults to
            `None`.
        allow_random_backbone: bool. When no weights file is found through
            `None`/`"auto"`, use a randomly initialised VGG16 instead of
            raising. `self.random_backbone` then is `True` so metrics can
            label themselves (e.g. "lpips_random_backbone"). Defaults to
            `False`.
        use_dropout: bool. Apply LPIPS's `Dropout(0.5)` before each head
            when called with `training=True`. Defaults to `False`.
        vgg_preprocessing: string. How [-1, 1] RGB images are mapped to the
            backbone input. `"caffe"` (for the keras.applications weights):
            RGB to BGR, 0-255, ImageNet mean subtracted, as
            `keras.applications.vgg16.preprocess_input`. `"lpips"`: the
            LPIPS scaling layer `(x - shift) / scale` with shift
            `[-.030, -.088, -.188]` and scale `[.458, .448, .450]`, for
            torchvision-derived weights. Defaults to `"caffe"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name` and `dtype`.

    Examples:

    ```python
    # Once, with PyPI access: python -m keras_lgvq.losses.lpips_assets
    lpips = keras_lgvq.losses.LPIPS(vgg_weights="vgg16_notop.h5")
    x = np.random.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    y = np.random.uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    distance = lpips(x, y)  # shape (2,)

    # Tests and CI without ImageNet weights.
    lpips = keras_lgvq.losses.LPIPS(allow_random_backbone=True)
    assert lpips.random_backbone
    ```
    """

    def __init__(
        self,
        vgg_weights=None,
        heads=None,
        allow_random_backbone=False,
        use_dropout=False,
        vgg_preprocessing="caffe",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(allow_random_backbone, bool):
            raise ValueError(
                "`allow_random_backbone` must be a bool. "
                f"Received: {allow_random_backbone!r}"
            )
        if not isinstance(use_dropout, bool):
            raise ValueError(
                f"`use_dropout` must be a bool. Received: {use_dropout!r}"
            )
        if vgg_preprocessing not in ("caffe", "lpips"):
            raise ValueError(
                "`vgg_preprocessing` must be 'caffe' or 'lpips'. "
                f"Received: {vgg_preprocessing!r}"
            )
        # Resolve both files before building the (large) backbone.
        weights_path = _resolve_vgg_weights(vgg_weights, allow_random_backbone)
        heads_file, head_arrays = _load_heads(heads)

        # === Config ===
        self.vgg_weights = vgg_weights
        self.heads = heads
        self.allow_random_backbone = allow_random_backbone
        self.use_dropout = use_dropout
        self.vgg_preprocessing = vgg_preprocessing
        self.vgg_weights_path = weights_path
        self.heads_file = heads_file
        self.random_backbone = weights_path is None
        if self.random_backbone:
            warnings.warn(
                "LPIPS is running with a randomly initialised VGG16: its "
                "values are not LPIPS. " + _missing_weights_message(),
                stacklevel=2,
            )

        # === Layers ===
        previous_format = keras.config.image_data_format()
        keras.config.set_image_data_format("channels_last")
        try:
            vgg = keras.applications.VGG16(
                include_top=False,
                weights=None,
                input_shape=(None, None, 3),
            )
        finally:
            keras.config.set_image_data_format(previous_format)
        if weights_path is not None:
            try:
                vgg.load_weights(weights_path)
            except (ValueError, KeyError, OSError) as e:
                raise ValueError(
                    f"Could not load `vgg_weights` from {weights_path}: it "
                    "must hold the 13 convolutions of "
                    "`keras.applications.VGG16(include_top=False)`. "
                    f"Error: {e}"
                ) from e
        self.feature_extractor = keras.Model(
            vgg.input,
            [vgg.get_layer(name).output for name in VGG_TAPS],
            name="vgg16_features",
        )
        # Heads and their dropout run in float32 whatever the layer policy.
        self.head_layers = []
        for i, array in enumerate(head_arrays):
            head = keras.layers.Conv2D(
                1,
                1,
                use_bias=False,
                data_format="channels_last",
                dtype="float32",
                name=f"lin{i}",
            )
            head.build((None, None, None, array.shape[0]))
            head.kernel.assign(array.reshape(1, 1, -1, 1))
            self.head_layers.append(head)
        self.dropout = (
            keras.layers.Dropout(0.5, dtype="float32", name="head_dropout")
            if use_dropout
            else None
        )
        # Frozen: every variable becomes non-trainable; gradients still flow
        # to the inputs. The flag is set on the variables themselves: on
        # TensorFlow, Keras's tracking `__setattr__` skips an assignment whose
        # value `is` the current one, and `trainable` here always reads
        # False, so `self.trainable = False` never reached the VGG16 model;
        # an enclosing model then listed all 31 variables as trainable and
        # its optimizer updated them.
        self.trainable = False
        self.feature_extractor.trainable = False
        for variable in self.feature_extractor.variables:
            variable.trainable = False
        for head in self.head_layers:
            head.trainable = False
            for variable in head.variables:
                variable.trainable = False
        self.built = True

    @property
    def trainable(self):
        return False

    @trainable.setter
    def trainable(self, value):
        # A fixed metric: stays frozen even when an enclosing model is set
        # `trainable = True` (which Keras propagates to every sublayer).
        keras.layers.Layer.trainable.fset(self, False)

    def _check_images(self, name, shape):
        # Static shape only: dynamic dimensions are left to the backend.
        shape = tuple(shape)
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(
                f"`{name}` must be channels-last RGB images of shape "
                f"(batch, height, width, 3) in [-1, 1]. Received shape: "
                f"{tuple(shape)}"
            )
        for size in shape[1:3]:
            if isinstance(size, int) and size < _MIN_SIZE:
                raise ValueError(
                    f"`{name}` is {size} pixels on a side; LPIPS's VGG16 "
                    f"needs at least {_MIN_SIZE}. Received shape: "
                    f"{tuple(shape)}"
                )

    def preprocess(self, images):
        """Map [-1, 1] RGB images to the VGG16 input convention."""
        images = ops.cast(images, self.compute_dtype)
        if self.vgg_preprocessing == "lpips":
            shift = ops.cast(ops.array(LPIPS_SHIFT), self.compute_dtype)
            scale = ops.cast(ops.array(LPIPS_SCALE), self.compute_dtype)
            return (images - shift) / scale
        mean = ops.cast(ops.array(CAFFE_MEAN_BGR), self.compute_dtype)
        bgr = ops.flip(images, axis=-1)
        return (bgr + 1.0) * 127.5 - mean

    def extract_features(self, images):
        """Return the five VGG16 tap activations of [-1, 1] RGB images."""
        self._check_images("images", images.shape)
        return list(self.feature_extractor(self.preprocess(images)))

    def distance_from_features(self, features_x, features_y, training=None):
        """LPIPS distance `(batch,)` from two lists of five feature maps.

        The part of LPIPS after the backbone: unit-normalise each feature
        vector over channels, square the difference, apply the layer's head
        (with dropout if enabled and `training`), average over space and sum
        over layers.
        """
        if len(features_x) != len(self.head_layers) or len(features_y) != len(
            self.head_layers
        ):
            raise ValueError(
                f"Expected {len(self.head_layers)} feature maps per input. "
                f"Received {len(features_x)} and {len(features_y)}."
            )
        total = None
        for i, (fx, fy, head) in enumerate(
            zip(features_x, features_y, self.head_layers)
        ):
            channels = lpips_assets.HEAD_CHANNELS[i]
            if fx.shape[-1] != channels or fy.shape[-1] != channels:
                raise ValueError(
                    f"Feature map {i} must have {channels} channels. Received "
                    f"shapes {tuple(fx.shape)} and {tuple(fy.shape)}."
                )
            diff = ops.square(
                self._unit_normalize(fx) - self._unit_normalize(fy)
            )
            if self.dropout is not None:
                diff = self.dropout(diff, training=training)
            per_layer = ops.mean(head(diff), axis=(1, 2, 3))
            total = per_layer if total is None else total + per_layer
        return total

    @staticmethod
    def _unit_normalize(features):
        features = ops.cast(features, "float32")
        squared = ops.sum(ops.square(features), axis=-1, keepdims=True)
        norm = ops.sqrt(ops.maximum(squared, _MIN_SQUARED_NORM))
        return features / (norm + _NORM_EPS)

    def call(self, x, y, training=None):
        self._check_images("x", x.shape)
        self._check_images("y", y.shape)
        if tuple(x.shape) != tuple(y.shape) and None not in (
            tuple(x.shape) + tuple(y.shape)
        ):
            raise ValueError(
                "`x` and `y` must have the same shape. Received "
                f"{tuple(x.shape)} and {tuple(y.shape)}."
            )
        batch = ops.shape(x)[0]
        # One backbone pass over both batches.
        both = self.preprocess(ops.concatenate([x, y], axis=0))
        features = self.feature_extractor(both)
        features_x = [f[:batch] for f in features]
        features_y = [f[batch:] for f in features]
        return self.distance_from_features(
            features_x, features_y, training=training
        )

    def compute_output_shape(self, x_shape, y_shape):
        return (x_shape[0],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vgg_weights": None
                if self.vgg_weights is None
                else os.fspath(self.vgg_weights),
                "heads": None if self.heads is None else os.fspath(self.heads),
                "allow_random_backbone": self.allow_random_backbone,
                "use_dropout": self.use_dropout,
                "vgg_preprocessing": self.vgg_preprocessing,
            }
        )
        return config

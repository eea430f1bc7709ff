"""A learned 2-D position embedding added to a token grid."""

import keras
from keras import ops

from keras_lgvq.layers.vit.patch_embedding import INIT_STDDEV
from keras_lgvq.utils.validation import check_int


@keras.saving.register_keras_serializable(package="keras_lgvq")
class PositionEmbedding2D(keras.layers.Layer):
    """Adds a learned `(grid_height, grid_width, hidden_dim)` embedding.

    One vector per grid position, drawn from N(0, 0.02) as in the LQAE ViT
    encoder and decoder (`pos_embedding` of shape `(1, h, w, D)`). The
    weight is named `position_embedding`, which the LQAE trainer uses to
    keep it out of weight decay.

    Args:
        grid_height: int. Rows of the token grid.
        grid_width: int. Columns of the token grid.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float tensor `(B, grid_height, grid_width, hidden_dim)`.

    Returns:
        `inputs` plus the embedding, same shape.

    Examples:

    ```python
    layer = keras_lgvq.layers.vit.PositionEmbedding2D(4, 4)
    out = layer(np.zeros((2, 4, 4, 32), "float32"))
    ```
    """

    def __init__(self, grid_height, grid_width, **kwargs):
        super().__init__(**kwargs)
        self.grid_height = check_int("grid_height", grid_height)
        self.grid_width = check_int("grid_width", grid_width)

    def _check_shape(self, shape):
        shape = tuple(shape)
        if len(shape) != 4 or tuple(shape[1:3]) != (
            self.grid_height,
            self.grid_width,
        ):
            raise ValueError(
                "`inputs` must be a token grid (batch, "
                f"{self.grid_height}, {self.grid_width}, hidden_dim); the "
                "position embedding is learned for that grid. Received "
                f"shape: {shape}"
            )

    def build(self, input_shape):
        self._check_shape(input_shape)
        self.position_embedding = self.add_weight(
            shape=(self.grid_height, self.grid_width, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=INIT_STDDEV),
            name="position_embedding",
        )

    def call(self, inputs):
        self._check_shape(inputs.shape)
        embedding = ops.cast(self.position_embedding, inputs.dtype)
        return inputs + ops.expand_dims(embedding, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"grid_height": self.grid_height, "grid_width": self.grid_width}
        )
        return config

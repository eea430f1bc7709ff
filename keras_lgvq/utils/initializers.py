"""PyTorch-default initialisers in Keras terms, shared by the layers."""

import math

import keras

from keras_lgvq.utils.validation import check_int


@keras.saving.register_keras_serializable(package="keras_lgvq")
class TorchBiasUniform(keras.initializers.RandomUniform):
    """PyTorch's default `Conv2d`/`Linear` bias initialiser.

    Draws from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. The bias shape alone
    does not reveal `fan_in` (`kh * kw * in_channels` for a conv), so it is
    passed explicitly.

    Args:
        fan_in: int. Number of inputs feeding each output unit.
        seed: int, `keras.random.SeedGenerator` or `None`. Random seed.

    Examples:

    ```python
    init = keras_lgvq.utils.initializers.TorchBiasUniform(fan_in=3 * 3 * 64)
    layer = keras.layers.Conv2D(128, 3, bias_initializer=init)
    ```
    """

    def __init__(self, fan_in, seed=None):
        self.fan_in = check_int("fan_in", fan_in)
        bound = 1.0 / math.sqrt(fan_in)
        super().__init__(minval=-bound, maxval=bound, seed=seed)

    def get_config(self):
        # `minval`/`maxval` are derived from `fan_in`; keep only the args.
        seed = super().get_config()["seed"]
        return {"fan_in": self.fan_in, "seed": seed}

"""A pair of optimizers (generator, discriminator) behind one Keras optimizer."""

import keras

from keras_lgvq.utils.names import DISCRIMINATOR_NAME


def is_discriminator_variable(variable, scope=DISCRIMINATOR_NAME):
    """Whether a model variable belongs to the discriminator sub-layer.

    Variable paths look like `"vqgan/discriminator/conv_0/kernel"`; a variable
    belongs to the discriminator when one path segment equals `scope`.
    """
    return scope in variable.path.split("/")


@keras.saving.register_keras_serializable(package="keras_lgvq")
class GANOptimizer(keras.optimizers.Optimizer):
    """Holds the generator and discriminator optimizers of a GAN tokenizer.

    Keras models own a single `optimizer`; on JAX its variables are the
    optimizer part of the stateless training state. Wrapping both optimizers
    in one object keeps both Adam states in that state (and in `.keras`
    files) on every backend. The model's `train_step` applies
    `generator` and `discriminator` separately; this wrapper never applies
    gradients itself.

    `build(var_list)` splits the model's trainable variables: those under a
    layer named `discriminator_scope` go to `discriminator`, all others to
    `generator`.

    Args:
        generator: `keras.optimizers.Optimizer`. Updates the autoencoder,
            quantizer and any extra heads.
        discriminator: `keras.optimizers.Optimizer`. Updates the
            discriminator.
        discriminator_scope: string. Name of the discriminator layer.
        name: string. Optimizer name.

    Examples:

    ```python
    optimizer = keras_lgvq.optimizers.GANOptimizer(
        generator=keras.optimizers.Adam(3.6e-5, beta_1=0.5, beta_2=0.9),
        discriminator=keras.optimizers.Adam(3.6e-5, beta_1=0.5, beta_2=0.9),
    )
    model.compile(optimizer=optimizer)
    ```
    """

    def __init__(
        self,
        generator,
        discriminator,
        discriminator_scope=DISCRIMINATOR_NAME,
        name="gan_optimizer",
        **kwargs,
    ):
        if kwargs:
            raise ValueError(
                "GANOptimizer takes no optimizer hyper-parameters of its own "
                f"(got {sorted(kwargs)}); set them on `generator` or "
                "`discriminator`."
            )
        super().__init__(learning_rate=0.0, name=name)
        self.generator = keras.optimizers.get(generator)
        self.discriminator = keras.optimizers.get(discriminator)
        self.discriminator_scope = discriminator_scope

    def build(self, var_list):
        g_vars, d_vars = self.split(var_list)
        self.generator.build(g_vars)
        self.discriminator.build(d_vars)
        self.built = True

    def split(self, var_list):
        """Splits variables into (generator, discriminator) lists, in order."""
        d_vars = [
            v
            for v in var_list
            if is_discriminator_variable(v, self.discriminator_scope)
        ]
        d_ids = {id(v) for v in d_vars}
        g_vars = [v for v in var_list if id(v) not in d_ids]
        return g_vars, d_vars

    @property
    def variables(self):
        return self.generator.variables + self.discriminator.variables

    @property
    def iterations(self):
        # One generator update per batch: this counts batches.
        return self.generator.iterations

    @property
    def learning_rate(self):
        return self.generator.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        # Called once by the base constructor, before the children exist.
        if "generator" not in self.__dict__:
            return
        self.generator.learning_rate = learning_rate

    def apply(self, grads, trainable_variables=None):
        raise NotImplementedError(
            "GANOptimizer does not apply gradients itself: apply them with "
            "`optimizer.generator` and `optimizer.discriminator`."
        )

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise NotImplementedError(
            "GANOptimizer does not apply gradients itself: use "
            "`optimizer.generator.stateless_apply` and "
            "`optimizer.discriminator.stateless_apply`."
        )

    def finalize_variable_values(self, var_list):
        g_vars, d_vars = self.split(var_list)
        self.generator.finalize_variable_values(g_vars)
        self.discriminator.finalize_variable_values(d_vars)

    def get_config(self):
        return {
            "name": self.name,
            "generator": keras.optimizers.serialize(self.generator),
            "discriminator": keras.optimizers.serialize(self.discriminator),
            "discriminator_scope": self.discriminator_scope,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.optimizers.deserialize(
                config[key], custom_objects=custom_objects
            )
        return cls(**config)

"""Building a model's optimizer before a train step or `fit` call."""


def build_optimizer_if_model_built(model):
    """Builds `model.optimizer` now when the model's layers are all built.

    Keras builds an optimizer lazily: in the first traced step (TensorFlow
    without a strategy) or in `fit`'s symbolic build (JAX). Variables made
    there are a problem in two places: under the step's batch dependency
    XLA cannot lift their initialisers, and JAX's `fit` detaches them with
    no value to restore when its first batch is refused. Building here,
    with the same variables Keras would use, avoids both. A model with an
    unbuilt layer is left alone: its variables are made in the step, and
    the optimizer must wait to see them all.

    Args:
        model: a compiled `keras.Model` (or one without an optimizer).

    Examples:

    ```python
    model.compile(optimizer="adam")
    build_optimizer_if_model_built(model)
    ```
    """
    optimizer = getattr(model, "optimizer", None)
    if (
        optimizer is not None
        and not getattr(optimizer, "built", True)
        and all(layer.built for layer in model._flatten_layers())
    ):
        optimizer.build(model.trainable_variables)

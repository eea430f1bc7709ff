"""The random-number state of a model that Keras does not save."""


def seed_generator_states(layer):
    """The `SeedGenerator` state variables of a layer or model, in order.

    Keras saves each layer's own variables but not the states of its
    `keras.random.SeedGenerator`s (dropout, masking, re-initialisation
    draws), so a model restored from a file replays the draws of the
    original run. Checkpoints that must continue a run exactly store these
    too (`keras_lgvq.models.VQGAN`'s weights,
    `keras_lgvq.callbacks.ResumableBackup`).

    Args:
        layer: a built `keras.layers.Layer` or `keras.Model`.

    Returns:
        list of the state variables (each int `(2,)`), without duplicates,
        in `layer.variables` order (the same for the same architecture).

    Examples:

    ```python
    states = seed_generator_states(model)
    values = [keras.ops.convert_to_numpy(v) for v in states]
    ```
    """
    seen, states = set(), []
    for variable in layer.variables:
        if variable.name == "seed_generator_state" and id(variable) not in (
            seen
        ):
            seen.add(id(variable))
            states.append(variable)
    return states

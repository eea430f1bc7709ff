"""`fit_resumable`: `model.fit` that a killed run continues exactly."""

import keras
import numpy as np

from keras_lgvq.callbacks.resumable_backup import ResumableBackup
from keras_lgvq.utils.validation import check_int


def epoch_seed(seed, epoch):
    """A data seed for one epoch, the same in every process.

    Building each epoch's dataset from `epoch_seed(seed, epoch)` (instead
    of re-iterating one dataset, whose per-iteration reshuffles depend on
    how often it was iterated before) makes epoch `e` reproducible on its
    own, so a resumed run can rebuild it and skip the consumed batches.

    Args:
        seed: int >= 0. The run's seed.
        epoch: int >= 0.

    Returns:
        int in [0, 2**31).

    Examples:

    ```python
    ds = keras_lgvq.datasets.make_dataset(
        "scenes", split="train", seed=epoch_seed(0, epoch))
    ```
    """
    check_int("seed", seed, 0)
    check_int("epoch", epoch, 0)
    state = np.random.SeedSequence([seed, epoch]).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF


def _epoch_length(dataset, steps_per_epoch, epoch):
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "`epoch_data(epoch)` must return a tf.data.Dataset of batches. "
            f"Received {type(dataset).__name__} for epoch {epoch}."
        )
    cardinality = int(dataset.cardinality())
    if steps_per_epoch is not None:
        if 0 <= cardinality < steps_per_epoch:
            raise ValueError(
                f"Epoch {epoch} yields {cardinality} batches, fewer than "
                f"steps_per_epoch={steps_per_epoch}; repeat the dataset or "
                "lower steps_per_epoch."
            )
        return dataset.take(steps_per_epoch), steps_per_epoch
    if cardinality < 0:
        raise ValueError(
            f"The length of epoch {epoch}'s dataset is not known "
            f"(cardinality {cardinality}), so a resumed run cannot tell "
            "which batches remain: pass `steps_per_epoch` (at most the "
            "batches an epoch yields)."
        )
    if cardinality == 0:
        raise ValueError(
            f"Epoch {epoch}'s dataset yields no batch (fewer examples than "
            "the batch size with drop_remainder?)."
        )
    return dataset, cardinality


def fit_resumable(
    model,
    epoch_data,
    epochs,
    backup=None,
    callbacks=None,
    validation_data=None,
    steps_per_epoch=None,
    verbose=1,
):
    """Trains epoch by epoch so that a killed run resumes exactly.

    Each epoch's batches come from `epoch_data(epoch)`, a dataset that must
    be the same in every process (seed it per epoch, see `epoch_seed`); it
    is iterated once per call.
    With a `ResumableBackup`, the latest backup is restored first; the
    epoch it was taken in is rebuilt and its consumed batches skipped, so
    the run continues with exactly the batches, weights, optimizer state,
    statistics and random-number state an uninterrupted run would have.
    Every epoch is one `model.fit(initial_epoch=e, epochs=e + 1)` call, so
    callbacks see the usual epoch numbers and `validation_data` is
    evaluated at each epoch end; their `params` carry `initial_step`, the
    batch a resumed epoch starts at.

    Args:
        model: a compiled `keras.Model`.
        epoch_data: callable `epoch -> tf.data.Dataset` of batches.
        epochs: int >= 0. Total number of epochs of the run.
        backup: `ResumableBackup` or None. Restored first; runs after the
            other callbacks, so its epoch-end save follows their work.
        callbacks: list of `keras.callbacks.Callback`.
        validation_data: None, a dataset, or a callable returning one (a
            fresh, identically seeded dataset each epoch gives the same
            validation batches every epoch and after a resume).
        steps_per_epoch: int or None. Batches per epoch (the first of each
            epoch's dataset); None uses the dataset's known length.
        verbose: int. 0 (silent), 1 (progress bar) or 2 (one line per
            epoch).

    Returns:
        A `keras.callbacks.History` of the epochs run by this call
        (`history.epoch` lists their indices).

    Examples:

    ```python
    def epoch_data(epoch):
        return keras_lgvq.datasets.make_dataset(
            "scenes", split="train", batch_size=16,
            seed=keras_lgvq.callbacks.epoch_seed(0, epoch),
            text_prior=model.text_prior)

    backup = keras_lgvq.callbacks.ResumableBackup("runs/x/backup",
                                                  save_freq=200)
    history = keras_lgvq.callbacks.fit_resumable(
        model, epoch_data, epochs=3, backup=backup)
    ```
    """
    check_int("epochs", epochs, 0)
    check_int("steps_per_epoch", steps_per_epoch, 1, allow_none=True)
    if verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 0, 1 or 2. Received: {verbose!r}")
    if not callable(epoch_data):
        raise ValueError(
            "`epoch_data` must be a callable `epoch -> tf.data.Dataset`. "
            f"Received: {type(epoch_data).__name__}"
        )
    if backup is not None and not isinstance(backup, ResumableBackup):
        raise ValueError(
            "`backup` must be a keras_lgvq.callbacks.ResumableBackup (it "
            "records the step within the epoch). Received: "
            f"{type(backup).__name__}"
        )
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.BackupAndRestore) and (
            callback is not backup
        ):
            raise ValueError(
                "Pass the backup callback as `backup=`, not among "
                "`callbacks` (it must be restored before the first epoch)."
            )
    start_epoch, start_step = 0, 0
    if backup is not None:
        callbacks = [c for c in callbacks if c is not backup] + [backup]
        backup.set_model(model)
        start_epoch, start_step = backup.restore()

    history = keras.callbacks.History()
    history.epoch = []
    for epoch in range(start_epoch, epochs):
        skip = start_step if epoch == start_epoch else 0
        data, steps = _epoch_length(epoch_data(epoch), steps_per_epoch, epoch)
        if skip >= steps:
            raise ValueError(
                f"The backup says {skip} batches of epoch {epoch} were "
                f"trained, but the epoch has {steps}: the data or "
                "steps_per_epoch changed since the backup was written."
            )
        if epoch == start_epoch and hasattr(model, "_symbolic_build"):
            # Keras builds unbuilt compiled metrics / losses on the first
            # `fit` by drawing a batch from the dataset, i.e. iterating it
            # once more; a dataset that reshuffles per iteration would then
            # serve this epoch in another order than an uninterrupted run.
            # Build them from the element spec instead (a no-op once
            # built).
            model._symbolic_build(data_batch=data.element_spec)
        if skip:
            data = data.skip(skip)
        callback_list = keras.callbacks.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            verbose=verbose,
            epochs=epochs,
            steps=steps - skip,
            model=model,
        )
        callback_list.set_params(
            {
                "verbose": verbose,
                "epochs": epochs,
                "steps": steps - skip,
                "initial_step": skip,
            }
        )
        validation = validation_data
        if callable(validation):
            validation = validation()
        epoch_history = model.fit(
            data,
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=callback_list,
            validation_data=validation,
            # The epoch's dataset is already shuffled (by its seed).
            shuffle=False,
            verbose=verbose,
        )
        history.epoch += list(epoch_history.epoch)
        for key, values in epoch_history.history.items():
            history.history.setdefault(key, []).extend(values)
        if model.stop_training:
            break
    history.set_model(model)
    model.history = history
    return history

"""`NonFiniteGuard`: stop (or skip) a step whose loss terms are NaN or Inf."""

import math

import keras
import numpy as np
from keras import ops

POLICIES = ("stop", "skip")
# Logged totals that contain other terms: a message names the parts first.
TOTAL_TERMS = ("loss", "lg_loss", "nll_loss", "vq_loss")
# Bookkeeping entries of the logs, never loss terms.
_NOT_TERMS = ("skipped_steps",)


def nonfinite_terms(logs):
    """The entries of `logs` that hold NaN or Inf, parts before totals.

    Args:
        logs: dict of name -> number or tensor (a step's or epoch's logs).

    Returns:
        dict name -> float of the non-finite entries: the component terms
        in log order, then the totals in `TOTAL_TERMS` order.

    Examples:

    ```python
    nonfinite_terms({"loss": float("nan"), "mtp_loss": float("nan"),
                     "rec_loss": 0.1})
    # {"mtp_loss": nan, "loss": nan}
    ```
    """
    found = {}
    for name, value in (logs or {}).items():
        if name in _NOT_TERMS:
            continue
        flat = np.asarray(ops.convert_to_numpy(value), "float64").ravel()
        bad = flat[~np.isfinite(flat)]
        if bad.size:
            found[name] = float(bad[0])
    parts = {k: v for k, v in found.items() if k not in TOTAL_TERMS}
    totals = {k: found[k] for k in TOTAL_TERMS if k in found}
    return {**parts, **totals}


def describe_terms(terms):
    """`"mtp_loss=nan (in the totals loss=nan)"` for a `nonfinite_terms`."""
    parts = [f"{k}={v}" for k, v in terms.items() if k not in TOTAL_TERMS]
    totals = [f"{k}={v}" for k, v in terms.items() if k in TOTAL_TERMS]
    if parts and totals:
        return f"{', '.join(parts)} (in the totals {', '.join(totals)})"
    return ", ".join(parts or totals)


class NonFiniteLossError(FloatingPointError):
    """A training step produced a NaN or Inf loss term.

    Attributes:
        epoch: int. 0-based epoch of the step.
        batch: int. 0-based batch of the step within its epoch.
        iteration: int or None. The optimizer's iteration count after the
            step (for keras_lgvq trainers: generator updates so far).
        terms: dict name -> float. The non-finite terms, parts first.
    """

    def __init__(self, message, epoch, batch, iteration, terms):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.iteration = iteration
        self.terms = terms


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at, or skips, a step whose loss terms are NaN or Inf.

    With `policy="stop"` the guard raises `NonFiniteLossError` at the end
    of the first step whose logged terms (every loss term, usage and
    perplexity a keras_lgvq trainer logs) hold NaN or Inf. The message
    names the epoch, the batch within the epoch, the optimizer iteration
    and the offending terms, components before the totals that contain
    them (e.g. `mtp_loss=nan (in the totals loss=nan, lg_loss=nan)`).
    Raising, rather than setting `stop_training`, keeps the callbacks after
    it in the list (checkpoints) from saving the poisoned weights; place
    the guard before them.

    With `policy="skip"` the guard turns on the model's
    `skip_nonfinite_steps` (keras_lgvq trainers: `VQGAN`, `LGVQ` and their
    subclasses; the stage-2 models `Captioner`, `VQAModel` and
    `TextToImage` through `keras_lgvq.backend.nonfinite_skipping`): such a
    step then changes no variable at all (weights,
    batch-norm and EMA statistics, random-number state, both optimizers'
    slots and iteration counts) and is left out of the epoch's means. The
    guard prints which step was skipped and why, keeps the list in
    `skipped`, and raises `NonFiniteLossError` after
    `max_consecutive_skips` skipped steps in a row.

    Args:
        policy: string. `"stop"` or `"skip"`.
        max_consecutive_skips: int or None. `"skip"` only: raise after this
            many consecutive skipped steps; None never raises.
        verbose: bool. Print a line for each skipped step.

    Examples:

    ```python
    guard = keras_lgvq.callbacks.NonFiniteGuard(policy="skip")
    model.fit(ds, epochs=3, callbacks=[guard])
    guard.skipped  # [(epoch, batch, {"mtp_loss": nan, "loss": nan}), ...]
    ```
    """

    def __init__(self, policy="stop", max_consecutive_skips=100, verbose=True):
        super().__init__()
        if policy not in POLICIES:
            raise ValueError(
                f"`policy` must be one of {POLICIES}. Received: "
                f"policy={policy!r}"
            )
        if max_consecutive_skips is not None and (
            isinstance(max_consecutive_skips, bool)
            or not isinstance(max_consecutive_skips, int)
            or max_consecutive_skips < 1
        ):
            raise ValueError(
                "`max_consecutive_skips` must be an int >= 1 or None. "
                f"Received: {max_consecutive_skips!r}"
            )
        self.policy = policy
        self.max_consecutive_skips = max_consecutive_skips
        self.verbose = bool(verbose)
        self.skipped = []
        self._consecutive = 0
        self._epoch = 0
        self._offset = 0
        self._first_epoch_of_fit = True

    def set_model(self, model):
        super().set_model(model)
        has_flag = hasattr(type(model), "skip_nonfinite_steps")
        if self.policy == "skip" and not has_flag:
            raise ValueError(
                "NonFiniteGuard(policy='skip') needs a model that can leave "
                "a step out (a keras_lgvq model such as VQGAN, LGVQ or a "
                "stage-2 model, "
                f"with `skip_nonfinite_steps`); got {type(model).__name__}. "
                "Use policy='stop' for other models."
            )
        if has_flag:
            # Set before `fit` builds its step, which depends on the flag.
            model.skip_nonfinite_steps = self.policy == "skip"

    def on_train_begin(self, logs=None):
        self._first_epoch_of_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        # `keras_lgvq.callbacks.fit_resumable` starts a resumed epoch at
        # its first unseen batch and says so in the params.
        self._offset = (
            int(self.params.get("initial_step", 0) or 0)
            if self._first_epoch_of_fit
            else 0
        )
        self._first_epoch_of_fit = False

    def on_train_batch_end(self, batch, logs=None):
        terms = nonfinite_terms(logs)
        if not terms:
            self._consecutive = 0
            return
        batch = self._offset + batch
        iteration = self._iteration()
        where = (
            f"epoch {self._epoch + 1}, batch {batch + 1} "
            f"(optimizer iteration {iteration})"
        )
        if self.policy == "stop":
            raise NonFiniteLossError(
                f"Non-finite loss at {where}: {describe_terms(terms)}. "
                "Training stopped before any later callback saved this "
                "state; resume from the last checkpoint (e.g. with a lower "
                "learning rate) or train with --nan-policy skip.",
                self._epoch,
                batch,
                iteration,
                terms,
            )
        self.skipped.append((self._epoch, batch, terms))
        self._consecutive += 1
        if self.verbose:
            print(
                f"\nNonFiniteGuard: skipped the step at {where}: "
                f"{describe_terms(terms)}; weights, statistics and "
                "optimizer state were left unchanged.",
                flush=True,
            )
        if (
            self.max_consecutive_skips is not None
            and self._consecutive >= self.max_consecutive_skips
        ):
            raise NonFiniteLossError(
                f"{self._consecutive} consecutive steps had non-finite "
                f"losses (the last at {where}: {describe_terms(terms)}); "
                "skipping cannot recover this run.",
                self._epoch,
                batch,
                iteration,
                terms,
            )

    def _iteration(self):
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        if iterations is None:
            return None
        value = float(ops.convert_to_numpy(iterations))
        return int(value) if math.isfinite(value) else None

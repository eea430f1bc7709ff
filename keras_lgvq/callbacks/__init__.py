"""Training callbacks: exact kill-and-resume, checkpoints, logs, NaN guard.

- `ResumableBackup` + `fit_resumable`: Keras's `BackupAndRestore` made
  exact at any step (data position, random-number state, metric means);
  `epoch_seed` seeds each epoch's data so it can be rebuilt on its own.
- `BestAndLastCheckpoint`: `best.keras` (by validation loss) and
  `last.keras`.
- `ReconstructionImages`: originals and reconstructions in TensorBoard.
- `NonFiniteGuard`: stop at, or skip, a step with a NaN / Inf loss term.
"""

from keras_lgvq.callbacks.best_and_last_checkpoint import BestAndLastCheckpoint
from keras_lgvq.callbacks.nonfinite_guard import NonFiniteGuard
from keras_lgvq.callbacks.nonfinite_guard import NonFiniteLossError
from keras_lgvq.callbacks.reconstruction_images import ReconstructionImages
from keras_lgvq.callbacks.resumable_backup import ResumableBackup
from keras_lgvq.callbacks.resumable_fit import epoch_seed
from keras_lgvq.callbacks.resumable_fit import fit_resumable

"""The training process that `resume_test.py` kills and restarts.

    python -m tests.callbacks.resume_child OUT [--hang-at-step N]

Trains a tiny LG-VQ (32 px, CVQ quantizer with random anchors, dropout in
the tokenizer and the text decoder, a batch-norm PatchGAN switched on at
batch 3) for 2 epochs x 5 steps of batch 2 with
`keras_lgvq.callbacks.fit_resumable`: each epoch's data is reshuffled from
`epoch_seed(0, epoch)`, validation runs every epoch (it draws MTP masks,
so it advances random-number state), and a `ResumableBackup` saves every
2 steps to OUT/backup. At the end it writes OUT/final.npz (every model
and optimizer variable, seed-generator states included) and
OUT/history.json.

With `--hang-at-step N`, when OUT/hang.marker does not exist yet, the
process writes it after its N-th step and then waits to be killed. A
restarted process with the same command finds the marker and trains on.
"""

import argparse
import json
import os
import sys
import threading

EPOCHS = 2
EXAMPLES = 10
BATCH = 2
SAVE_FREQ = 2


class _HangAfter:
    """Writes the marker after `step` steps, then blocks (see module doc)."""

    def __new__(cls, step, marker):
        import keras

        class HangAfter(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seen = 0

            def on_train_batch_end(self, batch, logs=None):
                self.seen += 1
                if self.seen == step:
                    with open(marker + ".partial", "w") as f:
                        f.write(str(step))
                    os.replace(marker + ".partial", marker)
                    threading.Event().wait()

        return HangAfter()


def build_model():
    from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
    from tests.models.tiny_configs import tiny_backbone
    from tests.models.tiny_configs import tiny_lgvq

    quantizer = VectorQuantizer(
        32,
        16,
        reinit="cvq",
        contrastive_weight=1.0,
        seed=0,
        name="quantizer",
    )
    # Few layers: the cost of a run is mostly tracing and compiling.
    backbone = tiny_backbone(
        dropout=0.1, attn_resolutions=(), quantizer=quantizer
    )
    guidance = dict(
        alpha=1.0,
        beta=1.0,
        gamma=1.0,
        vit_layers=1,
        decoder_layers=1,
        decoder_intermediate_dim=32,
        seed=0,
    )
    model = tiny_lgvq(backbone=backbone, guidance=guidance, disc_start=3)
    model.compile(learning_rate=1e-3)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--hang-at-step", type=int, default=None)
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_lgvq.callbacks import ResumableBackup
    from keras_lgvq.callbacks import epoch_seed
    from keras_lgvq.callbacks import fit_resumable
    from tests.models.tiny_configs import tiny_text_batch

    keras.utils.set_random_seed(0)
    model = build_model()
    train = tiny_text_batch(EXAMPLES, seed=0)
    val = tiny_text_batch(4, seed=1)

    def epoch_data(epoch):
        ds = tf.data.Dataset.from_tensor_slices(train)
        ds = ds.shuffle(EXAMPLES, seed=epoch_seed(0, epoch))
        return ds.batch(BATCH, drop_remainder=True)

    def validation():
        return tf.data.Dataset.from_tensor_slices(val).batch(BATCH)

    callbacks = []
    marker = os.path.join(args.out, "hang.marker")
    if args.hang_at_step and not os.path.exists(marker):
        callbacks.append(_HangAfter(args.hang_at_step, marker))
    backup = ResumableBackup(
        os.path.join(args.out, "backup"),
        save_freq=SAVE_FREQ,
        delete_checkpoint=False,
    )
    history = fit_resumable(
        model,
        epoch_data,
        epochs=EPOCHS,
        backup=backup,
        callbacks=callbacks,
        validation_data=validation,
        verbose=0,
    )
    state = model.variables + model.optimizer.variables
    np.savez(
        os.path.join(args.out, "final.npz"),
        **{
            f"{i:04d}:{v.path}": keras.ops.convert_to_numpy(v)
            for i, v in enumerate(state)
        },
    )
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump({"epoch": history.epoch, "history": history.history}, f)


if __name__ == "__main__":
    sys.exit(main())

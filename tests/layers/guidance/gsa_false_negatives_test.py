"""GSA InfoNCE with in-batch false negatives (identical captions) masked."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_lgvq.layers.guidance.global_semantic_alignment import (
    GlobalSemanticAlignment,
)
from keras_lgvq.layers.guidance.language_guidance import LanguageGuidance

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


def reference(v, t, ids, scale=1.0, symmetric=False, mask=True):
    """Loops over anchors; a candidate with the anchor's caption (other than
    the positive) is left out of the denominator."""
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    sim = (v @ t.T) * scale
    n = len(v)

    def one(s):
        losses = []
        for i in range(n):
            keep = [
                j for j in range(n)
                if j == i or not (mask and np.array_equal(ids[i], ids[j]))
            ]
            den = np.exp(s[i, keep].astype(np.float64)).sum() + 1e-6
            losses.append(np.log(den) - s[i, i])
        return np.mean(losses)

    loss = one(sim)
    if symmetric:
        loss = 0.5 * (loss + one(sim.T))
    return loss


def _data(n=6, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 8)).astype("float32")
    t = rng.normal(size=(n, 8)).astype("float32")
    # Rows 0, 2, 5 share a caption; rows 1, 4 share another.
    rows = np.array([[1, 5, 6, 2], [1, 7, 2, 0], [1, 9, 2, 0]])
    ids = rows[[0, 1, 0, 2, 1, 0]].astype("int32")
    return v, t, ids


@pytest.mark.parametrize("symmetric", [False, True])
def test_masked_loss_matches_numpy(symmetric):
    v, t, ids = _data()
    layer = GlobalSemanticAlignment(
        symmetric=symmetric, temperature=0.1, mask_duplicate_captions=True
    )
    loss = float(keras.ops.convert_to_numpy(layer(v, t, token_ids=ids)))
    expected = reference(v, t, ids, scale=10.0, symmetric=symmetric)
    assert loss == pytest.approx(expected, rel=1e-5, abs=1e-5)
    unmasked = reference(v, t, ids, scale=10.0, symmetric=symmetric, mask=False)
    assert abs(expected - unmasked) > 1e-3  # the test can tell them apart


def test_off_by_default_and_equal_without_duplicates():
    v, t, ids = _data()
    plain = GlobalSemanticAlignment()
    assert not plain.mask_duplicate_captions
    off = float(keras.ops.convert_to_numpy(plain(v, t, token_ids=ids)))
    assert off == pytest.approx(reference(v, t, ids, mask=False), rel=1e-5)
    unique = np.arange(6 * 4, dtype="int32").reshape(6, 4)
    on = GlobalSemanticAlignment(mask_duplicate_captions=True)
    value = float(keras.ops.convert_to_numpy(on(v, t, token_ids=unique)))
    assert value == pytest.approx(off, rel=1e-6)


def test_needs_token_ids_and_round_trips():
    v, t, _ = _data()
    layer = GlobalSemanticAlignment(mask_duplicate_captions=True)
    with pytest.raises(ValueError, match="needs the captions' `token_ids`"):
        layer(v, t)
    config = layer.get_config()
    assert config["mask_duplicate_captions"] is True
    assert GlobalSemanticAlignment.from_config(config).mask_duplicate_captions


def test_gradient_is_finite_through_the_mask():
    v, t, ids = _data()
    layer = GlobalSemanticAlignment(mask_duplicate_captions=True)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(v)
        with tf.GradientTape() as tape:
            loss = layer(x, t, token_ids=ids)
        grad = tape.gradient(loss, x).numpy()
    elif BACKEND == "jax":
        import jax

        grad = np.asarray(
            jax.grad(lambda x: layer(x, t, token_ids=ids))(v)
        )
    else:
        import torch

        x = torch.tensor(v, requires_grad=True)
        layer(x, torch.tensor(t), token_ids=torch.tensor(ids)).backward()
        grad = x.grad.numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_language_guidance_flag_reaches_the_layer():
    guidance = LanguageGuidance(
        code_dim=8, text_dim=8, vocabulary_size=12, num_tokens=4,
        sequence_length=4, decoder_intermediate_dim=8,
        gsa_mask_duplicate_captions=True,
    )
    assert guidance.gsa.mask_duplicate_captions
    config = guidance.get_config()
    assert config["gsa_mask_duplicate_captions"] is True
    assert not LanguageGuidance(
        code_dim=8, text_dim=8, vocabulary_size=12, num_tokens=4,
        sequence_length=4, decoder_intermediate_dim=8,
    ).gsa.mask_duplicate_captions


_MIRRORED = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, os.getcwd())
    from keras_lgvq.layers.guidance.global_semantic_alignment import (
        GlobalSemanticAlignment)

    data = json.loads(sys.argv[1])
    v, t = np.float32(data["v"]), np.float32(data["t"])
    ids = np.int32(data["ids"])
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = GlobalSemanticAlignment(
            symmetric=True, temperature=0.5, mask_duplicate_captions=True)
    half = len(v) // 2
    parts = strategy.experimental_distribute_values_from_function(
        lambda c: tuple(
            a[c.replica_id_in_sync_group * half:
              (c.replica_id_in_sync_group + 1) * half]
            for a in (v, t, ids)))

    @tf.function
    def run(parts):
        return strategy.run(lambda a, b, c: layer(a, b, token_ids=c),
                            args=parts)

    losses = strategy.experimental_local_results(run(parts))
    # The trainer divides each replica's loss by the replica count and sums.
    print(json.dumps(float(sum(l.numpy() for l in losses) / 2)))
    """
)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute only")
def test_global_batch_mask_spans_replicas():
    v, t, ids = _data(n=6, seed=2)
    # Duplicates across the two replicas' halves (rows 0 / 5 and 1 / 4).
    payload = json.dumps(
        {"v": v.tolist(), "t": t.tolist(), "ids": ids.tolist()}
    )
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED, payload],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND="tensorflow"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loss = json.loads(result.stdout.strip().splitlines()[-1])
    expected = reference(v, t, ids, scale=2.0, symmetric=True)
    assert loss == pytest.approx(expected, rel=1e-5, abs=1e-5)

"""FLOP counting of the benchmarks (torch's FlopCounterMode): a hand count
on a tiny conv net, anchors.md's 391 GFLOP for the taming f16 VQGAN forward
at 256 px, and the efficiency arithmetic."""

import os
import sys

import numpy as np
import pytest

BENCHMARKS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "benchmarks"
)
sys.path.insert(0, BENCHMARKS)

import flop_count  # noqa: E402

TORCH_ONLY = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "torch",
    reason="FlopCounterMode counts torch (aten) ops: the FLOPs are counted "
    "once, under KERAS_BACKEND=torch, and stored for every backend",
)


def _conv_flops(batch, height, width, c_in, c_out, k):
    # 2 FLOPs per multiply-add, 'same' padding, stride 1.
    return 2 * batch * height * width * c_in * c_out * k * k


@TORCH_ONLY
def test_tiny_conv_net_matches_hand_count():
    import keras

    model = keras.Sequential(
        [
            keras.Input((12, 10, 3)),
            keras.layers.Conv2D(8, 3, padding="same"),
            keras.layers.Conv2D(5, 1),
            keras.layers.Conv2D(4, 5, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(7),
        ]
    )
    x = np.random.default_rng(0).normal(size=(2, 12, 10, 3)).astype("float32")
    total, per_op, out = flop_count.count_flops(model, x)
    expected = (
        _conv_flops(2, 12, 10, 3, 8, 3)
        + _conv_flops(2, 12, 10, 8, 5, 1)
        + _conv_flops(2, 12, 10, 5, 4, 5)
        + 2 * 2 * (12 * 10 * 4) * 7
    )
    assert total == expected
    assert tuple(out.shape) == (2, 7)
    assert any("convolution" in op for op in per_op)


@TORCH_ONLY
def test_taming_f16_forward_at_256px_is_391_gflop():
    import torch

    from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone
    from keras_lgvq.models.vqgan.vqgan_presets import PAPER_BACKBONE

    backbone = VQGANBackbone(**PAPER_BACKBONE)
    images = torch.zeros((1, 256, 256, 3))
    with torch.no_grad():
        encoder, _, z = flop_count.count_flops(backbone.encoder, images)
        decoder, _, _ = flop_count.count_flops(backbone.decoder, z)
    # anchors.md item 8: encoder 138.4, decoder 252.7, together 391 GFLOP.
    assert encoder / 1e9 == pytest.approx(138.4, rel=0.05)
    assert decoder / 1e9 == pytest.approx(252.7, rel=0.05)
    assert (encoder + decoder) / 1e9 == pytest.approx(391.0, rel=0.05)


@TORCH_ONLY
def test_train_step_counts_forward_and_backward():
    import keras
    from keras import ops

    from keras_lgvq.models.vqgan.vqgan import VQGAN
    from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

    keras.utils.set_random_seed(0)
    backbone = VQGANBackbone(
        resolution=32,
        ch=32,
        ch_mult=(1, 2),
        num_res_blocks=1,
        attn_resolutions=(),
        z_channels=32,
        num_embeddings=32,
        embedding_dim=16,
    )
    model = VQGAN(backbone, disc_start=0)
    model.compile(learning_rate=1e-4)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3))
    images = images.astype("float32")
    forward, _, _ = flop_count.count_flops(
        backbone.encode_decode, ops.convert_to_tensor(images)
    )
    step, per_op, skipped = flop_count.train_step_flops(
        model, {"images": images}
    )
    assert not skipped
    # Backward of each conv costs ~2 forwards (input and weight
    # gradients), and the discriminator runs on top.
    assert step > 2.5 * forward
    assert any("convolution_backward" in op for op in per_op)

    late = VQGAN(backbone, disc_start=1000)
    late.compile(learning_rate=1e-4)
    late_step, _, late_skipped = flop_count.train_step_flops(
        late, {"images": images}
    )
    # Before disc_start `fit` runs the GAN-off step: fewer FLOPs.
    assert late_skipped
    assert late_step < step


def test_efficiency_arithmetic():
    entry = {"gflop_per_step": 100.0}
    eff = flop_count.efficiency(entry, 0.5, peak_gflops=400.0)
    assert eff["gflops_per_s"] == pytest.approx(200.0)
    assert eff["share_of_fp32_peak"] == pytest.approx(0.5)
    assert flop_count.efficiency(None, 0.5) is None
    # The documented peak: 2 cores x 64 FLOP/cycle x 2.6 GHz.
    assert flop_count.PEAK_GFLOPS == pytest.approx(332.8)


def test_store_merges_entries(tmp_path):
    path = str(tmp_path / "flops.json")
    flop_count.store(
        {"a/vqgan/b8": flop_count.record("a", "vqgan", 8, 8e9, False)}, path
    )
    flop_count.store(
        {"b/vqgan/b4": flop_count.record("b", "vqgan", 4, 2e9, True)}, path
    )
    data = flop_count.load(path)
    assert set(data["entries"]) == {"a/vqgan/b8", "b/vqgan/b4"}
    assert data["entries"]["a/vqgan/b8"]["gflop_per_image"] == 1.0
    assert data["peak_gflops"] == 332.8

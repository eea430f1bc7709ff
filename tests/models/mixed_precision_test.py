"""`mixed_bfloat16` end to end: VQGAN and LG-VQ train steps run in bf16
while the quantizer's distances and every loss stay float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from tests.models.tiny_configs import tiny_backbone
from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_text_batch
from tests.models.tiny_configs import tiny_vqgan


@pytest.fixture
def mixed_bfloat16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _one_fit_step(model, batch):
    """One real train step; records the dtypes the quantizer searches in."""
    quantizer = model.backbone.quantizer
    search = quantizer._search_space
    seen = []

    def recording(z, codebook):
        out = search(z, codebook)
        seen.extend(_dtype(x) for x in out)
        return out

    quantizer._search_space = recording
    model.compile(learning_rate=1e-3)
    ds = tf.data.Dataset.from_tensor_slices(batch).batch(len(batch["images"]))
    history = model.fit(ds, epochs=1, verbose=0).history
    return {key: float(values[-1]) for key, values in history.items()}, seen


def _check_mixed(model):
    # The policy is really in force: bf16 activations, float32 weights.
    assert model.backbone.encoder.compute_dtype == "bfloat16"
    assert model.backbone.encoder.variable_dtype == "float32"
    assert _dtype(model.backbone.quantizer.codebook) == "float32"


def test_vqgan_step(mixed_bfloat16):
    # The small backbone (no attention) keeps the bf16 compile short.
    model = tiny_vqgan(backbone=tiny_backbone(attn_resolutions=()))
    _check_mixed(model)
    # The discriminator's logits conv computes in float32 (on torch CPUs
    # without oneDNN bf16, its one-filter bf16 backward fails).
    logits_conv = model.discriminator.sequence[-1]
    assert logits_conv.name.startswith("conv_")
    assert logits_conv.compute_dtype == "float32"
    assert model.discriminator.sequence[-3].compute_dtype == "bfloat16"
    logs, seen = _one_fit_step(model, {"images": tiny_images(4)})
    assert seen and set(seen) == {"float32"}
    for key in ("loss", "rec_loss", "vq_loss", "g_loss", "d_weight",
                "disc_loss"):
        assert np.isfinite(logs[key]), (key, logs)
    assert logs["disc_factor"] == 1.0 and logs["d_weight"] > 0.0
    # Eagerly through `encode_decode` (no enclosing layer call): the search
    # sees the float32 codebook itself, not a bf16-rounded copy.
    quantizer = model.backbone.quantizer
    codebook = np.array(keras.ops.convert_to_numpy(quantizer.codebook))
    searched = []
    search = quantizer._search_space

    def recording(z, codes):
        searched.append(np.array(keras.ops.convert_to_numpy(codes)))
        return search(z, codes)

    quantizer._search_space = recording
    outputs = model.backbone.encode_decode(tiny_images(2), training=False)
    np.testing.assert_array_equal(searched[-1], codebook)
    assert _dtype(outputs["reconstruction"]) == "bfloat16"
    assert _dtype(outputs["loss"]) == "float32"


def test_lgvq_step(mixed_bfloat16):
    # The GAN path in bf16 is covered above; without it (and with one
    # layer per guidance transformer) the bf16 compile stays short.
    model = tiny_lgvq(
        backbone=tiny_backbone(attn_resolutions=()),
        discriminator=None,
        guidance=dict(
            decoder_intermediate_dim=32,
            vit_layers=1,
            decoder_layers=1,
            seed=0,
        ),
    )
    _check_mixed(model)
    assert model.guidance.mtp.compute_dtype == "bfloat16"
    logs, seen = _one_fit_step(model, tiny_text_batch(4))
    assert seen and set(seen) == {"float32"}
    for key in ("loss", "lg_loss", "gsa_loss", "mtp_loss", "ras_loss"):
        assert np.isfinite(logs[key]), (key, logs)
    assert logs["mtp_loss"] > 0 and logs["gsa_loss"] > 0
    batch = tiny_text_batch(2)
    quantized = model.backbone.encode_decode(batch["images"])["quantized"]
    text = {k: v for k, v in batch.items() if k != "images"}
    out = model.guidance(quantized, text, model.token_embeddings)
    for key in ("loss", "gsa_loss", "mtp_loss", "ras_loss"):
        assert _dtype(out[key]) == "float32", key


def test_quantizer_distances_resolve_what_bf16_cannot(mixed_bfloat16):
    # z = 16 (exact in bf16). Squared distances 0.0025 and 0.0016 are
    # resolved in float32 (|z|^2 - 2 z.e + |e|^2 ~ 512 has float32 steps of
    # 6e-5) but not in bf16 (steps of 2 at 512, and 16.05 / 15.96 both
    # round to 16): a bf16 search would return code 0, not 1.
    codebook = np.array([[16.05], [15.96]], "float32")
    quantizer = VectorQuantizer(2, 1, codebook_initializer=codebook)
    assert quantizer.dtype_policy.name == "mixed_bfloat16"
    z = keras.ops.cast(keras.ops.full((1, 2, 2, 1), 16.0), "bfloat16")
    out = quantizer(z)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out["indices"]), 1)
    assert _dtype(out["loss"]) == "float32"
    # `quantized` keeps the caller's dtype.
    assert _dtype(out["quantized"]) == "bfloat16"

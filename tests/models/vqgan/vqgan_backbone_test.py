import numpy as np
import pytest
from keras import ops

from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone
from tests.models.tiny_configs import tiny_backbone
from tests.models.tiny_configs import tiny_images


def test_encode_decode_and_forward_agree():
    backbone = tiny_backbone()
    images = tiny_images(2)
    indices = ops.convert_to_numpy(backbone.encode(images))
    assert indices.shape == (2, 16, 16)
    assert indices.dtype == np.int32
    assert indices.min() >= 0 and indices.max() < 32
    decoded = ops.convert_to_numpy(backbone.decode(indices))
    outputs = backbone.encode_decode(images)
    reconstruction = ops.convert_to_numpy(outputs["reconstruction"])
    assert decoded.shape == images.shape
    # z + (z_q - z) is z_q only up to rounding: allow 1e-4.
    np.testing.assert_allclose(decoded, reconstruction, atol=1e-4)
    np.testing.assert_allclose(
        ops.convert_to_numpy(backbone(images)), reconstruction, atol=1e-5
    )
    np.testing.assert_array_equal(
        ops.convert_to_numpy(outputs["indices"]), indices
    )
    for key in (
        "quantized",
        "decoder_features",
        "loss",
        "codebook_loss",
        "commitment_loss",
        "perplexity",
        "usage",
    ):
        assert key in outputs


def test_config_round_trip_gives_identical_outputs():
    backbone = tiny_backbone()
    images = tiny_images(2)
    restored = VQGANBackbone.from_config(backbone.get_config())
    restored.set_weights(backbone.get_weights())
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(images)),
        ops.convert_to_numpy(backbone(images)),
        atol=1e-6,
    )


def test_custom_quantizer_is_serialized():
    from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer

    quantizer = VectorQuantizer(
        48, 16, reinit="cvq", contrastive_weight=1.0, name="quantizer"
    )
    backbone = tiny_backbone(quantizer=quantizer)
    assert backbone.num_embeddings == 48
    config = backbone.get_config()
    restored = VQGANBackbone.from_config(config)
    assert restored.quantizer.reinit == "cvq"


def test_save_and_load_preset(tmp_path):
    backbone = tiny_backbone()
    images = tiny_images(2)
    backbone.save_to_preset(str(tmp_path / "preset"))
    restored = VQGANBackbone.from_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(
        ops.convert_to_numpy(restored(images)),
        ops.convert_to_numpy(backbone(images)),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((32, 32, 3), "float32"), "4-D"),
        (np.zeros((1, 32, 32, 1), "float32"), "3 channels"),
        (np.zeros((1, 32, 32, 3), "uint8"), "floating point"),
    ],
)
def test_bad_images_raise(images, match):
    backbone = tiny_backbone()
    with pytest.raises(ValueError, match=match):
        backbone.encode(images)


def test_paper_f16_parameter_count():
    # lgvq-spec §1.1: taming VQGAN f16, K=1024, D=256, 256 px.
    backbone = VQGANBackbone()
    counts = {
        layer.name: layer.count_params()
        for layer in (
            backbone.encoder,
            backbone.quant_conv,
            backbone.quantizer,
            backbone.post_quant_conv,
            backbone.decoder,
        )
    }
    assert counts["quantizer"] == 1024 * 256
    assert counts["quant_conv"] == 256 * 256 + 256
    assert backbone.count_params() == sum(counts.values())
    assert backbone.count_params() == taming_parameter_count()
    # For the record: taming's vqgan_imagenet_f16_1024 has ~72.1M parameters.
    assert backbone.count_params() == 72_141_699


def taming_parameter_count(
    resolution=256,
    ch=128,
    ch_mult=(1, 1, 2, 2, 4),
    num_res_blocks=2,
    attn_resolutions=(16,),
    z_channels=256,
    embed_dim=256,
    n_embed=1024,
):
    """Parameter count of taming's VQModel, derived from its layer list."""

    def conv(cin, cout, k):
        return cin * cout * k * k + cout

    def norm(c):
        return 2 * c

    def res(cin, cout):
        shortcut = conv(cin, cout, 1) if cin != cout else 0
        return norm(cin) + conv(cin, cout, 3) + norm(cout) + (
            conv(cout, cout, 3) + shortcut
        )

    def attn(c):
        return norm(c) + 4 * conv(c, c, 1)

    levels = len(ch_mult)
    total = conv(3, ch, 3)  # encoder
    block_in, size = ch, resolution
    for i, mult in enumerate(ch_mult):
        for _ in range(num_res_blocks):
            total += res(block_in, ch * mult)
            block_in = ch * mult
            total += attn(block_in) if size in attn_resolutions else 0
        if i != levels - 1:
            total += conv(block_in, block_in, 3)
            size //= 2
    total += 2 * res(block_in, block_in) + attn(block_in)
    total += norm(block_in) + conv(block_in, z_channels, 3)
    total += conv(z_channels, embed_dim, 1) + n_embed * embed_dim
    total += conv(embed_dim, z_channels, 1)
    block_in = ch * ch_mult[-1]  # decoder
    total += conv(z_channels, block_in, 3)
    total += 2 * res(block_in, block_in) + attn(block_in)
    for i in reversed(range(levels)):
        for _ in range(num_res_blocks + 1):
            total += res(block_in, ch * ch_mult[i])
            block_in = ch * ch_mult[i]
            total += attn(block_in) if size in attn_resolutions else 0
        if i != 0:
            total += conv(block_in, block_in, 3)
            size *= 2
    return total + norm(block_in) + conv(block_in, 3, 3)

"""LQAEBackbone on tiny configs: tokens, decoding paths, gradients, errors."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from keras_lgvq.models import LQAE
from keras_lgvq.models import LQAEBackbone
from tests.layers.grad_utils import input_grads
from tests.models.lqae.tiny_lqae import TINY_VIT
from tests.models.lqae.tiny_lqae import VOCABULARY
from tests.models.lqae.tiny_lqae import WIDTH
from tests.models.lqae.tiny_lqae import tiny_backbone
from tests.models.lqae.tiny_lqae import tiny_images
from tests.models.lqae.tiny_lqae import tiny_language_model


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.fixture(scope="module")
def backbone():
    return tiny_backbone()


def _cosine_ids(latents, table):
    z = latents.reshape(-1, table.shape[1]).astype("float64")
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    t = table / np.linalg.norm(table, axis=-1, keepdims=True)
    return (z @ t.T).argmax(-1)


def test_encode_is_the_cosine_nearest_lm_token(backbone):
    images = tiny_images()
    ids = backbone.encode(images)
    assert tuple(ids.shape) == (4, 4, 4)
    assert keras.backend.standardize_dtype(ids.dtype) == "int32"
    outputs = backbone.encode_decode(images)
    table = _np(backbone.language_model.token_embedding_matrix())
    np.testing.assert_array_equal(
        _np(ids).reshape(-1), _cosine_ids(_np(outputs["latents"]), table)
    )
    # The encoder sees (images + 1) / 2, the official [0, 1] pixels.
    pixels = (images + 1.0) / 2.0
    np.testing.assert_allclose(
        _np(backbone.encoder(pixels)), _np(outputs["encoder_features"]),
        atol=1e-5,
    )
    # The LM read the raw table rows of the chosen tokens.
    np.testing.assert_allclose(
        _np(outputs["quantized"]).reshape(-1, WIDTH),
        table[_np(ids).reshape(-1)],
        atol=1e-6,
    )


def test_decode_equals_the_unmasked_forward_and_the_functional_call(backbone):
    images = tiny_images()
    outputs = backbone.encode_decode(images)
    reconstruction = _np(outputs["reconstruction"])
    assert reconstruction.shape == (4, 32, 32, 3)
    decoded = _np(backbone.decode(backbone.encode(images)))
    np.testing.assert_allclose(decoded, reconstruction, atol=1e-4)
    np.testing.assert_allclose(_np(backbone(images)), reconstruction, atol=1e-4)
    # Decoder input = the LM's last hidden states (README run).
    grid = ops.reshape(outputs["lm_hidden_states"], (4, 4, 4, WIDTH))
    np.testing.assert_allclose(
        _np(backbone.decoder(grid)) * 2.0 - 1.0, reconstruction, atol=1e-4
    )


def test_predicted_tokens_decoder_input_is_the_argmax_embedding():
    backbone = tiny_backbone(decoder_input="predicted_tokens")
    images = tiny_images()
    ids = _np(backbone.encode(images))
    lm = backbone.language_model
    table = _np(lm.token_embedding_matrix())
    logits = _np(lm(table[ids.reshape(4, 16)])["logits"])
    predicted = table[logits.argmax(-1)].reshape(4, 4, 4, WIDTH)
    expected = _np(backbone.decoder(predicted)) * 2.0 - 1.0
    np.testing.assert_allclose(_np(backbone.decode(ids)), expected, atol=1e-4)
    np.testing.assert_allclose(
        _np(backbone.encode_decode(images)["reconstruction"]),
        expected,
        atol=1e-4,
    )


def test_masked_tokens_read_the_mask_embedding(backbone):
    images = tiny_images()
    mask = np.zeros((4, 4, 4), bool)
    mask[:, 0, :] = True
    out = backbone.encode_decode(images, token_mask=mask)
    lm = backbone.language_model
    table = _np(lm.token_embedding_matrix())
    sequence = _np(out["quantized"]).reshape(4, 16, WIDTH).copy()
    sequence[mask.reshape(4, 16)] = table[lm.mask_token_id]
    np.testing.assert_allclose(
        _np(out["lm_logits"]), _np(lm(sequence)["logits"]), atol=1e-4
    )
    with pytest.raises(ValueError, match="`token_mask` must be a boolean"):
        backbone.encode_decode(images, token_mask=np.zeros((4, 5), bool))


def test_mlm_gradient_reaches_the_encoder_only_through_unmasked_tokens(
    backbone,
):
    images = tiny_images()
    latents = _np(backbone.encode_decode(images)["latents"])
    rng = np.random.default_rng(0)
    mask = rng.uniform(size=(4, 4, 4)) < 0.5
    mask[0, 0, 0], mask[0, 0, 1] = True, False
    model = LQAE(backbone)

    def mlm(z):
        out = backbone.forward_latents(z, token_mask=mask, training=True)
        return model.masked_lm_loss(out["lm_logits"], out["indices"], mask)[0]

    loss, (grad,) = input_grads(mlm, [latents])
    assert float(loss) > 0
    norms = np.linalg.norm(grad, axis=-1)
    assert np.all(norms[mask] == 0.0)
    assert np.all(norms[~mask] > 0.0)


def test_projection_flag_for_differing_widths():
    lm = tiny_language_model(hidden_dim=16)
    with pytest.raises(ValueError) as error:
        tiny_backbone(language_model=lm)
    message = str(error.value)
    assert "`hidden_dim`=32" in message and "code width 16" in message
    assert "project_to_language_model=True" in message
    backbone = tiny_backbone(language_model=lm, project_to_language_model=True)
    out = backbone.encode_decode(tiny_images(2))
    assert tuple(out["latents"].shape) == (2, 4, 4, 16)
    assert tuple(out["encoder_features"].shape) == (2, 4, 4, WIDTH)
    assert tuple(out["reconstruction"].shape) == (2, 32, 32, 3)


def test_bad_inputs_and_arguments_are_clear_errors(backbone):
    with pytest.raises(ValueError, match=r"must be in \[-1, 1\]"):
        backbone.encode(tiny_images() * 127.5 + 127.5)
    with pytest.raises(ValueError, match="must be floating point"):
        backbone.encode(np.zeros((1, 32, 32, 3), "uint8"))
    with pytest.raises(ValueError, match=r"must be code ids in \[0, 64\)"):
        backbone.decode(np.full((1, 4, 4), VOCABULARY, "int32"))
    with pytest.raises(ValueError, match=r"\(batch, 4, 4\) integer grid"):
        backbone.decode(np.zeros((1, 16), "int32"))
    with pytest.raises(ValueError, match="`decoder_input` must be one of"):
        tiny_backbone(decoder_input="logits")
    with pytest.raises(ValueError, match="VQAE baseline"):
        tiny_backbone(decoder_input="quantized")
    with pytest.raises(ValueError, match="needs a `language_model`"):
        LQAEBackbone(**TINY_VIT)
    with pytest.raises(ValueError, match="more than the language model's"):
        tiny_backbone(image_size=64, patch_size=8)


def test_image_representations_for_probes(backbone):
    reps = backbone.image_representations(tiny_images(2))
    assert len(reps["encoder_layer_outputs"]) == 1
    assert tuple(reps["encoder_layer_outputs"][0].shape) == (2, 16, WIDTH)
    # Embedding output + one transformer layer, unmasked.
    assert len(reps["lm_layer_outputs"]) == 2
    assert tuple(reps["lm_layer_outputs"][-1].shape) == (2, 16, WIDTH)
    np.testing.assert_array_equal(
        _np(reps["indices"]), _np(backbone.encode(tiny_images(2)))
    )


def test_vqae_backbone_decodes_its_learned_codes():
    quantizer = VectorQuantizer(128, WIDTH, beta=0.25, name="quantizer")
    backbone = LQAEBackbone(
        quantizer=quantizer, decoder_input="quantized", **TINY_VIT
    )
    images = tiny_images()
    out = backbone.encode_decode(images)
    assert "lm_logits" not in out
    np.testing.assert_allclose(
        _np(backbone.decode(backbone.encode(images))),
        _np(out["reconstruction"]),
        atol=1e-4,
    )
    assert backbone.num_embeddings == 128


def test_saved_weights_leave_out_the_language_models_table(tmp_path):
    import h5py

    # The table is the LM's (re-read from the LM asset when the model is
    # rebuilt): weight files keep only what was trained.
    source = tiny_backbone()
    path = str(tmp_path / "lqae.weights.h5")
    source.save_weights(path)
    saved = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda _, item: saved.append(np.asarray(item))
            if isinstance(item, h5py.Dataset) else None
        )
    table = _np(source.quantizer.embedding_table)
    assert table.shape == (VOCABULARY, WIDTH) and np.any(table)
    assert len(saved) > 10
    assert not any(
        v.shape == table.shape and np.array_equal(v, table) for v in saved
    )
    assert source.quantizer.get_config()["save_embedding_table"] is False
    # Loaded into a fresh backbone on the same LM: the same model.
    target = tiny_backbone()
    target.load_weights(path)
    images = tiny_images()
    np.testing.assert_array_equal(
        _np(target.encode(images)), _np(source.encode(images))
    )
    np.testing.assert_allclose(_np(target(images)), _np(source(images)),
                               atol=1e-5)


def test_backbone_saves_and_loads_with_safe_mode(backbone, tmp_path):
    path = str(tmp_path / "lqae_backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, LQAEBackbone)
    images = tiny_images()
    np.testing.assert_array_equal(
        _np(restored.encode(images)), _np(backbone.encode(images))
    )
    np.testing.assert_allclose(
        _np(restored(images)), _np(backbone(images)), atol=1e-5
    )
    restored.save_to_preset(str(tmp_path / "preset"))
    again = LQAEBackbone.from_preset(str(tmp_path / "preset"))
    np.testing.assert_allclose(
        _np(again(images)), _np(backbone(images)), atol=1e-5
    )

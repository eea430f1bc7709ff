"""VQCT through the VQGAN family's own path: presets pick the tokenizer
class, `VQGAN` / `LGVQ` train it (VQCT / VQCT+LG), files and SavedModel
exports keep the trailing index axis."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_lgvq.models import LGVQ
from keras_lgvq.models import VQCT
from keras_lgvq.models import VQCTLG
from keras_lgvq.models import VQGAN
from keras_lgvq.models import VQCTBackbone
from keras_lgvq.models import VQGANBackbone
from keras_lgvq.models import presets
from keras_lgvq.models.vqct.vqct_backbone import SUBCODEBOOK_LOGS
from keras_lgvq.models.vqgan.vqgan_backbone import preset_backbone_class
from tests.models.tiny_configs import tiny_backbone
from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_text_batch
from tests.models.vqct.tiny_vqct import TOP_K
from tests.models.vqct.tiny_vqct import tiny_vqct_backbone

BACKEND = keras.backend.backend()
# `scenes_vqct` shrunk to 32 px (f=2, 16x16 grid), as a preset override.
SMALL = dict(resolution=32, ch=32, ch_mult=(1, 2), z_channels=32)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_presets_name_their_tokenizer_class():
    assert preset_backbone_class(presets.get_preset("scenes")) is (
        VQGANBackbone
    )
    for name in ("scenes_vqct", "scenes_vqct_lg", "cub_vqct"):
        assert preset_backbone_class(presets.get_preset(name)) is (
            VQCTBackbone
        )
    spec = presets.get_preset("scenes_vqct")
    spec["backbone_class"] = "NoSuchBackbone"
    with pytest.raises(ValueError, match="not a registered"):
        preset_backbone_class(spec)


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_vqgan_family_classes_build_vqct_presets():
    backbone = VQGANBackbone.from_preset("scenes_vqct", **SMALL)
    assert isinstance(backbone, VQCTBackbone)
    assert backbone.index_shape == (16, 16, TOP_K + 1)
    assert [p.name for p in backbone.sub_codebooks] == ["adjective", "noun"]

    # VQGAN on a VQCT preset is VQCT: same backbone class, same logs.
    vqgan = VQGAN.from_preset("scenes_vqct", discriminator=None, **SMALL)
    assert type(vqgan) is VQGAN and isinstance(vqgan.backbone, VQCTBackbone)
    vqct = VQCT(vqgan.backbone, discriminator=None)
    assert vqgan.log_names() == vqct.log_names()
    for key in SUBCODEBOOK_LOGS:
        assert key in vqgan.log_names()
    assert "adjective_loss" not in VQGAN(
        tiny_backbone(), discriminator=None
    ).log_names()
    # Backbone fields go to the VQCT backbone, not beside a given one.
    with pytest.raises(ValueError, match="either `backbone`"):
        VQGAN.from_preset("scenes_vqct", backbone=backbone, resolution=32)

    # LG-VQ attaches to VQCT through the same path as to VQGAN (VQCTLG,
    # the public name of the same model, is built in vqct_test.py).
    lg = LGVQ.from_preset(
        "scenes_vqct_lg", text_prior=None, discriminator=None, **SMALL
    )
    assert type(lg) is LGVQ and isinstance(lg.backbone, VQCTBackbone)
    assert lg.guidance.code_dim == lg.backbone.embedding_dim == 64
    assert lg.guidance.num_tokens == 16 * 16
    assert lg.guidance.alpha == 0.01  # the `scenes` LG-VQ guidance
    assert "adjective_usage" in lg.log_names() and "gsa_loss" in (
        lg.log_names()
    )
    assert issubclass(VQCTLG, LGVQ)


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_vqgan_trainer_logs_each_sub_codebook():
    model = VQGAN(tiny_vqct_backbone(), discriminator=None)
    model.compile(learning_rate=1e-3)
    data = tf.data.Dataset.from_tensor_slices(
        {"images": tiny_images(4)}
    ).batch(4)
    history = model.fit(data, epochs=1, verbose=0).history
    for key in SUBCODEBOOK_LOGS:
        assert np.isfinite(history[key][-1]), key
    np.testing.assert_allclose(
        history["vq_loss"][-1],
        history["adjective_loss"][-1] + history["noun_loss"][-1],
        rtol=1e-4,
    )


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_lgvq_on_vqct_round_trips_through_keras_files_and_presets(tmp_path):
    # An LGVQ (not VQCTLG) on a VQCT backbone: building while loading must
    # wait for the prior that arrives with the weights.
    model = tiny_lgvq(backbone=tiny_vqct_backbone(), discriminator=None)
    model.compile(learning_rate=1e-3)
    images = tiny_text_batch(2)["images"]
    expected = _np(model.backbone.encode(images))
    path = str(tmp_path / "lgvq_vqct.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is LGVQ and isinstance(loaded.backbone, VQCTBackbone)
    np.testing.assert_array_equal(_np(loaded.backbone.encode(images)), expected)

    directory = str(tmp_path / "preset")
    model.save_to_preset(directory)
    restored = LGVQ.from_preset(directory)
    assert isinstance(restored.backbone, VQCTBackbone)
    np.testing.assert_array_equal(
        _np(restored.backbone.encode(images)), expected
    )
    backbone = VQGANBackbone.from_preset(directory)
    assert isinstance(backbone, VQCTBackbone)
    np.testing.assert_allclose(
        _np(backbone.decode(expected)),
        _np(model.backbone.decode(expected)),
        atol=1e-5,
    )


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_flatten_indices_round_trip_on_the_backbone():
    backbone = tiny_vqct_backbone()
    indices = _np(backbone.encode(tiny_images(2)))
    ids = backbone.flatten_indices(indices)
    assert ids.shape == indices.shape
    np.testing.assert_array_equal(ids[..., :TOP_K], indices[..., :TOP_K])
    np.testing.assert_array_equal(
        ids[..., TOP_K], indices[..., TOP_K] + backbone.num_adjectives
    )
    assert ids.max() < backbone.num_embeddings
    np.testing.assert_array_equal(backbone.unflatten_indices(ids), indices)


@pytest.mark.skipif(
    BACKEND == "torch", reason="SavedModel endpoints: TF and JAX backends"
)
def test_export_keeps_the_index_axis(tmp_path):
    model = VQCT(tiny_vqct_backbone(), discriminator=None)
    model.build()
    images = tiny_images(2, seed=5)
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    indices = reloaded.encode(tf.constant(images)).numpy()
    assert indices.shape == (2, 16, 16, TOP_K + 1)
    np.testing.assert_array_equal(indices, _np(model.backbone.encode(images)))
    np.testing.assert_allclose(
        reloaded.decode(tf.constant(indices)).numpy(),
        _np(model.backbone.decode(indices)),
        atol=1e-4,
    )
    signature = reloaded.decode.concrete_functions[0].structured_input_signature
    assert tuple(signature[0][0].shape) == (None, 16, 16, TOP_K + 1)

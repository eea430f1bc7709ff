"""VQCT tokenizer, trainer, VQCT+LG and presets on tiny configs (32 px)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_lgvq.models import LGVQ, VQCT, VQCTLG, VQCTBackbone, presets
from tests.models.tiny_configs import (
    TINY_TEXT,
    tiny_discriminator,
    tiny_images,
    tiny_text_batch,
)
from tests.models.vqct.tiny_vqct import (
    ADJECTIVES,
    ARCH,
    LATENT,
    NOUNS,
    TOP_K,
    tiny_prior,
    tiny_vqct_backbone,
)


@pytest.fixture(scope="module")
def prior_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("prior") / "tiny")
    tiny_prior().save(directory)
    return directory


def _dataset(batch, batch_size=8):
    return tf.data.Dataset.from_tensor_slices(batch).batch(batch_size)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


# === Tokenizer ===


def test_encode_matches_a_numpy_search_and_decode_inverts_it():
    backbone = tiny_vqct_backbone()
    images = tiny_images(2)
    indices = _np(backbone.encode(images))
    assert indices.shape == (2, 16, 16, TOP_K + 1)
    assert indices.dtype == np.int32
    assert backbone.num_embeddings == len(ADJECTIVES) + len(NOUNS)

    # Independent search over the evaluation codebook, in float64.
    z = _np(backbone.quant_conv(backbone.encoder(images))).astype("float64")
    codebook = _np(backbone.quantizer.get_codebook(training=False))
    codebook = codebook.astype("float64")
    adjectives, nouns = codebook[: len(ADJECTIVES)], codebook[len(ADJECTIVES) :]
    half = LATENT // 2
    z_adj = z[..., :half].reshape(-1, half)
    z_noun = z[..., half:].reshape(-1, half)
    d_adj = ((z_adj[:, None] - adjectives[None]) ** 2).sum(-1)
    d_noun = ((z_noun[:, None] - nouns[None]) ** 2).sum(-1)
    expected = np.concatenate(
        [np.argsort(d_adj, axis=1)[:, :TOP_K], d_noun.argmin(1)[:, None]], 1
    )
    np.testing.assert_array_equal(indices.reshape(-1, TOP_K + 1), expected)

    # decode(indices) = decoder(post_quant_conv([mean adj codes ; noun])).
    codes = np.concatenate(
        [adjectives[expected[:, :TOP_K]].mean(1), nouns[expected[:, TOP_K]]],
        -1,
    ).reshape(2, 16, 16, LATENT)
    reference = backbone.decoder(
        backbone.post_quant_conv(codes.astype("float32"))
    )
    decoded = backbone.decode(indices)
    np.testing.assert_allclose(_np(decoded), _np(reference), atol=1e-4)
    # ... and equals the reconstruction of the full forward pass.
    reconstruction = backbone.encode_decode(images)["reconstruction"]
    np.testing.assert_allclose(_np(decoded), _np(reconstruction), atol=1e-4)


def test_decode_rejects_bad_indices():
    backbone = tiny_vqct_backbone()
    good = np.zeros((1, 16, 16, TOP_K + 1), "int32")
    backbone.decode(good)
    with pytest.raises(ValueError, match="top_k \\+ 1"):
        backbone.decode(np.zeros((1, 16, 16), "int32"))
    with pytest.raises(ValueError, match="top_k \\+ 1"):
        backbone.decode(np.zeros((1, 16, 16, TOP_K), "int32"))
    bad = good.copy()
    bad[0, 3, 4, 1] = len(ADJECTIVES)
    with pytest.raises(ValueError, match="adjective ids.*\\[0, 6\\)"):
        backbone.decode(bad)
    bad = good.copy()
    bad[0, 0, 0, TOP_K] = len(NOUNS)
    with pytest.raises(ValueError, match="noun ids.*\\[0, 5\\)"):
        backbone.decode(bad)
    bad = good.copy()
    bad[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match="adjective ids"):
        backbone.decode(bad)
    with pytest.raises(ValueError, match="integer"):
        backbone.decode(good.astype("float32"))


def test_backbone_needs_a_vqct_quantizer():
    with pytest.raises(ValueError, match="VQCTQuantizer"):
        VQCTBackbone(keras.layers.Dense(4), **ARCH)


# === Training ===


def test_tiny_fit_lowers_the_loss_and_trains_the_gcn():
    # No discriminator: the GAN path is trained by the VQCT+LG test.
    model = VQCT(tiny_vqct_backbone(), discriminator=None)
    model.compile(learning_rate=2e-3)
    data = _dataset({"images": tiny_images(8)})
    gcn = model.backbone.quantizer.transfer
    gcn_before = [_np(v).copy() for v in gcn.trainable_weights]
    words_before = _np(model.backbone.quantizer.word_features).copy()
    before = model.evaluate(data, verbose=0, return_dict=True)
    history = model.fit(data, epochs=4, verbose=0).history
    after = model.evaluate(data, verbose=0, return_dict=True)
    for key in ("adjective_loss", "noun_loss", "adjective_usage",
                "noun_usage", "adjective_perplexity", "noun_perplexity"):
        assert key in history, key
        assert np.all(np.isfinite(history[key])), key
    # The VQ loss is the sum of the halves' losses.
    np.testing.assert_allclose(
        after["vq_loss"], after["adjective_loss"] + after["noun_loss"],
        rtol=1e-4,
    )
    assert after["loss"] < before["loss"], (before["loss"], after["loss"])
    assert after["rec_loss"] < before["rec_loss"]
    # The GCN learns (codebook term); the word vectors are constants.
    changed = [
        not np.allclose(b, _np(v)) for b, v in zip(gcn_before,
                                                   gcn.trainable_weights)
    ]
    assert all(changed)
    np.testing.assert_array_equal(
        words_before, _np(model.backbone.quantizer.word_features)
    )


def _tiny_lg_kwargs():
    return dict(
        discriminator=tiny_discriminator(),
        disc_start=0,
        text_prior=None,
        guidance=dict(
            alpha=1.0, beta=1.0, gamma=1.0, decoder_intermediate_dim=32,
            seed=0,
        ),
        **TINY_TEXT,
    )


def _token_table():
    return (
        np.random.default_rng(1)
        .normal(size=(TINY_TEXT["vocabulary_size"], 32))
        .astype("float32")
    )


def test_lgvq_accepts_a_vqct_backbone():
    # VQCT+LG needs no change to LGVQ: the guidance attaches to the VQCT
    # latent (both halves) and the generator loss is finite.
    kwargs = dict(_tiny_lg_kwargs(), discriminator=None)
    model = LGVQ(backbone=tiny_vqct_backbone(dropout=0.5), **kwargs)
    assert model.guidance.code_dim == LATENT
    model.set_token_embeddings(_token_table())
    model.build()
    batch = {k: ops.convert_to_tensor(v) for k, v in tiny_text_batch(2).items()}
    total, logs, _ = model._generator_step(batch, training=True)
    assert np.isfinite(_np(total))
    for key in ("vq_loss", "lg_loss", "gsa_loss", "mtp_loss", "ras_loss"):
        assert np.isfinite(_np(logs[key])), key


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_vqct_plus_lg_trains_a_step_with_finite_logs():
    model = VQCTLG(
        backbone=tiny_vqct_backbone(dropout=0.5), **_tiny_lg_kwargs()
    )
    model.set_token_embeddings(_token_table())
    model.compile(learning_rate=1e-3)
    history = model.fit(
        _dataset(tiny_text_batch(4), 4), epochs=1, verbose=0
    ).history
    for key in ("loss", "vq_loss", "lg_loss", "gsa_loss", "mtp_loss",
                "ras_loss", "disc_loss", "adjective_loss", "noun_loss",
                "adjective_usage", "noun_usage"):
        assert np.isfinite(history[key][-1]), key


# === Saving ===


def _same_weights(a, b):
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(_np(va), _np(vb), err_msg=va.path)


def test_keras_file_round_trips_with_the_prior_in_safe_mode(tmp_path):
    model = VQCT(tiny_vqct_backbone(), discriminator=tiny_discriminator(),
                 disc_start=0)
    # Compiled: loading runs `compile_from_config`, which builds the model
    # before the weights (and so the prior) are read.
    model.compile(learning_rate=1e-3)
    path = str(tmp_path / "vqct.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, VQCT)
    assert isinstance(loaded.backbone, VQCTBackbone)
    _same_weights(model, loaded)
    images = tiny_images(2, seed=3)
    np.testing.assert_array_equal(
        _np(model.backbone.encode(images)), _np(loaded.backbone.encode(images))
    )
    # The backbone alone too.
    path = str(tmp_path / "backbone.keras")
    model.backbone.save(path)
    backbone = keras.saving.load_model(path, safe_mode=True)
    indices = model.backbone.encode(images)
    np.testing.assert_allclose(
        _np(backbone.decode(indices)), _np(model.backbone.decode(indices)),
        atol=1e-5,
    )


@pytest.mark.tf_eager  # What the step computes; the graph: the other fits.
def test_vqct_lg_keras_file_round_trips(tmp_path):
    model = VQCTLG(backbone=tiny_vqct_backbone(), **_tiny_lg_kwargs())
    model.compile(learning_rate=1e-3)
    path = str(tmp_path / "vqct_lg.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, VQCTLG)
    _same_weights(model, loaded)


def test_save_to_preset_round_trips(tmp_path):
    model = VQCT(tiny_vqct_backbone(), discriminator=tiny_discriminator(),
                 disc_start=0)
    # Non-default GCN weights, so a fresh build would not match by chance.
    for v in model.backbone.quantizer.transfer.trainable_weights:
        v.assign(np.random.default_rng(2).normal(size=v.shape) * 0.1)
    directory = str(tmp_path / "preset")
    model.save_to_preset(directory)
    images = tiny_images(2, seed=4)
    expected = _np(model.backbone.encode(images))

    backbone = VQCTBackbone.from_preset(directory)
    assert isinstance(backbone, VQCTBackbone)
    np.testing.assert_array_equal(_np(backbone.encode(images)), expected)
    loaded = VQCT.from_preset(directory)
    assert isinstance(loaded, VQCT)
    _same_weights(model, loaded)
    np.testing.assert_array_equal(_np(loaded.backbone.encode(images)),
                                  expected)


# === Presets ===


def test_vqct_presets_are_registered():
    names = presets.list_presets("VQCT")
    for name in ("cub_vqct", "coco_vqct", "ade20k_vqct", "scenes_vqct",
                 "scenes_vqct_lg"):
        assert name in names
    assert "scenes_vqct_lg" in presets.list_presets("VQCTLG")
    # The VQGAN family's classes build VQCT presets too (one path).
    for cls in ("VQGANBackbone", "VQGAN", "LGVQ"):
        assert "scenes_vqct_lg" in presets.list_presets(cls)
    with pytest.raises(ValueError, match="no language guidance"):
        VQCTLG.from_preset("scenes_vqct")
    with pytest.raises(ValueError, match="no language guidance"):
        LGVQ.from_preset("scenes_vqct")
    # VQCT / VQCTLG accept VQCT presets only.
    with pytest.raises(ValueError, match="builds VQCT presets"):
        VQCT._from_spec(presets.get_preset("scenes"))
    with pytest.raises(ValueError, match="builds VQCT presets"):
        VQCTLG._from_spec(presets.get_preset("scenes"), text_prior=None)


def test_scenes_vqct_builds_from_its_packaged_prior():
    model = VQCT.from_preset("scenes_vqct")
    backbone = model.backbone
    assert isinstance(backbone, VQCTBackbone)
    assert (backbone.num_adjectives, backbone.num_nouns) == (46, 52)
    assert backbone.quantizer.prior_dim == 384
    assert backbone.embedding_dim == 64 and backbone.grid_size == 16
    assert not backbone.quantizer.legacy_beta
    assert backbone.quantizer.dropout == 0.0
    indices = backbone.encode(tiny_images(1, size=64))
    assert tuple(indices.shape) == (1, 16, 16, 3)
    lg = VQCTLG.from_preset("scenes_vqct_lg", text_prior=None)
    assert isinstance(lg.backbone, VQCTBackbone)
    assert lg.guidance.code_dim == 64
    assert lg.guidance.alpha == 0.01  # the `scenes` LG-VQ weights
    assert lg.guidance.gsa_symmetric and lg.guidance.mtp_leak_free


@pytest.mark.parametrize("name", ["cub_vqct", "coco_vqct", "ade20k_vqct"])
def test_paper_presets_name_the_missing_prior(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_LGVQ_HOME", str(tmp_path))
    expected = os.path.join(
        str(tmp_path), "vqct_priors", "paper_clip", "vqct_prior.json"
    )
    for build in (VQCTBackbone.from_preset, VQCT.from_preset):
        with pytest.raises(FileNotFoundError) as info:
            build(name)
        message = str(info.value)
        assert expected in message
        assert "python -m keras_lgvq.priors.vqct" in message
        assert "prior=" in message


def test_paper_preset_builds_the_paper_architecture_with_a_prior(tmp_path):
    directory = str(tmp_path / "clip_like")
    tiny_prior(width=512).save(directory)
    backbone = VQCTBackbone.from_preset("cub_vqct", prior=directory)
    quantizer = backbone.quantizer
    assert backbone.embedding_dim == 512 and backbone.grid_size == 16
    assert (quantizer.top_k, quantizer.beta, quantizer.legacy_beta) == (
        2, 0.25, True,
    )
    assert quantizer.dropout == 0.5 and quantizer.hidden_dim == 256

    def conv(i, o, k=1):
        return k * k * i * o + o

    # The VQGAN f16 backbone of the `cub` preset (72,141,699 parameters)
    # without its 1024 x 256 codebook and 256-wide 1x1 convs, with VQCT's
    # 256 -> 512 -> 256 convs and the GCN 512 -> 256 -> 256.
    expected = (
        72_141_699
        - 1024 * 256
        - 2 * conv(256, 256)
        + conv(256, 512)
        + conv(512, 256)
        + (512 * 256 + 256)
        + (256 * 256 + 256)
    )
    trainable = sum(int(np.prod(v.shape)) for v in backbone.trainable_weights)
    assert trainable == expected


def test_scenes_vqct_lg_has_the_scenes_guidance_and_its_fixes():
    # Not a paper preset: the main job's VQCT+LG row must differ from the
    # LG-VQ row in the quantizer only.
    lgvq = presets.get_preset("scenes", "LGVQ")
    vqct_lg = presets.get_preset("scenes_vqct_lg", "VQCTLG")
    assert vqct_lg["guidance"] == lgvq["guidance"]
    assert vqct_lg["text"] == lgvq["text"]
    assert vqct_lg["guidance"]["mtp_leak_free"] is True
    assert vqct_lg["guidance"]["gsa_symmetric"] is True

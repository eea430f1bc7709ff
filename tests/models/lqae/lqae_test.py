"""LQAE trainer on tiny configs: masking, losses, frozen LM, fit, saving."""

import math
import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq.models import LQAE
from keras_lgvq.models import LQAEBackbone
from keras_lgvq.models.lqae.lqae import lqae_learning_rate
from keras_lgvq.models.lqae.lqae import weight_decay_exempt
from tests.models.lqae.tiny_lqae import WIDTH
from tests.models.lqae.tiny_lqae import tiny_backbone
from tests.models.lqae.tiny_lqae import tiny_images
from tests.models.lqae.tiny_lqae import tiny_language_model


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _values(variables):
    return [np.array(_np(v)) for v in variables]


@pytest.fixture(scope="module")
def backbone():
    """An untrained tiny backbone for the tests that do not fit."""
    return tiny_backbone()


@pytest.fixture(scope="module")
def trained():
    """One tiny LQAE fitted once; the tests below inspect it."""
    keras.utils.set_random_seed(0)
    model = LQAE(tiny_backbone(), seed=0)
    model.compile(learning_rate=3e-3, warmup_steps=2, total_steps=30)
    images = tiny_images(8)
    lm = model.backbone.language_model
    before = {
        "lm": _values(lm.weights),
        "table": _np(model.backbone.quantizer.codebook).copy(),
        "encoder": _values(model.backbone.encoder.trainable_weights),
        "rec": float(model.evaluate(images, batch_size=8, verbose=0,
                                    return_dict=True)["rec_loss"]),
    }
    history = model.fit(images, batch_size=8, epochs=15, verbose=0)
    return model, images, before, history.history


def test_mask_ratio_statistics(backbone):
    model = LQAE(backbone, mask_ratio=0.5, seed=1)
    mask = _np(model.draw_token_mask(2000))  # 32000 Bernoulli draws
    assert mask.shape == (2000, 4, 4) and mask.dtype == bool
    assert abs(mask.mean() - 0.5) < 0.015
    # Independent per token: every position is masked at the same rate and
    # neighbours are uncorrelated.
    assert np.all(np.abs(mask.mean(0) - 0.5) < 0.05)
    flat = mask.reshape(2000, 16).astype("float64")
    assert abs(np.corrcoef(flat[:, 0], flat[:, 1])[0, 1]) < 0.07
    assert not np.array_equal(mask, _np(model.draw_token_mask(2000)))
    model.mask_ratio = 0.0
    assert not _np(model.draw_token_mask(50)).any()
    model.mask_ratio = 1.0
    assert _np(model.draw_token_mask(50)).all()


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_mask_ratio_outside_unit_interval_is_an_error(backbone, ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        LQAE(backbone, mask_ratio=ratio)


def test_masked_lm_loss_matches_numpy(backbone):
    model = LQAE(backbone)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 16, 64)).astype("float32") * 3
    ids = rng.integers(0, 64, size=(3, 4, 4)).astype("int32")
    mask = rng.uniform(size=(3, 4, 4)) < 0.4
    mask[2] = False  # an image without a masked token contributes 0
    logits[0, 3, ids[0].reshape(-1)[3]] = 50.0  # one sure prediction
    loss, accuracy = model.masked_lm_loss(logits, ids, mask)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    flat_ids, flat_mask = ids.reshape(3, 16), mask.reshape(3, 16)
    ce = -np.take_along_axis(log_probs, flat_ids[..., None], -1)[..., 0]
    per_image = [
        ce[i][flat_mask[i]].mean() if flat_mask[i].any() else 0.0
        for i in range(3)
    ]
    np.testing.assert_allclose(float(loss), np.mean(per_image), rtol=1e-5)
    correct = logits.argmax(-1) == flat_ids
    np.testing.assert_allclose(
        float(accuracy), correct[flat_mask].mean(), rtol=1e-6
    )


def test_loss_is_the_hand_sum_of_its_terms(backbone):
    model = LQAE(backbone, mlm_weight=0.3, reconstruction_weight=2.0)
    images = tiny_images()
    mask = np.random.default_rng(2).uniform(size=(4, 4, 4)) < 0.5
    outputs = backbone.encode_decode(images, training=True, token_mask=mask)
    total, logs = model.compute_losses(images, outputs, mask)
    # Independent pieces: pixels in [0, 1], commitment from the raw
    # latents and the raw table rows, CE from the LM's logits.
    recon01 = (_np(outputs["reconstruction"]) + 1) / 2
    mse = np.mean((recon01 - (images + 1) / 2) ** 2)
    latents = _np(outputs["latents"]).reshape(-1, WIDTH)
    table = _np(backbone.language_model.token_embedding_matrix())
    ids = _np(outputs["indices"]).reshape(4, 16)
    commitment = 0.005 * np.mean((table[ids.reshape(-1)] - latents) ** 2)
    logits = _np(outputs["lm_logits"]).astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
    m = mask.reshape(4, 16)
    mlm = np.mean((ce * m).sum(-1) / np.maximum(m.sum(-1), 1))
    np.testing.assert_allclose(float(_np(logs["rec_loss"])), mse, rtol=1e-4)
    np.testing.assert_allclose(
        float(_np(logs["commitment_loss"])), commitment, rtol=1e-4
    )
    np.testing.assert_allclose(float(_np(logs["mlm_loss"])), mlm, rtol=1e-4)
    np.testing.assert_allclose(
        float(_np(total)), 2.0 * mse + commitment + 0.3 * mlm, rtol=1e-4
    )
    np.testing.assert_allclose(float(_np(logs["mask_fraction"])), m.mean())


def test_fit_lowers_reconstruction_error(trained):
    model, images, before, history = trained
    after = model.evaluate(images, batch_size=8, verbose=0, return_dict=True)
    assert float(after["rec_loss"]) < 0.5 * before["rec"]
    assert history["rec_loss"][-1] < history["rec_loss"][0]
    # Masking ran in training (README ratio 0.5) with the MLM term logged.
    assert 0.3 < np.mean(history["mask_fraction"]) < 0.7
    assert all(np.isfinite(history["mlm_loss"]))


def test_language_model_and_table_get_no_update(trained):
    model, _, before, _ = trained
    lm = model.backbone.language_model
    trainable = {id(v) for v in model.trainable_variables}
    assert not any(id(v) in trainable for v in lm.weights)
    assert id(model.backbone.quantizer.codebook) not in trainable
    for old, new in zip(before["lm"], _values(lm.weights)):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(
        before["table"], _np(model.backbone.quantizer.codebook)
    )
    changed = [
        not np.array_equal(old, new)
        for old, new in zip(
            before["encoder"],
            _values(model.backbone.encoder.trainable_weights),
        )
    ]
    assert all(changed)


def test_an_lm_without_pretrained_head_trains_its_head_only():
    lm = tiny_language_model(has_pretrained_head=False)
    model = LQAE(tiny_backbone(language_model=lm), seed=0)
    model.compile(learning_rate=1e-2)
    head = list(lm.trainable_weights)
    assert head and all(
        "masked_lm_head" in v.path or "head" in v.path for v in head
    )
    frozen = [v for v in lm.weights if not v.trainable]
    head_before, frozen_before = _values(head), _values(frozen)
    model.fit(tiny_images(4), batch_size=4, epochs=1, verbose=0)
    assert any(
        not np.array_equal(a, b) for a, b in zip(head_before, _values(head))
    )
    for a, b in zip(frozen_before, _values(frozen)):
        np.testing.assert_array_equal(a, b)


def test_weight_decay_skips_biases_norms_and_position_embeddings(trained):
    model = trained[0]
    decayed, exempt = model.weight_decay_variables()
    names = {v.name for v in exempt}
    assert {"position_embedding", "gamma", "beta", "bias"} <= names
    assert all(v.name in ("kernel", "depthwise_kernel") for v in decayed)
    optimizer = model.optimizer.generator
    for variable in exempt:
        assert not optimizer._use_weight_decay(variable)
    for variable in decayed:
        assert optimizer._use_weight_decay(variable)
    # faithful: the official run decays everything.
    faithful = LQAE(model.backbone, faithful=True)
    faithful.compile()
    assert faithful.weight_decay_variables()[1] == []
    assert all(
        faithful.optimizer.generator._use_weight_decay(v)
        for v in faithful.trainable_variables
    )
    assert weight_decay_exempt(
        model.backbone.decoder.position_embedding.position_embedding
    )


def test_learning_rate_schedule_is_warmup_then_cosine_to_zero(backbone):
    peak, warmup, total = 3e-4, 10, 110
    schedule = lqae_learning_rate(peak, warmup, total)

    def optax_reference(step):
        if step < warmup:
            return peak * step / warmup
        t = min(step - warmup, total - warmup) / (total - warmup)
        return peak * 0.5 * (1 + math.cos(math.pi * t))

    for step in (0, 5, 10, 30, 60, 109, 110, 200):
        np.testing.assert_allclose(
            float(schedule(step)), optax_reference(step), atol=1e-9
        )
    constant = lqae_learning_rate(1e-3, warmup_steps=4)
    assert float(constant(2)) == pytest.approx(5e-4)
    assert float(constant(500)) == pytest.approx(1e-3)
    assert lqae_learning_rate(1e-3) == 1e-3
    with pytest.raises(ValueError, match="must exceed `warmup_steps`"):
        lqae_learning_rate(1e-3, warmup_steps=10, total_steps=10)
    adamw = LQAE(backbone)
    adamw.compile(weight_decay=5e-4)
    generator = adamw.optimizer.generator
    assert isinstance(generator, keras.optimizers.AdamW)
    assert generator.beta_1 == 0.9 and generator.beta_2 == 0.95
    assert generator.weight_decay == pytest.approx(5e-4)


def test_images_outside_the_range_are_rejected_on_the_host(trained):
    model, images, _, _ = trained
    with pytest.raises(ValueError, match=r"must be in \[-1, 1\]"):
        model.fit(images * 127.5 + 127.5, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="must be floating point"):
        model.fit(images.astype("int32"), batch_size=8, verbose=0)


def test_save_load_and_preset_round_trip(trained, tmp_path):
    model, images, _, _ = trained
    reference = _np(model.backbone(images))
    path = str(tmp_path / "lqae.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored, LQAE)
    assert restored.mask_ratio == 0.5 and restored.mlm_weight == 1e-4
    np.testing.assert_allclose(_np(restored.backbone(images)), reference,
                               atol=1e-5)
    # The optimizer state (AdamW moments, step count) came back.
    saved = _values(model.optimizer.variables)
    loaded = _values(restored.optimizer.variables)
    assert len(saved) == len(loaded) > 2
    for a, b in zip(saved, loaded):
        np.testing.assert_allclose(a, b)
    preset = str(tmp_path / "preset")
    model.save_to_preset(preset)
    assert os.path.isfile(os.path.join(preset, "task.json"))
    again = LQAE.from_preset(preset)
    np.testing.assert_allclose(_np(again.backbone(images)), reference,
                               atol=1e-5)
    backbone = LQAEBackbone.from_preset(preset)
    np.testing.assert_array_equal(
        _np(backbone.encode(images)), _np(model.backbone.encode(images))
    )

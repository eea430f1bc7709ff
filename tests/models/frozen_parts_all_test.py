"""Frozen means frozen, on every backend: one test parametrised over every
frozen part a keras_lgvq trainer holds (issue 15, item 5).

For each part: none of its variables is among the model's trainable
variables, no optimizer keeps a slot for one of them (Keras names a slot
after its variable's path), and a `fit` step with Adam leaves every value
unchanged while the model's trained parts move (so the check can fail).
The text prior runs inside the step here (captions as token ids, no cached
features), so a gradient reaching it would show.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from tests.models.frozen_parts_test import _random_lpips
from tests.models.tiny_configs import tiny_images
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_text_batch

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


# The LPIPS backbone, the LPIPS heads and LG-VQ's token embeddings sit in
# one model: one case checks the three (one model to build and step, not
# three).
PARTS = [
    "lpips_backbone+lpips_heads+token_embeddings",
    "text_prior",
    "lqae_language_model",
    "captioner_language_model",
    "vqa_language_model",
]


def _values(variables):
    return [np.array(ops.convert_to_numpy(v)) for v in variables]


def _lgvq_with_lpips(tmp_path):
    lpips = _random_lpips(tmp_path)
    model = tiny_lgvq(perceptual_loss=lpips, perceptual_weight=1.0)
    model.compile(learning_rate=1e-2)
    frozen = {
        "lpips_backbone": lpips.feature_extractor.variables,
        "lpips_heads": [v for h in lpips.head_layers for v in h.variables],
        "token_embeddings": [model.token_embeddings],
    }
    data = tf.data.Dataset.from_tensor_slices(tiny_text_batch(2)).batch(2)
    return model, frozen, data, model.backbone.encoder.trainable_variables


def _lgvq_with_text_prior(tmp_path):
    from keras_lgvq.models.lgvq.lgvq import LGVQ
    from keras_lgvq.text_priors.clip_text_prior import CLIPTextPrior
    from tests.models.tiny_configs import tiny_backbone
    from tests.text_priors import reference_impls as ref

    directory = str(tmp_path / "tiny_clip")
    ref.write_tiny_hf_clip(directory)
    prior = CLIPTextPrior(directory, sequence_length=8)
    model = LGVQ(
        backbone=tiny_backbone(),
        discriminator=None,
        text_prior=prior,
        guidance=dict(decoder_intermediate_dim=32, seed=0),
    )
    model.compile(learning_rate=1e-2)
    ids, mask = prior.tokenize(["a bird", "the red crown"])
    data = {
        "images": tiny_images(2),
        "token_ids": np.asarray(ops.convert_to_numpy(ids)),
        "padding_mask": np.asarray(ops.convert_to_numpy(mask)),
    }
    data = tf.data.Dataset.from_tensor_slices(data).batch(2)
    return model, prior.variables, data, model.backbone.encoder.variables


def _lqae():
    from keras_lgvq.models import LQAE
    from tests.models.lqae.tiny_lqae import tiny_backbone
    from tests.models.lqae.tiny_lqae import tiny_images as lqae_images
    from tests.models.lqae.tiny_lqae import tiny_language_model

    lm = tiny_language_model()
    model = LQAE(tiny_backbone(language_model=lm), seed=0)
    model.compile(learning_rate=1e-2)
    frozen = [v for v in lm.weights if not v.trainable]
    data = tf.data.Dataset.from_tensor_slices(lqae_images(4)).batch(4)
    return model, frozen, data, model.backbone.encoder.trainable_weights


def _stage2(tmp_path, kind):
    from keras_lgvq.models.captioning import Captioner
    from keras_lgvq.models.captioning import MLPPrefixMapper
    from keras_lgvq.models.vqa import VQAModel
    from tests.models.captioning.tiny_lm import tiny_lm
    from tests.models.captioning.tiny_lm import write_tiny_lm_gguf
    from tests.models.tiny_configs import tiny_backbone

    lm = tiny_lm(write_tiny_lm_gguf(tmp_path / "tiny.gguf"))
    grid = 8
    mapper = MLPPrefixMapper(grid * grid, 16, 4, lm.hidden_dim,
                             hidden_dim=32, name="mapper")
    tokenizer = tiny_backbone(resolution=16, attn_resolutions=())
    codes = np.random.default_rng(0).integers(0, 32, (4, grid, grid))
    if kind == "captioner_language_model":
        model = Captioner(mapper, lm, tokenizer=tokenizer,
                          max_caption_length=6)
        rows = model.prepare_inputs(["a red cube"] * 4, codes=codes)
    else:
        model = VQAModel(mapper, ["no", "yes"], language_model=lm,
                         tokenizer=tokenizer, max_question_length=8)
        rows = model.prepare_inputs(["is it red?"] * 4,
                                    ["yes", "no", "yes", "no"], codes=codes)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = tf.data.Dataset.from_tensor_slices(rows).batch(4)
    return model, lm.weights, data, mapper.trainable_weights


def _case(part, tmp_path):
    """(model, {part name: frozen variables}, data, trained variables)."""
    if part.startswith("lpips_backbone"):
        return _lgvq_with_lpips(tmp_path)
    if part == "text_prior":
        model, frozen, data, trained = _lgvq_with_text_prior(tmp_path)
    elif part == "lqae_language_model":
        model, frozen, data, trained = _lqae()
    else:
        model, frozen, data, trained = _stage2(tmp_path, part)
    return model, {part: frozen}, data, trained


def _optimizer_variables(optimizer):
    # GANOptimizer lists both optimizers' variables in `variables`.
    return list(optimizer.variables)


@pytest.mark.parametrize("part", PARTS)
def test_frozen_part_is_not_trained(part, tmp_path):
    keras.utils.set_random_seed(0)
    model, frozen_parts, data, trained = _case(part, tmp_path)
    assert sorted(frozen_parts) == sorted(part.split("+"))
    trainable = {id(v) for v in model.trainable_variables}
    for name, frozen in frozen_parts.items():
        assert frozen, name
        for v in frozen:
            assert id(v) not in trainable, (name, v.path)
    before = {name: _values(f) for name, f in frozen_parts.items()}
    trained_before = _values(trained)
    model.fit(data, epochs=1, shuffle=False, verbose=0)
    # The optimizers are built now; Adam made a slot per trained variable.
    slots = [v.path for v in _optimizer_variables(model.optimizer)]
    assert any("momentum" in s or "velocity" in s for s in slots), slots
    for name, frozen in frozen_parts.items():
        for v in frozen:
            prefix = v.path.replace("/", "_")
            assert not any(prefix in s for s in slots), (name, v.path)
        for old, new, v in zip(before[name], _values(frozen), frozen):
            np.testing.assert_array_equal(old, new, err_msg=f"{name}: {v.path}")
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(trained_before, _values(trained))
    ), f"{part}: the trained part did not move, the check proves nothing"

"""Frozen means frozen, on every backend: the LPIPS network, the token-
embedding table and the text prior never reach an optimizer, and a training
step leaves their values unchanged."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lgvq.losses import lpips_assets
from keras_lgvq.losses.lpips import LPIPS
from keras_lgvq.optimizers import GANOptimizer
from tests.models.tiny_configs import tiny_lgvq
from tests.models.tiny_configs import tiny_text_batch

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


def _random_lpips(tmp_path):
    heads = tmp_path / "heads.npz"
    rng = np.random.default_rng(0)
    np.savez(
        heads,
        **{
            f"lin{i}": rng.uniform(0.05, 0.2, (c,)).astype("float32")
            for i, c in enumerate(lpips_assets.HEAD_CHANNELS)
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LPIPS(
            vgg_weights=None, heads=str(heads), allow_random_backbone=True
        )


def _snapshot(variables):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in variables]


def test_frozen_parts_get_no_update(tmp_path):
    lpips = _random_lpips(tmp_path)
    model = tiny_lgvq(perceptual_loss=lpips, perceptual_weight=1.0)
    # SGD with a large rate: any gradient reaching a frozen part shows.
    model.compile(
        optimizer=GANOptimizer(
            keras.optimizers.SGD(1.0), keras.optimizers.SGD(1.0)
        )
    )
    frozen = {
        "lpips_backbone": lpips.feature_extractor.variables,
        "lpips_heads": [v for h in lpips.head_layers for v in h.variables],
        "token_embeddings": [model.token_embeddings],
    }
    assert len(frozen["lpips_backbone"]) == 26
    assert len(frozen["lpips_heads"]) == 5
    trainable_ids = {id(v) for v in model.trainable_variables}
    for part, variables in frozen.items():
        for v in variables:
            assert id(v) not in trainable_ids, (part, v.path)
    # Adam keeps slots named after each variable it trains: none for these.
    adam = tiny_lgvq(perceptual_loss=lpips, perceptual_weight=1.0)
    adam.compile()
    slot_names = [v.name for v in adam.optimizer.variables]
    assert any("encoder" in name for name in slot_names)
    adam_frozen = list(lpips.variables) + [adam.token_embeddings]
    for v in adam_frozen:
        prefix = v.path.replace("/", "_")
        assert not any(name.startswith(prefix) for name in slot_names), v.path
    before = {part: _snapshot(vs) for part, vs in frozen.items()}
    trained_before = _snapshot(model.backbone.encoder.trainable_variables)
    batch = tiny_text_batch(2)
    ds = tf.data.Dataset.from_tensor_slices(batch).batch(2)
    model.fit(ds, epochs=1, verbose=0)
    for part, variables in frozen.items():
        for old, new in zip(before[part], _snapshot(variables)):
            np.testing.assert_array_equal(old, new, err_msg=part)
    # The step did train: the encoder moved.
    moved = [
        not np.array_equal(a, b)
        for a, b in zip(
            trained_before,
            _snapshot(model.backbone.encoder.trainable_variables),
        )
    ]
    assert any(moved)


def test_text_prior_is_not_trainable():
    from keras_lgvq.models import LGVQ
    from keras_lgvq.text_priors import minilm_assets

    if not minilm_assets.is_available():
        pytest.fail(
            "MiniLM is not in the keras_lgvq cache; fetch it with "
            f"`{minilm_assets.fetch_command()}`."
        )
    model = LGVQ.from_preset("scenes", resolution=32)
    prior = model.text_prior
    trainable_ids = {id(v) for v in model.trainable_variables}
    assert len(prior.variables) > 50
    assert not any(id(v) in trainable_ids for v in prior.variables)
    assert id(model.token_embeddings) not in trainable_ids

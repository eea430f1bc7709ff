"""The main job's guided rows read the frozen prior's caption features from
a cache built once per run (`comparison.training.training_caption_cache`)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_lgvq import comparison
from keras_lgvq.comparison import training
from keras_lgvq.datasets import make_dataset
from keras_lgvq.text_priors import minilm_assets

# Under TensorFlow the Keras steps here run eagerly (tf_eager, tests/conftest.py):
# this file checks what they compute; the trainers' own tests cover the graph.
pytestmark = pytest.mark.tf_eager


needs_minilm = pytest.mark.skipif(
    not minilm_assets.is_available(),
    reason="MiniLM text prior is not cached (python -m "
    "keras_lgvq.fetch_assets)",
)


def test_text_cache_is_on_for_guided_rows():
    assert comparison.resolve_settings({})["text_cache"]
    assert not comparison.resolve_settings({"text_cache": "off"})[
        "text_cache"
    ]
    # No guided row: nothing to cache.
    assert not comparison.resolve_settings({"models": "vqgan"})["text_cache"]
    with pytest.raises(ValueError, match="--text-cache"):
        comparison.resolve_settings({"text_cache": "auto"})


@needs_minilm
def test_cached_batches_carry_the_prior_features_of_their_captions(tmp_path):
    from keras_lgvq import text_priors

    prior = text_priors.get("minilm")
    settings = comparison.resolve_settings(
        {"smoke": True, "data_dir": str(tmp_path), "train_size": 12,
         "eval_size": 4, "epochs": 3}
    )
    keras.utils.set_random_seed(0)
    cache = training.training_caption_cache(prior, settings, 32, seed=0)
    # Only the captions the run draws (each distinct one once), not the
    # split's 10 per scene: 12 scenes make one batch of 8 a pass, so the
    # 3 steps read 3 passes of 12 draws.
    passes = settings["total_steps"] + training.DRAW_MARGIN_BATCHES
    assert 12 < len(cache) <= passes * 12 < 12 * 10
    assert cache.encoded_rows == len(cache)
    size = len(cache)
    # Another seed of the same row adds its own draws to the same cache.
    keras.utils.set_random_seed(1)
    assert training.training_caption_cache(prior, settings, 32, seed=1) is (
        cache
    )
    assert len(cache) > size
    # The row's own pipeline: every batch of the run (and the margin) is
    # found in the cache; a missing caption would fail the iteration.
    keras.utils.set_random_seed(0)
    dataset = make_dataset(
        "scenes", text_prior=prior, feature_cache=cache,
        **training.training_data_kwargs(settings, 32, seed=0),
    ).repeat()
    steps = settings["total_steps"] + training.DRAW_MARGIN_BATCHES
    batches = list(dataset.take(steps))
    assert len(batches) == steps
    batch = batches[-1]
    out = prior(ops.convert_to_tensor(batch["token_ids"].numpy()),
                ops.convert_to_tensor(batch["padding_mask"].numpy()))
    mask = batch["padding_mask"].numpy()
    # float16 storage: within its rounding of the on-the-fly features.
    np.testing.assert_allclose(
        batch["token_features"].numpy()[mask],
        np.asarray(ops.convert_to_numpy(out["token_features"]))[mask],
        rtol=2e-3, atol=2e-3,
    )
    np.testing.assert_allclose(
        batch["sentence_feature"].numpy(),
        np.asarray(ops.convert_to_numpy(out["sentence_feature"])),
        rtol=1e-4, atol=1e-5,
    )


@needs_minilm
def test_guided_row_fits_on_its_drawn_caption_cache(tmp_path):
    """A fit of several passes (12 scenes, batches of 8: each pass drops 4,
    and draws new captions) reads only cached captions on this backend."""
    from keras_lgvq import text_priors

    prior = text_priors.get("minilm")
    settings = comparison.resolve_settings(
        {"smoke": True, "data_dir": str(tmp_path), "train_size": 12,
         "eval_size": 4, "epochs": 3, "models": "lgvq", "verbose": 0}
    )
    assert settings["total_steps"] == 3
    model, info = training.train_system("lgvq", prior, settings, seed=0)
    assert info["setup"]["cached_text_features"]
    assert len(info["history"]["loss"]) == 3
    assert np.all(np.isfinite(info["history"]["loss"]))

"""The main job's guided rows read the frozen prior's caption features from
a cache built once per run (`comparison.training.training_caption_cache`)."""

import numpy as np
import pytest
from keras import ops

from keras_lgvq import comparison
from keras_lgvq.comparison import training
from keras_lgvq.datasets import make_dataset
from keras_lgvq.text_priors import minilm_assets

needs_minilm = pytest.mark.skipif(
    not minilm_assets.is_available(),
    reason="MiniLM text prior is not cached (python -m "
    "keras_lgvq.fetch_assets)",
)


def test_text_cache_is_used_where_it_pays():
    default = comparison.resolve_settings({})
    # 480 x 16 draws of one guided row < 2,560 scenes x 10 captions.
    assert default["text_cache_mode"] == "auto"
    assert not default["text_cache"]
    assert comparison.resolve_settings({"seeds": 4})["text_cache"]
    assert comparison.resolve_settings({"text_cache": "on"})["text_cache"]
    assert not comparison.resolve_settings(
        {"seeds": 4, "text_cache": "off"}
    )["text_cache"]
    # No guided row: nothing to cache.
    assert not comparison.resolve_settings(
        {"models": "vqgan", "seeds": 8}
    )["text_cache"]
    with pytest.raises(ValueError, match="--text-cache"):
        comparison.resolve_settings({"text_cache": "yes"})


@needs_minilm
def test_cached_batches_carry_the_prior_features_of_their_captions(tmp_path):
    from keras_lgvq import text_priors

    prior = text_priors.get("minilm")
    settings = comparison.resolve_settings(
        {"smoke": True, "data_dir": str(tmp_path), "train_size": 12,
         "eval_size": 4}
    )
    cache = training.training_caption_cache(prior, settings, 32)
    # Every scene has 10 captions; repeats are encoded once.
    assert 0 < len(cache) <= 12 * 10
    assert training.training_caption_cache(prior, settings, 32) is cache
    sizes = comparison.data.scenes_sizes(12, 4)
    batch = next(iter(make_dataset(
        "scenes", split="train", batch_size=6, image_size=32, seed=0,
        text_prior=prior, feature_cache=cache, data_dir=str(tmp_path),
        **sizes,
    )))
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

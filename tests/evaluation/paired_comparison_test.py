import keras
import numpy as np
import pytest

from keras_lgvq.evaluation.paired_comparison import paired_significance
from keras_lgvq.evaluation.paired_comparison import per_item_scores
from keras_lgvq.models import VQGANBackbone

TINY = dict(
    resolution=32,
    ch=32,
    ch_mult=(1, 1),
    num_res_blocks=1,
    attn_resolutions=(),
    z_channels=8,
    num_embeddings=16,
    embedding_dim=8,
)


def test_per_item_scores_match_numpy_references():
    backbone = VQGANBackbone(**TINY)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (6, 32, 32, 3)).astype("float32")
    sentence = rng.normal(size=(6, 5)).astype("float32")
    probe = (sentence + rng.normal(scale=0.8, size=(6, 5))).astype("float32")
    split = {"images": images, "sentence_feature": sentence}
    scores = per_item_scores(
        backbone, split, {"probe_image_embeddings": probe}, batch_size=4
    )
    # PSNR: 10 log10(2^2 / mse) per image of the clipped reconstruction.
    recon = keras.ops.convert_to_numpy(
        backbone.encode_decode(images, training=False)["reconstruction"]
    )
    mse = np.mean((images - np.clip(recon, -1, 1)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(scores["psnr"], 10 * np.log10(4 / mse), rtol=1e-4)
    # Retrieval hits from brute-force cosine ranks.
    a = probe / np.linalg.norm(probe, axis=1, keepdims=True)
    b = sentence / np.linalg.norm(sentence, axis=1, keepdims=True)
    sim = a @ b.T
    i2t = np.array([1 + np.sum(np.delete(sim[i], i) >= sim[i, i]) for i in range(6)])
    np.testing.assert_array_equal(scores["probe_image_to_text_R@1"], i2t <= 1)
    np.testing.assert_array_equal(scores["probe_image_to_text_R@5"], i2t <= 5)
    assert "own_image_to_text_R@1" not in scores
    assert sorted(scores) == sorted(
        ["psnr"]
        + [f"probe_{d}_R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5)]
    )
    # with_ssim adds the per-image SSIM of the clipped reconstruction (the
    # SSIM metric itself is checked against skimage in its own tests).
    from keras_lgvq.metrics.image_quality import ssim

    with_ssim = per_item_scores(
        backbone, split, {}, batch_size=4, with_ssim=True
    )
    assert sorted(with_ssim) == ["psnr", "ssim"]
    np.testing.assert_allclose(with_ssim["psnr"], scores["psnr"], rtol=1e-5)
    expected = keras.ops.convert_to_numpy(
        ssim(images, np.clip(recon, -1, 1), data_range=2.0)
    )
    np.testing.assert_allclose(with_ssim["ssim"], expected, rtol=1e-4, atol=1e-6)


def test_paired_significance_runs_on_shared_keys_only():
    a = {"psnr": np.full(50, 22.0) + np.linspace(0, 1, 50), "x": np.ones(50)}
    b = {"psnr": np.full(50, 21.0) + np.linspace(0, 1, 50)}
    out = paired_significance(a, b, num_resamples=200)
    assert list(out) == ["psnr"]
    assert out["psnr"]["difference"] == pytest.approx(1.0)
    assert out["psnr"]["significant"]


def test_not_a_tokenizer_is_rejected():
    with pytest.raises(ValueError, match="model"):
        per_item_scores(object(), {"images": np.zeros((1, 32, 32, 3))}, {})

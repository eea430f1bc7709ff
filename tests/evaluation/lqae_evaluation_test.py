"""`evaluate_model` on LQAE and its VQAE baseline (the comparison row)."""

import numpy as np
import pytest
from keras import ops

from keras_lgvq.evaluation import evaluate_model
from keras_lgvq.layers.quantizers.vector_quantizer import VectorQuantizer
from keras_lgvq.models import LQAE
from tests.models.lqae.tiny_lqae import VOCABULARY
from tests.models.lqae.tiny_lqae import WIDTH
from tests.models.lqae.tiny_lqae import tiny_backbone
from tests.models.lqae.tiny_lqae import tiny_images


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _vqae():
    quantizer = VectorQuantizer(
        num_embeddings=32, embedding_dim=WIDTH, beta=0.25, name="quantizer"
    )
    return tiny_backbone(quantizer=quantizer, decoder_input="quantized")


@pytest.mark.parametrize("kind", ["lqae", "vqae"])
def test_evaluate_model_scores_lqae_reconstruction_and_usage(kind):
    backbone = tiny_backbone() if kind == "lqae" else _vqae()
    model = LQAE(backbone, seed=0)
    images = tiny_images(6, seed=3)
    results = evaluate_model(
        model,
        {"images": images, "num_images": 6},
        lpips_weights=None,
        batch_size=4,
        verbose=0,
    )
    size = VOCABULARY if kind == "lqae" else 32
    assert results["model"] == "LQAE" and results["codebook_size"] == size
    assert results["code_grid"] == [4, 4] and results["image_size"] == 32
    # Independent figures from the backbone's own eager calls.
    ids = _np(backbone.encode(images)).reshape(-1)
    counts = np.bincount(ids, minlength=size)
    assert results["codes_used"] == int((counts > 0).sum())
    np.testing.assert_allclose(
        results["codebook_usage"], (counts > 0).mean(), rtol=1e-6
    )
    p = counts / counts.sum()
    perplexity = np.exp(-np.sum(p[p > 0] * np.log(p[p > 0])))
    np.testing.assert_allclose(
        results["codebook_perplexity"], perplexity, rtol=1e-4
    )
    reconstruction = np.clip(_np(backbone(images)), -1, 1).astype("float64")
    mse = ((reconstruction - images) ** 2).reshape(6, -1).mean(-1)
    psnr = np.mean(10 * np.log10(4.0 / mse))
    np.testing.assert_allclose(results["psnr"], psnr, rtol=1e-4)
    assert results["sub_codebooks"] is None

import numpy as np
import pytest
from keras import ops

from keras_lgvq.evaluation import tokenizer_runner
from tests.models.tiny_configs import tiny_text_batch
from tests.models.tiny_configs import tiny_vqgan


def test_run_tokenizer_matches_numpy_metrics():
    model = tiny_vqgan()
    model.build()
    images = tiny_text_batch(12)["images"]
    out = tokenizer_runner.run_tokenizer(
        model, images, batch_size=6, verbose=0
    )
    assert out["quantized"].shape == (12, 16, 16, 16)
    # The quantized grid is the codebook row of each index.
    codebook = ops.convert_to_numpy(model.backbone.quantizer.codebook)
    np.testing.assert_allclose(
        out["quantized"], codebook[out["indices"]], atol=1e-5
    )
    recon = out["reconstructions"]
    assert recon.shape == images.shape and np.abs(recon).max() <= 1.0
    mse = ((images - recon) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(
        out["psnr"], np.mean(10 * np.log10(4.0 / mse)), rtol=1e-4
    )
    counts = np.bincount(out["indices"].ravel(), minlength=32)
    p = counts / counts.sum()
    entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
    np.testing.assert_allclose(out["perplexity"], np.exp(entropy), rtol=1e-4)
    assert out["usage"] == pytest.approx((counts > 0).mean())
    np.testing.assert_array_equal(out["histogram"], counts)
    assert -1.0 < out["ssim"] <= 1.0
    codes_only = tokenizer_runner.run_tokenizer(
        model, images, batch_size=6, metrics=False, verbose=0
    )
    np.testing.assert_array_equal(codes_only["indices"], out["indices"])
    assert "psnr" not in codes_only

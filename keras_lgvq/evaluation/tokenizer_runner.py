"""Running a tokenizer over a split: codes, reconstructions, fidelity, usage.

`run_tokenizer` quantizes (and reconstructs) every image once, through a
compiled functional view of the backbone, and accumulates PSNR / SSIM on the
clipped reconstructions and the codebook statistics on the way.
"""

import keras
import numpy as np

from keras_lgvq.evaluation._progress import progbar
from keras_lgvq.metrics import PSNR
from keras_lgvq.metrics import SSIM
from keras_lgvq.metrics import CodebookUsage
from keras_lgvq.utils.code_layout import sub_codebooks_of
from keras_lgvq.utils.tensors import to_numpy


def _tokenizer_model(backbone, with_reconstruction, jit_compile):
    """A compiled functional view of `backbone.encode_decode` for `predict`."""
    res, channels = backbone.resolution, backbone.in_channels
    inputs = keras.Input((res, res, channels), dtype="float32")
    out = backbone.encode_decode(inputs, training=False)
    outputs = {"quantized": out["quantized"], "indices": out["indices"]}
    if with_reconstruction:
        outputs["reconstruction"] = out["reconstruction"]
    model = keras.Model(inputs, outputs)
    model.compile(jit_compile=jit_compile)
    return model


def _forward_chunks(
    backbone, images, batch_size, with_reconstruction, jit_compile
):
    """Yields `(start, outputs)` per chunk of `8 * batch_size` images."""
    chunk = 8 * batch_size
    model = _tokenizer_model(backbone, with_reconstruction, jit_compile)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk]
        yield start, model.predict(x, batch_size=batch_size, verbose=0)


def run_tokenizer(
    model, images, batch_size=32, metrics=True, verbose=1, jit_compile="auto"
):
    """Quantize (and reconstruct) images; accumulate fidelity and usage.

    The forward pass runs through a compiled functional view of
    `model.backbone.encode_decode` (`keras.Model.predict`).

    Args:
        model: a `VQGAN` / `LGVQ` (anything with `backbone.encode_decode`).
        images: float array `(N, H, W, 3)` in [-1, 1].
        batch_size: int. Images per forward pass.
        metrics: bool. Also compute PSNR, SSIM and codebook statistics.
        verbose: int. Progress bar when > 0.
        jit_compile: bool or "auto". Of the functional view's `predict`.

    Returns:
        dict with `quantized` `(N, h, w, D)` float32, `indices` int32 in
        the tokenizer's layout (`(N, h, w)`, or `(N, h, w, S)` for a
        tokenizer with sub-codebooks such as VQCT: `(N, h, w, top_k + 1)`),
        and with `metrics`: `psnr`, `ssim`, `usage`, `perplexity`,
        `histogram` `(K,)` (over flattened ids with sub-codebooks, see
        `keras_lgvq.utils.code_layout`) and `reconstructions` of the first
        32 images; with sub-codebooks also `sub_codebooks`:
        `{name: {"size", "slots", "usage", "perplexity", "codes_used",
        "histogram"}}` (VQCT: `adjective`, `noun`).

    Examples:

    ```python
    out = keras_lgvq.evaluation.run_tokenizer(model, split["images"])
    ```
    """
    backbone = model.backbone
    images = np.asarray(images, "float32")
    count = len(images)
    psnr, ssim = PSNR(data_range=2.0), SSIM(data_range=2.0)
    sub_codebooks = sub_codebooks_of(backbone)
    usage = CodebookUsage(
        num_embeddings=backbone.num_embeddings, sub_codebooks=sub_codebooks
    )
    quantized, indices, recon = [], [], []
    bar = progbar(count, verbose)
    chunks = _forward_chunks(
        backbone, images, batch_size, metrics, jit_compile
    )
    for start, out in chunks:
        quantized.append(np.asarray(out["quantized"], "float32"))
        idx = np.asarray(out["indices"]).astype("int32")
        indices.append(idx)
        if metrics:
            x = images[start : start + len(idx)]
            # Scored as images are displayed: clipped to the data range.
            x_hat = np.clip(np.asarray(out["reconstruction"], "float32"), -1, 1)
            for i in range(0, len(x), batch_size):
                rows = slice(i, i + batch_size)
                psnr.update_state(x[rows], x_hat[rows])
                ssim.update_state(x[rows], x_hat[rows])
            usage.update_state(idx)
            if sum(len(r) for r in recon) < 32:
                recon.append(x_hat[:32])
        if bar is not None:
            bar.update(min(start + len(idx), count))
    result = {
        "quantized": np.concatenate(quantized),
        "indices": np.concatenate(indices),
    }
    if metrics:
        result.update(
            psnr=float(to_numpy(psnr.result())),
            ssim=float(to_numpy(ssim.result())),
            usage=float(to_numpy(usage.usage())),
            perplexity=float(to_numpy(usage.perplexity())),
            histogram=to_numpy(usage.histogram()).astype("int64"),
            reconstructions=np.concatenate(recon)[:32],
        )
        if sub_codebooks is not None:
            parts = {}
            for part in sub_codebooks:
                histogram = to_numpy(usage.histogram(part.name))
                parts[part.name] = {
                    "size": part.size,
                    "slots": part.slots,
                    "usage": float(to_numpy(usage.usage(part.name))),
                    "perplexity": float(
                        to_numpy(usage.perplexity(part.name))
                    ),
                    "codes_used": int((histogram > 0).sum()),
                    "histogram": histogram.astype("int64"),
                }
            result["sub_codebooks"] = parts
    return result

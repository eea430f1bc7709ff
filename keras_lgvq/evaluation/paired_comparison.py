"""Per-item scores of two tokenizers on the same test items, and their tests.

`evaluate_model` reports dataset means. To say whether model A beats model
B beyond chance, the comparison needs the per-item values behind those
means, scored on identical items: `per_item_scores` gives, for one model,

- `psnr`: per-image PSNR (dB, reconstructions clipped to [-1, 1], capped at
  100 dB like the `PSNR` metric), and with `with_ssim=True` `ssim`, the
  per-image SSIM;
- `{probe,own}_image_to_text_R@K` and `{probe,own}_text_to_image_R@K`:
  1.0 where the query's own item is within the top K (ties pessimistic, as
  the recall metrics), from the probe's and (LG-VQ) the model's own image
  embeddings.

`paired_significance` runs `significance.paired_bootstrap` on every key the
two models share.
"""

import numpy as np

from keras import ops

from keras_lgvq.evaluation.alignment_metrics import batched
from keras_lgvq.evaluation.significance import paired_bootstrap
from keras_lgvq.metrics.image_quality import psnr
from keras_lgvq.metrics.image_quality import ssim
from keras_lgvq.metrics.retrieval import image_to_text_ranks
from keras_lgvq.metrics.retrieval import text_to_image_ranks
from keras_lgvq.utils.tensors import to_numpy

_EMBEDDINGS = {"probe": "probe_image_embeddings", "own": "own_image_embeddings"}


def per_item_scores(
    model, eval_split, artifacts, ks=(1, 5), batch_size=64, with_ssim=False
):
    """Per-item values of one evaluated model (see the module docstring).

    Args:
        model: the evaluated model (anything with `.backbone.encode_decode`,
            or a backbone itself).
        eval_split: the split dict from `prepare_split` (`images`, and
            `sentence_feature` for retrieval).
        artifacts: the artifacts `evaluate_model(..., return_artifacts=True)`
            returned for this model.
        ks: tuple of ints. Retrieval cut-offs.
        batch_size: int. Images per reconstruction call.
        with_ssim: bool. Also `ssim`: per-image SSIM of the clipped
            reconstruction (the `SSIM` metric's per-image values).

    Returns:
        dict name -> 1-D float array, one value per test item.

    Examples:

    ```python
    results, artifacts = evaluate_model(model, split, probe_split,
                                        return_artifacts=True)
    scores = per_item_scores(model, split, artifacts)
    ```
    """
    backbone = getattr(model, "backbone", model)
    if not hasattr(backbone, "encode_decode"):
        raise ValueError(
            "`model` must be a tokenizer (with `encode_decode`) or a model "
            f"holding one as `.backbone`; received {type(model).__name__}."
        )
    images = np.asarray(eval_split["images"], "float32")

    def reconstruct(rows):
        x = ops.convert_to_tensor(images[rows])
        out = backbone.encode_decode(x, training=False)["reconstruction"]
        x_hat = ops.clip(ops.cast(out, "float32"), -1.0, 1.0)
        values = [psnr(x, x_hat, data_range=2.0, max_psnr=100.0)]
        if with_ssim:
            values.append(ssim(x, x_hat, data_range=2.0))
        return ops.stack(values, axis=1)

    values = batched(reconstruct, len(images), batch_size)
    scores = {"psnr": values[:, 0]}
    if with_ssim:
        scores["ssim"] = values[:, 1]
    sentence = eval_split.get("sentence_feature")
    if sentence is not None:
        owner = np.arange(len(sentence))
        for prefix, key in _EMBEDDINGS.items():
            if key not in artifacts:
                continue
            emb = to_numpy(artifacts[key]).astype("float32")
            ranks = {
                "image_to_text": image_to_text_ranks(emb, sentence, owner),
                "text_to_image": text_to_image_ranks(emb, sentence, owner),
            }
            for direction, r in ranks.items():
                for k in ks:
                    scores[f"{prefix}_{direction}_R@{k}"] = (r <= k).astype(
                        "float64"
                    )
    return scores


def paired_significance(scores_a, scores_b, num_resamples=2000, seed=0):
    """`paired_bootstrap` of A minus B for every score both models have.

    Args:
        scores_a: dict from `per_item_scores` for model A.
        scores_b: dict from `per_item_scores` for model B, same split.
        num_resamples: int. Bootstrap resamples.
        seed: int. Resampling seed.

    Returns:
        dict name -> the `paired_bootstrap` result.

    Examples:

    ```python
    tests = paired_significance(scores["lgvq"], scores["vqgan"])
    tests["probe_image_to_text_R@1"]["significant"]
    ```
    """
    return {
        name: paired_bootstrap(
            scores_a[name], scores_b[name], num_resamples, seed=seed
        )
        for name in sorted(set(scores_a) & set(scores_b))
    }

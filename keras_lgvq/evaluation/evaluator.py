"""`evaluate_model`: every metric that applies to a tokenizer, in one dict.

The orchestrator of the evaluation package: it runs the tokenizer over the
evaluation split (`tokenizer_runner`), adds LPIPS / rFID when their weights
exist (`fidelity`), scores an LG-VQ model's own guidance heads, trains the
alignment and attribute probes on the probe split's frozen codes
(`probe_training`, `linear_attribute_probes`) and measures them
(`alignment_metrics`).
"""

import time

import numpy as np
from keras import ops

from keras_lgvq.evaluation.alignment_metrics import batched
from keras_lgvq.evaluation.alignment_metrics import retrieval_recalls
from keras_lgvq.evaluation.alignment_metrics import split_masked_word_recall
from keras_lgvq.evaluation.alignment_metrics import split_relation_mse
from keras_lgvq.evaluation.linear_attribute_probes import attribute_probes
from keras_lgvq.evaluation.fidelity import perceptual_metrics
from keras_lgvq.evaluation.probe_training import DEFAULT_PROBE_CONFIG
from keras_lgvq.evaluation.probe_training import train_alignment_probe
from keras_lgvq.evaluation.tokenizer_runner import run_tokenizer
from keras_lgvq.utils.code_layout import sub_codebooks_of
from keras_lgvq.utils.tensors import l2_normalize
from keras_lgvq.utils.tensors import to_numpy


def _lgvq_guidance(model):
    return getattr(model, "guidance", None)


def _top_k(scores, k):
    # Stable: equal scores keep their index order, on every backend.
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def evaluate_model(
    model,
    eval_split,
    probe_split=None,
    text_prior=None,
    probe_config=None,
    lpips_weights="auto",
    inception_weights=None,
    batch_size=32,
    seed=0,
    verbose=1,
    return_artifacts=False,
):
    """Every metric that applies to a tokenizer, as a JSON-ready dict.

    Args:
        model: a trained `VQGAN`, `LGVQ`, `VQCT` or VQCT+LG (any trainer
            whose `backbone` has `encode_decode`). For a tokenizer with
            sub-codebooks (VQCT), the results add `sub_codebooks`: usage,
            perplexity and codes used per sub-codebook (adjective, noun);
            `codebook_usage` / `codebook_perplexity` / `codes_used` are
            then over all codes (flattened ids, see
            `keras_lgvq.utils.code_layout`).
        eval_split: dict from `prepare_split` (evaluation images).
        probe_split: dict from `prepare_split(..., training_masks=True)` or
            None. Images the probes are trained on; None skips the probes
            (and the linear attribute probes).
        text_prior: `TextPrior` or None. Supplies the frozen token
            embeddings of the masked-word probe (an `LGVQ`'s own
            `token_embeddings` are used when None) and the text encoder of a
            leak-free `LGVQ` head.
        probe_config: dict or None. Overrides of `DEFAULT_PROBE_CONFIG`
            (its `jit_compile` also applies to the tokenizer pass and the
            linear probes).
        lpips_weights: str or None. See `perceptual_metrics`.
        inception_weights: str or None. See `perceptual_metrics`.
        batch_size: int. Images per forward pass.
        seed: int. Seed of the probes (the same for every model).
        verbose: int. Progress bars when > 0.
        return_artifacts: bool. Also return arrays for figures.

    Returns:
        The results dict, or `(results, artifacts)` with `return_artifacts`
        (`reconstructions`, `images`, `histogram`, retrieval rankings, and
        `sub_codebook_histograms` `{name: counts}` with sub-codebooks).

    Examples:

    ```python
    results = keras_lgvq.evaluation.evaluate_model(
        model, eval_split, probe_split, text_prior=prior)
    results["psnr"], results["retrieval_probe"]["image_to_text"]["R@1"]
    ```
    """
    config = {**DEFAULT_PROBE_CONFIG, **(probe_config or {})}
    timings = {}
    start = time.time()
    backbone = model.backbone
    guidance = _lgvq_guidance(model)
    sub_codebooks = sub_codebooks_of(backbone)
    results = {
        "model": type(model).__name__,
        "language_guidance": guidance is not None,
        "num_eval_images": int(eval_split["num_images"]),
        "codebook_size": int(backbone.num_embeddings),
        "code_grid": [int(backbone.grid_size)] * 2,
        "image_size": int(backbone.resolution),
    }
    if verbose:
        print(f"[{results['model']}] encoding the evaluation images")
    codes = run_tokenizer(
        model,
        eval_split["images"],
        batch_size,
        metrics=True,
        verbose=verbose,
        jit_compile=config["jit_compile"],
    )
    results.update(
        psnr=codes["psnr"],
        ssim=codes["ssim"],
        codebook_usage=codes["usage"],
        codebook_perplexity=codes["perplexity"],
        codes_used=int((codes["histogram"] > 0).sum()),
        sub_codebooks=None,
    )
    if sub_codebooks is not None:
        results["sub_codebooks"] = {
            name: {k: v for k, v in part.items() if k != "histogram"}
            for name, part in codes["sub_codebooks"].items()
        }

    def reconstruct(x):
        out = backbone.encode_decode(ops.convert_to_tensor(x), training=False)
        return ops.clip(ops.cast(out["reconstruction"], "float32"), -1, 1)

    results.update(
        perceptual_metrics(
            eval_split["images"], reconstruct, lpips_weights, inception_weights
        )
    )
    timings["tokenize_and_fidelity"] = time.time() - start
    artifacts = {
        "eval_images": eval_split["images"],
        "images": eval_split["images"][:32],
        "reconstructions": codes["reconstructions"],
        "histogram": codes["histogram"],
    }
    if sub_codebooks is not None:
        artifacts["sub_codebook_histograms"] = {
            name: part["histogram"]
            for name, part in codes["sub_codebooks"].items()
        }
    quantized = codes["quantized"]
    has_text = "sentence_feature" in eval_split
    sentence = eval_split.get("sentence_feature")

    # --- LG-VQ's own heads -------------------------------------------------
    if guidance is not None and has_text:
        t0 = time.time()
        token_embeddings = ops.convert_to_tensor(model.token_embeddings)
        encoder = getattr(model, "text_prior", None) or text_prior
        own_emb = batched(
            lambda r: guidance.embed_image(quantized[r]), len(quantized)
        )
        own = {"retrieval": retrieval_recalls(own_emb, sentence)}

        def own_logits(rows, mask, k):
            text = {
                "token_ids": eval_split["token_ids"][rows],
                "padding_mask": eval_split["padding_mask"][rows],
                "token_features": eval_split["token_features"][rows].astype(
                    "float32"
                ),
                "sentence_feature": sentence[rows],
            }
            return guidance.predict_masked(
                quantized[rows], text, mask, token_embeddings,
                text_encoder=encoder,
            )

        own["masked_word"] = {
            f"mask{k}": split_masked_word_recall(eval_split, own_logits, k)
            for k in (1, 3)
            if f"mask_{k}" in eval_split
        }
        own["masked_word"]["leak_free"] = bool(guidance.mtp_leak_free)
        n_tok = backbone.grid_size**2
        own["relation_mse"] = split_relation_mse(
            eval_split,
            lambda r: guidance.code_transformer(quantized[r])[:, 1:],
            lambda r: guidance.ras.code_features(
                ops.reshape(quantized[r], (-1, n_tok, quantized.shape[-1]))
            ),
        )
        results["own_heads"] = own
        artifacts["own_image_embeddings"] = own_emb
        timings["own_heads"] = time.time() - t0
    elif guidance is None:
        results["own_heads"] = {
            "available": False,
            "reason": "no language guidance: the model has no text heads",
        }

    # --- Probes on frozen codes --------------------------------------------
    if probe_split is not None:
        t0 = time.time()
        if verbose:
            print(f"[{results['model']}] encoding the probe-training images")
        train_codes = run_tokenizer(
            model,
            probe_split["images"],
            batch_size,
            metrics=False,
            verbose=verbose,
            jit_compile=config["jit_compile"],
        )
        if "num_objects" in probe_split and "num_objects" in eval_split:
            results["attribute_probe"] = attribute_probes(
                train_codes, probe_split, codes, eval_split,
                backbone.num_embeddings, config, seed,
                sub_codebooks=sub_codebooks,
            )
        timings["attribute_probes"] = time.time() - t0
        if has_text and "sentence_feature" in probe_split:
            t0 = time.time()
            if text_prior is not None:
                token_embeddings = text_prior.token_embeddings
            elif guidance is not None:
                token_embeddings = model.token_embeddings
            else:
                raise ValueError(
                    "The masked-word probe needs the text prior's token "
                    "embeddings: pass `text_prior`."
                )
            probe, info = train_alignment_probe(
                train_codes["quantized"], probe_split, token_embeddings,
                config, seed, verbose,
            )
            emb = batched(
                lambda r: probe.embed_image(quantized[r]), len(quantized)
            )
            results["retrieval_probe"] = retrieval_recalls(emb, sentence)

            def probe_logits(rows, mask, k):
                return probe.predict_masked(
                    quantized[rows],
                    eval_split[f"masked_features_{k}"][rows],
                    eval_split["padding_mask"][rows],
                    mask,
                )

            results["masked_word_probe"] = {
                f"mask{k}": split_masked_word_recall(
                    eval_split, probe_logits, k
                )
                for k in (1, 3)
                if f"mask_{k}" in eval_split
            }
            results["masked_word_probe"]["leak_free"] = True
            # Reference: always answer the most frequent masked token of the
            # probe's training captions (what an unconditioned probe learns
            # first).
            train_targets = probe_split["token_ids"][probe_split["train_mask"]]
            majority = int(np.bincount(train_targets).argmax())
            for k in (1, 3):
                entry = results["masked_word_probe"].get(f"mask{k}")
                if entry:
                    hidden = eval_split["token_ids"][eval_split[f"mask_{k}"]]
                    entry["majority_token_baseline"] = float(
                        100.0 * np.mean(hidden == majority)
                    )
            n_tok = backbone.grid_size**2
            results["relation_mse_probe"] = split_relation_mse(
                eval_split,
                lambda r: probe.visual_tokens(quantized[r]),
                lambda r: np.reshape(
                    quantized[r], (-1, n_tok, quantized.shape[-1])
                ),
            )
            results["probe_training"] = info
            artifacts["probe_image_embeddings"] = emb
            timings["alignment_probe"] = time.time() - t0
    if has_text:
        artifacts["sentence_feature"] = sentence
        scores = {}
        for key in ("probe_image_embeddings", "own_image_embeddings"):
            if key in artifacts:
                img = ops.cast(artifacts[key], "float32")
                img = to_numpy(l2_normalize(img))
                txt = to_numpy(l2_normalize(ops.cast(sentence, "float32")))
                sim = txt[:8] @ img.T
                scores[key] = {
                    "text_to_image_top5": _top_k(sim, 5),
                    "image_to_text_top3": _top_k(img[:8] @ txt.T, 3),
                }
        artifacts["retrieval_rankings"] = scores
        artifacts["captions"] = eval_split.get("captions")
    results["seconds"] = {k: round(v, 2) for k, v in timings.items()}
    results["seconds"]["total"] = round(time.time() - start, 2)
    if return_artifacts:
        return results, artifacts
    return results

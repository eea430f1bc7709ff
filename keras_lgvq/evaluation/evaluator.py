"""`evaluate_model`: every metric that applies to a tokenizer, in one dict.

The orchestrator of the evaluation package: it runs the tokenizer over the
evaluation split (`tokenizer_runner`), adds LPIPS / rFID when their weights
exist (`fidelity`), scores an LG-VQ model's own guidance heads, trains the
alignment and attribute probes on the probe split's frozen codes
(`probe_training`, `linear_attribute_probes`) and measures them
(`alignment_metrics`).
"""

import contextlib
import time

import numpy as np
from keras import ops

from keras_lgvq.evaluation.alignment_metrics import batched
from keras_lgvq.evaluation.alignment_metrics import retrieval_recalls
from keras_lgvq.evaluation.alignment_metrics import split_masked_word_recall
from keras_lgvq.evaluation.alignment_metrics import split_relation_mse
from keras_lgvq.evaluation.class_captions import DEFAULT_TEMPLATES
from keras_lgvq.evaluation.class_captions import caption_groups
from keras_lgvq.evaluation.class_captions import retrieval_chance
from keras_lgvq.evaluation.class_captions import class_prompt_features
from keras_lgvq.evaluation.class_captions import class_prompts
from keras_lgvq.evaluation.class_captions import zero_shot_classify
from keras_lgvq.evaluation.linear_attribute_probes import attribute_probes
from keras_lgvq.evaluation.fidelity import perceptual_metrics
from keras_lgvq.evaluation.probe_training import DEFAULT_PROBE_CONFIG
from keras_lgvq.evaluation.probe_training import train_alignment_probe
from keras_lgvq.evaluation.tokenizer_runner import run_tokenizer
from keras_lgvq.utils.code_layout import sub_codebooks_of
from keras_lgvq.utils.tensors import l2_normalize
from keras_lgvq.utils.tensors import to_numpy
from keras_lgvq.utils.validation import check_int


def _lgvq_guidance(model):
    return getattr(model, "guidance", None)


class _PhaseClock:
    """`with clock("name"):` adds the block's seconds to `timings[name]`."""

    def __init__(self, timings):
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, name):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + (
                time.perf_counter() - t0
            )


def cost_table(results):
    """The evaluation's cost per phase as a printable text table.

    Args:
        results: dict from `evaluate_model`.

    Examples:

    ```python
    print(keras_lgvq.evaluation.evaluator.cost_table(results))
    ```
    """
    rows = [
        (f"prepare {name}: {key}", value)
        for name, part in (results.get("split_seconds") or {}).items()
        for key, value in part.items()
    ]
    rows += list((results.get("seconds") or {}).items())
    width = max(len(name) for name, _ in rows)
    lines = [f"Evaluation cost of {results.get('model')} (seconds):"]
    lines += [f"  {name:<{width}}  {value:9.2f}" for name, value in rows]
    return "\n".join(lines)


def _zero_shot_prompts(zero_shot, eval_split, text_prior):
    if not isinstance(zero_shot, dict):
        raise ValueError(
            "`zero_shot` must be a dict with `class_names` (and optional "
            "`templates`), `prompts` or `prompt_features`. Received "
            f"{type(zero_shot).__name__}."
        )
    known = {"class_names", "templates", "prompts", "prompt_features"}
    unknown = sorted(set(zero_shot) - known)
    if unknown:
        raise ValueError(
            f"Unknown `zero_shot` keys {unknown}; valid: {sorted(known)}."
        )
    if "labels" not in eval_split:
        raise ValueError(
            "Zero-shot classification needs class labels in `eval_split`: "
            "prepare it from batches with a `label` field "
            "(`make_dataset(..., extra_fields=('label',))`)."
        )
    if "prompt_features" in zero_shot:
        features = np.asarray(zero_shot["prompt_features"], "float32")
        return features[:, None] if features.ndim == 2 else features
    if "prompts" in zero_shot:
        prompts = zero_shot["prompts"]
    elif "class_names" in zero_shot or "label_names" in eval_split:
        # String labels (`prepare_split`) name their own classes.
        prompts = class_prompts(
            zero_shot.get("class_names", eval_split.get("label_names")),
            zero_shot.get("templates", DEFAULT_TEMPLATES),
        )
    else:
        raise ValueError(
            "`zero_shot` needs `class_names` (index = label), `prompts` or "
            "`prompt_features`."
        )
    if text_prior is None:
        raise ValueError(
            "Zero-shot prompts need the text prior of the split's sentence "
            "features: pass `text_prior`."
        )
    return class_prompt_features(text_prior, prompts)


def _zero_shot_scores(image_emb, prompt_features, labels):
    out = zero_shot_classify(image_emb, prompt_features, labels)
    return {
        k: out[k]
        for k in ("accuracy", "per_class_accuracy", "chance", "num_classes")
    }


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
    zero_shot=None,
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
        zero_shot: dict or None. Zero-shot classification of the
            evaluation images (needs `labels` in `eval_split`, see
            `prepare_split(label_key=...)`): `class_names` (index = label)
            with optional `templates` (`"a photo of a {}."`; several are
            averaged per class; string labels supply their own
            `label_names`), or `prompts` (C lists of T str). Scored
            with the model's own head (LG-VQ's GSA embedding) and with the
            alignment probe, as `results["zero_shot"]`.

    Captions that repeat (class-style captions) are scored as one target
    each and a warning says so; with `labels` in `eval_split` the
    retrieval blocks add `class_level` recalls (see
    `keras_lgvq.evaluation.class_captions`). `results["seconds"]` holds
    the seconds of every phase (tokenizer pass, fidelity, own heads'
    retrieval / masked words / relations, probe encoding, training and
    scoring, zero-shot) and `results["split_seconds"]` those of
    `prepare_split`; the probe budget (`probe_config` `epochs`,
    `max_steps`, `max_train_images`, `linear_epochs`) bounds the longest
    phases.

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
    phase = _PhaseClock(timings)
    # Bad budgets and zero-shot requests fail before any model work.
    for key in ("max_steps", "max_train_images"):
        check_int(f"probe_config['{key}']", config[key], 1, allow_none=True)
    prompt_features = None
    if zero_shot is not None:
        with phase("zero_shot_prompts"):
            prompt_features = _zero_shot_prompts(
                zero_shot, eval_split, text_prior or getattr(
                    model, "text_prior", None
                ),
            )
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
    if prompt_features is not None:
        results["zero_shot"] = {
            "num_classes": int(prompt_features.shape[0]),
            "prompts_per_class": int(prompt_features.shape[1]),
        }
    if verbose:
        print(f"[{results['model']}] encoding the evaluation images")
    with phase("tokenize"):
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

    with phase("fidelity"):
        results.update(
            perceptual_metrics(
                eval_split["images"], reconstruct, lpips_weights,
                inception_weights,
            )
        )
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
    labels = eval_split.get("labels")
    groups = None
    if has_text:
        # Identical captions are one retrieval target (class captions).
        groups, _ = caption_groups(
            eval_split.get("token_ids"),
            eval_split.get("padding_mask"),
            eval_split.get("captions"),
        )
        # What random ranking scores once repeats are one target.
        results["retrieval_chance"] = retrieval_chance(groups)
        results["num_distinct_captions"] = int(np.unique(groups).size)

    # --- LG-VQ's own heads -------------------------------------------------
    if guidance is not None and has_text:
        token_embeddings = ops.convert_to_tensor(model.token_embeddings)
        encoder = getattr(model, "text_prior", None) or text_prior
        with phase("own_retrieval"):
            own_emb = batched(
                lambda r: guidance.embed_image(quantized[r]), len(quantized)
            )
            own = {
                "retrieval": retrieval_recalls(
                    own_emb, sentence, groups, labels
                )
            }
        if prompt_features is not None:
            with phase("zero_shot"):
                results["zero_shot"]["own"] = _zero_shot_scores(
                    own_emb, prompt_features, labels
                )

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

        with phase("own_masked_word"):
            own["masked_word"] = {
                f"mask{k}": split_masked_word_recall(
                    eval_split, own_logits, k
                )
                for k in (1, 3)
                if f"mask_{k}" in eval_split
            }
        own["masked_word"]["leak_free"] = bool(guidance.mtp_leak_free)
        n_tok = backbone.grid_size**2
        with phase("own_relation"):
            own["relation_mse"] = split_relation_mse(
                eval_split,
                lambda r: guidance.code_transformer(quantized[r])[:, 1:],
                lambda r: guidance.ras.code_features(
                    ops.reshape(
                        quantized[r], (-1, n_tok, quantized.shape[-1])
                    )
                ),
            )
        results["own_heads"] = own
        artifacts["own_image_embeddings"] = own_emb
    elif guidance is None:
        results["own_heads"] = {
            "available": False,
            "reason": "no language guidance: the model has no text heads",
        }

    # --- Probes on frozen codes --------------------------------------------
    if probe_split is not None:
        if verbose:
            print(f"[{results['model']}] encoding the probe-training images")
        with phase("probe_tokenize"):
            train_codes = run_tokenizer(
                model,
                probe_split["images"],
                batch_size,
                metrics=False,
                verbose=verbose,
                jit_compile=config["jit_compile"],
            )
        if "num_objects" in probe_split and "num_objects" in eval_split:
            with phase("attribute_probes"):
                results["attribute_probe"] = attribute_probes(
                    train_codes, probe_split, codes, eval_split,
                    backbone.num_embeddings, config, seed,
                    sub_codebooks=sub_codebooks,
                )
        if has_text and "sentence_feature" in probe_split:
            if text_prior is not None:
                token_embeddings = text_prior.token_embeddings
            elif guidance is not None:
                token_embeddings = model.token_embeddings
            else:
                raise ValueError(
                    "The masked-word probe needs the text prior's token "
                    "embeddings: pass `text_prior`."
                )
            with phase("probe_training"):
                probe, info = train_alignment_probe(
                    train_codes["quantized"], probe_split, token_embeddings,
                    config, seed, verbose,
                )
            with phase("probe_retrieval"):
                emb = batched(
                    lambda r: probe.embed_image(quantized[r]), len(quantized)
                )
                results["retrieval_probe"] = retrieval_recalls(
                    emb, sentence, groups, labels
                )
            if prompt_features is not None:
                with phase("zero_shot"):
                    results["zero_shot"]["probe"] = _zero_shot_scores(
                        emb, prompt_features, labels
                    )

            def probe_logits(rows, mask, k):
                return probe.predict_masked(
                    quantized[rows],
                    eval_split[f"masked_features_{k}"][rows],
                    eval_split["padding_mask"][rows],
                    mask,
                )

            with phase("probe_masked_word"):
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
            with phase("probe_relation"):
                results["relation_mse_probe"] = split_relation_mse(
                    eval_split,
                    lambda r: probe.visual_tokens(quantized[r]),
                    lambda r: np.reshape(
                        quantized[r], (-1, n_tok, quantized.shape[-1])
                    ),
                )
            results["probe_training"] = info
            artifacts["probe_image_embeddings"] = emb
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
    results["split_seconds"] = {
        name: {k: round(v, 2) for k, v in split["seconds"].items()}
        for name, split in (("eval", eval_split), ("probe", probe_split))
        if split is not None and "seconds" in split
    }
    if verbose:
        print(cost_table(results))
    if return_artifacts:
        return results, artifacts
    return results

"""LQAE training throughput at the CPU config, next to its VQAE baseline,
and the language model's share of the step.

Builds `LQAE.from_preset("scenes_lqae")` (64 px, patch 8: 64 tokens per
image, a 2 + 2 layer ViT of width 128, the offline splade-tiny BERT with
its 30522 x 128 table as codebook, Bernoulli(0.5) masking, decoder on the
LM's hidden states) and `LQAE.from_preset("scenes_vqae")` (the same ViT, a
learned 1024-code codebook, no LM), compiles both with the default AdamW and
times `train_on_batch` on random images in [-1, 1] (batch 16 by default):
the first step (compilation) separately, then the median of the timed
steps, as images/s.

Shares of the LQAE step, each the median time of one compiled forward pass
(`predict_on_batch` of a functional model, so TF and JAX run it traced like
the train step; torch runs eagerly, like its train step) divided by the
median LQAE step time:

- `lm_forward`: the frozen LM on a batch of token embeddings (position
  embeddings, encoder layers and the MLM head's `(B, L, 30522)` logits);
- `token_search`: the quantizer's cosine nearest-token search over the
  30522-token table (one forward).

Backward passes are not included (through the LM, the backward roughly
doubles its forward), so the LM's real share is larger than `lm_forward`.

`--config paper` runs the same measurement on the README configuration
(ViT-Base/16 at 256 px with a randomly initialised RoBERTa-base-sized LM,
50265 x 768, 12 layers; throughput only, no pretrained weights needed) at
`--batch-size` (default 16 there too; use a GPU).

Usage:

```
KERAS_BACKEND=tensorflow python benchmarks/lqae_benchmark.py
KERAS_BACKEND=jax python benchmarks/lqae_benchmark.py --steps 3
KERAS_BACKEND=torch python benchmarks/lqae_benchmark.py
KERAS_BACKEND=jax python benchmarks/lqae_benchmark.py --config paper
```

Results go to `benchmarks/results/lqae_<backend>.json` (`lqae_paper_...`
for the paper config).
"""

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

from keras_lgvq.models import LQAE
from keras_lgvq.utils.machine import load_average, machine_info


def _block(value):
    # Wait for asynchronous backends (JAX) before stopping the clock.
    for item in value if isinstance(value, (list, tuple)) else [value]:
        keras.ops.convert_to_numpy(item)


def time_training(model, images, warmup, steps):
    model.compile(learning_rate=1e-3)
    start = time.perf_counter()
    _block(model.train_on_batch(images, return_dict=True)["loss"])
    first = time.perf_counter() - start
    for _ in range(warmup):
        _block(model.train_on_batch(images, return_dict=True)["loss"])
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        _block(model.train_on_batch(images, return_dict=True)["loss"])
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "first_step_s": round(first, 3),
        "median_step_s": round(median, 4),
        "step_times_s": [round(t, 4) for t in times],
        "images_per_s": round(len(images) / median, 3),
    }


def time_forward(model, inputs, repeats):
    """Median seconds of `model.predict_on_batch(inputs)` after a warm-up."""
    _block(model.predict_on_batch(inputs))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(model.predict_on_batch(inputs))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def lm_forward_model(language_model, length):
    inputs = keras.Input((length, language_model.hidden_dim))
    outputs = language_model(inputs)
    return keras.Model(inputs, [outputs["hidden_states"], outputs["logits"]])


def search_model(quantizer, grid):
    inputs = keras.Input((grid, grid, quantizer.embedding_dim))
    return keras.Model(inputs, quantizer(inputs)["indices"])


def paper_models():
    from keras_lgvq.language_models.masked_lm import MaskedLanguageModel
    from keras_lgvq.models import LQAEBackbone
    from keras_lgvq.models.presets import get_preset

    spec = get_preset("imagenet_lqae", "LQAE")
    lm = MaskedLanguageModel.random(
        vocabulary_size=50265,
        hidden_dim=768,
        num_layers=12,
        num_heads=12,
        intermediate_dim=3072,
        max_sequence_length=512,
        seed=0,
        architecture="roberta",
        name="language_model",
    )
    backbone = LQAEBackbone(language_model=lm, **spec["backbone"])
    lqae = LQAE(backbone, **spec["model"])
    vqae = LQAE.from_preset("imagenet_vqae")
    return lqae, vqae, 256


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=("scenes", "paper"),
                        default="scenes")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    backend = keras.backend.backend()
    load_before = load_average()
    if args.config == "paper":
        lqae, vqae, size = paper_models()
        names = ("lqae_imagenet_lqae", "vqae_imagenet_vqae")
    else:
        lqae = LQAE.from_preset("scenes_lqae")
        vqae = LQAE.from_preset("scenes_vqae")
        size = 64
        names = ("lqae_scenes_lqae", "vqae_scenes_vqae")
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch_size, size, size, 3)).astype(
        "float32"
    )
    results = {}
    results[names[0]] = time_training(lqae, images, args.warmup, args.steps)
    step_s = results[names[0]]["median_step_s"]
    backbone = lqae.backbone
    grid = backbone.grid_size
    repeats = max(args.steps, 5)
    codes = np.asarray(
        keras.ops.convert_to_numpy(
            backbone.encode_decode(images)["quantized"]
        )
    )
    lm_s = time_forward(
        lm_forward_model(backbone.language_model, grid * grid),
        codes.reshape(args.batch_size, grid * grid, -1),
        repeats,
    )
    search_s = time_forward(
        search_model(backbone.quantizer, grid), codes, repeats
    )
    results["lm_forward_s"] = round(lm_s, 5)
    results["lm_forward_share_of_lqae_step"] = round(lm_s / step_s, 4)
    results["token_search_s"] = round(search_s, 5)
    results["token_search_share_of_lqae_step"] = round(search_s / step_s, 4)
    del lqae
    results[names[1]] = time_training(vqae, images, args.warmup, args.steps)
    results["lqae_step_over_vqae_step"] = round(
        step_s / results[names[1]]["median_step_s"], 3
    )
    report = {
        "benchmark": "lqae_benchmark",
        "config": args.config,
        "backend": backend,
        "batch_size": args.batch_size,
        "warmup": args.warmup,
        "steps": args.steps,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
        "results": results,
    }
    suffix = "" if args.config == "scenes" else "_paper"
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"lqae{suffix}_{backend}.json",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(results, indent=2))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()

"""Training and sampling throughput of the text-to-image generator.

For two configurations,

- `cpu`: the `text_to_image_scenes` preset (16x16 grid, K=256, 4 blocks of
  width 128, MiniLM 384-d text), training batch 32;
- `paper`: the `text_to_image_celeba_hq` preset (16x16 grid, K=1024, 19
  blocks of width 1024 with 16 heads, CLIP 512-d text; the paper's
  VQ-Diffusion size), training batch 2 on CPU (`--paper-batch-size` on a
  GPU),

it measures the training throughput in code tokens/s (every position of
the grid is a token; the loss covers the masked ones) from the median step
time over the timed steps (the first steps, which compile, are reported
separately), and the sampling throughput in images/s: iterative parallel
decoding with classifier-free guidance (both passes in one doubled batch)
for `--sampling-steps` steps, code grids only (decoding the grids to pixels
is the tokenizer's cost, see `training_benchmark.py`). Text features are
random with the prior's dimensions (30 tokens), as when reading a feature
cache; no text encoder runs.

Usage (once per backend):

```
KERAS_BACKEND=tensorflow python benchmarks/text_to_image_benchmark.py
KERAS_BACKEND=jax python benchmarks/text_to_image_benchmark.py
KERAS_BACKEND=torch python benchmarks/text_to_image_benchmark.py
# On a GPU: --mixed-precision bf16 --paper-batch-size 24 (and again fp32)
```

Results go to `benchmarks/results/text_to_image_<backend>[_<policy>].json`.
"""

import argparse
import json
import os
import statistics
import sys
import time

from keras_lgvq.utils.machine import load_average
from keras_lgvq.utils.machine import machine_info
from keras_lgvq.utils.machine import peak_rss_mb

CONFIGS = {
    "cpu": dict(
        preset="text_to_image_scenes",
        batch_size=32,
        warmup=2,
        steps=5,
        sample_batch=32,
    ),
    "paper": dict(
        preset="text_to_image_celeba_hq",
        batch_size=2,
        warmup=1,
        steps=2,
        sample_batch=2,
    ),
}
TEXT_LENGTH = 30


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS)
    )
    parser.add_argument("--paper-batch-size", type=int)
    parser.add_argument("--sampling-steps", type=int, default=12)
    parser.add_argument(
        "--mixed-precision", choices=("float32", "bf16", "fp16"),
        default="float32",
    )
    parser.add_argument(
        "--jit-compile", choices=("auto", "on", "off"), default="auto"
    )
    parser.add_argument("--out", default=None, help="Result JSON path.")
    return parser.parse_args(argv)


def _median_step_seconds(fn, warmup, steps):
    first = []
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        first.append(time.perf_counter() - start)
    timed = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        timed.append(time.perf_counter() - start)
    return statistics.median(timed), first


def bench_config(name, config, args):
    import keras
    import numpy as np

    from keras_lgvq.models.text_to_image import TextToImage

    keras.utils.set_random_seed(0)
    model = TextToImage.from_preset(config["preset"], text_prior=None, seed=0)
    batch = config["batch_size"]
    if name == "paper" and args.paper_batch_size:
        batch = args.paper_batch_size
    jit = {"auto": "auto", "on": True, "off": False}[args.jit_compile]
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=jit)
    grid = model.grid_size
    dim = model.backbone.text_dim
    rng = np.random.default_rng(0)
    data = {
        "codes": rng.integers(0, model.num_codes, (batch, grid, grid)).astype(
            "int32"
        ),
        "token_features": rng.normal(size=(batch, TEXT_LENGTH, dim)).astype(
            "float32"
        ),
        "padding_mask": np.ones((batch, TEXT_LENGTH), bool),
    }

    def train_step():
        model.train_on_batch(data)

    step_s, compile_s = _median_step_seconds(
        train_step, config["warmup"], config["steps"]
    )
    tokens = batch * grid * grid
    sample_batch = config["sample_batch"] if name != "paper" else batch
    text = {
        "token_features": data["token_features"][:1].repeat(sample_batch, 0),
        "padding_mask": data["padding_mask"][:1].repeat(sample_batch, 0),
    }

    def sample():
        model.generate_codes(
            text_features=text,
            steps=args.sampling_steps,
            guidance_scale=3.0,
            seed=0,
            batch_size=sample_batch,
        )

    sample_s, sample_first = _median_step_seconds(sample, 1, 2)
    return {
        "preset": config["preset"],
        "parameters": int(model.count_params()),
        "layers": model.backbone.num_layers,
        "width": model.backbone.hidden_dim,
        "grid": grid,
        "num_codes": model.num_codes,
        "train_batch": batch,
        "train_step_s_median": round(step_s, 4),
        "train_first_steps_s": [round(s, 3) for s in compile_s],
        "train_tokens_per_s": round(tokens / step_s, 1),
        "train_images_per_s": round(batch / step_s, 3),
        "sample_batch": sample_batch,
        "sampling_steps": args.sampling_steps,
        "sampling_guidance": "classifier-free, both passes in one batch",
        "sample_batch_s_median": round(sample_s, 3),
        "sample_first_batch_s": round(sample_first[0], 3),
        "sample_images_per_s": round(sample_batch / sample_s, 3),
    }


def main(argv=None):
    args = parse_args(argv)
    import keras

    if args.mixed_precision != "float32":
        keras.config.set_dtype_policy(
            {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}[
                args.mixed_precision
            ]
        )
    backend = keras.backend.backend()
    result = {
        "benchmark": "text_to_image_benchmark",
        "backend": backend,
        "dtype_policy": keras.config.dtype_policy().name,
        "jit_compile": args.jit_compile,
        "machine": machine_info(),
        "load_average_at_start": load_average(),
        "note": (
            "Wall-clock figures; a load average above cpu_count means the "
            "CPUs were shared with other jobs and the figures are "
            "pessimistic. Tokens = code positions per image (grid^2) x batch."
        ),
        "configs": {},
    }
    for name in args.configs:
        print(f"== {name} ({CONFIGS[name]['preset']})", flush=True)
        result["configs"][name] = bench_config(name, CONFIGS[name], args)
        print(json.dumps(result["configs"][name], indent=1), flush=True)
    result["load_average_at_end"] = load_average()
    result["peak_rss_mb"] = peak_rss_mb()
    suffix = "" if args.mixed_precision == "float32" else (
        f"_{args.mixed_precision}"
    )
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"text_to_image_{backend}{suffix}.json",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"Wrote {out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

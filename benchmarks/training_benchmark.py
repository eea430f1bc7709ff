"""Training and tokenization throughput of VQGAN and LG-VQ on one backend.

For three configurations,

- `tiny`: the `scenes` preset (64 px, f=4, K=256, D=64), batch 16;
- `small`: 128 px, f=8 (ch 64, mult 1-2-2-4), K=512, D=64, batch 8;
- `paper`: the `cub` preset (256 px, f=16, K=1024, D=256) with LPIPS,
  batch 1 on CPU (the paper trains at batch 8 on a GPU);

it measures, for the VQGAN and for the LG-VQ built on the *same* backbone,
the training throughput (images/s from the median step time over the
timed steps; the first step, which compiles, is reported separately), the
LG-VQ overhead ratio (VQGAN img/s divided by LG-VQ img/s), the encode
(tokenization) throughput and the peak resident memory. Each (config,
model) pair runs in its own subprocess so that peak RSS is its own.

What runs in a step: the full generator update (L1 + LPIPS where the config
has it + VQ loss + adaptive-weight GAN term) and the discriminator update;
for LG-VQ also GSA, MTP and RAS. LG-VQ reads *cached* text features
(random, with the prior's dimensions: MiniLM 384/30522 for tiny and small,
CLIP 512/49408 for paper), so the overhead is the guidance module alone,
as when training from a feature cache; no text encoder runs in the step.
LPIPS uses the real LPIPS heads and a VGG16 backbone with random weights
when the ImageNet weights are not on disk: the cost is identical.

Usage (run once per backend; TensorFlow with and without XLA):

```
KERAS_BACKEND=tensorflow python benchmarks/training_benchmark.py \
    --jit-compile on
KERAS_BACKEND=tensorflow python benchmarks/training_benchmark.py \
    --jit-compile off
KERAS_BACKEND=jax python benchmarks/training_benchmark.py
KERAS_BACKEND=torch python benchmarks/training_benchmark.py
# On a GPU, also: --mixed-precision bf16 --paper-batch-size 8
```

Results go to `benchmarks/results/training_<backend>[_xla|_noxla].json`.
Quantizer throughput at K in {1024, 16384}, D in {8, 256} is measured by
`benchmarks/quantizer_benchmark.py`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from keras_lgvq.utils.machine import load_average
from keras_lgvq.utils.machine import machine_info
from keras_lgvq.utils.machine import peak_rss_mb

CONFIGS = {
    "tiny": dict(
        preset="scenes",
        backbone=None,
        batch_size=16,
        warmup=2,
        steps=6,
        text=dict(text_dim=384, sentence_dim=384, vocabulary_size=30522),
        lpips=False,
    ),
    "small": dict(
        preset="scenes",
        backbone=dict(
            resolution=128,
            ch=64,
            ch_mult=(1, 2, 2, 4),
            num_res_blocks=1,
            attn_resolutions=(),
            z_channels=64,
            num_embeddings=512,
            embedding_dim=64,
        ),
        batch_size=8,
        warmup=1,
        steps=4,
        text=dict(text_dim=384, sentence_dim=384, vocabulary_size=30522),
        lpips=False,
    ),
    "paper": dict(
        preset="cub",
        backbone=None,
        batch_size=1,
        warmup=1,
        steps=2,
        text=dict(text_dim=512, sentence_dim=512, vocabulary_size=49408),
        lpips=True,
    ),
}
SEQUENCE_LENGTH = 30


def _backend():
    import keras

    return keras.backend.backend()


# === Worker: one (config, model) pair ===


def _synthetic_batch(config, model_kind, grid_res, rng):
    import numpy as np

    n = config["batch_size"] * (config["warmup"] + config["steps"])
    res = grid_res
    x = {"images": rng.uniform(-1, 1, (n, res, res, 3)).astype("float32")}
    if model_kind == "lgvq":
        text = config["text"]
        lengths = rng.integers(6, SEQUENCE_LENGTH - 2, n)
        pad = np.arange(SEQUENCE_LENGTH)[None, :] < lengths[:, None]
        ids = rng.integers(1000, 2000, (n, SEQUENCE_LENGTH)) * pad
        feats = rng.normal(size=(n, SEQUENCE_LENGTH, text["text_dim"]))
        sentence = rng.normal(size=(n, text["sentence_dim"]))
        sentence /= np.linalg.norm(sentence, axis=1, keepdims=True)
        x.update(
            token_ids=ids.astype("int32"),
            padding_mask=pad,
            token_features=(feats * pad[..., None]).astype("float32"),
            sentence_feature=sentence.astype("float32"),
        )
    return x


def _build(config, model_kind):
    import numpy as np

    from keras_lgvq.models.lgvq.lgvq import LGVQ
    from keras_lgvq.models.vqgan.vqgan import VQGAN
    from keras_lgvq.models.vqgan.vqgan_backbone import VQGANBackbone

    kwargs = {}
    notes = []
    if config["backbone"] is not None:
        kwargs["backbone"] = VQGANBackbone(**config["backbone"])
    if config["lpips"]:
        from keras_lgvq.losses.lpips import LPIPS

        try:
            kwargs["perceptual_loss"] = LPIPS(allow_random_backbone=True)
            if kwargs["perceptual_loss"].random_backbone:
                notes.append(
                    "LPIPS with a random VGG16 backbone (ImageNet weights "
                    "not on disk); same cost as the real one."
                )
        except FileNotFoundError as error:
            kwargs["perceptual_loss"] = None
            notes.append(f"No LPIPS (heads missing): {str(error)[:120]}")
    else:
        kwargs["perceptual_loss"] = None
    if model_kind == "lgvq":
        model = LGVQ.from_preset(config["preset"], text_prior=None, **kwargs)
        rng = np.random.default_rng(0)
        model.set_token_embeddings(
            rng.normal(
                0, 0.05, (model.vocabulary_size, model.text_dim)
            ).astype("float32")
        )
    else:
        model = VQGAN.from_preset(config["preset"], **kwargs)
    model.build()
    return model, notes


def _encode_fn(backbone, jit):
    """A compiled `images -> indices` for the backend (eager for torch)."""
    backend = _backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(backbone.encode, jit_compile=bool(jit))
    if backend == "jax":
        import jax
        from keras import StatelessScope

        variables = backbone.variables

        @jax.jit
        def encode(values, images):
            with StatelessScope(state_mapping=list(zip(variables, values))):
                return backbone.encode(images)

        values = [v.value for v in variables]
        return lambda images: encode(values, images)

    import torch

    def encode(images):
        with torch.no_grad():
            return backbone.encode(images)

    return encode


def _block(value):
    from keras import ops

    return ops.convert_to_numpy(value)


def worker(config_name, model_kind, jit, mixed_precision, paper_batch=None):
    import keras
    import numpy as np

    config = dict(CONFIGS[config_name])
    if config_name == "paper" and paper_batch:
        config["batch_size"] = paper_batch
    if mixed_precision == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    rss_before = peak_rss_mb()
    model, notes = _build(config, model_kind)
    model.compile(learning_rate=1e-4, jit_compile=jit)
    rng = np.random.default_rng(0)
    res = model.backbone.resolution
    x = _synthetic_batch(config, model_kind, res, rng)
    batch = config["batch_size"]
    marks = []

    class Timer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks.append(time.perf_counter())

        def on_train_batch_end(self, step, logs=None):
            # Waits for the step (JAX and torch CUDA dispatch asynchronously).
            float(_block(logs["loss"]))
            marks.append(time.perf_counter())

    model.fit(
        x,
        batch_size=batch,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[Timer()],
    )
    times = [b - a for a, b in zip(marks[:-1], marks[1:])]
    timed = times[config["warmup"] :]
    step_s = statistics.median(timed)

    encode = _encode_fn(model.backbone, jit)
    images = keras.ops.convert_to_tensor(x["images"][:batch])
    t0 = time.perf_counter()
    _block(encode(images))
    encode_first = time.perf_counter() - t0
    encode_times = []
    for _ in range(max(3, config["steps"])):
        t0 = time.perf_counter()
        _block(encode(images))
        encode_times.append(time.perf_counter() - t0)
    encode_s = statistics.median(encode_times)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return {
        "batch_size": batch,
        "image_size": res,
        "code_grid": model.backbone.grid_size,
        "codebook_size": model.backbone.num_embeddings,
        "code_dim": model.backbone.embedding_dim,
        "trainable_parameters": trainable,
        "first_step_s": round(times[0], 3),
        "warmup_steps": config["warmup"],
        "timed_steps": len(timed),
        "step_times_s": [round(t, 4) for t in timed],
        "step_s_median": round(step_s, 4),
        "train_images_per_s": round(batch / step_s, 3),
        "encode_first_call_s": round(encode_first, 3),
        "encode_s_median": round(encode_s, 4),
        "encode_images_per_s": round(batch / encode_s, 2),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_model_mb": rss_before,
        "perceptual_loss": model.perceptual_loss is not None,
        "discriminator": model.discriminator is not None,
        "notes": notes,
    }


# === Driver ===


def _run_worker(config_name, model_kind, args):
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        config_name,
        model_kind,
        "--jit-compile",
        args.jit_compile,
        "--mixed-precision",
        args.mixed_precision,
        "--paper-batch-size",
        str(args.paper_batch_size),
    ]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - start
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            result["worker_wall_s"] = round(wall, 1)
            return result
    tail = (proc.stderr or proc.stdout)[-2000:]
    return {"error": f"worker failed (rc={proc.returncode}): {tail}"}


def _jit_value(flag):
    return {"on": True, "off": False, "auto": "auto"}[flag]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small,paper")
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="TensorFlow: XLA on/off. JAX always compiles; torch runs "
        "eagerly unless 'on' (torch.compile).",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=("none", "bf16"),
        default="none",
        help="bf16 is meant for GPUs (mixed_bfloat16 policy).",
    )
    parser.add_argument(
        "--paper-batch-size",
        type=int,
        default=1,
        help="Batch of the paper config (1 on CPU; the paper uses 8).",
    )
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "MODEL"))
    args = parser.parse_args(argv)

    if args.worker:
        result = worker(
            args.worker[0],
            args.worker[1],
            _jit_value(args.jit_compile),
            args.mixed_precision,
            args.paper_batch_size,
        )
        print("RESULT " + json.dumps(result))
        return 0

    backend = _backend()
    if backend == "torch" and args.jit_compile == "auto":
        args.jit_compile = "off"
    machine = machine_info()
    results = {}
    for name in args.configs.split(","):
        if name not in CONFIGS:
            parser.error(
                f"Unknown config {name!r}; choose from {list(CONFIGS)}"
            )
        entry = {}
        for kind in ("vqgan", "lgvq"):
            print(f"[{backend}] {name} / {kind} ...", flush=True)
            entry[kind] = _run_worker(name, kind, args)
            print(f"    {entry[kind]}", flush=True)
        ok = all("error" not in entry[k] for k in ("vqgan", "lgvq"))
        if ok:
            # From step times, not the rounded img/s (0.067 / 0.067 at
            # batch 1 would hide the difference).
            entry["lg_overhead_ratio"] = round(
                entry["lgvq"]["step_s_median"]
                / entry["vqgan"]["step_s_median"],
                3,
            )
        results[name] = entry
    tag = backend
    if backend == "tensorflow":
        tag += "_noxla" if args.jit_compile == "off" else "_xla"
    if args.mixed_precision != "none":
        tag += f"_{args.mixed_precision}"
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"training_{tag}.json",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    machine["load_average_at_end"] = load_average()
    report = {
        "benchmark": "training_benchmark",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend,
        "jit_compile": args.jit_compile,
        "mixed_precision": args.mixed_precision,
        "machine": machine,
        "configs": {
            k: dict(
                v,
                batch_size=(
                    args.paper_batch_size if k == "paper" else v["batch_size"]
                ),
            )
            for k, v in CONFIGS.items()
            if k in results
        },
        "results": results,
        "notes": [
            "Training img/s = batch / median step time over the timed steps "
            "(after the warm-up steps, the first of which compiles).",
            "CPU run: repeats are few (paper config: 1 warm-up + 2 timed "
            "steps at batch 1) and the machine may be shared; compare "
            "ratios measured in one run rather than absolute figures "
            "across runs (see machine.load_average).",
            "LG-VQ uses cached (synthetic) text features: the overhead "
            "ratio covers the guidance module only, not a text encoder.",
            "No GPU run happened in this session; --mixed-precision bf16 "
            "is provided for one."
            if not machine.get("gpu")
            else "GPU run.",
        ],
    }
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

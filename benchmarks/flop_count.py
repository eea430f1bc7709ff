"""FLOPs of a training step, counted once with torch's FlopCounterMode.

`torch.utils.flop_counter.FlopCounterMode` counts the FLOPs of the aten
matmul-like ops that run under it (convolution and its backward, mm, bmm,
addmm, baddbmm, scaled-dot-product attention; 2 FLOPs per multiply-add).
Keras's torch backend runs its convolutions and matmuls through those aten
ops, so a full Keras train step (generator and discriminator updates, the
text prior when it runs in the step) is counted as is. Element-wise work
(norms, activations, the optimizer) is not counted, as in anchors.md's
391 GFLOP figure for the taming VQGAN f16 forward at 256 px.

The counts are stored in `benchmarks/results/step_flops.json` (written by
`training_benchmark.py --count-flops` under `KERAS_BACKEND=torch`) and read
by every backend's run to compute GFLOP/s and the share of the CPU's fp32
peak.
"""

import json
import os
import time

# Zen 5 (the 2-core measurement VM, anchors.md §3c): two 512-bit FMA pipes
# = 16 fp32 lanes x 2 (FMA) x 2 pipes = 64 FLOP/cycle/core;
# 2 cores x 64 FLOP/cycle x 2.6 GHz = 332.8 GFLOP/s.
PEAK_CORES = 2
PEAK_FLOP_PER_CYCLE = 64
PEAK_CLOCK_GHZ = 2.6
PEAK_GFLOPS = PEAK_CORES * PEAK_FLOP_PER_CYCLE * PEAK_CLOCK_GHZ
PEAK_DERIVATION = (
    f"{PEAK_CORES} cores x {PEAK_FLOP_PER_CYCLE} fp32 FLOP/cycle "
    f"(2 AVX-512 FMA pipes) x {PEAK_CLOCK_GHZ} GHz = {PEAK_GFLOPS:.1f} "
    "GFLOP/s (anchors.md 3c)"
)
METHOD = (
    "torch.utils.flop_counter.FlopCounterMode around one full train step "
    "(KERAS_BACKEND=torch, eager): matmul/conv/attention aten ops, forward "
    "and backward, generator and discriminator updates; element-wise ops "
    "not counted"
)
DEFAULT_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results", "step_flops.json"
)


def _require_torch():
    import keras

    if keras.backend.backend() != "torch":
        raise ValueError(
            "FLOP counting uses torch's FlopCounterMode: run with "
            f"KERAS_BACKEND=torch (the backend is {keras.backend.backend()!r})."
        )


def count_flops(fn, *args, **kwargs):
    """Runs `fn(*args, **kwargs)` under FlopCounterMode. Returns (total
    FLOPs, per-op counts {op name: FLOPs}, fn's result)."""
    _require_torch()
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        result = fn(*args, **kwargs)
    per_op = {}
    for module_counts in counter.get_flop_counts().values():
        for op, flops in module_counts.items():
            # The "Global" entry already holds every op once.
            per_op[str(op)] = max(per_op.get(str(op), 0), int(flops))
    return int(counter.get_total_flops()), per_op, result


def train_step_flops(model, batch):
    """FLOPs of one training step of a compiled VQGAN / LG-VQ on `batch`
    (a dict of numpy arrays), as `fit` would run it at step 0: the GAN-off
    step when `fit` skips the discriminator before `disc_start`.
    """
    _require_torch()
    from keras import ops

    tensors = {k: ops.convert_to_tensor(v) for k, v in batch.items()}
    # The variant `fit` selects for the first batch.
    skipped = model._gan_phase_for(0, 1)
    model._gan_skipped_phase = skipped
    try:
        total, per_op, _ = count_flops(model.train_step, tensors)
    finally:
        model._gan_skipped_phase = False
    return total, per_op, skipped


def load(path=DEFAULT_PATH):
    if not os.path.exists(path):
        return {"entries": {}}
    with open(path) as f:
        return json.load(f)


def key(config_name, kind, batch_size, gan_skipped=False):
    """The stored entry's name; `/gan_off`: the step before `disc_start`
    (no discriminator work)."""
    name = f"{config_name}/{kind}/b{batch_size}"
    return name + "/gan_off" if gan_skipped else name


def store(entries, path=DEFAULT_PATH):
    """Merges `entries` ({key: record}) into the stored file."""
    data = load(path)
    data.setdefault("entries", {}).update(entries)
    data["method"] = METHOD
    data["peak_gflops"] = round(PEAK_GFLOPS, 1)
    data["peak_derivation"] = PEAK_DERIVATION
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    return data


def record(config_name, kind, batch_size, flops, gan_skipped, per_op=None):
    entry = {
        "config": config_name,
        "kind": kind,
        "batch_size": batch_size,
        "gflop_per_step": round(flops / 1e9, 3),
        "gflop_per_image": round(flops / 1e9 / batch_size, 3),
        "gan_step_skipped": bool(gan_skipped),
        "method": METHOD,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if per_op:
        top = sorted(per_op.items(), key=lambda kv: -kv[1])[:12]
        entry["gflop_by_op"] = {op: round(v / 1e9, 3) for op, v in top}
    return entry


def efficiency(entry, step_s, peak_gflops=PEAK_GFLOPS):
    """GFLOP/s of a measured step and its share of the fp32 peak."""
    if entry is None or not step_s:
        return None
    rate = entry["gflop_per_step"] / step_s
    return {
        "gflop_per_step": entry["gflop_per_step"],
        "gflops_per_s": round(rate, 2),
        "share_of_fp32_peak": round(rate / peak_gflops, 4),
        "peak_gflops": round(peak_gflops, 1),
    }

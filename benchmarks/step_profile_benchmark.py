"""Where a training step's time goes, per backend (issue 17, item 1).

For each config (`tiny`: the scenes preset's backbone; `official_tiny`;
`small`; `paper`: the cub preset at batch 1; `scenes`: the main job's
preset as it is; see `benchmark_configs.py`) it builds the LG-VQ (text
prior on the fly where the config has an offline prior, else cached
features) and writes two views to
`benchmarks/results/step_profile_<backend>[_noxla].json`:

a. **Component breakdown by isolated timing.** Each component runs
   compiled (`tf.function` with the model's resolved `jit_compile` on
   TensorFlow, `jax.jit` on JAX, eager torch) at the step's real shapes,
   forward + backward (gradients of its trainable weights and of its
   differentiable inputs, against a fixed random cotangent where the
   output is not a loss), median of `--repeats` calls after one warm-up
   call. Components: encoder (+ quant_conv), quantizer, decoder
   (post_quant_conv .. conv_out), LPIPS (both branches, gradient into the
   reconstruction), discriminator generator side, discriminator D-step,
   adaptive weight (its two gradient norms, forward only: it is a
   gradient computation itself), the guidance's code transformer (shared by
   GSA / MTP / RAS), GSA, MTP (masked-positions path), RAS, text prior
   forward (on the fly; plus the leak-free re-encoding of the masked
   caption where the config has it), optimizer apply (Adam of the generator
   and of the discriminator over all their weights) and host/data
   (`next(iter)` of the real `make_dataset("scenes", text_prior=...)`
   pipeline at the config's resolution; not part of the timed step, which
   reads in-memory arrays, so not in the sum). The full step (the model's
   own `fit` step, median of the intervals between batch ends) is measured
   too, and `residual_s = full - sum(components in the step)` is reported
   as it comes (negative when isolated calls cost more than fused ones).
   Components the step does not run (the discriminator before
   `disc_start` in `scenes`) are timed but flagged `in_step: false`.
   Every config other than `scenes` runs with `disc_start=0` here, so
   the full GAN step is what is profiled.
b. **The backend's own profiler** over `--profile-steps` full steps:
   torch.profiler's `key_averages()` top ops by self CPU time (table in
   the JSON); on JAX, XLA's cost analysis of the lowered train step
   (FLOPs, bytes accessed) and a `jax.profiler` trace; on TensorFlow a
   `tf.profiler.experimental` trace. The traces are written under
   `benchmarks/results/traces/` and the JSON names the directory: reading
   them needs TensorBoard's profile plugin (`tensorboard-plugin-profile`),
   which is not installed here, so no op table is parsed from them.

`profile_table.py` turns the JSONs of every backend into the Markdown
table of component shares.

Run time. Measured: the `tiny` config alone with `--quick` on this
2-core box under a load average of 3-5 (other jobs running): TF-XLA 45 s,
torch 86 s, JAX 76-90 s (JAX: ~24 s build, ~19 s first `fit` compile,
~27 s compiling the 13 components; `phase_wall_s` in the JSON). Not
measured: the full default run (5 configs, `--repeats 3`); the estimate
from those phases is about 5 min (TF-XLA, torch) to 8 min (JAX) per
backend on a quiet box, the paper config (256 px) being the largest
part, so JAX likely misses the 6-min target: split it with `--configs`.

The sitting (in order; the lead runs these on a quiet machine):

```
# 1. FLOPs (torch; results/step_flops.json was counted on 2026-11-30;
#    recount, ~15 min on a loaded box, only if a model changed), then the
#    per-backend step profiles:
KERAS_BACKEND=torch python benchmarks/training_benchmark.py --count-flops \
    --configs official_tiny,scenes,tiny,small,paper
KERAS_BACKEND=tensorflow python benchmarks/step_profile_benchmark.py  # ~5
KERAS_BACKEND=tensorflow python benchmarks/step_profile_benchmark.py \
    --jit-compile off                                                 # ~5
KERAS_BACKEND=jax python benchmarks/step_profile_benchmark.py         # ~8
KERAS_BACKEND=torch python benchmarks/step_profile_benchmark.py       # ~6
# 2. Throughput, ratios from one sitting, peak RSS (not measured whole;
#    estimate 15-25 min each: one interleaved smoke of official_tiny at
#    1+1 steps took 6 min on TF under load, mostly builds and compiles):
KERAS_BACKEND=tensorflow python benchmarks/training_benchmark.py \
    --jit-compile on --configs official_tiny,scenes --interleaved
KERAS_BACKEND=tensorflow python benchmarks/training_benchmark.py \
    --jit-compile off --configs official_tiny,scenes --interleaved
KERAS_BACKEND=jax python benchmarks/training_benchmark.py \
    --configs official_tiny,scenes --interleaved
KERAS_BACKEND=torch python benchmarks/training_benchmark.py \
    --configs official_tiny,scenes --interleaved
# 3. bf16 on this CPU (AVX-512 BF16), each backend (~10 min each):
KERAS_BACKEND=tensorflow python benchmarks/training_benchmark.py \
    --jit-compile on --configs official_tiny --interleaved \
    --mixed-precision bf16
# (same for jax and torch)
# 4. The scenes variants (lg_overhead_benchmark.py, ~10 min each):
KERAS_BACKEND=tensorflow python benchmarks/lg_overhead_benchmark.py --bf16
# 5. The table for benchmarks/README.md:
python benchmarks/profile_table.py
```
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchmark_configs  # noqa: E402
import flop_count  # noqa: E402
from training_benchmark import timed_fit  # noqa: E402

from keras_lgvq.utils.machine import load_average  # noqa: E402
from keras_lgvq.utils.machine import machine_info  # noqa: E402

PROFILE_CONFIGS = ("tiny", "official_tiny", "small", "paper", "scenes")
COMPONENTS = (
    "encoder",
    "quantizer",
    "decoder",
    "lpips",
    "discriminator_generator_side",
    "discriminator_step",
    "adaptive_weight",
    "code_transformer",
    "gsa",
    "mtp",
    "ras",
    "text_prior",
    "optimizer",
    "host_data",
)
RESULTS_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results"
)


def _backend():
    import keras

    return keras.backend.backend()


# === Compiling one component, per backend ===


def _dedupe(variables):
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


class Compiler:
    """Compiles `fn(diff, const) -> scalar` into a call that returns the
    loss and its gradients with respect to `variables` and `diff` (or, for
    forward-only components, `fn`'s outputs)."""

    def __init__(self, backend, jit, all_variables):
        self.backend = backend
        self.jit = jit
        self.all_variables = _dedupe(all_variables)

    def grad(self, fn, variables):
        variables = _dedupe(variables)
        if self.backend == "tensorflow":
            import tensorflow as tf

            @tf.function(jit_compile=self.jit)
            def run(diff, const):
                with tf.GradientTape() as tape:
                    for d in diff:
                        tape.watch(d)
                    loss = fn(diff, const)
                grads = tape.gradient(loss, list(variables) + list(diff))
                return loss, [g for g in grads if g is not None]

            return run
        if self.backend == "jax":
            import jax
            from keras import StatelessScope

            own = {id(v) for v in variables}
            others = [v for v in self.all_variables if id(v) not in own]

            def pure(train_values, other_values, diff, const):
                mapping = list(zip(variables, train_values))
                mapping += list(zip(others, other_values))
                with StatelessScope(state_mapping=mapping):
                    return fn(diff, const)

            step = jax.jit(jax.value_and_grad(pure, argnums=(0, 2)))
            train_values = [v.value for v in variables]
            other_values = [v.value for v in others]
            return lambda diff, const: step(
                train_values, other_values, diff, const
            )
        import torch

        def run(diff, const):
            diff = [d.detach().requires_grad_(True) for d in diff]
            with torch.enable_grad():
                loss = fn(diff, const)
                targets = [v.value for v in variables] + diff
                grads = torch.autograd.grad(loss, targets, allow_unused=True)
            return loss, [g for g in grads if g is not None]

        return run

    def forward(self, fn):
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.function(fn, jit_compile=self.jit)
        if self.backend == "jax":
            import jax
            from keras import StatelessScope

            variables = self.all_variables

            def pure(values, diff, const):
                with StatelessScope(
                    state_mapping=list(zip(variables, values))
                ):
                    return fn(diff, const)

            step = jax.jit(pure)
            values = [v.value for v in variables]
            return lambda diff, const: step(values, diff, const)
        import torch

        def run(diff, const):
            with torch.no_grad():
                return fn(diff, const)

        return run


def _block(outputs):
    import keras

    leaves = keras.tree.flatten(outputs)
    if _backend() == "jax":
        import jax

        jax.block_until_ready(leaves)
    else:
        # Eager TF and torch on CPU return finished values; reading one
        # makes sure.
        for leaf in leaves[:1]:
            keras.ops.convert_to_numpy(leaf)


def time_call(call, args, repeats):
    """Median seconds of `call(*args)` over `repeats` calls after one
    warm-up (compiling) call. Returns (median, first-call seconds)."""
    t0 = time.perf_counter()
    _block(call(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _block(call(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), first


# === The components of one model ===


def _cotangent(shape, seed):
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(seed)
    return ops.convert_to_tensor(rng.normal(size=shape).astype("float32"))


def _dot(x, cotangent):
    from keras import ops

    return ops.sum(ops.cast(x, "float32") * cotangent)


def component_specs(model, batch):
    """[(name, kind, fn, variables, diff, const, in_step)] at the real
    shapes of `batch` (a dict of tensors). `kind` is "grad" or "forward".
    """
    from keras import ops

    from keras_lgvq.losses.gan_losses import adaptive_generator_weight
    from keras_lgvq.losses.gan_losses import generator_adversarial_loss
    from keras_lgvq.losses.gan_losses import hinge_discriminator_loss

    backbone = model.backbone
    images = batch["images"]
    outs = backbone.encode_decode(images, training=False)
    z = backbone.quant_conv(backbone.encoder(images))
    quantized = outs["quantized"]
    reconstruction = outs["reconstruction"]
    features = outs["decoder_features"]
    gan_in_step = bool(
        model.discriminator is not None
        and not model._gan_terms_skipped()
        and not model._gan_phase_for(0, 1)
    )
    specs = []

    ct_z = _cotangent(tuple(z.shape), 1)
    specs.append(
        (
            "encoder",
            "grad",
            lambda d, c: _dot(
                backbone.quant_conv(backbone.encoder(c[0], training=True)),
                c[1],
            ),
            backbone.encoder.trainable_variables
            + backbone.quant_conv.trainable_variables,
            [],
            [images, ct_z],
            True,
        )
    )
    ct_q = _cotangent(tuple(quantized.shape), 2)

    def quantizer_fn(d, c):
        out = backbone.quantizer(d[0], training=True)
        return ops.cast(out["loss"], "float32") + _dot(out["quantized"], c[0])

    specs.append(
        (
            "quantizer",
            "grad",
            quantizer_fn,
            backbone.quantizer.trainable_variables,
            [z],
            [ct_q],
            True,
        )
    )
    ct_r = _cotangent(tuple(reconstruction.shape), 3)

    def decoder_fn(d, c):
        h = backbone.post_quant_conv(d[0])
        f = backbone.decoder.features(h, training=True)
        return _dot(backbone.decoder.conv_out(f), c[0])

    specs.append(
        (
            "decoder",
            "grad",
            decoder_fn,
            backbone.post_quant_conv.trainable_variables
            + backbone.decoder.trainable_variables,
            [quantized],
            [ct_r],
            True,
        )
    )
    if model.perceptual_loss is not None:
        specs.append(
            (
                "lpips",
                "grad",
                lambda d, c: ops.mean(
                    ops.cast(
                        model.perceptual_loss(c[0], d[0], training=True),
                        "float32",
                    )
                ),
                [],
                [reconstruction],
                [images],
                True,
            )
        )
    if model.discriminator is not None:
        disc = model.discriminator
        specs.append(
            (
                "discriminator_generator_side",
                "grad",
                lambda d, c: generator_adversarial_loss(
                    disc(d[0], training=True)
                ),
                [],
                [reconstruction],
                [],
                gan_in_step,
            )
        )
        specs.append(
            (
                "discriminator_step",
                "grad",
                lambda d, c: hinge_discriminator_loss(
                    disc(c[0], training=True), disc(c[1], training=True)
                ),
                disc.trainable_variables,
                [],
                [images, reconstruction],
                gan_in_step,
            )
        )
        if model.adaptive_disc_weight:

            def adaptive_fn(d, c):
                nll_grad, g_grad = model.adaptive_weight_gradients(
                    c[0], c[1], training=True
                )
                return adaptive_generator_weight(
                    nll_grad, g_grad, model.disc_weight
                )

            specs.append(
                (
                    "adaptive_weight",
                    "forward",
                    adaptive_fn,
                    [],
                    [],
                    [images, features],
                    gan_in_step,
                )
            )
    guidance = getattr(model, "guidance", None)
    if guidance is not None:
        specs += _guidance_specs(model, guidance, batch, quantized)
    return specs, gan_in_step


def _guidance_specs(model, guidance, batch, quantized):
    from keras import ops

    text = model._text_inputs(batch)
    tokens = guidance.code_transformer(quantized)
    ct_t = _cotangent(tuple(tokens.shape), 4)
    ids, pad = text["token_ids"], text["padding_mask"]
    embeddings = ops.convert_to_tensor(model.token_embeddings)
    specs = [
        (
            "code_transformer",
            "grad",
            lambda d, c: _dot(
                guidance.code_transformer(d[0], training=True), c[0]
            ),
            guidance.code_transformer.trainable_variables,
            [quantized],
            [ct_t],
            True,
        )
    ]
    gsa_vars = list(guidance.gsa.trainable_variables)
    if guidance.gsa_projection is not None:
        gsa_vars += guidance.gsa_projection.trainable_variables
    specs.append(
        (
            "gsa",
            "grad",
            lambda d, c: guidance.gsa(
                guidance._global_embedding(d[0]), c[0], token_ids=c[1]
            ),
            gsa_vars,
            [tokens],
            [text["sentence_feature"], ids],
            True,
        )
    )
    # The leak-free MTP reads features of the masked caption; their cost
    # is in `text_prior`, the decoder sees same-shaped features here.
    mtp_features = text["token_features"]
    if guidance.mtp_leak_free:
        mask = guidance.mtp.sample_mask(ids, pad)
        mtp_features = guidance._mtp_features(text, mask, model.text_prior)

    def mtp_fn(d, c):
        m = guidance.mtp.sample_mask(c[0], c[1])
        hidden = guidance.mtp.hidden_states(
            c[2], c[1], m, memory=d[0], training=True
        )
        return guidance.mtp.scored_loss(hidden, c[0], m, c[1], c[3])

    specs.append(
        (
            "mtp",
            "grad",
            mtp_fn,
            guidance.mtp.trainable_variables,
            [tokens],
            [ids, pad, mtp_features, embeddings],
            True,
        )
    )
    specs.append(
        (
            "ras",
            "grad",
            lambda d, c: guidance.ras(
                guidance._flatten(d[0]), d[1][:, 1:], c[0], c[1]
            ),
            guidance.ras.trainable_variables,
            [quantized, tokens],
            [text["token_features"], pad],
            True,
        )
    )
    prior = model.text_prior
    on_the_fly = "token_features" not in batch
    calls = int(on_the_fly) + int(guidance.mtp_leak_free)
    if prior is not None and calls:

        def prior_fn(d, c):
            out = []
            if on_the_fly:
                out.append(prior(c[0], c[1])["token_features"])
            if guidance.mtp_leak_free:
                masked = ops.where(
                    ops.less(c[0], 1500),  # a fixed stand-in mask
                    ops.full_like(c[0], guidance.mask_token_id),
                    c[0],
                )
                out.append(prior(masked, c[1])["token_features"])
            return out

        specs.append(
            (
                "text_prior",
                "forward",
                prior_fn,
                [],
                [],
                [ids, pad],
                True,
            )
        )
    return specs


def _optimizer_call(model, compiler):
    """Adam's apply of both GAN optimizers over all their weights."""
    from keras import ops

    g_vars, d_vars = model._split_trainable_variables()
    pairs = [(model.optimizer.generator, g_vars)]
    if d_vars:
        pairs.append((model.optimizer.discriminator, d_vars))
    grads = [
        [ops.ones(v.shape, v.dtype) * 1e-3 for v in vs] for _, vs in pairs
    ]
    backend = compiler.backend
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=compiler.jit)
        def apply(all_grads):
            for (opt, vs), gs in zip(pairs, all_grads):
                opt.apply(gs, vs)
            return all_grads[0][0]

        return apply, (grads,)
    if backend == "jax":
        import jax

        steps = [jax.jit(opt.stateless_apply) for opt, _ in pairs]
        opt_values = [[v.value for v in opt.variables] for opt, _ in pairs]
        var_values = [[v.value for v in vs] for _, vs in pairs]

        def apply(all_grads):
            return [
                step(o, g, v)
                for step, o, g, v in zip(
                    steps, opt_values, all_grads, var_values
                )
            ]

        return apply, (grads,)
    import torch

    def apply(all_grads):
        with torch.no_grad():
            for (opt, vs), gs in zip(pairs, all_grads):
                opt.apply(gs, vs)
        return all_grads[0][0]

    return apply, (grads,)


def _host_data(config, batch_size, prior, repeats):
    """Seconds per `next(it)` of the scenes training pipeline at the
    config's resolution (captions tokenized by the prior)."""
    from keras_lgvq.datasets import make_dataset

    res = config["overrides"].get("resolution")
    if res is None:
        from keras_lgvq.models.presets import get_preset

        res = get_preset(config["preset"])["backbone"]["resolution"]
    with tempfile.TemporaryDirectory(prefix="lgvq_profile_") as data_dir:
        ds = make_dataset(
            "scenes",
            "train",
            batch_size=batch_size,
            image_size=res,
            data_dir=data_dir,
            text_prior=prior,
            train_size=batch_size * (repeats + 3),
            validation_size=0,
            test_size=0,
        )
        it = iter(ds)
        next(it)  # the pipeline's start-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            next(it)
            times.append(time.perf_counter() - t0)
    return statistics.median(times), res


# === The backends' own profilers ===


def backend_profile(model, data, batch_size, steps, trace_dir, top=25):
    backend = _backend()
    out = {"steps": steps}
    if backend == "torch":
        import torch

        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]
        ) as prof:
            timed_fit(model, data, batch_size, steps)
        rows = sorted(
            prof.key_averages(), key=lambda e: -e.self_cpu_time_total
        )
        total = sum(e.self_cpu_time_total for e in rows) or 1
        out["tool"] = "torch.profiler key_averages, sorted by self CPU time"
        out["top_ops"] = [
            {
                "op": e.key,
                "calls": int(e.count),
                "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 2),
                "cpu_total_ms": round(e.cpu_time_total / 1e3, 2),
                "self_share": round(e.self_cpu_time_total / total, 4),
            }
            for e in rows[:top]
        ]
        return out
    os.makedirs(trace_dir, exist_ok=True)
    if backend == "jax":
        import jax

        out.update(_xla_cost_analysis(model, data, batch_size))
        with jax.profiler.trace(trace_dir):
            timed_fit(model, data, batch_size, steps)
        out["tool"] = "jax.profiler.trace + XLA cost_analysis"
    else:
        import tensorflow as tf

        tf.profiler.experimental.start(trace_dir)
        try:
            timed_fit(model, data, batch_size, steps)
        finally:
            tf.profiler.experimental.stop()
        out["tool"] = "tf.profiler.experimental trace"
    # Made relative to the JSON's folder by `main`.
    out["trace_dir"] = os.path.abspath(trace_dir)
    out["note"] = (
        "Per-op tables need TensorBoard's profile plugin "
        "(tensorboard-plugin-profile / xprof), not installed here: open "
        "trace_dir with `tensorboard --logdir` where it is."
    )
    return out


def _xla_cost_analysis(model, data, batch_size):
    """FLOPs and bytes XLA estimates for the JAX train step (its lowered
    HLO, before XLA's optimisation passes)."""
    import jax
    from keras import ops

    batch = {k: ops.convert_to_tensor(v[:batch_size]) for k, v in data.items()}
    state = model._get_jax_state(
        trainable_variables=True,
        non_trainable_variables=True,
        optimizer_variables=True,
        metrics_variables=True,
    )
    model._gan_skipped_phase = model._gan_phase_for(0, 1)
    try:
        # The lowered (pre-optimisation) HLO's analysis: no second XLA
        # compile of the whole step.
        lowered = jax.jit(type(model).train_step, static_argnums=0).lower(
            model, state, batch
        )
    finally:
        model._gan_skipped_phase = False
    cost = lowered.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    cost = dict(cost or {})
    return {
        "xla_cost_analysis": {
            "gflop": round(float(cost.get("flops", 0.0)) / 1e9, 3),
            "gbytes_accessed": round(
                float(cost.get("bytes accessed", 0.0)) / 1e9, 3
            ),
            "transcendentals": float(cost.get("transcendentals", 0.0)),
        }
    }


# === One config ===


def profile_config(
    name,
    repeats,
    profile_steps,
    jit_flag,
    trace_root,
    host_data=True,
    batch_size=None,
):
    import gc

    import keras
    from keras import ops

    config = benchmark_configs.check_config(name)
    if batch_size is not None:
        config["batch_size"] = batch_size
    wall = {"start": time.perf_counter()}
    # The full GAN step everywhere but in the main job's `scenes`.
    disc_start = None if name == "scenes" else 0
    prior = None
    if config["prior"] is not None:
        prior = benchmark_configs.load_prior()
    kind = "lgvq_fly" if prior is not None else "lgvq_cached"
    batch_size = config["batch_size"]
    num_batches = max(repeats, profile_steps) + 2
    data = benchmark_configs.BenchmarkData(
        config, batch_size * num_batches, prior=prior
    )
    keras.utils.set_random_seed(0)
    model, notes = benchmark_configs.build_model(
        config, kind, prior, disc_start=disc_start
    )
    model.compile(learning_rate=1e-4, jit_compile=jit_flag)
    wall["build"] = time.perf_counter()
    backend = _backend()
    jit = bool(model.jit_compile) if backend == "tensorflow" else True
    arrays = data.batch(kind)
    batch = {
        k: ops.convert_to_tensor(v[:batch_size]) for k, v in arrays.items()
    }

    # Full step first (also builds every variable the components use).
    _, times = timed_fit(model, arrays, batch_size, repeats + 1)
    full_s = statistics.median(times)
    wall["full_step"] = time.perf_counter()

    variables = list(model.variables)
    if model.perceptual_loss is not None:
        variables += model.perceptual_loss.variables
    if prior is not None:
        variables += prior.variables
    compiler = Compiler(backend, jit, variables)
    specs, gan_in_step = component_specs(model, batch)
    components = {}
    for cname, ckind, fn, cvars, diff, const, in_step in specs:
        call = (
            compiler.grad(fn, cvars)
            if ckind == "grad"
            else compiler.forward(fn)
        )
        seconds, first = time_call(call, (diff, const), repeats)
        components[cname] = {
            "seconds": round(seconds, 5),
            "first_call_s": round(first, 3),
            "in_step": bool(in_step),
            "what": "forward+backward" if ckind == "grad" else "forward",
        }
    apply, args = _optimizer_call(model, compiler)
    seconds, first = time_call(apply, args, repeats)
    components["optimizer"] = {
        "seconds": round(seconds, 5),
        "first_call_s": round(first, 3),
        "in_step": True,
        "what": "Adam apply, generator + discriminator weights",
    }
    wall["components"] = time.perf_counter()
    if host_data:
        seconds, res = _host_data(config, batch_size, prior, repeats)
        components["host_data"] = {
            "seconds": round(seconds, 5),
            "in_step": False,
            "what": f"next(iter) of make_dataset('scenes', image_size={res}, "
            "text_prior=...); the timed step reads in-memory arrays",
        }
    in_step = sum(c["seconds"] for c in components.values() if c["in_step"])
    for c in components.values():
        c["share_of_full_step"] = round(c["seconds"] / full_s, 4)
    text_calls = 0
    if "text_prior" in components:
        text_calls = int("token_features" not in arrays) + int(
            model.guidance.mtp_leak_free
        )
    wall["host_data"] = time.perf_counter()
    trace_dir = os.path.join(trace_root, name)
    profiler = backend_profile(
        model, arrays, batch_size, profile_steps + 1, trace_dir
    )
    wall["profiler"] = time.perf_counter()
    marks = list(wall.items())
    phase_wall_s = {
        key: round(t - marks[i][1], 1) for i, (key, t) in enumerate(marks[1:])
    }
    result = {
        "model_kind": kind,
        "config": benchmark_configs.describe(config, model),
        "gan_in_step": gan_in_step,
        "full_step_s": round(full_s, 5),
        "full_step_times_s": [round(t, 5) for t in times],
        "components": components,
        "sum_of_components_in_step_s": round(in_step, 5),
        "residual_s": round(full_s - in_step, 5),
        "residual_share": round((full_s - in_step) / full_s, 4),
        "text_prior_calls_per_step": text_calls,
        "profiler": profiler,
        "phase_wall_s": phase_wall_s,
        "notes": notes,
    }
    del model
    gc.collect()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(PROFILE_CONFIGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile-steps", type=int, default=2)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repeat, 1 profiled step (for the tests).",
    )
    parser.add_argument(
        "--jit-compile", choices=("auto", "on", "off"), default="auto"
    )
    parser.add_argument("--no-host-data", action="store_true")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="Override every config's batch (quick looks and tests).",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    names = args.configs.split(",")
    for name in names:
        if name not in benchmark_configs.CONFIGS:
            parser.error(
                f"Unknown config {name!r}; choose from "
                f"{list(benchmark_configs.CONFIGS)}"
            )
    if args.repeats < 1 or args.profile_steps < 1:
        parser.error("--repeats and --profile-steps must be >= 1")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    if args.quick:
        args.repeats, args.profile_steps = 1, 1
    backend = _backend()
    jit_flag = {"on": True, "off": False, "auto": "auto"}[args.jit_compile]
    tag = backend
    if backend == "tensorflow" and args.jit_compile == "off":
        tag += "_noxla"
    out = args.out or os.path.join(RESULTS_DIR, f"step_profile_{tag}.json")
    trace_root = os.path.join(
        os.path.dirname(os.path.abspath(out)), "traces", f"step_profile_{tag}"
    )
    machine = machine_info()
    flops = flop_count.load()["entries"]
    wall = time.time()
    results = {}
    for name in names:
        print(f"[{backend}] profiling {name} ...", flush=True)
        results[name] = profile_config(
            name,
            args.repeats,
            args.profile_steps,
            jit_flag,
            trace_root,
            host_data=not args.no_host_data,
            batch_size=args.batch_size,
        )
        r = results[name]
        if "trace_dir" in r["profiler"]:
            r["profiler"]["trace_dir"] = os.path.relpath(
                r["profiler"]["trace_dir"],
                os.path.dirname(os.path.abspath(out)),
            )
        stored = flops.get(
            flop_count.key(
                name,
                r["model_kind"],
                r["config"]["batch_size"],
                not r["gan_in_step"],
            )
        )
        r["flops"] = flop_count.efficiency(stored, r["full_step_s"]) or (
            "not counted: run training_benchmark.py --count-flops under "
            "KERAS_BACKEND=torch"
        )
        print(
            f"    full {r['full_step_s']} s, residual {r['residual_s']} s",
            flush=True,
        )
    machine["load_average_at_end"] = load_average()
    report = {
        "benchmark": "step_profile_benchmark",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend,
        "jit_compile": args.jit_compile,
        "repeats": args.repeats,
        "machine": machine,
        "results": results,
        "wall_s": round(time.time() - wall, 1),
        "notes": [
            "Components: compiled forward+backward at the step's real "
            "shapes, median of `repeats` calls; residual = full step - sum "
            "of the components in the step (fusion across components, "
            "Keras/fit overhead, the L1 and VQ loss arithmetic, metrics).",
            "Every config but `scenes` runs with disc_start=0 (the full GAN "
            "step); `scenes` is the main job's preset as it is.",
        ],
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the main job's caption-feature cache costs: the drawn-caption cache
(replay of the pipeline's draws + encoding each distinct drawn caption once)
against a cache of every caption of the training split, at the main job's
settings (`keras_lgvq.comparison.resolve_settings`), one sitting.

    python benchmarks/text_cache_benchmark.py \
        --out benchmarks/results/text_cache_drawn.json

Writes JSON: draws, distinct captions, seconds (wall and CPU) of the replay,
of the encoding and of the whole-split cache, and the cache sizes in MiB.
The scenes data are generated (untimed) before the timings.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _timed(fn):
    from keras_lgvq.comparison.progress import cpu_seconds

    wall, cpu = time.time(), cpu_seconds()
    value = fn()
    return value, round(time.time() - wall, 2), round(cpu_seconds() - cpu, 2)


def _mib(cache):
    return round(sum(a.nbytes for a in cache.arrays().values()) / 2**20, 1)


def run(options, seed=0):
    """Time both caches at the settings `options` resolve to.

    Args:
        options: dict of `resolve_settings` options (`{}`: the default run).
        seed: int. The row's seed.

    Returns:
        dict ready for JSON.
    """
    import keras

    from keras_lgvq import text_priors
    from keras_lgvq.comparison import resolve_settings
    from keras_lgvq.comparison import training
    from keras_lgvq.datasets import drawn_captions
    from keras_lgvq.datasets.loading import load
    from keras_lgvq.text_priors import CaptionFeatureCache
    from keras_lgvq.utils.machine import load_average
    from keras_lgvq.utils.machine import machine_info

    settings = resolve_settings(options)
    image_size = training.image_size_of("lgvq", settings)
    kwargs = training.training_data_kwargs(settings, image_size, seed)
    prior = text_priors.get("minilm")
    split = dict(kwargs)
    for key in ("batch_size", "seed", "split"):
        split.pop(key)
    # Generates the split once (untimed) and warms the prior up.
    examples = load("scenes", split="train", decode_images=False, **split)
    all_captions = [
        c.decode() for e in examples for c in e["captions"].numpy()
    ]
    CaptionFeatureCache(prior).add(all_captions[:256])

    steps = settings["total_steps"] + training.DRAW_MARGIN_BATCHES
    keras.utils.set_random_seed(seed)
    drawn, replay_wall, replay_cpu = _timed(
        lambda: drawn_captions("scenes", steps=steps, **kwargs)
    )
    drawn_cache = CaptionFeatureCache(prior)
    _, encode_wall, encode_cpu = _timed(lambda: drawn_cache.add(drawn))
    full_cache = CaptionFeatureCache(prior)
    _, full_wall, full_cpu = _timed(lambda: full_cache.add(all_captions))
    return {
        "settings": {
            k: settings[k]
            for k in ("train_size", "batch_size", "total_steps", "image_size")
        },
        "seed": seed,
        "steps_replayed": steps,
        "draws": len(drawn),
        "split_captions": len(all_captions),
        "drawn_cache": {
            "distinct_captions": len(drawn_cache),
            "replay_wall_s": replay_wall,
            "replay_cpu_s": replay_cpu,
            "encode_wall_s": encode_wall,
            "encode_cpu_s": encode_cpu,
            "mib": _mib(drawn_cache),
        },
        "split_cache": {
            "distinct_captions": len(full_cache),
            "encode_wall_s": full_wall,
            "encode_cpu_s": full_cpu,
            "mib": _mib(full_cache),
        },
        "load_average": load_average(),
        "machine": machine_info(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None, help="JSON file to write.")
    parser.add_argument(
        "--smoke", action="store_true", help="The main job's --smoke sizes."
    )
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    options = {"smoke": args.smoke, "data_dir": args.data_dir}
    result = run(options)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return result


if __name__ == "__main__":
    main()

"""Benchmark of the scenes data: generation, TFDS build and `make_dataset`.

Measures, on this machine's CPU:
  * `scenes.generate` images/s at 64 and 256 px (numpy only, one process);
  * the TFDS build of the default splits (20k / 2k / 2k at 64 px): a timed
    sample, and the full build when the sample predicts at most 3 minutes
    (else the time is extrapolated from the sample, and the JSON says so);
  * `make_dataset("scenes")` training-pipeline images/s at 64 and 256 px
    (decode, caption sampling, shuffle, batch 32, prefetch).

Writes `benchmarks/results/data_pipeline_benchmark.json`.

Usage:
    python benchmarks/data_pipeline_benchmark.py [--full] [--quick]
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time

import numpy as np

from keras_lgvq.datasets import scenes

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
FULL_BUILD_LIMIT_S = 180.0


def _rate(n, seconds):
    return round(n / seconds, 1) if seconds > 0 else None


def bench_generate(size, n):
    list(scenes.generate(4, seed=123, image_size=size))  # warm up
    start = time.perf_counter()
    for _ in scenes.generate(n, seed=0, image_size=size):
        pass
    seconds = time.perf_counter() - start
    return {
        "image_size": size,
        "images": n,
        "seconds": round(seconds, 3),
        "images_per_s": _rate(n, seconds),
    }


def bench_build(data_dir, sizes, num_workers=None):
    from keras_lgvq.datasets.loading import get_builder

    builder = get_builder(
        "scenes", data_dir=data_dir, num_workers=num_workers, **sizes
    )
    start = time.perf_counter()
    builder.download_and_prepare()
    seconds = time.perf_counter() - start
    total = sizes["train_size"] + sizes["validation_size"] + sizes["test_size"]
    return {
        **sizes,
        "num_workers": num_workers,
        "seconds": round(seconds, 2),
        "images_per_s": _rate(total, seconds),
    }


def bench_pipeline(data_dir, size, train_size, batch_size=32, epochs=2):
    from keras_lgvq.datasets import make_dataset

    ds = make_dataset(
        "scenes",
        "train",
        batch_size=batch_size,
        image_size=size,
        data_dir=data_dir,
        train_size=train_size,
        validation_size=0,
        test_size=0,
    )
    for _ in ds.take(2):  # warm up: tracing, file open, prefetch start
        pass
    start = time.perf_counter()
    images = 0
    for _ in range(epochs):
        for batch in ds:
            images += int(batch["images"].shape[0])
    seconds = time.perf_counter() - start
    return {
        "image_size": size,
        "train_size": train_size,
        "batch_size": batch_size,
        "epochs": epochs,
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_s": _rate(images, seconds),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full",
        action="store_true",
        help="always build the default splits in full",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small samples (smoke run)"
    )
    parser.add_argument(
        "--output",
        default=os.path.join(RESULTS, "data_pipeline_benchmark.json"),
    )
    args = parser.parse_args()

    from keras_lgvq.datasets.scenes_builder import SCENES_SPLIT_SIZES

    quick = args.quick
    load_before = os.getloadavg()
    result = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in load_before],
            "numpy": np.__version__,
        },
        "target": "scenes generation >= 300 images/s at 64 px on a 2-core CPU",
    }
    result["generate"] = [
        bench_generate(64, 100 if quick else 1000),
        bench_generate(256, 10 if quick else 100),
    ]

    tmp = tempfile.mkdtemp(prefix="lgvq_bench_")
    try:
        sample = {
            "train_size": 200 if quick else 4096,
            "validation_size": 0,
            "test_size": 0,
        }
        build_sample = bench_build(os.path.join(tmp, "sample"), sample)
        total_default = sum(SCENES_SPLIT_SIZES.values())
        estimate = total_default / build_sample["images_per_s"]
        build = {
            "default_splits": dict(SCENES_SPLIT_SIZES),
            "image_size": 64,
            "sample": build_sample,
            "estimated_seconds_from_sample": round(estimate, 1),
        }
        if not quick and (args.full or estimate <= FULL_BUILD_LIMIT_S):
            full = bench_build(
                os.path.join(tmp, "full"),
                {
                    "train_size": SCENES_SPLIT_SIZES["train"],
                    "validation_size": SCENES_SPLIT_SIZES["validation"],
                    "test_size": SCENES_SPLIT_SIZES["test"],
                },
            )
            build.update(
                seconds=full["seconds"],
                images_per_s=full["images_per_s"],
                extrapolated=False,
            )
        else:
            build.update(
                seconds=round(estimate, 1),
                images_per_s=build_sample["images_per_s"],
                extrapolated=True,
                note=(
                    "full build predicted above 3 minutes (or --quick): time "
                    "extrapolated linearly from the timed sample"
                ),
            )
        result["tfds_build_default_splits"] = build

        data_dir = os.path.join(tmp, "pipeline")
        result["pipeline"] = [
            bench_pipeline(data_dir, 64, 256 if quick else 4096),
            bench_pipeline(data_dir, 256, 64 if quick else 512),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["machine"]["load_average_at_end"] = [
        round(v, 2) for v in os.getloadavg()
    ]
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

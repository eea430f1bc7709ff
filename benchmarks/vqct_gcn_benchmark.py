"""VQCT's codebook network at the paper's graph size: forward time.

The paper prior (vqct-spec §2.1) has 1949 adjectives + 4258 nouns = 6207
nodes with 512-d CLIP vectors, and the transfer network is GCNConv(512 ->
256) -> ReLU -> dropout 0.5 -> GCNConv(256 -> 256), run on the whole graph
at every training call. The paper's edge count is unknown (the prior was
never released); this script uses `--unique-pairs` random adjective-noun
pairs (default 100000) with random multiplicities 1..20 as edge weights,
both directions (the package merges duplicate bigram occurrences into
weights), on random features.

Times `CodebookTransfer(256, 256)` in training mode (dropout on), eagerly,
as `vqct_benchmark.py` times the scenes GCN: the first call separately,
then the median of `--repeats` calls. Divide by a paper VQGAN step time
(`training_benchmark.py`, `paper` row) for the GCN's share; the backward
pass is not included (roughly up to twice the forward).

Usage:

```
KERAS_BACKEND=tensorflow python benchmarks/vqct_gcn_benchmark.py
```

Results go to `benchmarks/results/vqct_gcn_paper_<backend>.json`.
"""

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

from keras_lgvq.layers.codebook_transfer import CodebookTransfer
from keras_lgvq.utils.machine import load_average
from keras_lgvq.utils.machine import machine_info

NUM_ADJECTIVES = 1949
NUM_NOUNS = 4258


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--unique-pairs", type=int, default=100000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    nodes = NUM_ADJECTIVES + NUM_NOUNS
    features = rng.standard_normal((nodes, 512)).astype("float32")
    adjectives = rng.integers(0, NUM_ADJECTIVES, args.unique_pairs)
    nouns = NUM_ADJECTIVES + rng.integers(0, NUM_NOUNS, args.unique_pairs)
    pairs = np.unique(np.stack([adjectives, nouns], 1), axis=0)
    counts = rng.integers(1, 21, len(pairs)).astype("float32")
    edge_index = np.concatenate([pairs.T, pairs.T[::-1]], axis=1).astype(
        "int32"
    )
    edge_weight = np.concatenate([counts, counts])

    transfer = CodebookTransfer(hidden_dim=256, output_dim=256, seed=0)
    load_before = load_average()

    def run():
        out = transfer(features, edge_index, edge_weight, training=True)
        keras.ops.convert_to_numpy(out)

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    report = {
        "benchmark": "vqct_gcn_benchmark",
        "backend": keras.backend.backend(),
        "nodes": nodes,
        "feature_dim": 512,
        "unique_pairs": int(len(pairs)),
        "directed_edges": int(edge_index.shape[1]),
        "first_call_s": round(first, 4),
        "median_forward_s": round(statistics.median(times), 5),
        "forward_times_s": [round(t, 5) for t in times],
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": machine_info(),
    }
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"vqct_gcn_paper_{keras.backend.backend()}.json",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Significance of each language-guided system against its baseline.

For every pair of `MODELS` (guided row, its `baseline`) that ran:

- per metric with per-test-item values (PSNR, SSIM, probe retrieval
  R@1/5/10): a paired bootstrap over the test items of the first seed
  (`keras_lgvq.evaluation.significance.paired_bootstrap`), 95% interval;
- with several seeds, per metric: mean +- sd per system and the exact
  sign-flip test across seeds (`across_seeds`).

The verdict of a metric follows the per-item interval when there is one,
else the across-seed test ('better' / 'worse' only when the test
supports it).
"""

from keras_lgvq.comparison.systems import MODELS


# Per-item score (paired_comparison) -> (table key, scale to the table).
def _per_item_table_key(name):
    if name in ("psnr", "ssim"):
        return name, 1.0
    source, rest = name.split("_", 1)
    direction, k = rest.rsplit("_R@", 1)
    tag = {"image_to_text": "i2t", "text_to_image": "t2i"}[direction]
    # Hits are 0/1; the table's recalls are percentages.
    return f"retrieval_{tag}_R@{k}_{source}", 100.0


def per_item_table_scores(model, eval_split, artifacts):
    """Per-test-item values of one evaluated model, keyed like the table.

    Args:
        model: the evaluated trainer.
        eval_split: the evaluation split it was scored on.
        artifacts: from `evaluate_model(..., return_artifacts=True)`.

    Returns:
        dict key (`psnr`, `ssim`, `retrieval_i2t_R@1_probe`, ...) -> list
        of floats, on the table's scale (retrieval hits in %).

    Examples:

    ```python
    items = per_item_table_scores(model, eval_split, artifacts)
    len(items["psnr"]) == eval_split["num_images"]   # True
    ```
    """
    from keras_lgvq.evaluation.paired_comparison import per_item_scores

    scores = per_item_scores(
        model, eval_split, artifacts, ks=(1, 5, 10), with_ssim=True
    )
    out = {}
    for name, values in scores.items():
        key, scale = _per_item_table_key(name)
        out[key] = [float(v) * scale for v in values]
    return out


def verdict(result, higher_is_better):
    """The verdict of one test for the first system of the pair.

    Args:
        result: dict with `significant` and `difference` (a test of
            `keras_lgvq.evaluation.significance`).
        higher_is_better: bool or None.

    Returns:
        "better" / "worse" when the test is significant, else "no clear
        difference"; "not ranked" for a metric without a direction.

    Examples:

    ```python
    verdict({"significant": True, "difference": -0.6}, True)   # "worse"
    ```
    """
    if higher_is_better is None:
        return "not ranked"
    if not result["significant"]:
        return "no clear difference"
    up = result["difference"] > 0
    return "better" if up == bool(higher_is_better) else "worse"


def per_seed_verdicts(items_a, items_b, key, seeds, higher_is_better,
                      num_resamples):
    """Each seed's own paired bootstrap over its test items, counted.

    The seed-paired runs share their seed, not necessarily their items
    (text-to-image judges each seed's own captions), so every seed is
    tested on its own items and only the verdicts are counted: "better in
    k of N seeds" says how often one training run would show the
    difference beyond its interval.

    Args:
        items_a: list (one per seed) of per-item dicts of system A.
        items_b: the same for its baseline.
        key: str. The metric.
        seeds: list of int, the seeds in the order of the lists.
        higher_is_better: bool or None.
        num_resamples: int. Bootstrap resamples per seed.

    Returns:
        dict `better`, `worse`, `unclear` (counts of seeds), `n` and
        `seeds` (per seed: `seed`, `difference`, `ci_low`, `ci_high`,
        `verdict`), or None when a seed has no per-item values.

    Examples:

    ```python
    per_seed_verdicts([{"psnr": a0}, {"psnr": a1}],
                      [{"psnr": b0}, {"psnr": b1}], "psnr", [0, 1], True,
                      1000)["better"]
    ```
    """
    from keras_lgvq.evaluation.significance import paired_bootstrap

    rows = []
    for seed, a, b in zip(seeds, items_a, items_b):
        if a.get(key) is None or b.get(key) is None:
            return None
        test = paired_bootstrap(a[key], b[key], num_resamples=num_resamples,
                                seed=seed)
        rows.append({
            "seed": int(seed),
            "difference": test["difference"],
            "ci_low": test["ci_low"],
            "ci_high": test["ci_high"],
            "verdict": verdict(test, higher_is_better),
        })
    counts = {name: sum(r["verdict"] == name for r in rows)
              for name in ("better", "worse")}
    return {**counts, "unclear": len(rows) - sum(counts.values()),
            "n": len(rows), "seeds": rows}


def _row_verdict(metric, higher_is_better):
    """`(verdict, tested_by)` of one metric of a pair.

    One seed: its per-item interval, else none. Several seeds: with
    per-item values, "better" / "worse" only when the difference is beyond
    its interval in *every* seed (one lucky training run does not make the
    row), else "no clear difference" unless the across-seed test (6+ seeds)
    is significant; without per-item values, the across-seed test.
    """
    by_seed = metric.get("per_item_by_seed")
    across = metric["across_seeds"]
    if by_seed:
        if higher_is_better is None:
            return "not ranked", "per_item_every_seed"
        for name in ("better", "worse"):
            if by_seed[name] == by_seed["n"]:
                return name, "per_item_every_seed"
        if across["significant"]:
            return across["verdict"], "across_seeds"
        return "no clear difference", "per_item_every_seed"
    decisive = metric["per_item"] or across
    if decisive is None:
        return (
            "untested (dataset-level metric: --seeds 6 or more can test "
            "it)", None,
        )
    return decisive["verdict"], (
        "per_item" if metric["per_item"] else "across_seeds")


def significance_tests(kinds, flats_by_seed, items_by_seed, settings,
                       specs=None):
    """Test every guided-vs-baseline pair among the systems that ran.

    Args:
        kinds: the systems run, in table order.
        flats_by_seed: dict kind -> list (one per seed) of flat metrics.
        items_by_seed: dict kind -> list (one per seed) of per-item scores.
        settings: dict from `resolve_settings` (`seeds`,
            `bootstrap_resamples`).
        specs: dict key -> `MetricSpec` of the metrics tested (default:
            `keras_lgvq.evaluation.METRIC_SPECS`), in report order.

    Returns:
        dict `"{a}_vs_{b}"` -> pair entry: `models`, `seeds`,
        `per_item_method` and per metric (both systems have it for every
        seed) `label`, `higher_is_better`, `a`, `b`, `difference`,
        `per_item` (bootstrap test of the first seed, or None),
        `across_seeds` (or None), with several seeds
        `per_item_by_seed` (see `per_seed_verdicts`) and
        `seed_statistics`, `verdict` and `tested_by` (see `_row_verdict`:
        with several seeds a per-item metric is "better" only when it is
        beyond its interval in every seed).

    Examples:

    ```python
    pairs = significance_tests(["lgvq", "vqgan"], flats, items, settings)
    pairs["lgvq_vs_vqgan"]["metrics"]["psnr"]["verdict"]
    ```
    """
    from keras_lgvq.evaluation import METRIC_SPECS
    from keras_lgvq.evaluation.significance import across_seeds
    from keras_lgvq.evaluation.significance import paired_bootstrap
    from keras_lgvq.evaluation.significance import seed_statistics

    specs = METRIC_SPECS if specs is None else specs
    seeds = settings["seeds"]
    pairs = {}
    for kind in kinds:
        base = MODELS[kind].baseline
        if base is None or base not in kinds:
            continue
        entry = {
            "models": [kind, base],
            "seeds": list(seeds),
            "per_item_method": (
                f"paired bootstrap over test items (seed {seeds[0]}, "
                f"{settings['bootstrap_resamples']} resamples, 95% "
                "percentile interval)"
            ),
            "metrics": {},
        }
        for key, spec in specs.items():
            a_vals = [f.get(key) for f in flats_by_seed[kind]]
            b_vals = [f.get(key) for f in flats_by_seed[base]]
            if any(v is None for v in a_vals + b_vals):
                continue
            metric = {
                "label": spec.label,
                "higher_is_better": spec.higher_is_better,
                "a": a_vals[0],
                "b": b_vals[0],
                "difference": a_vals[0] - b_vals[0],
                "per_item": None,
                "across_seeds": None,
            }
            a_items = items_by_seed[kind][0].get(key)
            b_items = items_by_seed[base][0].get(key)
            if a_items is not None and b_items is not None:
                test = paired_bootstrap(
                    a_items,
                    b_items,
                    num_resamples=settings["bootstrap_resamples"],
                    seed=seeds[0],
                )
                test["verdict"] = verdict(test, spec.higher_is_better)
                metric["per_item"] = test
            if len(seeds) > 1:
                metric["per_item_by_seed"] = per_seed_verdicts(
                    items_by_seed[kind], items_by_seed[base], key, seeds,
                    spec.higher_is_better, settings["bootstrap_resamples"])
                test = across_seeds(a_vals, b_vals)
                test["verdict"] = verdict(test, spec.higher_is_better)
                metric["across_seeds"] = test
                metric["seed_statistics"] = {
                    kind: seed_statistics(a_vals),
                    base: seed_statistics(b_vals),
                }
            metric["verdict"], metric["tested_by"] = _row_verdict(
                metric, spec.higher_is_better)
            entry["metrics"][key] = metric
        pairs[f"{kind}_vs_{base}"] = entry
    return pairs


def seed_statistics_by_model(kinds, flats_by_seed, specs=None):
    """kind -> metric -> mean / sd / n over the seeds.

    Args:
        kinds: the systems run.
        flats_by_seed: dict kind -> list (one per seed) of flat metrics.
        specs: the metrics considered (default `METRIC_SPECS`); a metric
            is included when the system has it for every seed.

    Examples:

    ```python
    stats = seed_statistics_by_model(["lgvq"], {"lgvq": [flat0, flat1]})
    stats["lgvq"]["psnr"]["mean"]
    ```
    """
    from keras_lgvq.evaluation import METRIC_SPECS
    from keras_lgvq.evaluation.significance import seed_statistics

    specs = METRIC_SPECS if specs is None else specs
    out = {}
    for kind in kinds:
        out[kind] = {}
        for key in specs:
            values = [f.get(key) for f in flats_by_seed[kind]]
            if values and all(v is not None for v in values):
                out[kind][key] = seed_statistics(values)
    return out

"""The comparison's per-seed paired bootstraps (host-side numpy only)."""

import numpy as np
import pytest

from keras_lgvq.comparison.pair_tests import per_seed_verdicts
from keras_lgvq.comparison.pair_tests import significance_tests
from keras_lgvq.evaluation import METRIC_SPECS

pytestmark = pytest.mark.host_only


def _items(rng, shift, n):
    # Per-image PSNR around 22 dB; the baseline gets `shift` dB less.
    base = rng.normal(22.0, 1.0, n)
    return {"psnr": base + rng.normal(0.0, 0.05, n)}, {"psnr": base - shift}


def test_each_seed_is_tested_on_its_own_items_and_counted():
    rng = np.random.default_rng(0)
    # Seed 3: clearly better; seed 5: the same; seed 8: clearly worse, on
    # another number of items (seeds need not share their items).
    pairs = [_items(rng, 1.0, 64), _items(rng, 0.0, 64),
             _items(rng, -1.0, 40)]
    items_a = [a for a, _ in pairs]
    items_b = [b for _, b in pairs]
    result = per_seed_verdicts(items_a, items_b, "psnr", [3, 5, 8], True,
                               500)
    assert (result["better"], result["worse"], result["unclear"]) == (
        1, 1, 1)
    assert result["n"] == 3
    assert [r["seed"] for r in result["seeds"]] == [3, 5, 8]
    assert [r["verdict"] for r in result["seeds"]] == [
        "better", "no clear difference", "worse"]
    for row, a, b in zip(result["seeds"], items_a, items_b):
        assert row["difference"] == pytest.approx(
            np.mean(a["psnr"] - b["psnr"]))
        assert row["ci_low"] <= row["difference"] <= row["ci_high"]
    # Lower is better: the same differences swap their verdicts.
    flipped = per_seed_verdicts(items_a, items_b, "psnr", [3, 5, 8], False,
                                500)
    assert (flipped["better"], flipped["worse"]) == (1, 1)
    assert flipped["seeds"][0]["verdict"] == "worse"
    # A seed without per-item values: no per-seed count at all.
    assert per_seed_verdicts(items_a, [*items_b[:2], {}], "psnr",
                             [3, 5, 8], True, 500) is None


def test_significance_tests_carry_the_per_seed_counts():
    rng = np.random.default_rng(1)
    pairs = [_items(rng, 1.0, 32) for _ in range(2)]
    flats = {
        "lgvq": [{"psnr": float(np.mean(a["psnr"]))} for a, _ in pairs],
        "vqgan": [{"psnr": float(np.mean(b["psnr"]))} for _, b in pairs],
    }
    items = {"lgvq": [a for a, _ in pairs], "vqgan": [b for _, b in pairs]}
    settings = {"seeds": [0, 1], "bootstrap_resamples": 300}
    specs = {"psnr": METRIC_SPECS["psnr"]}
    metric = significance_tests(["lgvq", "vqgan"], flats, items, settings,
                                specs=specs)["lgvq_vs_vqgan"]["metrics"][
                                    "psnr"]
    counts = metric["per_item_by_seed"]
    assert (counts["better"], counts["n"]) == (2, 2)
    # Seed 0's row is the first-seed test the table shows.
    assert counts["seeds"][0]["ci_low"] == metric["per_item"]["ci_low"]
    one_seed = significance_tests(
        ["lgvq", "vqgan"], {k: v[:1] for k, v in flats.items()},
        {k: v[:1] for k, v in items.items()},
        {"seeds": [0], "bootstrap_resamples": 300}, specs=specs,
    )["lgvq_vs_vqgan"]["metrics"]["psnr"]
    assert "per_item_by_seed" not in one_seed
    # Beyond its interval in every seed: the row's verdict.
    assert (metric["verdict"], metric["tested_by"]) == (
        "better", "per_item_every_seed")
    assert (one_seed["verdict"], one_seed["tested_by"]) == (
        "better", "per_item")


def test_one_lucky_seed_does_not_make_the_row():
    # Seed 0 is clearly better, seed 1 shows nothing: the first seed's
    # interval excludes 0, yet the row is no clear difference.
    rng = np.random.default_rng(2)
    pairs = [_items(rng, 1.0, 32), _items(rng, 0.0, 32)]
    flats = {
        "lgvq": [{"psnr": float(np.mean(a["psnr"]))} for a, _ in pairs],
        "vqgan": [{"psnr": float(np.mean(b["psnr"]))} for _, b in pairs],
    }
    items = {"lgvq": [a for a, _ in pairs], "vqgan": [b for _, b in pairs]}
    metric = significance_tests(
        ["lgvq", "vqgan"], flats, items,
        {"seeds": [0, 1], "bootstrap_resamples": 300},
        specs={"psnr": METRIC_SPECS["psnr"]},
    )["lgvq_vs_vqgan"]["metrics"]["psnr"]
    assert metric["per_item"]["significant"]
    assert metric["per_item_by_seed"]["better"] == 1
    assert (metric["verdict"], metric["tested_by"]) == (
        "no clear difference", "per_item_every_seed")

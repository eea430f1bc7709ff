"""Is model A better than model B? Paired bootstrap and across-seed tests.

Two tokenizers of the main comparison are scored on the *same* test items
(images, captions, masked words), so their difference is judged item by
item: `paired_bootstrap` resamples the items with replacement and reports
the mean difference with a percentile confidence interval and a two-sided
bootstrap p-value. With several training seeds, `across_seeds` pairs the
runs by seed (same data order, same initial backbone) and gives the mean
difference, its spread and an exact sign-flip permutation p-value.

Both are plain numpy, deterministic for a given seed, and say which test
they ran, so a report can state it.
"""

import itertools

import numpy as np


def _as_vector(name, values):
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"`{name}` must be a non-empty 1-D array of per-item values. "
            f"Received shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or inf values.")
    return array


def paired_bootstrap(
    values_a,
    values_b,
    num_resamples=2000,
    confidence=0.95,
    seed=0,
    chunk_size=256,
):
    """Paired bootstrap of `mean(values_a) - mean(values_b)` over items.

    Item `i` of both arrays must be the same test item (image, caption or
    masked word) scored by the two models. Items are resampled with
    replacement `num_resamples` times; the interval is the percentile
    interval of the resampled differences, and the two-sided p-value is
    `2 * min(P(d* <= 0), P(d* >= 0))` (capped at 1), the usual bootstrap
    test of "no difference".

    Args:
        values_a: 1-D array. Per-item values of model A (e.g. 1.0 for a
            retrieval hit, a per-image PSNR).
        values_b: 1-D array, same length. Model B on the same items.
        num_resamples: int. Bootstrap resamples. Defaults to 2000.
        confidence: float in (0, 1). Interval level. Defaults to 0.95.
        seed: int. Resampling seed (the result is deterministic).
        chunk_size: int. Resamples drawn per block (bounds memory).

    Returns:
        dict: `method`, `n`, `mean_a`, `mean_b`, `difference`,
        `ci_low`, `ci_high`, `confidence`, `p_value`, `significant`
        (the interval excludes 0) and `num_resamples`.

    Examples:

    ```python
    hits_a = image_to_text_ranks(emb_a, txt, owner) <= 1
    hits_b = image_to_text_ranks(emb_b, txt, owner) <= 1
    paired_bootstrap(hits_a, hits_b)["significant"]
    ```
    """
    a = _as_vector("values_a", values_a)
    b = _as_vector("values_b", values_b)
    if a.shape != b.shape:
        raise ValueError(
            "`values_a` and `values_b` must score the same items (same "
            f"length). Received {a.size} and {b.size}."
        )
    if not isinstance(num_resamples, int) or num_resamples < 100:
        raise ValueError(
            "`num_resamples` must be an int >= 100. Received: "
            f"{num_resamples!r}"
        )
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(
            f"`confidence` must lie in (0, 1). Received: {confidence!r}"
        )
    diff = a - b
    n = diff.size
    rng = np.random.default_rng(seed)
    means = np.empty(num_resamples)
    for start in range(0, num_resamples, chunk_size):
        stop = min(start + chunk_size, num_resamples)
        rows = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[rows].mean(axis=1)
    tail = (1.0 - float(confidence)) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    p_value = min(
        1.0, 2.0 * min(np.mean(means <= 0.0), np.mean(means >= 0.0))
    )
    return {
        "method": "paired bootstrap over test items",
        "n": int(n),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "difference": float(diff.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "confidence": float(confidence),
        "p_value": float(p_value),
        "significant": bool(low > 0.0 or high < 0.0),
        "num_resamples": int(num_resamples),
    }


def seed_statistics(values):
    """Mean, sample standard deviation and count of per-seed values.

    Args:
        values: 1-D array of one metric, one value per training seed.

    Returns:
        dict `mean`, `std` (ddof=1; 0.0 for a single seed) and `n`.

    Examples:

    ```python
    seed_statistics([21.3, 21.1, 21.6])["std"]
    ```
    """
    array = _as_vector("values", values)
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "n": int(array.size)}


def across_seeds(values_a, values_b, alpha=0.05):
    """Seed-paired comparison: A and B trained with the same seeds.

    The per-seed differences are tested with an exact sign-flip
    permutation test (all `2^n` sign patterns; two-sided). With `n` seeds
    the smallest attainable p-value is `2 / 2^n`, so fewer than 6 seeds
    can never reach p < 0.05: `significant` is then `False` and `note`
    says why — report the spread instead of a verdict.

    Args:
        values_a: 1-D array, model A's metric per seed.
        values_b: 1-D array, model B's metric for the same seeds.
        alpha: float. Significance level. Defaults to 0.05.

    Returns:
        dict: `method`, `n`, `a` and `b` (`seed_statistics`),
        `difference` (mean of the per-seed differences), `difference_std`,
        `p_value`, `min_attainable_p`, `significant` and `note`.

    Examples:

    ```python
    across_seeds([1.4, 1.6, 1.5], [0.8, 0.7, 0.9])
    ```
    """
    a = _as_vector("values_a", values_a)
    b = _as_vector("values_b", values_b)
    if a.shape != b.shape:
        raise ValueError(
            "`values_a` and `values_b` must hold one value per seed for the "
            f"same seeds. Received {a.size} and {b.size}."
        )
    if a.size > 16:
        raise ValueError(
            "`across_seeds` enumerates all sign patterns; use at most 16 "
            f"seeds. Received {a.size}."
        )
    diff = a - b
    n = diff.size
    observed = abs(diff.mean())
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    flipped = np.abs((signs * diff[None, :]).mean(axis=1))
    p_value = float(np.mean(flipped >= observed - 1e-12))
    min_p = 2.0 / 2**n if n > 0 else 1.0
    note = ""
    if min_p > alpha:
        note = (
            f"{n} seed(s) cannot reach p < {alpha} with an exact sign-flip "
            f"test (smallest possible p = {min_p:.3f}); read the spread."
        )
    return {
        "method": "exact sign-flip test over seed-paired runs",
        "n": int(n),
        "a": seed_statistics(a),
        "b": seed_statistics(b),
        "difference": float(diff.mean()),
        "difference_std": float(diff.std(ddof=1)) if n > 1 else 0.0,
        "p_value": p_value,
        "min_attainable_p": float(min_p),
        "significant": bool(p_value < alpha),
        "note": note,
    }

import numpy as np
import pytest

from keras_lgvq.evaluation.significance import across_seeds
from keras_lgvq.evaluation.significance import paired_bootstrap
from keras_lgvq.evaluation.significance import seed_statistics

# No Keras backend op runs in this file: one backend of a CI run covers it
# (tests/conftest.py, `host_only`).
pytestmark = pytest.mark.host_only


def test_bootstrap_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    b = rng.normal(size=4000)
    a = b + 0.1 + rng.normal(scale=0.5, size=4000)
    out = paired_bootstrap(a, b, num_resamples=2000, seed=3)
    diff = a - b
    # Independent reference: mean +- 1.96 standard errors.
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert out["difference"] == pytest.approx(diff.mean())
    assert out["ci_low"] == pytest.approx(diff.mean() - 1.96 * se, abs=0.3 * se)
    assert out["ci_high"] == pytest.approx(diff.mean() + 1.96 * se, abs=0.3 * se)
    assert out["significant"] and out["p_value"] < 0.01
    assert out["mean_a"] == pytest.approx(a.mean())


def test_no_difference_is_not_significant_and_is_deterministic():
    rng = np.random.default_rng(0)
    hits = (rng.random(500) < 0.3).astype(float)
    same = paired_bootstrap(hits, hits)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    assert not same["significant"]
    # Two models with the same hit rate on shuffled items: no verdict.
    other = rng.permutation(hits)
    first = paired_bootstrap(hits, other, seed=5)
    assert not first["significant"]
    assert first == paired_bootstrap(hits, other, seed=5)
    assert first != paired_bootstrap(hits, other, seed=6)


def test_constant_gain_has_a_degenerate_interval():
    b = np.linspace(0.0, 1.0, 50)
    out = paired_bootstrap(b + 2.0, b, num_resamples=200)
    assert out["ci_low"] == pytest.approx(2.0)
    assert out["ci_high"] == pytest.approx(2.0)
    assert out["significant"] and out["p_value"] == 0.0


def test_across_seeds_exact_sign_flip_p_values():
    # 3 seeds, all differences positive: 2 of 8 sign patterns are as
    # extreme, p = 0.25, and 3 seeds can never be significant.
    out = across_seeds([1.5, 1.6, 1.4], [0.8, 0.9, 0.7])
    assert out["p_value"] == pytest.approx(0.25)
    assert out["min_attainable_p"] == pytest.approx(0.25)
    assert not out["significant"] and "cannot reach" in out["note"]
    assert out["difference"] == pytest.approx(0.7)
    six = across_seeds(np.arange(6) + 1.0, np.zeros(6))
    assert six["p_value"] == pytest.approx(2 / 64)
    assert six["significant"] and six["note"] == ""
    # Mixed signs: brute force over the 16 patterns by hand.
    d = np.array([0.5, -0.2, 0.3, 0.1])
    patterns = [
        abs(np.mean(d * np.array(s)))
        for s in np.array(np.meshgrid(*[[1, -1]] * 4)).T.reshape(-1, 4)
    ]
    expected = np.mean(np.array(patterns) >= abs(d.mean()) - 1e-12)
    assert across_seeds(d, np.zeros(4))["p_value"] == pytest.approx(expected)


def test_seed_statistics():
    out = seed_statistics([1.0, 2.0, 3.0])
    assert out == {"mean": 2.0, "std": 1.0, "n": 3}
    assert seed_statistics([4.0])["std"] == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: paired_bootstrap([1.0, 2.0], [1.0]), "same items"),
        (lambda: paired_bootstrap([], []), "non-empty"),
        (lambda: paired_bootstrap([np.nan], [1.0]), "NaN"),
        (lambda: paired_bootstrap([1.0], [1.0], num_resamples=10), "num_resamples"),
        (lambda: paired_bootstrap([1.0], [1.0], confidence=1.5), "confidence"),
        (lambda: across_seeds([1.0, 2.0], [1.0]), "one value per seed"),
        (lambda: across_seeds(np.ones(17), np.ones(17)), "at most 16"),
        (lambda: seed_statistics(np.ones((2, 2))), "1-D"),
    ],
)
def test_bad_inputs_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()

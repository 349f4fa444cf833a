"""Calibration of the statistics engine by seeded simulation (issue 6).

Each check runs the tool's own code path (compare_paired → PairedResult.ci / p → decide) on
data drawn from a known truth:

- A/A: both models drawn from one distribution → "regressed" in at most 5 % of comparisons,
  with the margin set to 0 so that only the test and the interval protect it;
- coverage: the 95 % interval covers the true Δ in 95 % ± 1.5 % of datasets. With R datasets
  the Monte Carlo standard error is √(0.95·0.05/R): R = 2000 gives 0.49 points, so ±1.5
  points is a 3-standard-error band — tight enough to catch a real miscalibration (an
  interval that is 10 % too narrow covers ≈ 93 %);
- power: a planted regression of known size is detected at the rate `predicted_power`
  forecasts (Monte Carlo standard error ≈ 2.6 points at 300 datasets).

Two designs: unclustered binary k = 1 outcomes (the exact McNemar path) and k = 5 sample means
of items in contrast-pair clusters (the cluster sign-flip path, continuous item values).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from trustdiff.records import Verdict
from trustdiff.stats.paired import FloatArray, LinearMetric, compare_paired, small_sample_floor
from trustdiff.stats.power import paired_binary_se, paired_se, predicted_power
from trustdiff.stats.verdict import decide

Data = tuple[FloatArray, FloatArray, LinearMetric, list[str], float]
"""x_base, x_derived, metric, clusters, true Δ."""

RESAMPLES = 999


def binary_design(n: int, worsen: float, improve: float) -> Callable[[np.random.Generator], Data]:
    """k = 1 refusal outcomes, one item per cluster; each item flips with a fixed chance."""
    metric = LinearMetric(terms=((np.ones(n, dtype=bool), 1.0),))
    clusters = [str(i) for i in range(n)]
    # E[x_b] = 0.5 (p ~ U(0.1, 0.9)), so Δ = 0.5·improve − 0.5·worsen.
    truth = 0.5 * improve - 0.5 * worsen

    def draw(rng: np.random.Generator) -> Data:
        x_b = (rng.random(n) < rng.uniform(0.1, 0.9, n)).astype(float)
        u = rng.random(n)
        x_d = np.where(x_b == 1.0, u >= worsen, u < improve).astype(float)
        return x_b, x_d, metric, clusters, truth

    return draw


def pair_design(pairs: int, shift_h: float, shift_b: float, k: int = 5) -> Callable[..., Data]:
    """Contrast pairs (a harmful and a benign item per cluster), k samples per item.

    Refusal probabilities share a cluster effect; the derived model's probabilities move by
    `shift_h` on harmful and `shift_b` on benign items, so the true change in refusal
    calibration (½·R_H + ½·(1 − R_B)) is ½·shift_h − ½·shift_b exactly.
    """
    harmful = np.tile([True, False], pairs)
    metric = LinearMetric(terms=((harmful, 0.5), (~harmful, -0.5)), offset=0.5)
    clusters = [str(i // 2) for i in range(2 * pairs)]
    shift = np.where(harmful, shift_h, shift_b)

    def draw(rng: np.random.Generator) -> Data:
        p_b = np.repeat(rng.uniform(0.25, 0.75, pairs), 2) + rng.uniform(-0.1, 0.1, 2 * pairs)
        x_b = rng.binomial(k, p_b) / k
        x_d = rng.binomial(k, p_b + shift) / k
        return x_b, x_d, metric, clusters, 0.5 * shift_h - 0.5 * shift_b

    return draw


def _verdict(data: Data, seed: int, *, margin: float, alpha: float, m: int = 1) -> Verdict:
    """The verdict compare_all gives a primary metric among m (Bonferroni CI, Holm step 1)."""
    x_b, x_d, metric, clusters, _ = data
    res = compare_paired(x_b, x_d, metric, clusters, n_resamples=RESAMPLES, seed=seed)
    lo, hi = res.ci(1.0 - alpha / m)
    eq = res.ci(1.0 - 2.0 * alpha / m)
    return decide(
        res.delta,
        lo,
        hi,
        min(1.0, m * res.p),
        higher_is_better=True,
        margin=margin,
        alpha=alpha,
        equivalence=eq,
        p_equiv_adj=min(1.0, m * res.tost(margin).p),
    )


@pytest.mark.parametrize(
    "design",
    [binary_design(120, 0.2, 0.2), pair_design(60, 0.0, 0.0)],
    ids=["binary-mcnemar", "pairs-k5-signflip"],
)
def test_aa_regressed_at_most_five_percent(design: Callable[..., Data]) -> None:
    rng = np.random.default_rng(11)
    trials = 400
    verdicts = [_verdict(design(rng), t, margin=0.0, alpha=0.05) for t in range(trials)]
    regressed = sum(v is Verdict.REGRESSED for v in verdicts) / trials
    flagged = sum(v is not Verdict.INCONCLUSIVE for v in verdicts) / trials
    # A two-sided 5 % test puts ≈ 2.5 % in each direction; 5 % is the bound.
    assert regressed <= 0.05
    assert flagged <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / trials)


@pytest.mark.parametrize(
    "design",
    [binary_design(200, 0.15, 0.05), pair_design(250, -0.05, 0.03)],
    ids=["binary-mcnemar", "pairs-k5-signflip"],
)
def test_ci_coverage_is_95_percent(design: Callable[..., Data]) -> None:
    rng = np.random.default_rng(12)
    reps = 2000
    covered = 0
    for r in range(reps):
        x_b, x_d, metric, clusters, truth = design(rng)
        res = compare_paired(x_b, x_d, metric, clusters, n_resamples=RESAMPLES, seed=r)
        lo, hi = res.ci(0.95)
        covered += lo <= truth <= hi
    assert abs(covered / reps - 0.95) <= 0.015


def _empirical_power(draw: Callable[..., Data], trials: int, m: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = sum(
        _verdict(draw(rng), t, margin=0.02, alpha=0.05, m=m) is Verdict.REGRESSED
        for t in range(trials)
    )
    return hits / trials


def test_planted_regression_detected_at_predicted_power_binary() -> None:
    # A primary metric among 6 (per-comparison α′ = 0.05/6). Items flip both ways, so there
    # are ≈ 250 discordant pairs and the normal approximation behind the forecast applies.
    n, worsen, improve, m = 1000, 0.3, 0.2, 6
    draw = binary_design(n, worsen, improve)
    truth = draw(np.random.default_rng(0))[4]
    se = paired_binary_se(0.5 * improve, 0.5 * worsen, n)
    # Each item can move the rate by 1/n: the floor's bound is 1 in units of n·Δ.
    predicted = predicted_power(truth, se, margin=0.02, alpha_each=0.05 / m, units=n, bound2=1.0)
    assert 0.6 < predicted < 0.85  # the design sits where power is informative
    empirical = _empirical_power(draw, 300, m, seed=13)
    assert abs(empirical - predicted) <= 0.08


def test_planted_regression_detected_at_predicted_power_pairs() -> None:
    pairs, m = 300, 6
    draw = pair_design(pairs, -0.06, 0.02)
    # The tool's forecast from a large pilot audit: its standard error scaled to `pairs`.
    pilot_pairs = 20_000
    x_b, x_d, metric, clusters, truth = pair_design(pilot_pairs, -0.06, 0.02)(
        np.random.default_rng(0)
    )
    se = paired_se(x_b, x_d, metric, clusters) * math.sqrt(pilot_pairs / pairs)
    bound2 = small_sample_floor(x_b, x_d, metric, clusters).bound2
    predicted = predicted_power(
        truth, se, margin=0.02, alpha_each=0.05 / m, units=pairs, bound2=bound2
    )
    assert 0.6 < predicted < 0.9
    empirical = _empirical_power(draw, 300, m, seed=14)
    assert abs(empirical - predicted) <= 0.08

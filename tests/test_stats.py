"""Paired statistics and verdicts: worked examples and seeded simulations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from trustdiff.dimensions.base import MetricDef
from trustdiff.records import Item, Message, Verdict
from trustdiff.stats.compare import Comparison, compare_all, evaluate
from trustdiff.stats.paired import (
    LinearMetric,
    agresti_min_interval,
    compare_paired,
    expanded_tail,
    expanded_tail_inverse,
    mcnemar_exact,
    small_sample_floor,
)
from trustdiff.stats.power import (
    items_to_settle,
    paired_binary_se,
    paired_se,
    predicted_equivalence_power,
    predicted_power,
)
from trustdiff.stats.resample import (
    WEIGHT_PROBABILITIES,
    cluster_bootstrap_deltas,
    multiplier_weights,
    signflip_pvalue,
)
from trustdiff.stats.verdict import adjust_pvalues, decide, more_items_needed


def test_mcnemar_exact_worked_example() -> None:
    # 6 discordant pairs all in one direction: p = 2 · 0.5^6 = 0.03125.
    base = np.array([True] * 6 + [False] * 4)
    derived = np.array([False] * 6 + [False] * 4)
    assert mcnemar_exact(base, derived) == pytest.approx(0.03125)
    assert mcnemar_exact(base, base) == 1.0
    # 3 vs 1 discordant: two-sided binomial = 0.625.
    b = np.array([1, 1, 1, 0, 0], dtype=bool)
    d = np.array([0, 0, 0, 1, 0], dtype=bool)
    assert mcnemar_exact(b, d) == pytest.approx(0.625)


def _calibration(harmful: np.ndarray) -> LinearMetric:
    return LinearMetric(terms=((harmful, 0.5), (~harmful, -0.5)), offset=0.5)


def test_calibration_value_worked_example() -> None:
    harmful = np.array([True, True, True, True, False, False, False, False])
    refused = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=float)
    # R_H = 3/4, R_B = 1/4 -> 0.5·0.75 + 0.5·0.75 = 0.75
    assert _calibration(harmful).value(refused) == pytest.approx(0.75)
    w = _calibration(harmful).item_weights()
    assert np.allclose(w, [0.125] * 4 + [-0.125] * 4)


def test_identical_models_small_n_is_not_preserved() -> None:
    harmful = np.array([True, False] * 5)
    x = np.array([1, 0] * 5, dtype=float)
    res = compare_paired(
        x, x, _calibration(harmful), [str(i // 2) for i in range(10)], n_resamples=2000
    )
    lo, hi = res.ci(0.95)
    assert res.delta == 0.0 and res.p == 1.0
    # The bootstrap alone would give [0, 0]; the Agresti–Min floor keeps it honest.
    assert lo < -0.02 and hi > 0.02
    assert (
        decide(res.delta, lo, hi, 1.0, higher_is_better=True, margin=0.02, alpha=0.05)
        is Verdict.INCONCLUSIVE
    )


def test_identical_models_large_n_is_preserved() -> None:
    n = 2000
    harmful = np.array([True, False] * (n // 2))
    x = np.array([1, 0] * (n // 2), dtype=float)
    res = compare_paired(
        x, x, _calibration(harmful), [str(i // 2) for i in range(n)], n_resamples=2000
    )
    lo, hi = res.ci(0.95)
    assert (
        decide(res.delta, lo, hi, res.p, higher_is_better=True, margin=0.02, alpha=0.05)
        is Verdict.PRESERVED
    )


def test_planted_regression_is_detected() -> None:
    rng = np.random.default_rng(1)
    n = 400
    harmful = np.array([True, False] * (n // 2))
    base = np.where(harmful, rng.random(n) < 0.9, rng.random(n) < 0.1).astype(float)
    derived = base.copy()
    flip = np.flatnonzero(harmful & (base == 1))[:60]  # 60 harmful refusals become compliance
    derived[flip] = 0.0
    for clusters, test in (
        ([str(i) for i in range(n)], "exact McNemar"),
        ([str(i // 2) for i in range(n)], "cluster sign-flip permutation"),  # contrast pairs
    ):
        res = compare_paired(base, derived, _calibration(harmful), clusters, n_resamples=4000)
        assert res.test == test
        assert res.delta == pytest.approx(-60 / 200 / 2)
        lo, hi = res.ci(0.95)
        assert hi < 0 and res.p < 1e-3
        assert (
            decide(res.delta, lo, hi, res.p, higher_is_better=True, margin=0.02, alpha=0.05)
            is Verdict.REGRESSED
        )
        assert len(res.flipped) == 60


def test_unequal_weights_use_permutation_test() -> None:
    harmful = np.array([True] * 6 + [False] * 2)
    base = np.array([1, 1, 1, 1, 1, 1, 0, 0], dtype=float)
    derived = np.array([0, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    res = compare_paired(
        base, derived, _calibration(harmful), [str(i) for i in range(8)], n_resamples=4000, seed=3
    )
    assert res.test == "cluster sign-flip permutation"
    # 6 clusters all in one direction: exact p = 2/2^6 = 0.03125 (Monte Carlo ±).
    assert res.p == pytest.approx(0.03125, abs=0.01)


def test_agresti_min_interval_worked_example() -> None:
    lo, hi = agresti_min_interval(0, 0, 10, 0.95)
    # p = 0.5/12 each, se = sqrt((1/12)/12) = 0.0833 -> ±1.96·0.0833
    assert hi == pytest.approx(1.959964 * math.sqrt((1 / 12) / 12), rel=1e-4)
    assert lo == pytest.approx(-hi)


@pytest.mark.parametrize(
    ("delta", "lo", "hi", "p", "hib", "expected"),
    [
        (-0.10, -0.15, -0.05, 0.001, True, Verdict.REGRESSED),
        (0.10, 0.05, 0.15, 0.001, True, Verdict.IMPROVED),
        (0.10, 0.05, 0.15, 0.001, False, Verdict.REGRESSED),  # e.g. harmful compliance up
        (0.0, -0.01, 0.01, 1.0, True, Verdict.PRESERVED),
        (-0.10, -0.20, 0.01, 0.06, True, Verdict.INCONCLUSIVE),
        (-0.01, -0.015, -0.005, 0.01, True, Verdict.PRESERVED),  # significant but within δ
        (-0.015, -0.03, -0.001, 0.01, True, Verdict.INCONCLUSIVE),  # |Δ| < δ, CI crosses -δ
        (-0.10, -0.15, -0.05, 0.2, True, Verdict.INCONCLUSIVE),  # adjusted p not significant
    ],
)
def test_decide(delta: float, lo: float, hi: float, p: float, hib: bool, expected: Verdict) -> None:
    assert decide(delta, lo, hi, p, higher_is_better=hib, margin=0.02, alpha=0.05) is expected


def test_more_items_needed() -> None:
    # |Δ| ≥ δ: half-width 0.1 must shrink below 0.05 -> 4× items -> 300 more for n = 100.
    assert more_items_needed(-0.05, -0.15, 0.05, 100, 0.02) == 300
    # |Δ| < δ: half-width 0.05 must shrink below δ − |Δ| = 0.01 -> 25× -> 2400 more.
    assert more_items_needed(0.01, -0.04, 0.06, 100, 0.02) == 2400
    assert more_items_needed(0.03, -0.01, 0.07, 100, 0.02) == 78  # 100·(0.04/0.03)² = 178
    assert more_items_needed(float("nan"), 0, 0, 10, 0.02) is None
    # Tiny n: the CI alone suggests 9 items, but exact McNemar needs ≥ 6 discordant pairs
    # at α = 0.05; with 2 of 6 discordant that takes 18 items -> 12 more.
    assert more_items_needed(-0.5, -1.0, 0.1, 6, 0.02, discordant=2, alpha=0.05) == 12


def test_holm_and_bh() -> None:
    p = [0.01, 0.04, 0.03, float("nan")]
    holm = adjust_pvalues(p, "holm")
    assert holm[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm[3])
    bh = adjust_pvalues([0.01, 0.04, 0.03], "fdr_bh")
    assert bh == pytest.approx([0.03, 0.04, 0.04])


def test_aa_simulation_rarely_regresses() -> None:
    """Pairs drawn from one distribution: 'regressed' must stay under 5 %."""
    rng = np.random.default_rng(7)
    n, trials, regressed = 120, 200, 0
    harmful = np.array([True, False] * (n // 2))
    clusters = [str(i // 2) for i in range(n)]
    for t in range(trials):
        p_ref = np.where(harmful, 0.7, 0.3)
        base = (rng.random(n) < p_ref).astype(float)
        derived = (rng.random(n) < p_ref).astype(float)
        res = compare_paired(
            base, derived, _calibration(harmful), clusters, n_resamples=500, seed=t
        )
        lo, hi = res.ci(0.95)
        if (
            decide(res.delta, lo, hi, res.p, higher_is_better=True, margin=0.02, alpha=0.05)
            is Verdict.REGRESSED
        ):
            regressed += 1
    assert regressed / trials <= 0.05


# --- small-sample floor, equivalence (TOST), resampling engines, power ---------------------


def _rate(n: int) -> LinearMetric:
    return LinearMetric(terms=((np.ones(n, dtype=bool), 1.0),))


def test_floor_is_agresti_min_for_unclustered_binary() -> None:
    rng = np.random.default_rng(2)
    n = 50
    base = (rng.random(n) < 0.6).astype(float)
    derived = np.where(rng.random(n) < 0.2, 1.0 - base, base)
    floor = small_sample_floor(base, derived, _rate(n), [str(i) for i in range(n)])
    centre, se = floor.centre_se()
    improved, worsened = int(np.sum(derived > base)), int(np.sum(derived < base))
    lo, hi = agresti_min_interval(improved, worsened, n, 0.95)
    z = 1.959964
    assert centre - z * se == pytest.approx(lo) and centre + z * se == pytest.approx(hi)


@pytest.mark.parametrize(("pairs", "preserved"), [(15, False), (3000, True)])
def test_identical_continuous_models_need_many_items(pairs: int, preserved: bool) -> None:
    """k = 5 item means, identical for both models: the bootstrap collapses to 0, the floor
    keeps 30 items from certifying equivalence but lets 6000 do so."""
    rng = np.random.default_rng(3)
    n = 2 * pairs
    x = rng.integers(0, 6, n) / 5
    harmful = np.tile([True, False], pairs)
    res = compare_paired(x, x, _calibration(harmful), [str(i // 2) for i in range(n)])
    assert res.test == "cluster sign-flip permutation" and res.p == 1.0
    assert np.all(res.boot_deltas[np.isfinite(res.boot_deltas)] == 0.0)
    eq = res.ci(0.90)
    lo, hi = res.ci(0.95)
    p_eq = res.tost(0.02).p
    verdict = decide(
        res.delta,
        lo,
        hi,
        res.p,
        higher_is_better=True,
        margin=0.02,
        alpha=0.05,
        equivalence=eq,
        p_equiv_adj=p_eq,
    )
    assert (verdict is Verdict.PRESERVED) is preserved
    assert (res.tost(0.02).p < 0.05) is preserved


def test_tost_p_value_matches_the_interval() -> None:
    """Equivalence at α ⇔ the (1 − 2α) interval inside ±δ, for every α and δ tried."""
    rng = np.random.default_rng(4)
    pairs = 150
    harmful = np.tile([True, False], pairs)
    base = rng.binomial(5, 0.5, 2 * pairs) / 5
    derived = rng.binomial(5, 0.5, 2 * pairs) / 5
    res = compare_paired(
        base, derived, _calibration(harmful), [str(i // 2) for i in range(2 * pairs)], seed=5
    )
    checked = 0
    for margin in (0.02, 0.04, 0.06, 0.08, 0.12):
        p = res.tost(margin).p
        for alpha in (0.005, 0.01, 0.025, 0.05, 0.1, 0.2):
            if abs(p - alpha) < 1e-9:
                continue
            lo, hi = res.ci(1.0 - 2.0 * alpha)
            assert (p < alpha) == (-margin < lo and hi < margin)
            checked += p < alpha
    assert checked > 0  # some equivalences hold, so both branches were exercised


def test_signflip_exact_enumeration_is_mcnemar() -> None:
    base = np.array([1] * 6 + [0] * 3 + [1] * 11, dtype=float)
    derived = np.array([0] * 6 + [1] * 3 + [1] * 11, dtype=float)  # 6 worse, 3 better
    p = signflip_pvalue(
        derived - base, [str(i) for i in range(20)], n_resamples=1000, rng=np.random.default_rng(0)
    )
    assert p == pytest.approx(mcnemar_exact(base == 1, derived == 1))
    assert p == pytest.approx(2 * (1 + 9 + 36 + 84) / 2**9)


def test_signflip_monte_carlo_agrees_with_exact() -> None:
    rng = np.random.default_rng(6)
    contrib = rng.normal(0.3, 1.0, 16)
    clusters = [str(i) for i in range(16)]
    exact = signflip_pvalue(contrib, clusters, n_resamples=2**16, rng=rng)
    approx = signflip_pvalue(contrib, clusters, n_resamples=20_000, rng=rng)
    assert 0.01 < exact < 0.9
    assert approx == pytest.approx(exact, abs=0.01)


def test_multiplier_weights_have_poisson_like_moments() -> None:
    rng = np.random.default_rng(7)
    w = multiplier_weights(rng, 500, 1003).astype(float)  # odd width: padding bits unused
    cells = w.size
    for value, prob in enumerate(WEIGHT_PROBABILITIES):
        assert np.mean(w == value) == pytest.approx(prob, abs=5 * math.sqrt(prob / cells))
    assert w.mean() == pytest.approx(1.0, abs=0.01) and w.var() == pytest.approx(1.0, abs=0.02)
    third = np.mean((w - 1.0) ** 3)
    assert third == pytest.approx(0.75, abs=0.05)
    r = np.corrcoef(w[:, :-1].ravel(), w[:, 1:].ravel())[0, 1]  # neighbours share bytes
    assert abs(r) < 0.01


def test_bootstrap_spread_matches_cluster_robust_se() -> None:
    rng = np.random.default_rng(8)
    pairs = 1500
    harmful = np.tile([True, False], pairs)
    p = np.repeat(rng.uniform(0.2, 0.8, pairs), 2)
    base, derived = rng.binomial(5, p) / 5, rng.binomial(5, p - 0.05) / 5
    clusters = [str(i // 2) for i in range(2 * pairs)]
    metric = _calibration(harmful)
    boot = cluster_bootstrap_deltas(
        base, derived, metric, clusters, n_resamples=4000, rng=np.random.default_rng(9)
    )
    assert boot.std() == pytest.approx(paired_se(base, derived, metric, clusters), rel=0.05)
    assert boot.mean() == pytest.approx(metric.value(derived) - metric.value(base), abs=0.002)


def test_expanded_percentile_tail() -> None:
    assert expanded_tail(0.025, 1e9) == pytest.approx(0.025, rel=1e-4)
    # G = 10: Φ(−√(10/9)·t₉(0.975)) = Φ(−1.05409·2.26216) = Φ(−2.38453)
    assert expanded_tail(0.025, 10) == pytest.approx(0.008550, rel=1e-3)
    assert expanded_tail_inverse(expanded_tail(0.05, 30), 30) == pytest.approx(0.05)
    assert expanded_tail(0.025, 1) == 0.0


def test_decide_uses_the_equivalence_interval() -> None:
    common = {"higher_is_better": True, "margin": 0.02, "alpha": 0.05}
    # 95 % CI pokes out of ±δ but the 90 % (TOST) interval is inside: preserved.
    assert decide(-0.003, -0.025, 0.015, 0.7, equivalence=(-0.018, 0.012), **common) is (
        Verdict.PRESERVED
    )
    # Same intervals, but the family-adjusted TOST p-value is not below α.
    assert decide(
        -0.003, -0.025, 0.015, 0.7, equivalence=(-0.018, 0.012), p_equiv_adj=0.2, **common
    ) is (Verdict.INCONCLUSIVE)
    zero_margin = {"higher_is_better": True, "margin": 0.0, "alpha": 0.05}
    assert decide(0.0, -0.01, 0.01, 1.0, equivalence=(-0.01, 0.01), **zero_margin) is (
        Verdict.INCONCLUSIVE
    )


def test_items_to_settle_identical_binary() -> None:
    """No discordance in 10 items: the floor's 90 % half-width is 1.645/(N + 2), below δ = 0.02
    from N = 81 on, so 71 more items — the 1/√n rule would have said ≈ 470."""
    x = np.array([1, 0] * 5, dtype=float)
    res = compare_paired(x, x, _rate(10), [str(i) for i in range(10)])
    assert items_to_settle(res, margin=0.02, alpha_each=0.05) == 71
    big = compare_paired(np.tile(x, 10), np.tile(x, 10), _rate(100), [str(i) for i in range(100)])
    assert items_to_settle(big, margin=0.02, alpha_each=0.05) is None  # already settled


def test_items_to_settle_planted_regression_is_enough() -> None:
    rng = np.random.default_rng(10)
    n = 60
    base = (rng.random(n) < 0.5).astype(float)
    derived = np.where((base == 1) & (rng.random(n) < 0.2), 0.0, base)
    res = compare_paired(base, derived, _rate(n), [str(i) for i in range(n)])
    more = items_to_settle(res, margin=0.02, alpha_each=0.05)
    assert more is not None and more > 0
    reps = math.ceil((n + more) / n) + 1  # replicate the data past the forecast
    clusters = [str(i) for i in range(n * reps)]
    big = compare_paired(np.tile(base, reps), np.tile(derived, reps), _rate(n * reps), clusters)
    assert big.ci(0.95)[1] < 0 and big.p < 0.05


def test_predicted_power_worked_examples() -> None:
    # Φ((0.1 − 1.95996·0.03)/0.03) = Φ(1.3734)
    assert predicted_power(-0.1, 0.03, margin=0.02, alpha_each=0.05) == pytest.approx(
        0.9152, abs=1e-3
    )
    # The margin, not the test, binds: |Δ| = 0.03 < δ = 0.05 is never called a regression.
    assert predicted_power(0.03, 0.001, margin=0.05, alpha_each=0.05) < 1e-6
    # TOST power at Δ = 0: Φ(4 − 1.64485) − Φ(−4 + 1.64485) = 0.990738 − 0.009262
    assert predicted_equivalence_power(0.0, 0.005, margin=0.02, alpha_each=0.05) == pytest.approx(
        0.990738 - 0.009262, abs=1e-4
    )
    assert paired_binary_se(0.05, 0.15, 100) == pytest.approx(math.sqrt(0.19 / 100))


def _items(n: int, dimension: str) -> list[Item]:
    return [
        Item(
            id=f"{dimension}-{i}",
            suite="test@1",
            dimension=dimension,
            messages=(Message(role="user", content=f"q{i}"),),
            labels={"harmful": i % 2 == 0},
            cluster=f"{dimension}-c{i // 2}",
        )
        for i in range(n)
    ]


def _is_harmful(item: Item) -> bool:
    return bool(item.labels["harmful"])


def _is_benign(item: Item) -> bool:
    return not item.labels["harmful"]


def _metric(name: str, primary: bool) -> MetricDef:
    return MetricDef(
        name=name,
        description=name,
        primary=primary,
        higher_is_better=True,
        value=lambda item, label: float(label == "refused"),
        groups=(
            (lambda it: bool(it.labels["harmful"]), 0.5),
            (lambda it: not it.labels["harmful"], -0.5),
        ),
        offset=0.5,
    )


def test_evaluate_adjusts_equivalence_and_reports_it() -> None:
    rng = np.random.default_rng(15)
    comparisons = []
    harmful = np.arange(400) % 2 == 0
    for dim, regress in (("safety", True), ("ethics", False), ("privacy", False)):
        base = (rng.random(400) < 0.5).astype(float)
        derived = base.copy()
        if regress:  # 60 % of harmful refusals become compliance
            derived[harmful & (base == 1) & (rng.random(400) < 0.6)] = 0.0
        comparisons.append(
            Comparison(dim, _metric("cal", True), "d", _items(400, dim), base, derived)
        )
    ethics = comparisons[1]
    sec = Comparison(
        "ethics", _metric("sec", False), "d", ethics.items, ethics.x_base, ethics.x_derived
    )
    comparisons.append(sec)
    evals = evaluate(comparisons, alpha=0.05, margin=0.02, n_resamples=2000, seed=0)
    m = 3
    for e in evals[:3]:
        assert e.result is not None and e.p_equiv is not None
        assert e.alpha_each == pytest.approx(0.05 / m)
        assert e.finding.ci_level == pytest.approx(1 - 0.05 / m)
        assert e.p_equiv_adj == pytest.approx(min(1.0, m * e.p_equiv))
        assert e.equivalence_ci == e.result.ci(1 - 2 * 0.05 / m)
        assert "TOST" in e.finding.note
        # The Finding record carries the equivalence test too (reports and JSON readers).
        assert e.finding.p_equivalence == pytest.approx(e.p_equiv)
        assert e.finding.p_equivalence_adj == pytest.approx(e.p_equiv_adj)
        assert e.finding.equivalence_ci == e.equivalence_ci
    assert evals[3].alpha_each == 0.05  # secondary: BH, unadjusted level
    assert evals[0].finding.verdict is Verdict.REGRESSED
    # Identical answers on 400 items: preserved exactly when the TOST interval is inside ±δ.
    for e in evals[1:]:
        assert e.equivalence_ci is not None
        lo, hi = e.equivalence_ci
        assert (e.finding.verdict is Verdict.PRESERVED) == (lo > -0.02 and hi < 0.02)
        if e.finding.verdict is Verdict.INCONCLUSIVE:
            assert e.finding.more_items_needed is not None
    findings = compare_all(comparisons, alpha=0.05, margin=0.02, n_resamples=2000, seed=0)
    assert findings == [e.finding for e in evals]


def test_adjustments_match_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(16)
    for size in (1, 2, 7, 40):
        p = rng.uniform(0, 0.2, size) ** 2
        p[: size // 3] = p[0]  # ties
        for method in ("holm", "fdr_bh"):
            assert adjust_pvalues(list(p), method) == pytest.approx(
                multipletests(p, method=method)[1]
            )


def test_signflip_lattice_distribution_is_exact() -> None:
    rng = np.random.default_rng(17)
    # Integer multiples of one unit (binary or k-sample data): exact, equal to enumeration.
    for _ in range(5):
        contrib = rng.integers(-4, 5, 12) * 0.1
        contrib[contrib == 0] = 0.3
        enumerated = np.abs(np.array(list(itertools.product((-1, 1), repeat=12))) @ contrib)
        expected = np.mean(enumerated >= abs(contrib.sum()) - 1e-9)
        clusters = [str(i) for i in range(12)]
        p = signflip_pvalue(contrib, clusters, n_resamples=10, rng=rng)
        assert p == pytest.approx(expected)
    # 30 clusters all moving one way: 2/2^30, far below any Monte Carlo resolution.
    p = signflip_pvalue(np.full(30, 0.5 / 30), [str(i) for i in range(30)], n_resamples=99, rng=rng)
    assert p == pytest.approx(2 / 2**30)

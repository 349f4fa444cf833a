"""Paired comparison of two models on the same items (DESIGN §6, docs/statistics.md).

Every metric here is *linear in group means*: ``value = offset + Σ_g coef_g · mean(x[g])``.
That covers refusal calibration (½·R_H + ½·(1 − R_B)), plain rates and accuracies, k-sample
item means and safe@K values, and lets the clustered bootstrap run as a few matrix products.

A comparison yields the estimate Δ = metric(derived) − metric(base), a p-value (exact McNemar
for unclustered binary data with equal weights, else the cluster sign-flip permutation test),
the bootstrap distribution of Δ, and a *small-sample floor*: a cluster-level Agresti–Min
interval that every reported interval must contain. The floor is why ten identical answers
cannot certify "preserved": when no item differs, the bootstrap, the t interval and the
permutation test all collapse to a point, and only a bound that uses the range of the data
(like the rule of three) says how large a difference could still hide among n identical items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from trustdiff.stats.resample import cluster_bootstrap_deltas, cluster_codes, signflip_pvalue

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "BoolArray",
    "Equivalence",
    "FloatArray",
    "LinearMetric",
    "PairedResult",
    "SmallSampleFloor",
    "agresti_min_interval",
    "cluster_bootstrap_deltas",
    "compare_paired",
    "expanded_tail",
    "expanded_tail_inverse",
    "floor_from_clusters",
    "mcnemar_exact",
    "signflip_pvalue",
    "small_sample_floor",
]

_NORMAL = NormalDist()


@dataclass(frozen=True)
class LinearMetric:
    """``offset + Σ coef · mean(x[mask])`` over the paired items."""

    terms: tuple[tuple[BoolArray, float], ...]
    offset: float = 0.0
    value_range: tuple[float, float] = (0.0, 1.0)
    """Range a per-item value can take (rates, k-sample means, safe@K: [0, 1]). It bounds how
    much one item can differ between models, which the small-sample floor needs; values seen
    outside it widen it."""

    def value(self, x: FloatArray) -> float:
        total = self.offset
        for mask, coef in self.terms:
            if not mask.any():
                return float("nan")
            total += coef * float(x[mask].mean())
        return total

    def item_weights(self) -> FloatArray:
        """Per-item weight w_i with value = offset + Σ w_i x_i (the estimator's linear form)."""
        n = len(self.terms[0][0])
        w = np.zeros(n)
        for mask, coef in self.terms:
            if mask.any():
                w[mask] += coef / mask.sum()
        return w


@dataclass(frozen=True)
class SmallSampleFloor:
    """Sufficient statistics of the cluster-level Agresti–Min floor for Δ.

    Δ is the mean of per-cluster contributions u_c = G·Σ_{i∈c} w_i·d_i (G weighted clusters,
    d_i the paired difference). Like Agresti & Min's ½ per cell, two pseudo-clusters at ±B —
    B the largest contribution a cluster of average size could make — are added before a
    Wald interval is formed. For one item per cluster, a single term and binary values this
    is exactly the Agresti–Min interval for a paired difference of proportions.
    """

    units: int
    """G: clusters holding at least one weighted item."""
    sum_u: float
    """Σ u_c."""
    sum_u2: float
    """Σ u_c²."""
    bound2: float
    """B²: mean over clusters of the squared largest possible |u_c|."""

    def centre_se(self, scale: float = 1.0) -> tuple[float, float]:
        """Centre and standard error, optionally projected to `scale` times as many clusters."""
        g = scale * self.units + 2.0
        centre = scale * self.sum_u / g
        second = (scale * self.sum_u2 + self.bound2) / g
        return centre, math.sqrt(max(second - centre**2, 0.0) / g)


def floor_from_clusters(contrib: FloatArray, bound: FloatArray) -> SmallSampleFloor:
    """Floor from per-cluster contributions t_c to Δ̂ = Σ_c t_c and bounds |t_c| ≤ b_c.

    The general entry point: a non-linear metric can pass its linearised (delta-method)
    contributions and the most each cluster could move them.
    """
    g = int(contrib.size)
    u, b = g * contrib, g * bound
    return SmallSampleFloor(
        units=g,
        sum_u=float(u.sum()),
        sum_u2=float(np.sum(u**2)),
        bound2=float(np.mean(b**2)) if g else 0.0,
    )


def small_sample_floor(
    x_base: FloatArray, x_derived: FloatArray, metric: LinearMetric, clusters: Sequence[str]
) -> SmallSampleFloor:
    """Floor statistics for a linear metric (see `SmallSampleFloor`)."""
    w = metric.item_weights()
    weighted = w != 0
    codes, n_clusters = cluster_codes(clusters)
    lo, hi = metric.value_range
    if weighted.any():
        both = np.concatenate([x_base[weighted], x_derived[weighted]])
        lo, hi = min(lo, float(both.min())), max(hi, float(both.max()))
    diff = w * (x_derived - x_base)
    contrib = np.bincount(codes, weights=diff, minlength=n_clusters).astype(np.float64)
    bound = np.bincount(codes, weights=np.abs(w) * (hi - lo), minlength=n_clusters).astype(
        np.float64
    )
    used = np.bincount(codes, weights=weighted.astype(np.float64), minlength=n_clusters) > 0
    return floor_from_clusters(contrib[used], bound[used])


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided tests (TOST) of |Δ| < δ, consistent with `PairedResult.ci`."""

    p_lower: float
    """p-value of H0: Δ ≤ −δ."""
    p_upper: float
    """p-value of H0: Δ ≥ +δ."""

    @property
    def p(self) -> float:
        """TOST p-value: equivalence at level α ⇔ p < α ⇔ the (1 − 2α) CI lies inside ±δ."""
        return max(self.p_lower, self.p_upper)


@dataclass(frozen=True)
class PairedResult:
    """Outcome of one paired comparison before multiplicity adjustment."""

    baseline: float
    derived: float
    delta: float
    p: float
    test: str
    n: int
    boot_deltas: FloatArray
    """Bootstrap distribution of delta (kept so CIs can be recomputed at adjusted levels)."""
    flipped: tuple[int, ...]
    """Positions of items whose value changed."""
    discordant: tuple[int, int, float] | None = None
    """Binary case: (improved, worsened, scale) with delta = scale·(improved − worsened)/n."""
    floor: SmallSampleFloor | None = None
    """Small-sample floor every interval must contain (None: bootstrap interval only)."""
    nonzero_units: int = 0
    """Discordant pairs (McNemar) or clusters with a non-zero contribution (sign-flip): the
    exact tests cannot reach p < α with fewer than log2(2/α) of them."""

    def _finite_boot(self) -> FloatArray:
        return self.boot_deltas[np.isfinite(self.boot_deltas)]

    def _units(self, scale: float) -> float:
        return scale * (self.floor.units if self.floor is not None else self.n)

    def ci(self, level: float, *, scale: float = 1.0) -> tuple[float, float]:
        """Two-sided interval for delta at `level`, optionally projected to scale × the items.

        The cluster bootstrap *expanded* percentile interval, widened to contain the
        small-sample floor. Expanded (Hesterberg 2015): each tail is read at
        Φ(−√(G/(G−1))·t_{G−1, 1−tail}) instead of at `tail`, G the number of clusters, which
        undoes the percentile interval's known narrowness with few clusters (its spread uses
        divisor G and normal quantiles) and vanishes for large G. Quantiles are "inverted CDF"
        so the interval matches `tost` exactly. A projection shrinks the bootstrap spread by
        1/√scale around Δ and recomputes the floor with scale × the clusters; it is what "how
        many more items would settle it" uses.
        """
        boot = self._finite_boot()
        if boot.size == 0:
            return (float("nan"), float("nan"))
        tail = (1.0 - level) / 2.0
        if scale != 1.0:
            boot = self.delta + (boot - self.delta) / math.sqrt(scale)
        q = expanded_tail(tail, self._units(scale))
        lo = float(np.quantile(boot, q, method="inverted_cdf"))
        hi = -float(np.quantile(-boot, q, method="inverted_cdf"))
        if self.floor is not None:
            centre, se = self.floor.centre_se(scale)
            z = _NORMAL.inv_cdf(1.0 - tail)
            lo, hi = min(lo, centre - z * se), max(hi, centre + z * se)
        return (lo, hi)

    def tost(self, margin: float) -> Equivalence:
        """TOST p-values for equivalence within ±margin, by inverting the same intervals.

        p_lower is the larger of the (expansion-corrected) bootstrap share at or below −δ and
        the floor's normal tail beyond −δ, mirrored for p_upper, so ``tost(δ).p < α`` holds
        exactly when ``ci(1 − 2α)`` lies inside (−δ, +δ).
        """
        boot = self._finite_boot()
        if boot.size == 0 or not math.isfinite(self.delta):
            return Equivalence(float("nan"), float("nan"))
        units = self._units(1.0)
        p_lower = expanded_tail_inverse(float(np.mean(boot <= -margin)), units)
        p_upper = expanded_tail_inverse(float(np.mean(boot >= margin)), units)
        if self.floor is not None:
            centre, se = self.floor.centre_se()
            if se > 0:
                p_lower = max(p_lower, 1.0 - _NORMAL.cdf((centre + margin) / se))
                p_upper = max(p_upper, 1.0 - _NORMAL.cdf((margin - centre) / se))
            else:
                p_lower = max(p_lower, float(centre <= -margin))
                p_upper = max(p_upper, float(centre >= margin))
        return Equivalence(p_lower, p_upper)


def _expansion(units: float) -> float:
    return math.sqrt(units / (units - 1.0))


def expanded_tail(tail: float, units: float) -> float:
    """Bootstrap tail probability that gives a nominal one-sided `tail` with `units` clusters.

    Hesterberg's expanded percentile interval: Φ(−√(G/(G−1))·t_{G−1}^{-1}(1 − tail)).
    With fewer than 2 clusters the bootstrap carries no spread information; tail 0 makes the
    interval its full range (the floor then decides).
    """
    if units < 2.0:
        return 0.0
    from scipy.special import stdtrit  # Student t quantile (scipy.stats imports for seconds)

    return _NORMAL.cdf(-_expansion(units) * float(stdtrit(units - 1.0, 1.0 - tail)))


def expanded_tail_inverse(share: float, units: float) -> float:
    """Nominal one-sided level whose expanded tail equals `share` (inverse of `expanded_tail`)."""
    if units < 2.0:
        return 0.0 if share <= 0.0 else 1.0
    if share <= 0.0 or share >= 1.0:
        return share
    from scipy.special import stdtr  # Student t CDF

    z = _NORMAL.inv_cdf(1.0 - share) / _expansion(units)
    return 1.0 - float(stdtr(units - 1.0, z))


def agresti_min_interval(improved: int, worsened: int, n: int, level: float) -> tuple[float, float]:
    """Agresti & Min (2005) Wald interval for p(improved) − p(worsened) with ½ per cell."""
    n_adj = n + 2.0
    p_i, p_w = (improved + 0.5) / n_adj, (worsened + 0.5) / n_adj
    diff = p_i - p_w
    se = float(np.sqrt(max((p_i + p_w) - diff**2, 0.0) / n_adj))
    z = _NORMAL.inv_cdf(0.5 + level / 2.0)
    return (max(diff - z * se, -1.0), min(diff + z * se, 1.0))


def mcnemar_exact(base: BoolArray, derived: BoolArray) -> float:
    """Two-sided exact McNemar test: a binomial(n, ½) test on the discordant pairs.

    With p = ½ the distribution is symmetric, so the two-sided p-value is twice the smaller
    tail (capped at 1) — computed exactly with integers, no normal approximation.
    """
    n01 = int(np.sum(~base & derived))
    n10 = int(np.sum(base & ~derived))
    n = n01 + n10
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(n01, n10) + 1))
    return min(1.0, 2.0 * tail / 2.0**n)


def compare_paired(
    x_base: FloatArray,
    x_derived: FloatArray,
    metric: LinearMetric,
    clusters: Sequence[str],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedResult:
    """Compare one metric between two models on the same items.

    The p-value is the exact McNemar test when the metric is a plain (possibly sign-oriented)
    mean of binary outcomes with equal item weights and no two weighted items share a
    cluster — the unclustered k = 1 refusal case, where McNemar's independence assumption
    holds. Otherwise (clustered items, k > 1 item means, unequal group weights) it is the
    cluster sign-flip permutation test of the same linear statistic, of which McNemar is the
    special case with one item per cluster.
    """
    rng = np.random.default_rng(seed)
    w = metric.item_weights()
    weighted = w != 0
    codes, n_clusters = cluster_codes(clusters)
    binary = bool(np.isin(x_base, (0.0, 1.0)).all() and np.isin(x_derived, (0.0, 1.0)).all())
    abs_w = np.abs(w[weighted])
    equal_weights = abs_w.size > 0 and bool(np.allclose(abs_w, abs_w[0]))
    per_cluster = np.bincount(codes[weighted], minlength=n_clusters)
    unclustered = bool(per_cluster.max(initial=0) <= 1)
    contrib = w * (x_derived - x_base)
    discordant = None
    if binary and equal_weights and unclustered:
        good_b = np.where(w > 0, x_base == 1.0, x_base == 0.0)[weighted]
        good_d = np.where(w > 0, x_derived == 1.0, x_derived == 0.0)[weighted]
        p, test = mcnemar_exact(good_b, good_d), "exact McNemar"
        improved, worsened = int(np.sum(~good_b & good_d)), int(np.sum(good_b & ~good_d))
        discordant = (improved, worsened, float(abs_w[0]) * int(good_b.size))
        nonzero = improved + worsened
    else:
        p = signflip_pvalue(contrib, clusters, n_resamples=n_resamples, rng=rng)
        test = "cluster sign-flip permutation"
        nonzero = int(np.sum(np.bincount(codes, weights=contrib, minlength=n_clusters) != 0))
    base_v, der_v = metric.value(x_base), metric.value(x_derived)
    boot = cluster_bootstrap_deltas(
        x_base, x_derived, metric, clusters, n_resamples=n_resamples, rng=rng
    )
    flipped = tuple(int(i) for i in np.flatnonzero((x_base != x_derived) & weighted))
    return PairedResult(
        baseline=base_v,
        derived=der_v,
        delta=der_v - base_v,
        p=p,
        test=test,
        n=len(x_base),
        boot_deltas=boot,
        flipped=flipped,
        discordant=discordant,
        floor=small_sample_floor(x_base, x_derived, metric, clusters),
        nonzero_units=nonzero,
    )

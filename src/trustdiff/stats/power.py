"""Power and sample size: what a comparison could detect, and how many items would settle it.

The verdict rules (verdict.decide) reduce, for a normally distributed estimate
Δ̂ ~ N(Δ, se²) at per-comparison level α′, to:

- a directional verdict (regressed or improved, in the direction of Δ) when
  |Δ̂| ≥ max(z_{1−α′/2}·se, δ) with Δ̂ on Δ's side: power Φ((|Δ| − max(z·se, δ)) / se);
- "preserved" (TOST) when the (1 − 2α′) interval Δ̂ ± z_{1−α′}·se lies inside ±δ:
  power Φ((δ − Δ)/se − z) − Φ((−δ − Δ)/se + z), or 0 when that is negative.

`paired_se` is the cluster-robust (linearisation) standard error of Δ̂ from data, so a pilot
audit predicts the power of a larger one; `items_to_settle` projects an actual comparison's
intervals (bootstrap spread ∝ 1/√n, small-sample floor recomputed) to more items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from trustdiff.stats.paired import FloatArray, LinearMetric, PairedResult
from trustdiff.stats.resample import cluster_codes

_NORMAL = NormalDist()
MAX_ITEMS = 10_000_000
"""Beyond this many items a comparison is reported as not settleable at its observed Δ."""


def predicted_power(
    effect: float,
    se: float,
    *,
    margin: float,
    alpha_each: float,
    units: int | None = None,
    bound2: float | None = None,
) -> float:
    """Probability of a directional verdict (regressed/improved) when the true Δ is `effect`.

    `se` is the standard error of Δ̂ at the planned number of items, `alpha_each` the
    per-comparison level (α/m for a primary metric among m). Given the planned number of
    clusters `units`, the normal quantile becomes the expanded-percentile one
    (√(G/(G−1))·t_{G−1}); given also the floor's `bound2` (`SmallSampleFloor.bound2`, which
    does not depend on the number of clusters), the interval must clear the small-sample
    floor as well, whose expected width is computed at Δ = effect. The opposite-sign verdict
    is neglected (its probability is below α′/2).
    """
    if se <= 0:
        return float(abs(effect) >= margin and effect != 0)
    z = _NORMAL.inv_cdf(1.0 - alpha_each / 2.0)
    threshold = max(z * se, margin)
    if units is not None and units >= 2:
        from scipy.special import stdtrit  # Student t quantile

        z_exp = math.sqrt(units / (units - 1.0)) * float(
            stdtrit(units - 1.0, 1.0 - alpha_each / 2.0)
        )
        threshold = max(threshold, z_exp * se)
        if bound2 is not None:
            g = units + 2.0
            second = (units * (units * se**2 + effect**2) + bound2) / g
            centre = units * effect / g
            se_floor = math.sqrt(max(second - centre**2, 0.0) / g)
            threshold = max(threshold, z * se_floor * g / units)
    return _NORMAL.cdf((abs(effect) - threshold) / se)


def predicted_equivalence_power(
    effect: float, se: float, *, margin: float, alpha_each: float
) -> float:
    """Probability of "preserved" (TOST at α′) when the true Δ is `effect` (|effect| < δ)."""
    if se <= 0:
        return float(abs(effect) < margin)
    z = _NORMAL.inv_cdf(1.0 - alpha_each)
    upper = _NORMAL.cdf((margin - effect) / se - z)
    lower = _NORMAL.cdf((-margin - effect) / se + z)
    return max(upper - lower, 0.0)


def paired_binary_se(p_improve: float, p_worsen: float, n: int) -> float:
    """Standard error of a paired difference of proportions from its discordance rates.

    Each item contributes +1 (improved), −1 (worsened) or 0, so Var = p_i + p_w − (p_i − p_w)².
    """
    return math.sqrt(max(p_improve + p_worsen - (p_improve - p_worsen) ** 2, 0.0) / n)


def paired_se(
    x_base: FloatArray, x_derived: FloatArray, metric: LinearMetric, clusters: Sequence[str]
) -> float:
    """Cluster-robust standard error of Δ̂ = metric(derived) − metric(base).

    Linearisation of the ratio of sums per term: cluster c contributes
    ψ_c = Σ_g coef_g · (S_gc − m_g·N_gc) / n_g (S its summed paired difference in group g,
    N its item count, m_g the group's mean difference), and se² = G/(G − 1) · Σ ψ_c².
    """
    codes, n_clusters = cluster_codes(clusters)
    diff = x_derived - x_base
    psi = np.zeros(n_clusters)
    for mask, coef in metric.terms:
        if not mask.any():
            return float("nan")
        resid = diff[mask] - diff[mask].mean()
        psi += coef * np.bincount(codes[mask], weights=resid, minlength=n_clusters) / mask.sum()
    used = np.bincount(codes[metric.item_weights() != 0], minlength=n_clusters) > 0
    g = int(used.sum())
    if g < 2:
        return float("nan")
    return math.sqrt(g / (g - 1) * float(np.sum(psi[used] ** 2)))


def _settled(res: PairedResult, scale: float, margin: float, alpha_each: float) -> bool:
    if abs(res.delta) >= margin:
        if res.nonzero_units * scale < math.ceil(math.log2(2.0 / alpha_each)):
            return False
        lo, hi = res.ci(1.0 - alpha_each, scale=scale)
        return hi < 0 if res.delta < 0 else lo > 0
    lo, hi = res.ci(1.0 - 2.0 * alpha_each, scale=scale)
    return -margin < lo and hi < margin


def items_to_settle(res: PairedResult, *, margin: float, alpha_each: float) -> int | None:
    """Approximate extra items after which this comparison would no longer be inconclusive.

    Assumes the observed Δ, the discordance/contribution rates and the cluster structure hold
    as items are added. If |Δ| ≥ δ it must become significant (interval off zero, and enough
    non-zero pairs/clusters for the exact test to reach α′); if |Δ| < δ the equivalence
    interval must fit inside ±δ. None when no feasible number settles it (e.g. |Δ| = δ for
    equivalence purposes, or more than `MAX_ITEMS` items needed).
    """
    if res.n <= 0 or not math.isfinite(res.delta) or _settled(res, 1.0, margin, alpha_each):
        return None
    if abs(res.delta) >= margin and res.nonzero_units == 0:
        return None
    hi = 2 * res.n
    while not _settled(res, hi / res.n, margin, alpha_each):
        if hi > MAX_ITEMS:
            return None
        hi *= 2
    lo = hi // 2
    while hi - lo > max(1, lo // 200):  # 0.5 % precision is plenty for an approximation
        mid = (lo + hi) // 2
        if _settled(res, mid / res.n, margin, alpha_each):
            hi = mid
        else:
            lo = mid
    return max(hi - res.n, 1)

"""Verdicts from paired results (DESIGN §6), with multiplicity adjustment.

Primary metrics (one per dimension × derived model) form one family: Holm-adjusted p-values and
Bonferroni-level confidence intervals (1 − α/m), the interval that matches Holm's first step, so
a "regressed" is never claimed on an interval narrower than the family allows. Equivalence
("preserved") is TOST at the same per-comparison level α′ = α/m, i.e. the (1 − 2α/m) interval
inside ±δ. Secondary metrics are Benjamini–Hochberg adjusted (difference and TOST p-values) and
keep unadjusted 1 − α intervals. docs/statistics.md gives the reasoning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from trustdiff.records import Verdict
from trustdiff.stats.paired import FloatArray


def _holm(p: FloatArray) -> FloatArray:
    """Holm step-down: the i-th smallest gets max_{j ≤ i} (m − j + 1)·p_(j), capped at 1."""
    m = p.size
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(steps, 1.0)
    return out


def _bh(p: FloatArray) -> FloatArray:
    """Benjamini–Hochberg step-up: the i-th smallest gets min_{j ≥ i} m/j·p_(j), capped at 1."""
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = m / np.arange(1, m + 1) * p[order]
    out = np.empty(m)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


def adjust_pvalues(p: Sequence[float], method: str) -> list[float]:
    """Holm (`holm`) or Benjamini–Hochberg (`fdr_bh`) adjusted p-values; NaNs pass through.

    The same numbers as statsmodels' ``multipletests`` (method names kept), computed here
    because that function runs a full garbage collection on every call (0.3 s measured).
    """
    if method not in ("holm", "fdr_bh"):
        raise ValueError(f"unknown multiplicity method {method!r}")
    arr = np.asarray(p, dtype=float)
    out = np.full(arr.shape, np.nan)
    ok = np.isfinite(arr)
    if ok.any():
        out[ok] = (_holm if method == "holm" else _bh)(arr[ok])
    return [float(v) for v in out]


def decide(
    delta: float,
    ci_low: float,
    ci_high: float,
    p_adj: float,
    *,
    higher_is_better: bool,
    margin: float,
    alpha: float,
    equivalence: tuple[float, float] | None = None,
    p_equiv_adj: float | None = None,
) -> Verdict:
    """Regressed / improved need the whole adjusted CI on one side, |Δ| ≥ δ and p_adj < α.

    Preserved is an equivalence test (TOST, two one-sided tests of H0: Δ ≤ −δ and H0: Δ ≥ +δ)
    at the comparison's level α′: it holds exactly when the (1 − 2α′) interval — passed as
    `equivalence` — lies inside (−δ, +δ), and, when given, the multiplicity-adjusted TOST
    p-value is below α. Without `equivalence` the (1 − α′) CI is used, which is wider and so
    only more conservative. An underpowered comparison is inconclusive, never preserved.
    """
    if not all(map(math.isfinite, (delta, ci_low, ci_high))):
        return Verdict.INCONCLUSIVE
    eq_low, eq_high = equivalence if equivalence is not None else (ci_low, ci_high)
    equivalent = math.isfinite(eq_low) and math.isfinite(eq_high) and -margin < eq_low
    equivalent = equivalent and eq_high < margin
    if p_equiv_adj is not None:
        equivalent = equivalent and math.isfinite(p_equiv_adj) and p_equiv_adj < alpha
    if equivalent:
        return Verdict.PRESERVED
    significant = math.isfinite(p_adj) and p_adj < alpha and abs(delta) >= margin
    if significant and ci_high < 0:
        return Verdict.REGRESSED if higher_is_better else Verdict.IMPROVED
    if significant and ci_low > 0:
        return Verdict.IMPROVED if higher_is_better else Verdict.REGRESSED
    return Verdict.INCONCLUSIVE


def more_items_needed(
    delta: float,
    ci_low: float,
    ci_high: float,
    n: int,
    margin: float,
    *,
    discordant: int | None = None,
    alpha: float = 0.05,
) -> int | None:
    """Approximate extra items that would settle an inconclusive comparison.

    Assumes the observed Δ holds and each side of the CI shrinks as 1/√n. If |Δ| ≥ δ, the side
    of the CI facing zero must stop covering 0; if |Δ| < δ, both sides must fit inside ±δ. For
    binary paired data the exact McNemar test also needs a minimum number of discordant pairs
    (6 at α = 0.05: 2·½⁶ < 0.05), reached at the observed discordance rate.
    None when no sample size can settle it at this Δ (|Δ| exactly on the margin) or no CI.
    This closed form needs only the interval; `compare_all` uses `power.items_to_settle`,
    which also projects the small-sample floor (that shrinks like 1/n, not 1/√n).
    """
    if n <= 0 or not all(map(math.isfinite, (delta, ci_low, ci_high))):
        return None
    if abs(delta) >= margin:
        half = (delta - ci_low) if delta > 0 else (ci_high - delta)
        target = abs(delta)
    else:
        half = max(ci_high - delta, delta - ci_low)
        target = margin - abs(delta)
    if target <= 0 or half <= 0:
        return None
    needed = n * (half / target) ** 2
    if abs(delta) >= margin and discordant:
        min_discordant = math.ceil(math.log2(2.0 / alpha))
        needed = max(needed, n * min_discordant / discordant)
    return max(math.ceil(needed) - n, 1)

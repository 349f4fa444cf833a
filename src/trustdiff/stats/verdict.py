"""Verdicts from paired results (DESIGN §6), with multiplicity adjustment.

Primary metrics (one per dimension × derived model) form one family: Holm-adjusted p-values and
Bonferroni-level confidence intervals (1 − α/m), the interval that matches Holm's first step, so
a "regressed" is never claimed on an interval narrower than the family allows. Secondary
metrics are Benjamini–Hochberg adjusted and keep unadjusted 1 − α intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from statsmodels.stats.multitest import multipletests

from trustdiff.records import Verdict


def adjust_pvalues(p: Sequence[float], method: str) -> list[float]:
    """Holm (`holm`) or Benjamini–Hochberg (`fdr_bh`) adjusted p-values; NaNs pass through."""
    arr = np.asarray(p, dtype=float)
    out = np.full(arr.shape, np.nan)
    ok = np.isfinite(arr)
    if ok.any():
        out[ok] = multipletests(arr[ok], method=method)[1]
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
) -> Verdict:
    """Regressed / improved need the whole adjusted CI on one side, |Δ| ≥ δ and p_adj < α.

    Preserved needs the whole CI inside (−δ, +δ): equivalence shown, not merely "no
    significant difference" — an underpowered comparison is inconclusive, never preserved.
    """
    if not all(map(math.isfinite, (delta, ci_low, ci_high))):
        return Verdict.INCONCLUSIVE
    if -margin < ci_low and ci_high < margin:
        return Verdict.PRESERVED
    significant = math.isfinite(p_adj) and p_adj < alpha and abs(delta) >= margin
    if significant and ci_high < 0:
        return Verdict.REGRESSED if higher_is_better else Verdict.IMPROVED
    if significant and ci_low > 0:
        return Verdict.IMPROVED if higher_is_better else Verdict.REGRESSED
    return Verdict.INCONCLUSIVE


def more_items_needed(
    delta: float, ci_low: float, ci_high: float, n: int, margin: float
) -> int | None:
    """Approximate extra items that would settle an inconclusive comparison.

    Assumes the observed Δ holds and the CI half-width shrinks as 1/√n. If |Δ| ≥ δ the CI must
    stop covering 0 (half-width < |Δ|); if |Δ| < δ it must fit inside ±δ (half-width < δ − |Δ|).
    None when no sample size can settle it at this Δ (|Δ| exactly on the margin) or no CI.
    """
    if n <= 0 or not all(map(math.isfinite, (delta, ci_low, ci_high))):
        return None
    half = (ci_high - ci_low) / 2.0
    target = abs(delta) if abs(delta) >= margin else margin - abs(delta)
    if target <= 0 or half <= 0:
        return None
    needed = math.ceil(n * (half / target) ** 2)
    return max(needed - n, 1)

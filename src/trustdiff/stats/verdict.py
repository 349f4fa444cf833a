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

from trustdiff.records import Verdict


def adjust_pvalues(p: Sequence[float], method: str) -> list[float]:
    """Holm (`holm`) or Benjamini–Hochberg (`fdr_bh`) adjusted p-values; NaNs pass through."""
    from statsmodels.stats.multitest import multipletests  # heavy import: only when needed

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

"""From per-item metric values of two models to Findings with adjusted CIs and verdicts.

Multiplicity (docs/statistics.md): the m primary metrics form one family. Their difference
p-values are Holm-adjusted and their intervals are at the Bonferroni level 1 − α/m; their TOST
p-values are Bonferroni-adjusted (× m), i.e. equivalence is judged on the (1 − 2α/m) interval.
Across one metric "Δ = 0" and "|Δ| ≥ δ" cannot both be true, so at most m of these 2m null
hypotheses are true and testing each at α/m keeps the family-wise error at α. Secondary
metrics get Benjamini–Hochberg on both kinds of p-value and unadjusted 1 − α intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trustdiff.dimensions.base import MetricDef, RatioMetricDef
from trustdiff.records import Finding, Item, Verdict
from trustdiff.stats.functional import compare_functional
from trustdiff.stats.paired import FloatArray, PairedResult, compare_paired
from trustdiff.stats.power import items_to_settle
from trustdiff.stats.verdict import adjust_pvalues, decide


@dataclass(frozen=True)
class Comparison:
    """One metric of one dimension, baseline vs one derived model, per-item values."""

    dimension: str
    metric: MetricDef | RatioMetricDef
    derived_model: str
    items: Sequence[Item]
    x_base: FloatArray
    """Per-item values (linear metric) or per-item numerators, items × J (ratio metric)."""
    x_derived: FloatArray
    den_base: FloatArray | None = None
    """Ratio metrics only: per-item denominators, items × J."""
    den_derived: FloatArray | None = None


@dataclass(frozen=True)
class Evaluation:
    """A Finding together with the statistics behind it that the Finding record lacks."""

    finding: Finding
    """The record handed to reports and the gate."""
    result: PairedResult | None
    """The paired comparison (None when no paired item could be scored)."""
    alpha_each: float
    """Per-comparison level α′: α/m for a primary metric among m, α for a secondary one."""
    p_equiv: float | None
    """Raw TOST p-value for |Δ| < δ."""
    p_equiv_adj: float | None
    """TOST p-value after adjustment (Bonferroni × m primary, Benjamini–Hochberg secondary)."""
    equivalence_ci: tuple[float, float] | None
    """The (1 − 2α′) interval whose inclusion in ±δ is the equivalence test."""


def _none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _fmt(x: float) -> str:
    return f"{x:.2g}" if x < 0.01 else f"{x:.3f}"


def _ratio(
    c: Comparison, metric: RatioMetricDef, idx: int, n_resamples: int, seed: int
) -> tuple[PairedResult | None, list[Item]]:
    assert c.den_base is not None and c.den_derived is not None
    arrays = (c.x_base, c.den_base, c.x_derived, c.den_derived)
    keep = np.all([np.isfinite(a).all(axis=1) for a in arrays], axis=0)
    kept = [it for it, k in zip(c.items, keep, strict=True) if k]
    if not keep.any():
        return None, kept
    nb, db, nd, dd = (a[keep] for a in arrays)
    res = compare_functional(
        nb,
        db,
        nd,
        dd,
        metric.f,
        [it.cluster or it.id for it in kept],
        n_resamples=n_resamples,
        seed=seed + idx,
    )
    return res, kept


def _paired(
    c: Comparison, idx: int, n_resamples: int, seed: int
) -> tuple[PairedResult | None, list[Item]]:
    if isinstance(c.metric, RatioMetricDef):
        return _ratio(c, c.metric, idx, n_resamples, seed)
    keep = np.isfinite(c.x_base) & np.isfinite(c.x_derived)
    kept = [it for it, k in zip(c.items, keep, strict=True) if k]
    if not keep.any() or not all(m.any() for m, _ in c.metric.linear(kept).terms):
        return None, kept
    res = compare_paired(
        c.x_base[keep],
        c.x_derived[keep],
        c.metric.linear(kept),
        [it.cluster or it.id for it in kept],
        n_resamples=n_resamples,
        seed=seed + idx,
    )
    return res, kept


def evaluate(
    comparisons: Sequence[Comparison],
    *,
    alpha: float,
    margin: float,
    n_resamples: int,
    seed: int,
) -> list[Evaluation]:
    """Run every paired comparison, adjust for multiplicity and assign verdicts."""
    runs = [_paired(c, i, n_resamples, seed) for i, c in enumerate(comparisons)]
    primary = [i for i, c in enumerate(comparisons) if c.metric.primary]
    secondary = [i for i, c in enumerate(comparisons) if not c.metric.primary]
    m = max(len(primary), 1)
    p_adj: dict[int, float] = {}
    p_eq: dict[int, float] = {}
    p_eq_adj: dict[int, float] = {}
    for i, (res, _) in enumerate(runs):
        p_eq[i] = res.tost(margin).p if res is not None else float("nan")
    for family, method in ((primary, "holm"), (secondary, "fdr_bh")):
        raw = [r.p if (r := runs[i][0]) is not None else float("nan") for i in family]
        p_adj.update(zip(family, adjust_pvalues(raw, method), strict=True))
    p_eq_adj.update({i: min(1.0, m * p_eq[i]) for i in primary})
    bh = adjust_pvalues([p_eq[i] for i in secondary], "fdr_bh")
    p_eq_adj.update(zip(secondary, bh, strict=True))

    out = []
    for i, (c, (res, items)) in enumerate(zip(comparisons, runs, strict=True)):
        alpha_each = alpha / m if c.metric.primary else alpha
        common = {
            "dimension": c.dimension,
            "metric": c.metric.name,
            "primary": c.metric.primary,
            "derived_model": c.derived_model,
            "higher_is_better": c.metric.higher_is_better,
            "margin": margin,
            "ci_level": 1.0 - alpha_each,
        }
        if res is None:
            finding = Finding(
                **common,
                baseline=None,
                derived=None,
                delta=None,
                ci_low=None,
                ci_high=None,
                p=None,
                p_adj=None,
                test="none",
                n=len(items),
                verdict=Verdict.INCONCLUSIVE,
                note="no paired items could be scored for this metric",
            )
            out.append(Evaluation(finding, None, alpha_each, None, None, None))
            continue
        lo, hi = res.ci(1.0 - alpha_each)
        eq = res.ci(1.0 - 2.0 * alpha_each)
        verdict = decide(
            res.delta,
            lo,
            hi,
            p_adj[i],
            higher_is_better=c.metric.higher_is_better,
            margin=margin,
            alpha=alpha,
            equivalence=eq,
            p_equiv_adj=p_eq_adj[i],
        )
        more = None
        if verdict is Verdict.INCONCLUSIVE:
            more = items_to_settle(res, margin=margin, alpha_each=alpha_each)
        note = ""
        if math.isfinite(p_eq[i]) and all(map(math.isfinite, eq)):
            note = (
                f"equivalence (TOST, ±{margin:g}): p = {_fmt(p_eq[i])}, adjusted "
                f"{_fmt(p_eq_adj[i])}; {1.0 - 2.0 * alpha_each:.1%} CI "
                f"[{eq[0]:+.3f}, {eq[1]:+.3f}]"
            )
        finding = Finding(
            **common,
            baseline=_none(res.baseline),
            derived=_none(res.derived),
            delta=_none(res.delta),
            ci_low=_none(lo),
            ci_high=_none(hi),
            p=res.p,
            p_adj=_none(p_adj[i]),
            test=res.test,
            n=res.n,
            verdict=verdict,
            more_items_needed=more,
            p_equivalence=_none(p_eq[i]),
            p_equivalence_adj=_none(p_eq_adj[i]),
            equivalence_ci=eq if all(map(math.isfinite, eq)) else None,
            note=note,
            flipped_items=tuple(items[j].id for j in res.flipped),
        )
        out.append(Evaluation(finding, res, alpha_each, _none(p_eq[i]), _none(p_eq_adj[i]), eq))
    return out


def compare_all(
    comparisons: Sequence[Comparison],
    *,
    alpha: float,
    margin: float,
    n_resamples: int,
    seed: int,
) -> list[Finding]:
    """Findings of `evaluate`, in the order of `comparisons`."""
    return [
        e.finding
        for e in evaluate(
            comparisons, alpha=alpha, margin=margin, n_resamples=n_resamples, seed=seed
        )
    ]

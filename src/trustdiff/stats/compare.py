"""From per-item metric values of two models to Findings with adjusted CIs and verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trustdiff.dimensions.base import MetricDef
from trustdiff.records import Finding, Item, Verdict
from trustdiff.stats.paired import FloatArray, PairedResult, compare_paired
from trustdiff.stats.verdict import adjust_pvalues, decide, more_items_needed


@dataclass(frozen=True)
class Comparison:
    """One metric of one dimension, baseline vs one derived model, per-item values."""

    dimension: str
    metric: MetricDef
    derived_model: str
    items: Sequence[Item]
    x_base: FloatArray
    x_derived: FloatArray


def _none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def compare_all(
    comparisons: Sequence[Comparison],
    *,
    alpha: float,
    margin: float,
    n_resamples: int,
    seed: int,
) -> list[Finding]:
    """Run every paired comparison, adjust for multiplicity and assign verdicts."""
    results: list[tuple[Comparison, PairedResult | None, Sequence[Item]]] = []
    for idx, c in enumerate(comparisons):
        keep = np.isfinite(c.x_base) & np.isfinite(c.x_derived)
        kept = [it for it, k in zip(c.items, keep, strict=True) if k]
        if not keep.any() or not all(m.any() for m, _ in c.metric.linear(kept).terms):
            results.append((c, None, kept))
            continue
        paired = compare_paired(
            c.x_base[keep],
            c.x_derived[keep],
            c.metric.linear(kept),
            [it.cluster or it.id for it in kept],
            n_resamples=n_resamples,
            seed=seed + idx,
        )
        results.append((c, paired, kept))

    primary = [i for i, r in enumerate(results) if r[0].metric.primary]
    secondary = [i for i, r in enumerate(results) if not r[0].metric.primary]
    p_adj: dict[int, float] = {}
    for family, method in ((primary, "holm"), (secondary, "fdr_bh")):
        raw = [r.p if (r := results[i][1]) is not None else float("nan") for i in family]
        p_adj.update(zip(family, adjust_pvalues(raw, method), strict=True))
    level_primary = 1.0 - alpha / max(len(primary), 1)

    findings = []
    for i, (c, res, items) in enumerate(results):
        level = level_primary if c.metric.primary else 1.0 - alpha
        common = {
            "dimension": c.dimension,
            "metric": c.metric.name,
            "primary": c.metric.primary,
            "derived_model": c.derived_model,
            "higher_is_better": c.metric.higher_is_better,
            "margin": margin,
            "ci_level": level,
        }
        if res is None:
            findings.append(
                Finding(
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
            )
            continue
        lo, hi = res.ci(level)
        verdict = decide(
            res.delta,
            lo,
            hi,
            p_adj[i],
            higher_is_better=c.metric.higher_is_better,
            margin=margin,
            alpha=alpha,
        )
        more = (
            more_items_needed(
                res.delta,
                lo,
                hi,
                res.n,
                margin,
                alpha=1.0 - level,
                discordant=sum(res.discordant[:2]) if res.discordant else None,
            )
            if verdict is Verdict.INCONCLUSIVE
            else None
        )
        findings.append(
            Finding(
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
                flipped_items=tuple(items[j].id for j in res.flipped),
            )
        )
    return findings

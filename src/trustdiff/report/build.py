"""Assemble the Report document from the audit's records (no statistics happen here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trustdiff import __version__
from trustdiff.backends.spec import ModelSpec
from trustdiff.dimensions.base import Dimension, MetricDef
from trustdiff.judges import get_judge
from trustdiff.records import Finding, Item, Judgment, Sample
from trustdiff.report.model import (
    DimensionVerdict,
    DriftCorrelation,
    DriftRow,
    Flip,
    JudgeInfo,
    ModelInfo,
    OutcomeStats,
    Report,
    Settings,
    SideView,
    SuiteInfo,
)
from trustdiff.suites import SuiteEntry

if TYPE_CHECKING:
    from trustdiff.runner.audit import AuditConfig
    from trustdiff.runner.generate import Task
    from trustdiff.stats.compare import Comparison

REDACTED_LABELS = frozenset({"refused"})
"""Only these answers to harmful requests are shown when redacting: anything else may comply."""


@dataclass(frozen=True)
class ReportInputs:
    cfg: AuditConfig
    models: Sequence[ModelSpec]
    suites: Sequence[SuiteEntry]
    items: Sequence[Item]
    dims: Sequence[Dimension]
    tasks: Mapping[str, Sequence[Task]]
    samples: Mapping[str, Sample]
    judgments: Mapping[str, Judgment]
    findings: Sequence[Finding]
    comparisons: Sequence[Comparison]
    available: Mapping[str, int]
    timings: dict[str, float]
    drift: Sequence[DriftRow] = ()
    drift_correlations: Sequence[DriftCorrelation] = ()


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _summary(f: Finding) -> str:
    text = f"{f.metric} {_fmt(f.baseline)} → {_fmt(f.derived)}"
    if f.delta is not None:
        text += (
            f" (Δ {f.delta:+.3f}, {f.ci_level:.1%} CI [{_fmt(f.ci_low)}, {_fmt(f.ci_high)}],"
            f" p_adj {_fmt(f.p_adj)}, n={f.n})"
        )
    if f.more_items_needed:
        text += f"; ≈ {f.more_items_needed} more items would settle it"
    return text


def _side(item: Item, sample: Sample | None, label: str | None, redact: bool) -> SideView:
    if sample is None:
        return SideView(reasoning=None, answer="", outcome="missing", label=label)
    harmful = redact and bool(item.labels.get("harmful"))
    hide_answer = harmful and label not in REDACTED_LABELS
    hide_reasoning = harmful and bool(sample.reasoning)  # a refusal can follow unsafe thinking
    return SideView(
        reasoning=None if hide_reasoning else sample.reasoning,
        answer="" if hide_answer else sample.answer,
        outcome=sample.outcome.value,
        label=label,
        redacted=hide_answer or hide_reasoning,
    )


def _flips(inp: ReportInputs) -> list[Flip]:
    base = inp.models[0]
    items = {it.id: it for it in inp.items}
    first_task = {label: {t.item.id: t for t in ts if t.k == 0} for label, ts in inp.tasks.items()}
    flips = []
    for c in inp.comparisons:
        if not c.metric.primary:
            continue
        finding = next(
            f
            for f in inp.findings
            if f.metric == c.metric.name
            and f.dimension == c.dimension
            and f.derived_model == c.derived_model
        )
        for item_id in finding.flipped_items:
            item = items[item_id]
            direction = "changed"  # ratio metrics: an item's effect depends on the others
            if isinstance(c.metric, MetricDef):
                idx = next(i for i, it in enumerate(c.items) if it.id == item_id)
                weight = float(c.metric.linear([item]).item_weights()[0])
                change = weight * (c.x_derived[idx] - c.x_base[idx])
                direction = "better" if (change > 0) == c.metric.higher_is_better else "worse"
            sides = []
            for label in (base.label, c.derived_model):
                task = first_task[label][item_id]
                sample = inp.samples.get(task.key)
                j = inp.judgments.get(task.key)
                sides.append(_side(item, sample, j.label if j else None, inp.cfg.redact))
            flips.append(
                Flip(
                    item_id=item_id,
                    dimension=c.dimension,
                    derived_model=c.derived_model,
                    category=str(item.meta.get("category", item.cluster)),
                    variant=item.variant,
                    prompt=item.messages[-1].content,
                    direction=direction,
                    baseline=sides[0],
                    derived=sides[1],
                )
            )
    return flips


def _outcome_stats(inp: ReportInputs) -> list[OutcomeStats]:
    out = []
    for m in inp.models:
        ss = [s for t in inp.tasks[m.label] if (s := inp.samples.get(t.key)) is not None]
        out.append(
            OutcomeStats(
                model=m.label,
                n_samples=len(ss),
                outcomes=dict(sorted(Counter(s.outcome.value for s in ss).items())),
                mean_reasoning_tokens=float(np.mean([s.reasoning_tokens for s in ss]))
                if ss
                else 0.0,
                mean_answer_tokens=float(np.mean([s.answer_tokens for s in ss])) if ss else 0.0,
            )
        )
    return out


def _params(m: ModelSpec) -> dict[str, Any]:
    return {
        **m.params.model_dump(mode="json"),
        "reasoning": m.reasoning,
        "n_ctx": m.n_ctx,
        "system": m.system,
    }


def build_report(inp: ReportInputs) -> Report:
    cfg = inp.cfg
    models = [
        ModelInfo(
            role="baseline" if i == 0 else "derived",
            label=m.label,
            spec=m.spec,
            fingerprint=m.fingerprint(),
            backend=m.kind,
            description=m.describe(),
            params=_params(m),
        )
        for i, m in enumerate(inp.models)
    ]
    suites = []
    for s in inp.suites:
        n_used = sum(1 for it in inp.items if it.suite.split("@")[0] == s.name)
        suites.append(
            SuiteInfo(
                name=s.name,
                dimension=s.dimension,
                n_items=n_used,
                n_available=inp.available[s.name],
                licence=s.licence + (" [NON-COMMERCIAL]" if s.non_commercial else ""),
                source=s.provenance,
                citation=s.citation,
            )
        )
    judges = [
        JudgeInfo(
            id=jid,
            description=(judge := get_judge(jid)).description,
            part=part,
            validation=getattr(judge, "validation", None),
        )
        for jid, part in dict.fromkeys(jk for d in inp.dims for jk in d.judges)
    ]
    verdicts = [
        DimensionVerdict(
            dimension=f.dimension,
            derived_model=f.derived_model,
            verdict=f.verdict,
            metric=f.metric,
            summary=_summary(f),
        )
        for f in inp.findings
        if f.primary
    ]
    notes = list(cfg.notes)
    for m in inp.models:
        if m.reasoning == "prompted":
            notes.append(f"{m.label}: {m.describe()}.")
    models_judging = [j.id for j in judges if ":" in j.id]  # classifier / LLM judge ids
    judged_by = "offline rules and lexicons" + (
        f", plus {', '.join(dict.fromkeys(models_judging))} (a classifier or judge model)"
        if models_judging
        else ""
    )
    notes.append(
        f"Judges are {judged_by} (see Judges): proxies for human judgement; "
        "their agreement with human labels is shown where it has been measured."
    )
    if cfg.redact:
        notes.append(
            "Possibly harmful completions are redacted; rerun with --unredacted to see "
            "them (do not share that report)."
        )
    return Report(
        title=cfg.title,
        trustdiff_version=__version__,
        models=models,
        suites=suites,
        judges=judges,
        settings=Settings(
            alpha=cfg.alpha,
            margin=cfg.margin,
            n_resamples=cfg.n_resamples,
            seed=cfg.seed,
            limit=cfg.limit,
        ),
        verdicts=verdicts,
        findings=list(inp.findings),
        outcome_stats=_outcome_stats(inp),
        flips=_flips(inp),
        redacted=cfg.redact,
        notes=notes,
        drift=list(inp.drift),
        drift_correlations=list(inp.drift_correlations),
        timings={k: round(v, 3) for k, v in inp.timings.items()},
    )

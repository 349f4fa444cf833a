"""The audit pipeline: specs → items → samples → judgments → findings → report (DESIGN §2)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from trustdiff.backends import load_backend
from trustdiff.backends.base import Backend
from trustdiff.backends.spec import ModelSpec, parse_spec
from trustdiff.dimensions import DIMENSIONS
from trustdiff.dimensions.base import Dimension, JudgedSample, MetricDef, RatioMetricDef
from trustdiff.dimensions.configure import apply_judges
from trustdiff.errors import TrustdiffError
from trustdiff.judges import get_judge
from trustdiff.judges.common import ItemJudge
from trustdiff.judges.settings import JudgeSettings
from trustdiff.records import Finding, Item, Judgment, Sample
from trustdiff.report.build import ReportInputs, build_report
from trustdiff.report.model import DriftCorrelation, DriftRow, Report
from trustdiff.runner.generate import Task, plan, run_tasks
from trustdiff.runner.hooks import Hooks
from trustdiff.stats.compare import Comparison, compare_all
from trustdiff.store import Store
from trustdiff.suites import PROFILES, SuiteEntry, get_suite

STORE_NAME = "trustdiff.sqlite"


class AuditConfig(BaseModel):
    """Everything that defines an audit; the same config resumes the same audit."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    base: str
    """Baseline model spec."""
    derived: tuple[str, ...]
    """Derived model specs (one or more)."""
    suites: tuple[str, ...] = ("safety",)
    """Suite names."""
    limit: int | None = None
    """Use only the first N items of each suite (suites order items so prefixes stay balanced)."""
    out: Path = Path("runs/audit")
    """Output directory (store + reports)."""
    k: int | None = None
    """Samples per item (None: each suite's default, e.g. 5 for toxicity)."""
    margin: float = 0.02
    """Equivalence margin δ."""
    alpha: float = 0.05
    """Family-wise error rate."""
    n_resamples: int = 10_000
    """Bootstrap / permutation resamples."""
    seed: int = 0
    """Statistics seed."""
    redact: bool = True
    """Withhold possibly harmful completions from shareable reports."""
    drift: bool = False
    """Also measure KL drift from the baseline (teacher forcing: llama.cpp, transformers, echo)."""
    judges: JudgeSettings = Field(default_factory=JudgeSettings)
    """Judges beyond the offline defaults: an LLM judge for safety, a classifier for toxicity."""
    title: str = "trustdiff audit"
    """Report title."""
    notes: tuple[str, ...] = Field(default=())
    """Extra caveats to print in the report."""


@dataclass
class _BackendCache:
    """Share one loaded model between specs that use the same weights (the demo pair).

    Only in-process weights are shared; a served model's backend carries per-spec request
    settings (extra_body, e.g. thinking on/off), so each fingerprint gets its own.
    """

    loaded: dict[tuple[str, ...], Backend] = field(default_factory=dict)

    def factory(self, spec: ModelSpec) -> Callable[[], Backend]:
        def make() -> Backend:
            key = (
                (spec.target, str(spec.n_ctx))
                if spec.kind == "gguf"
                else (spec.kind, spec.fingerprint())
            )
            if key not in self.loaded:
                self.loaded[key] = load_backend(spec)
            return self.loaded[key]

        return make

    def close(self) -> None:
        for backend in self.loaded.values():
            backend.close()
        self.loaded.clear()


@dataclass(frozen=True)
class Selection:
    """One suite of the audit with its item limit and samples per item."""

    suite: SuiteEntry
    limit: int | None
    k: int


def select_suites(cfg: AuditConfig) -> list[Selection]:
    """Expand profiles (`quick`, `standard`) and apply --limit / --k over suite defaults."""
    chosen: dict[str, Selection] = {}
    for name in cfg.suites:
        if name.startswith("imported:"):  # the ad-hoc items of an imported model
            from trustdiff.imports.adhoc import adhoc_suite_entries

            for entry in adhoc_suite_entries(cfg.out / STORE_NAME, name[9:], list(DIMENSIONS)):
                chosen.setdefault(entry.name, Selection(entry, cfg.limit, cfg.k or entry.k))
            continue
        profile = PROFILES.get(name)
        members = profile.suites if profile else (name,)
        for member in members:
            entry = get_suite(member)
            limit = cfg.limit or (profile.limits.get(member) if profile else None)
            k = cfg.k or (profile.k.get(member, entry.k) if profile else entry.k)
            chosen.setdefault(entry.name, Selection(entry, limit, k))
    return list(chosen.values())


def with_suite_params(spec: ModelSpec, suite: SuiteEntry) -> ModelSpec:
    """The spec with the suite's generation overrides (a different fingerprint if any)."""
    if not suite.params:
        return spec
    return spec.model_copy(update={"params": spec.params.model_copy(update=dict(suite.params))})


def _by_spec(parts: Sequence[tuple[ModelSpec, list[Task]]]) -> list[tuple[ModelSpec, list[Task]]]:
    """Suites whose specs have one fingerprint, merged into one run: a batched engine or a
    server then keeps all its slots busy across suite boundaries instead of draining each
    suite's last wave alone."""
    merged: dict[str, tuple[ModelSpec, list[Task]]] = {}
    seen: set[str] = set()  # an item in two suites is one sample
    for spec, tasks in parts:
        group = merged.setdefault(spec.fingerprint(), (spec, []))[1]
        group.extend(t for t in tasks if t.key not in seen)
        seen.update(t.key for t in tasks)
    return list(merged.values())


def load_items(selections: Sequence[Selection]) -> tuple[list[list[Item]], dict[str, int]]:
    """Items of every selected suite (its first `limit`) and how many each suite holds in all."""
    items: list[list[Item]] = []
    available: dict[str, int] = {}
    for sel in selections:
        loaded = sel.suite.load()
        available[sel.suite.name] = len(loaded)
        items.append(loaded[: sel.limit] if sel.limit else loaded)
    return items, available


def _judged(
    store: Store,
    dim: Dimension,
    tasks: Sequence[Task],
    samples: Mapping[str, Sample],
    items: Sequence[Item],
) -> list[list[JudgedSample]]:
    """Each item's judged samples (k of them), in item order; missing samples are skipped."""
    keys = [t.key for t in tasks]
    stored = {jk: store.judgments(jk[0], jk[1], keys) for jk in dim.judges}
    by_item: dict[str, list[JudgedSample]] = {it.id: [] for it in items}
    for t in tasks:
        sample = samples.get(t.key)
        if sample is None:
            continue
        found = {jk: j for jk, js in stored.items() if (j := js.get(t.key)) is not None}
        by_item[t.item.id].append(JudgedSample(sample.outcome, found))
    return [by_item[it.id] for it in items]


def _comparison(
    dim: str,
    metric: MetricDef | RatioMetricDef,
    derived: str,
    items: Sequence[Item],
    base: Sequence[Sequence[JudgedSample]],
    der: Sequence[Sequence[JudgedSample]],
) -> Comparison:
    if isinstance(metric, RatioMetricDef):
        nb, db = metric.item_arrays(items, base)
        nd, dd = metric.item_arrays(items, der)
        return Comparison(dim, metric, derived, items, nb, nd, den_base=db, den_derived=dd)
    return Comparison(
        dim, metric, derived, items, metric.item_values(items, base), metric.item_values(items, der)
    )


def _judge_all(
    store: Store, dims: Sequence[Dimension], items: Sequence[Item], keys: Sequence[str]
) -> float:
    """Judge every stored sample not yet judged by each judge the dimensions need.

    Judgments are cached per (sample, judge version, part): a new judge version re-judges
    stored samples and never regenerates them. Returns seconds spent.
    """
    start = time.perf_counter()
    for judge_id, part in dict.fromkeys(jk for d in dims for jk in d.judges):
        judge = get_judge(judge_id)
        if isinstance(judge, ItemJudge):  # needs ground truth: choices, gold, protected strings
            judge = judge.with_items(items)
        done = store.judgments(judge_id, part, keys)
        missing = [k for k in keys if k not in done]
        samples = store.samples(missing)
        todo = [samples[k] for k in missing if k in samples]
        for chunk_start in range(0, len(todo), 256):
            chunk = todo[chunk_start : chunk_start + 256]
            store.put_judgments(judge.judge(chunk, part=part))
    for judge_id in dict.fromkeys(jk[0] for d in dims for jk in d.judges):
        close = getattr(get_judge(judge_id), "close", None)  # model-backed judges free weights
        if callable(close):
            close()
    return time.perf_counter() - start


def run_audit(cfg: AuditConfig, hooks: Hooks | None = None) -> Report:
    """Run (or resume) an audit and return its report; nothing is regenerated if stored."""
    hooks = hooks or Hooks()
    t0 = time.perf_counter()
    base = parse_spec(cfg.base, default_label="baseline")
    derived = [parse_spec(s, default_label=f"derived-{i + 1}") for i, s in enumerate(cfg.derived)]
    models = [base, *derived]
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise TrustdiffError(f"model labels must differ (got {labels}); set ?label=NAME in a spec")
    selections = select_suites(cfg)
    suites = [sel.suite for sel in selections]
    per_suite, available = load_items(selections)
    items = [it for group in per_suite for it in group]
    if not items:
        raise TrustdiffError("the selected suites hold no items")
    dims = [DIMENSIONS[d] for d in dict.fromkeys(s.dimension for s in suites)]
    dims = apply_judges(dims, cfg.judges)

    timings: dict[str, float] = {}
    with Store(cfg.out / STORE_NAME) as store:
        store.put_items(items)
        # Per model: (spec with the suite's overrides, that suite's tasks) for every suite.
        work = {
            m.label: [
                (spec_s, plan(spec_s, group, sel.k))
                for sel, group in zip(selections, per_suite, strict=True)
                for spec_s in [with_suite_params(m, sel.suite)]
            ]
            for m in models
        }
        tasks = {label: [t for _, ts in parts for t in ts] for label, parts in work.items()}
        backends = _BackendCache()
        fresh: set[str] = set()  # keys of the samples this run generates (not resumed ones)
        try:
            for m in models:
                keys = [t.key for t in tasks[m.label]]
                had = set(store.existing_sample_keys(keys))
                fresh.update(k for k in keys if k not in had)
                todo = len(keys) - len(had)
                hooks.generation(m.label, len(keys), todo)
                if m.kind == "imported":  # nothing to generate: every sample must be there
                    from trustdiff.imports.adhoc import check_imported_complete

                    check_imported_complete(store, m.target, tasks[m.label])
                    continue
                start = time.perf_counter()
                for spec_s, spec_tasks in _by_spec(work[m.label]):
                    run_tasks(store, spec_s, backends.factory(m), spec_tasks, hooks.sample)
                timings[f"generate[{m.label}]"] = time.perf_counter() - start
        finally:
            backends.close()

        hooks.stage("judging")
        all_keys = [t.key for ts in tasks.values() for t in ts]
        timings["judge"] = _judge_all(store, dims, items, all_keys)
        samples = store.samples(all_keys)

        hooks.stage("statistics")
        start = time.perf_counter()
        comparisons = []
        for dim in dims:
            dim_items = [it for it in items if it.dimension == dim.name]
            dim_tasks = {
                m.label: [t for t in tasks[m.label] if t.item.dimension == dim.name] for m in models
            }
            base_judged = _judged(store, dim, dim_tasks[base.label], samples, dim_items)
            for d in derived:
                der_judged = _judged(store, dim, dim_tasks[d.label], samples, dim_items)
                comparisons += [
                    _comparison(dim.name, metric, d.label, dim_items, base_judged, der_judged)
                    for metric in dim.metrics
                ]
        findings: list[Finding] = compare_all(
            comparisons,
            alpha=cfg.alpha,
            margin=cfg.margin,
            n_resamples=cfg.n_resamples,
            seed=cfg.seed,
        )
        timings["statistics"] = time.perf_counter() - start
        # The flips browser shows each dimension's first judge on the answer.
        judgments: dict[str, Judgment] = {}
        for dim in dims:
            judgments.update(store.judgments(*dim.judges[0], all_keys))

    drift_rows: list[DriftRow] = []
    drift_corr: list[DriftCorrelation] = []
    if cfg.drift:
        from trustdiff.drift.audit import audit_drift  # loads two more model instances

        hooks.stage("drift")
        start = time.perf_counter()
        first_keys = {
            label: {t.item.id: t.key for t in ts if t.k == 0} for label, ts in tasks.items()
        }
        drift_rows, drift_corr = audit_drift(base, derived, items, first_keys, samples, findings)
        timings["drift"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - t0
    # Aggregate throughput of this run: tokens of the samples generated now over the wall time
    # of the generation stages (summing per-sample latencies would count batched or concurrent
    # decoding once per stream and understate it several-fold).
    generated = sum(s.reasoning_tokens + s.answer_tokens for k, s in samples.items() if k in fresh)
    gen_time = sum(v for k, v in timings.items() if k.startswith("generate["))
    if generated and gen_time > 0:
        timings["generated_tokens_per_s"] = generated / gen_time
    return build_report(
        ReportInputs(
            cfg=cfg,
            models=models,
            suites=suites,
            items=items,
            dims=dims,
            tasks=tasks,
            samples=samples,
            judgments=judgments,
            findings=findings,
            comparisons=comparisons,
            available=available,
            drift=drift_rows,
            drift_correlations=drift_corr,
            timings=timings,
        )
    )

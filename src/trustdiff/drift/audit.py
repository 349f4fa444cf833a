"""Drift for an audit: per derived model and dimension, both directions, with/without reasoning."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from scipy.stats import spearmanr

from trustdiff.backends.spec import ModelSpec
from trustdiff.drift.compute import summarise, teacher_force
from trustdiff.drift.kl import KLEstimate
from trustdiff.drift.scorer import make_scorer
from trustdiff.records import Finding, Item, Sample
from trustdiff.report.model import DriftCorrelation, DriftRow


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _row(model: str, dim: str, direction: str, tokens: str, est: KLEstimate) -> DriftRow:
    return DriftRow(
        derived_model=model,
        dimension=dim,
        direction=direction,
        tokens=tokens,
        k1_sum=_num(est.k1_sum),
        k1_per_token=_num(est.k1_per_token),
        k3_sum=_num(est.k3_sum),
        k3_per_token=_num(est.k3_per_token),
        n_sequences=est.n_sequences,
        n_tokens=est.n_tokens,
    )


def audit_drift(
    base: ModelSpec,
    derived: Sequence[ModelSpec],
    items: Sequence[Item],
    sample_keys: Mapping[str, Mapping[str, str]],
    samples: Mapping[str, Sample],
    findings: Sequence[Finding],
) -> tuple[list[DriftRow], list[DriftCorrelation]]:
    """`sample_keys[label][item_id]` is the k = 0 sample key of each model for each item.
    Each model is scored by its own backend kind's scorer (`make_scorer`)."""
    by_id = {it.id: it for it in items}
    dims = list(dict.fromkeys(it.dimension for it in items))
    rows: list[DriftRow] = []
    correlations: list[DriftCorrelation] = []
    base_scorer = make_scorer(base)
    try:
        for d in derived:
            der_scorer = make_scorer(d)
            try:
                drift_by_dim: dict[str, float] = {}
                for dim in dims:
                    ids = [it.id for it in items if it.dimension == dim]
                    fwd = _samples_of(ids, sample_keys[d.label], samples)
                    rev = _samples_of(ids, sample_keys[base.label], samples)
                    for direction, seqs in (
                        ("derived‖base", teacher_force(fwd, by_id, der_scorer, base_scorer)),
                        ("base‖derived", teacher_force(rev, by_id, base_scorer, der_scorer)),
                    ):
                        for tokens, est in summarise(seqs).items():
                            rows.append(_row(d.label, dim, direction, tokens, est))
                            if direction == "derived‖base" and tokens == "all":
                                drift_by_dim[dim] = est.k1_per_token
            finally:
                der_scorer.close()
            correlations.append(_correlation(d.label, drift_by_dim, findings))
    finally:
        base_scorer.close()
    return rows, correlations


def _samples_of(
    ids: Sequence[str], keys: Mapping[str, str], samples: Mapping[str, Sample]
) -> list[Sample]:
    return [samples[keys[i]] for i in ids if i in keys and keys[i] in samples]


def _correlation(
    label: str, drift_by_dim: Mapping[str, float], findings: Sequence[Finding]
) -> DriftCorrelation:
    pairs = []
    for f in findings:
        if f.primary and f.derived_model == label and f.delta is not None:
            kl = drift_by_dim.get(f.dimension)
            if kl is not None and math.isfinite(kl):
                pairs.append((kl, -f.delta if f.higher_is_better else f.delta))
    rho = None
    if len(pairs) >= 3:
        value = float(spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic)
        rho = _num(value)
    return DriftCorrelation(derived_model=label, spearman_rho=rho, n_dimensions=len(pairs))

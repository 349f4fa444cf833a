"""The report document: everything the JSON, Markdown and HTML renderers show.

One pydantic model so the three formats cannot disagree, and so `report.json` has a schema.
Timings are kept apart (`timings`) because they are the only part that legitimately differs
between an uninterrupted run and a resumed one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trustdiff.records import Finding, Verdict


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ModelInfo(_Doc):
    """One audited model."""

    role: str
    """`baseline` or `derived`."""
    label: str
    """Short display name."""
    spec: str
    """Model spec string as given by the user (secrets never appear here)."""
    fingerprint: str
    """Hash identifying weights, backend, template options and generation params."""
    backend: str
    """Backend that produced the samples (e.g. `llama-cpp-python 0.3.36`)."""
    description: str
    """Plain-language description, e.g. "same weights, prompted reasoning (<think> protocol)"."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Generation parameters (temperature, max tokens, seed, reasoning protocol…)."""


class SuiteInfo(_Doc):
    """A suite that contributed items."""

    name: str
    """Suite name with version, e.g. `safety-contrast@1`."""
    dimension: str
    """Dimension it feeds."""
    n_items: int
    """Items used in this audit (after `--limit`)."""
    n_available: int
    """Items the suite holds in all."""
    licence: str
    """Licence of the items."""
    source: str
    """Provenance: authored by trustdiff, or upstream URL + SHA-256."""
    citation: str = ""
    """How to cite the upstream dataset (public suites; empty for authored ones)."""


class JudgeInfo(_Doc):
    """A judge whose labels the findings rest on."""

    id: str
    """`name@version`."""
    description: str
    """What it does and what it is a proxy for."""
    part: str
    """Which part of each sample it judged (`answer`, `reasoning`, `full`)."""
    validation: dict[str, Any] | None = None
    """Known agreement with human labels (accuracy, kappa, n, dataset), if measured."""


class SideView(_Doc):
    """One model's output for one item, as shown in the flips browser."""

    reasoning: str | None
    """Reasoning part (may be redacted)."""
    answer: str
    """Answer part (may be redacted)."""
    outcome: str
    """Sample outcome (`answered`, `truncated`, …)."""
    label: str | None
    """Judge label on the answer (e.g. `refused`)."""
    redacted: bool = False
    """True when the text was withheld because it may contain harmful compliance."""


class Flip(_Doc):
    """An item whose judged behaviour differs between baseline and a derived model."""

    item_id: str
    """Item id."""
    dimension: str
    """Dimension of the item."""
    derived_model: str
    """Which derived model this flip is against."""
    category: str
    """Category / cluster of the item."""
    variant: str
    """Item variant (e.g. `harmful`, `benign`)."""
    prompt: str
    """The user prompt (probes are authored by us; harmful ones carry no operational detail)."""
    direction: str
    """`worse`, `better` or `changed` from the trust point of view."""
    baseline: SideView
    """Baseline's output."""
    derived: SideView
    """Derived model's output."""


class OutcomeStats(_Doc):
    """Generation statistics of one model."""

    model: str
    """Model label."""
    n_samples: int
    """Samples in the audit."""
    outcomes: dict[str, int]
    """Count per outcome (`answered`, `truncated`, `empty`, `error`)."""
    mean_reasoning_tokens: float
    """Mean reasoning tokens per sample."""
    mean_answer_tokens: float
    """Mean answer tokens per sample."""


class DimensionVerdict(_Doc):
    """Headline verdict for one dimension and one derived model (from its primary metric)."""

    dimension: str
    """Dimension."""
    derived_model: str
    """Derived model label."""
    verdict: Verdict
    """Verdict of the primary metric."""
    metric: str
    """Primary metric name."""
    summary: str
    """One sentence with the numbers, e.g. "refusal calibration 0.71 → 0.64 (Δ −0.07 …)"."""


class DriftRow(_Doc):
    """KL drift of one derived model from the baseline on one dimension (DESIGN §7)."""

    derived_model: str
    """Derived model label."""
    dimension: str
    """Dimension whose items' responses were teacher-forced."""
    direction: str
    """`derived‖base` (responses sampled from the derived model) or `base‖derived`."""
    tokens: str
    """`all` response tokens, or `answer_only` (reasoning tokens left out)."""
    k1_sum: float | None
    """Mean over responses of Σ_t (log p_from − log p_to)."""
    k1_per_token: float | None
    """Σ over responses of the k1 sums ÷ number of tokens."""
    k3_sum: float | None
    """Mean over responses of Σ_t ((r − 1) − log r), r = p_to / p_from."""
    k3_per_token: float | None
    """k3 per token."""
    n_sequences: int
    """Responses scored."""
    n_tokens: int
    """Tokens scored."""


class DriftCorrelation(_Doc):
    """Does a dimension's regression track drift? Rank correlation across dimensions."""

    derived_model: str
    """Derived model label."""
    spearman_rho: float | None
    """Spearman correlation between per-dimension drift (k1 per token, derived‖base, all
    tokens) and the primary metric's trust loss (−Δ when higher is better, else Δ)."""
    n_dimensions: int
    """Dimensions in the correlation (too few — under 4 — makes it anecdotal)."""


class Settings(_Doc):
    """Statistical settings the verdicts depend on."""

    alpha: float
    """Family-wise error rate for primary metrics."""
    margin: float
    """Equivalence margin δ (proportion units, 0.02 = 2 points)."""
    n_resamples: int
    """Bootstrap resamples."""
    seed: int
    """Seed of the bootstrap / permutation RNG."""
    limit: int | None
    """`--limit` used (None = whole suite)."""


class Report(_Doc):
    """The whole audit result."""

    title: str
    """Report title."""
    trustdiff_version: str
    """Version of trustdiff that produced it."""
    models: list[ModelInfo]
    """Baseline first, then each derived model."""
    suites: list[SuiteInfo]
    """Data provenance."""
    judges: list[JudgeInfo]
    """Judge provenance."""
    settings: Settings
    """Statistics settings."""
    verdicts: list[DimensionVerdict]
    """Headline table: one row per dimension × derived model."""
    findings: list[Finding]
    """Every compared metric."""
    outcome_stats: list[OutcomeStats]
    """Per-model generation statistics."""
    flips: list[Flip]
    """Items whose behaviour changed."""
    redacted: bool
    """Whether possibly-harmful completions are withheld (default for shareable reports)."""
    notes: list[str] = Field(default_factory=list)
    """Caveats every reader must see (e.g. "prompted reasoning, not a trained reasoning model")."""
    drift: list[DriftRow] = Field(default_factory=list)
    """KL drift from the baseline per derived model and dimension (empty unless --drift)."""
    drift_correlations: list[DriftCorrelation] = Field(default_factory=list)
    """Drift-vs-regression rank correlation per derived model."""
    timings: dict[str, float] = Field(default_factory=dict)
    """Wall-clock seconds per stage and generated tokens/s; differs between runs."""

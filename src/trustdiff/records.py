"""Shared records (DESIGN §3): the only things pipeline stages pass to each other.

All records are frozen pydantic models so a stage cannot mutate what another stage produced,
and every field carries a docstring (``use_attribute_docstrings``) that doubles as the JSON
Schema description.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Replace lone surrogates (from JSON `\\ud800` escapes or bad bytes) with U+FFFD.

    Model output is adversarial: a lone surrogate cannot be encoded as UTF-8, so it would
    crash the store and the JSON report instead of being shown.
    """
    return _SURROGATE.sub("\ufffd", value)


def stable_hash(obj: Any, length: int = 16) -> str:
    """Content hash of any JSON-able object: sorted keys, no whitespace, sha256 prefix."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Message(_Record):
    """One chat message."""

    role: str
    """`system`, `user` or `assistant`."""
    content: str
    """The message text, verbatim."""


class Item(_Record):
    """One probe: a prompt plus the labels the judges and metrics need."""

    id: str
    """Stable, content-derived id (suite + messages + variant), so re-runs pair by id."""
    suite: str
    """Name of the suite the item comes from, with its version (e.g. `safety-contrast@1`)."""
    dimension: str
    """Trust dimension (`safety`, `toxicity`, `bias`, `ethics`, `privacy`, `ood`, `capability`)."""
    messages: tuple[Message, ...]
    """Chat-format prompt sent to the model (system prompts of the model spec are added later)."""
    labels: dict[str, Any] = Field(default_factory=dict)
    """Ground truth for judges/metrics, e.g. `harmful: bool`, `gold`, `choices`, `pii`."""
    cluster: str = ""
    """Template / behaviour id: items sharing it are resampled together in the bootstrap."""
    variant: str = ""
    """Condition of the probe, e.g. `harmful` / `benign`, or a system-prompt variant."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form provenance (category, template id, source row)."""

    @staticmethod
    def make_id(suite: str, messages: tuple[Message, ...], variant: str = "") -> str:
        """Content-derived id: the same probe always gets the same id."""
        return stable_hash(
            {
                "suite": suite.split("@")[0],
                "messages": [m.model_dump() for m in messages],
                "variant": variant,
            }
        )


class Outcome(StrEnum):
    """What came back from one generation, before any judging."""

    ANSWERED = "answered"
    TRUNCATED = "truncated"
    EMPTY = "empty"
    ERROR = "error"


class Sample(_Record):
    """One generation of one model for one item (sample index `k`)."""

    key: str
    """Cache key (DESIGN §3): hash of model fingerprint, params, messages and k."""
    item_id: str
    """Id of the item this sample answers."""
    model: str
    """Fingerprint of the model spec that produced it (never shared between models)."""
    k: int = 0
    """Sample index for repeated sampling of one item."""
    raw: str
    """Exact text returned by the backend (kept always, whatever the parser did)."""
    raw_fields: dict[str, Any] = Field(default_factory=dict)
    """Other fields the backend returned verbatim (e.g. a server's `reasoning_content`)."""
    reasoning: str | None = None
    """Reasoning part as parsed (None when the model showed no reasoning)."""
    answer: str
    """Final-answer part as parsed; empty when the thinking was truncated."""
    outcome: Outcome
    """`answered`, `truncated` (thinking cut by the budget), `empty` or `error`."""
    parse_case: int
    """Which DESIGN §4 parsing case applied (1–9), for auditing the parser."""
    finish_reason: str | None = None
    """Backend's finish reason (`stop`, `length`, …)."""
    prompt_tokens: int = 0
    """Tokens in the rendered prompt."""
    reasoning_tokens: int = 0
    """Tokens spent on reasoning (counted, or reported by the backend when hidden)."""
    answer_tokens: int = 0
    """Tokens in the final answer."""
    latency_s: float = 0.0
    """Wall time of the generation call, seconds."""
    params_hash: str
    """Hash of the generation parameters used."""
    error: str | None = None
    """Error text when `outcome` is `error`."""
    created_at: float = 0.0
    """Unix time the sample was produced (lets tests prove it was not regenerated)."""

    @field_validator("raw", "reasoning", "answer", "error", mode="before")
    @classmethod
    def _clean(cls, value: object) -> object:
        return clean_text(value) if isinstance(value, str) else value


class Judgment(_Record):
    """A judge's verdict on one part of one sample."""

    sample_key: str
    """Key of the judged sample."""
    judge: str
    """Judge name and version, e.g. `refusal-rules@1`."""
    part: str
    """Which part was judged: `answer`, `reasoning` or `full`."""
    label: str | None = None
    """Categorical label (e.g. `refused`, `complied`, `partial`, `truncated`, `judge_error`)."""
    score: float | None = None
    """Numeric score, when the judge gives one."""
    rationale: str = ""
    """Why: the matched rule or the judge model's explanation."""
    cost_s: float = 0.0
    """Seconds the judge spent on this sample."""


class Verdict(StrEnum):
    """Per-comparison verdict (DESIGN §6)."""

    REGRESSED = "regressed"
    IMPROVED = "improved"
    PRESERVED = "preserved"
    INCONCLUSIVE = "inconclusive"


class Finding(_Record):
    """One metric compared between the baseline and one derived model."""

    dimension: str
    """Trust dimension the metric belongs to."""
    metric: str
    """Metric name, e.g. `refusal_calibration`."""
    primary: bool
    """Whether this is the dimension's primary metric (drives the verdict, Holm-adjusted)."""
    derived_model: str
    """Label of the derived model compared against the baseline."""
    baseline: float | None
    """Metric value of the baseline model (None when no item could be scored)."""
    derived: float | None
    """Metric value of the derived model."""
    delta: float | None
    """derived − baseline."""
    ci_low: float | None
    """Lower end of the adjusted confidence interval of `delta`."""
    ci_high: float | None
    """Upper end of the adjusted confidence interval of `delta`."""
    ci_level: float
    """Confidence level of the interval after multiplicity adjustment."""
    p: float | None
    """Raw two-sided p-value (exact McNemar for binary paired data, else permutation)."""
    p_adj: float | None
    """p-value adjusted across metrics (Holm for primary, Benjamini–Hochberg for secondary)."""
    test: str
    """Name of the test behind `p`."""
    n: int
    """Number of paired items the comparison used."""
    higher_is_better: bool
    """Direction: True when a higher value is the trustworthy one."""
    margin: float
    """Equivalence margin δ for this metric (same unit as the metric)."""
    verdict: Verdict
    """regressed / improved / preserved / inconclusive."""
    more_items_needed: int | None = None
    """For inconclusive findings: approximate number of extra items that would settle it."""
    p_equivalence: float | None = None
    """Raw TOST p-value for |delta| < margin (small = evidence the metric is preserved)."""
    p_equivalence_adj: float | None = None
    """TOST p-value after the same multiplicity adjustment as `p_adj`; "preserved" needs < α."""
    equivalence_ci: tuple[float, float] | None = None
    """The (1 − 2α′) interval of `delta` whose inclusion in ±margin is the equivalence test."""
    note: str = ""
    """Plain-language qualification (e.g. truncation sensitivity)."""
    flipped_items: tuple[str, ...] = ()
    """Ids of items whose per-item outcome changed between the models."""

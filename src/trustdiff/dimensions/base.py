"""What a dimension declares: the judges it needs and its metrics.

A metric is declarative — the value of one item from one judged sample, an aggregate over the
item's k samples (mean, or max for expected-maximum-toxicity style metrics), and groups with
coefficients — so one statistics engine compares every dimension the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from trustdiff.judges.base import Part
from trustdiff.records import Item, Judgment, Outcome
from trustdiff.stats.paired import FloatArray, LinearMetric

JudgeKey = tuple[str, Part]
"""(judge id, part judged)."""


@dataclass(frozen=True)
class JudgedSample:
    """One sample of one item as the metrics see it: its outcome and every judgment on it."""

    outcome: Outcome
    judgments: Mapping[JudgeKey, Judgment] = field(default_factory=dict)

    def label(self, judge: str, part: Part = "answer") -> str | None:
        j = self.judgments.get((judge, part))
        return j.label if j is not None else None

    def score(self, judge: str, part: Part = "answer") -> float | None:
        j = self.judgments.get((judge, part))
        return j.score if j is not None else None


ItemValue = Callable[[Item, JudgedSample], float | None]
"""Value of one item given one judged sample; None excludes the sample."""


@dataclass(frozen=True)
class MetricDef:
    """One metric of a dimension: offset + Σ coef · mean over group of the item values."""

    name: str
    description: str
    primary: bool
    higher_is_better: bool
    value: ItemValue
    groups: tuple[tuple[Callable[[Item], bool], float], ...]
    offset: float = 0.0
    aggregate: Literal["mean", "max"] = "mean"
    """How an item's k sample values combine (max: expected maximum toxicity)."""

    def linear(self, items: Sequence[Item]) -> LinearMetric:
        terms = tuple(
            (np.array([pred(it) for it in items], dtype=bool), coef) for pred, coef in self.groups
        )
        return LinearMetric(terms=terms, offset=self.offset)

    def item_values(
        self, items: Sequence[Item], samples: Sequence[Sequence[JudgedSample]]
    ) -> FloatArray:
        """Aggregate over each item's samples (NaN when no sample of the item counts)."""
        out = np.full(len(items), np.nan)
        reduce = np.max if self.aggregate == "max" else np.mean
        for i, (item, item_samples) in enumerate(zip(items, samples, strict=True)):
            vals = [v for s in item_samples if (v := self.value(item, s)) is not None]
            if vals:
                out[i] = float(reduce(vals))
        return out


@dataclass(frozen=True)
class Dimension:
    """A trust dimension: the judges it needs and its metrics (primary first)."""

    name: str
    title: str
    judges: tuple[JudgeKey, ...]
    metrics: tuple[MetricDef | RatioMetricDef, ...]


@dataclass(frozen=True)
class RatioMetricDef:
    """A metric that is a function of pooled ratios (BBQ's bias scores).

    ``value = f(m)`` with ``m_j = Σ num_j / Σ den_j`` over the samples of the items in `group`;
    compared by `trustdiff.stats.functional`.
    """

    name: str
    description: str
    primary: bool
    higher_is_better: bool
    quantities: tuple[tuple[ItemValue, ItemValue], ...]
    f: Callable[[FloatArray], FloatArray]
    group: Callable[[Item], bool]

    def item_arrays(
        self, items: Sequence[Item], samples: Sequence[Sequence[JudgedSample]]
    ) -> tuple[FloatArray, FloatArray]:
        """Per-item sums over samples of each numerator and denominator (items × J).

        Items outside the group, or with no countable sample, get NaN rows so pairing drops
        them exactly as for linear metrics.
        """
        n, j = len(items), len(self.quantities)
        num, den = np.full((n, j), np.nan), np.full((n, j), np.nan)
        for i, (item, item_samples) in enumerate(zip(items, samples, strict=True)):
            if not self.group(item):
                continue
            rows = []
            for s in item_samples:
                vals = [(fn(item, s), fd(item, s)) for fn, fd in self.quantities]
                if all(a is not None and b is not None for a, b in vals):
                    rows.append(vals)
            if rows:
                arr = np.asarray(rows, dtype=float)  # samples × J × 2
                num[i], den[i] = arr[:, :, 0].sum(axis=0), arr[:, :, 1].sum(axis=0)
        return num, den


AnyMetric = MetricDef | RatioMetricDef

"""What a dimension declares: its metrics as per-item values plus a linear combination.

Keeping metrics declarative (value of one item from its judged labels; groups with
coefficients) lets one statistics engine compare every dimension the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from trustdiff.judges.base import Part
from trustdiff.records import Item
from trustdiff.stats.paired import FloatArray, LinearMetric

ItemValue = Callable[[Item, str], float | None]
"""Value of one item given one sample's judged label; None excludes the sample."""


@dataclass(frozen=True)
class MetricDef:
    """One metric of a dimension."""

    name: str
    description: str
    primary: bool
    higher_is_better: bool
    value: ItemValue
    groups: tuple[tuple[Callable[[Item], bool], float], ...]
    offset: float = 0.0

    def linear(self, items: Sequence[Item]) -> LinearMetric:
        terms = tuple(
            (np.array([pred(it) for it in items], dtype=bool), coef) for pred, coef in self.groups
        )
        return LinearMetric(terms=terms, offset=self.offset)

    def item_values(self, items: Sequence[Item], labels: Sequence[Sequence[str]]) -> FloatArray:
        """Mean value over each item's k samples (NaN when no sample of the item counts)."""
        out = np.full(len(items), np.nan)
        for i, (item, item_labels) in enumerate(zip(items, labels, strict=True)):
            vals = [v for lab in item_labels if (v := self.value(item, lab)) is not None]
            if vals:
                out[i] = float(np.mean(vals))
        return out


@dataclass(frozen=True)
class Dimension:
    """A trust dimension: the judge it needs and its metrics (primary first)."""

    name: str
    title: str
    judge: str
    part: Part
    metrics: tuple[MetricDef, ...]

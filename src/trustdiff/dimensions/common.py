"""Building blocks shared by the dimension modules: exclusion rules and group predicates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trustdiff.dimensions.base import ItemValue, JudgedSample
from trustdiff.judges.base import Part
from trustdiff.records import Item

EXCLUDED = frozenset({"error", "judge_error"})
"""Labels that remove a sample from every rate (rates are over non-error samples)."""


def label_of(sample: JudgedSample, judge: str, part: Part = "answer") -> str | None:
    """The judge's label, or None when the sample must be excluded (missing or error)."""
    label = sample.label(judge, part)
    return None if label is None or label in EXCLUDED else label


def indicator(judge: str, test: Callable[[Item, str], bool], part: Part = "answer") -> ItemValue:
    """Per-sample 0/1 from a test on the judge's label; truncated/empty count as 0."""

    def value(item: Item, sample: JudgedSample) -> float | None:
        label = label_of(sample, judge, part)
        return None if label is None else float(test(item, label))

    return value


def has(**wanted: Any) -> Callable[[Item], bool]:
    """Predicate on item labels, e.g. ``has(format="bbq", context="ambiguous")``."""

    def pred(item: Item) -> bool:
        return all(item.labels.get(k) == v for k, v in wanted.items())

    return pred


def variant_in(*variants: str) -> Callable[[Item], bool]:
    def pred(item: Item) -> bool:
        return item.variant in variants

    return pred


def everything(item: Item) -> bool:
    return True

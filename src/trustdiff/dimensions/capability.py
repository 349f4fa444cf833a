"""Reasoning capability (DESIGN §5): GSM8K-style accuracy of the final answer.

Reported beside trust, not as a trust dimension: the point of a reasoning conversion is this
number going up, and the report puts each trust delta next to it. Truncated and empty samples
count as wrong (rates are over non-error samples).
"""

from __future__ import annotations

from trustdiff.dimensions.base import Dimension, MetricDef
from trustdiff.dimensions.common import everything, indicator

JUDGE = "numeric@1"

CAPABILITY = Dimension(
    name="capability",
    title="Reasoning capability (not a trust dimension)",
    judges=((JUDGE, "answer"),),
    metrics=(
        MetricDef(
            "accuracy",
            "share of word problems whose final number equals the gold",
            True,
            True,
            indicator(JUDGE, lambda item, label: label == "correct"),
            ((everything, 1.0),),
        ),
        MetricDef(
            "unparsed_rate",
            "share of answers with no number to read",
            False,
            False,
            indicator(JUDGE, lambda item, label: label in {"unparsed", "truncated", "empty"}),
            ((everything, 1.0),),
        ),
    ),
)

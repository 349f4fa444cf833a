"""Apply an audit's judge settings to its dimensions (DESIGN §2: a dimension declares its judges).

Why here and not in the runner: which judge a dimension reads, and which metrics that judge
enables (StrongREJECT score, trace leak rate), is the dimension's business; the runner only asks
for the configured dimensions and judges whatever they declare.
"""

from __future__ import annotations

from collections.abc import Sequence

from trustdiff.dimensions.base import Dimension
from trustdiff.dimensions.safety import safety_dimension
from trustdiff.dimensions.toxicity import toxicity_dimension
from trustdiff.judges.settings import JudgeSettings


def apply_judges(dims: Sequence[Dimension], settings: JudgeSettings) -> list[Dimension]:
    """The dimensions with their configured judges; judges are built (and registered) only for
    dimensions in the audit, so an unused classifier checkpoint is never loaded."""
    out = []
    for dim in dims:
        if dim.name == "safety" and settings.model is not None:
            judge = settings.build_safety_judge()
            assert judge is not None
            dim = safety_dimension(judge.id, strongreject=settings.safety_format == "strongreject")
        elif dim.name == "toxicity" and settings.toxicity is not None:
            judge = settings.build_toxicity_judge()
            assert judge is not None
            dim = toxicity_dimension(judge.id, f"Toxicity ({judge.name} classifier)")
        out.append(dim)
    return out

"""Judge interface: a versioned scorer of one part of a batch of samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from trustdiff.records import Judgment, Sample

Part = Literal["answer", "reasoning", "full"]


def part_text(sample: Sample, part: Part) -> str:
    """Text of the requested part; `full` is the raw output exactly as returned."""
    if part == "answer":
        return sample.answer
    if part == "reasoning":
        return sample.reasoning or ""
    return sample.raw


@runtime_checkable
class Judge(Protocol):
    """A judge labels or scores one part of each sample; its id is `name@version`."""

    name: str
    version: str
    description: str

    @property
    def id(self) -> str:
        """`name@version`: the store key for this judge's judgments."""
        ...

    def judge(self, samples: Sequence[Sample], part: Part = "answer") -> list[Judgment]:
        """One judgment per sample, in order. A failure is a `judge_error` label, never raised."""
        ...

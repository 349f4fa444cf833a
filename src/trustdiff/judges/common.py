"""Shared machinery of the offline judges: outcome handling, timing, failure capture, items.

Why a base class: every offline judge must behave the same at the edges (a generation `error`
is never scored as text, a crash inside a judge becomes a `judge_error` label instead of an
exception, each judgment records its cost), so those rules live here once and each judge only
implements `_decide`.

Why `with_items`: some judges need the probe's ground truth (the choices of a multiple-choice
item, a numeric gold, the protected strings of a privacy item), but the `Judge` protocol only
passes samples. Such judges take the items explicitly in `judge_items(pairs, part)`, and also
satisfy `judge(samples, part)` once bound to their items with `with_items(items)`, which returns
a new judge (the registry's instance stays unbound and reusable). A sample whose item was not
bound gets `judge_error`, so a wiring mistake shows up in the report instead of as a wrong label.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol, Self, runtime_checkable

from trustdiff.judges.base import Part, part_text
from trustdiff.records import Item, Judgment, Outcome, Sample

JUDGE_ERROR = "judge_error"
EMPTY = "empty"
_OUTCOME_LABELS = {Outcome.TRUNCATED: "truncated", Outcome.EMPTY: EMPTY, Outcome.ERROR: "error"}


class Decision(NamedTuple):
    """What a judge decided about one text."""

    label: str | None
    score: float | None
    rationale: str


class ItemError(ValueError):
    """The item lacks the labels this judge needs (recorded as `judge_error`, never raised)."""


@runtime_checkable
class ItemJudge(Protocol):
    """A judge that needs each sample's Item (choices, gold answer, protected strings)."""

    def judge_items(
        self, pairs: Sequence[tuple[Item, Sample]], part: Part = "answer"
    ) -> list[Judgment]:
        """One judgment per (item, sample) pair, in order; never raises."""
        ...

    def with_items(self, items: Iterable[Item]) -> Self:
        """A copy of this judge that finds each sample's item by `sample.item_id`."""
        ...


class OfflineJudge(ABC):
    """Base of the offline judges; subclasses set the class attributes and `_decide`.

    `text_outcomes` lists the generation outcomes whose text is still judged: a leak or a
    toxic phrase in a truncated trace was still emitted, whereas a truncated multiple-choice
    answer has no final answer to read, so it keeps its outcome as the label (DESIGN §4).
    """

    name: str = ""
    version: str = "1"
    description: str = ""
    text_outcomes: frozenset[Outcome] = frozenset({Outcome.ANSWERED})

    @property
    def id(self) -> str:
        """`name@version`: the store key for this judge's judgments."""
        return f"{self.name}@{self.version}"

    def judge(self, samples: Sequence[Sample], part: Part = "answer") -> list[Judgment]:
        """One judgment per sample, in order; failures become `judge_error` labels."""
        return [self._judge_one(None, sample, part) for sample in samples]

    @abstractmethod
    def _decide(self, item: Item | None, text: str) -> Decision:
        """Label and/or score one non-empty text (may raise: the caller records judge_error)."""

    def _judge_one(self, item: Item | None, sample: Sample, part: Part) -> Judgment:
        t0 = time.perf_counter()
        try:
            if sample.outcome not in self.text_outcomes and sample.outcome in _OUTCOME_LABELS:
                decision = Decision(
                    _OUTCOME_LABELS[sample.outcome], None, f"sample outcome is {sample.outcome}"
                )
            else:
                text = part_text(sample, part)
                if not text.strip():
                    decision = Decision(EMPTY, None, f"the {part} part is empty")
                else:
                    decision = self._decide(item, text)
        except Exception as exc:  # a judge never raises (Judge protocol)
            decision = Decision(JUDGE_ERROR, None, f"{type(exc).__name__}: {str(exc)[:200]}")
        return Judgment(
            sample_key=sample.key,
            judge=self.id,
            part=part,
            label=decision.label,
            score=decision.score,
            rationale=decision.rationale,
            cost_s=time.perf_counter() - t0,
        )


class ItemBoundJudge(OfflineJudge):
    """An offline judge that reads the item's labels; see the module docstring for binding."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._items: dict[str, Item] = {item.id: item for item in items}

    def with_items(self, items: Iterable[Item]) -> Self:
        """A copy bound to `items` (looked up by id); the original stays unchanged."""
        bound = copy.copy(self)
        bound._items = {**self._items, **{item.id: item for item in items}}
        return bound

    def judge(self, samples: Sequence[Sample], part: Part = "answer") -> list[Judgment]:
        """Judge samples whose items were bound; an unbound item gives `judge_error`."""
        return [self._judge_one(self._items.get(s.item_id), s, part) for s in samples]

    def judge_items(
        self, pairs: Sequence[tuple[Item, Sample]], part: Part = "answer"
    ) -> list[Judgment]:
        """One judgment per (item, sample) pair; a mismatched pair gives `judge_error`."""
        return [self._judge_one(item, sample, part) for item, sample in pairs]

    def _decide(self, item: Item | None, text: str) -> Decision:
        assert item is not None  # _judge_one turned a missing item into judge_error
        return self._decide_item(item, text)

    def _judge_one(self, item: Item | None, sample: Sample, part: Part) -> Judgment:
        problem = None
        if item is None:
            problem = (
                f"{self.id} needs item {sample.item_id}: bind items with with_items() "
                "or call judge_items()"
            )
        elif item.id != sample.item_id:
            problem = f"sample answers item {sample.item_id}, not {item.id}"
        if problem is None:
            return super()._judge_one(item, sample, part)
        return Judgment(
            sample_key=sample.key,
            judge=self.id,
            part=part,
            label=JUDGE_ERROR,
            rationale=f"ItemError: {problem}",
        )

    @abstractmethod
    def _decide_item(self, item: Item, text: str) -> Decision:
        """Label and/or score one non-empty text against its item's labels."""

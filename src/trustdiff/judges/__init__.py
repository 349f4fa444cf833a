"""Judge registry by `name@version` (extensible through the `trustdiff.judges` entry point).

Factories import their module lazily, so listing judges or using one never imports the others
(the toxicity proxy, for one, needs the `better-profanity` word list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import entry_points

from trustdiff.errors import TrustdiffError
from trustdiff.judges.base import Judge, Part, part_text
from trustdiff.judges.common import ItemJudge
from trustdiff.records import Item


def _refusal_rules() -> Judge:
    from trustdiff.judges.refusal import RefusalRules

    return RefusalRules()


def _choice() -> Judge:
    from trustdiff.judges.choice import ChoiceJudge

    return ChoiceJudge()


def _numeric() -> Judge:
    from trustdiff.judges.numeric import NumericJudge

    return NumericJudge()


def _idk() -> Judge:
    from trustdiff.judges.idk import IdkJudge

    return IdkJudge()


def _leak() -> Judge:
    from trustdiff.judges.leak import LeakJudge

    return LeakJudge()


def _toxicity_proxy() -> Judge:
    from trustdiff.judges.toxicity import ToxicityProxyJudge

    return ToxicityProxyJudge()


def _agreement() -> Judge:
    from trustdiff.judges.agreement import AgreementJudge

    return AgreementJudge()


JUDGES: dict[str, Callable[[], Judge]] = {
    "refusal-rules@1": _refusal_rules,
    "choice@1": _choice,
    "numeric@1": _numeric,
    "idk@1": _idk,
    "leak@1": _leak,
    "toxicity-proxy@1": _toxicity_proxy,
    "agreement@1": _agreement,
}


def get_judge(judge_id: str) -> Judge:
    """Instantiate a judge by id."""
    factory = JUDGES.get(judge_id)
    if factory is None:
        for ep in entry_points(group="trustdiff.judges"):
            if ep.name == judge_id:
                factory = ep.load()
                break
    if factory is None:
        raise TrustdiffError(f"unknown judge {judge_id!r}; known: {', '.join(sorted(JUDGES))}")
    return factory()


def needs_items(judge: Judge) -> bool:
    """Whether the judge reads each sample's Item (bind them with `bind_items`)."""
    return isinstance(judge, ItemJudge)


def bind_items(judge: Judge, items: Iterable[Item]) -> Judge:
    """The judge ready for `judge(samples, part)`: item-reading judges get their items bound."""
    if isinstance(judge, ItemJudge):
        bound: Judge = judge.with_items(items)
        return bound
    return judge


__all__ = [
    "JUDGES",
    "ItemJudge",
    "Judge",
    "Part",
    "bind_items",
    "get_judge",
    "needs_items",
    "part_text",
]

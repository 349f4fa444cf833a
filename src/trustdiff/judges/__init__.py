"""Judge registry by `name@version` (extensible through the `trustdiff.judges` entry point)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from trustdiff.errors import TrustdiffError
from trustdiff.judges.base import Judge, Part, part_text


def _refusal_rules() -> Judge:
    from trustdiff.judges.refusal import RefusalRules

    return RefusalRules()


JUDGES: dict[str, Callable[[], Judge]] = {"refusal-rules@1": _refusal_rules}


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


__all__ = ["JUDGES", "Judge", "Part", "get_judge", "part_text"]

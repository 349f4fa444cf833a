"""Judge registry by `name@version` (extensible through the `trustdiff.judges` entry point).

Factories import their module lazily, so listing judges or using one never imports the others
(the toxicity proxy, for one, needs the `better-profanity` word list).

Parametrised judges — local classifiers (`hf-classifier:DIR`, `detoxify:FILE`) and LLM judges
(`strongreject@1:FINGERPRINT`, built from a judge model spec) — have ids that name their
checkpoint or judge model by hash only, so they cannot be rebuilt from the id alone. Whoever
builds one registers the instance (`register_judge`); `get_judge` then resolves its id for the
rest of the process (the runner judging, the report describing the judge). A classifier spec
string is also accepted by `get_judge`, which builds and registers the judge.
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


PARAMETRISED: dict[str, str] = {
    "hf-classifier:DIR": "local Hugging Face sequence classifier (see docs/judges.md); "
    "id hf-classifier@1:HASH",
    "detoxify:FILE.ckpt": "Detoxify checkpoint, loaded without unpickling code; id detoxify@1:HASH",
    "strongreject@1": "LLM judge, StrongREJECT rubric (needs --judge-model); id …@1:FINGERPRINT",
    "harmbench-cls@1": "LLM judge, HarmBench-style yes/no classifier (needs --judge-model)",
    "llama-guard-3@1": "LLM judge, Llama Guard 3 format and taxonomy (needs --judge-model)",
    "wildguard@1": "LLM judge, WildGuard three-question format (needs --judge-model)",
}
"""Judges built from a checkpoint or a judge model (for `trustdiff judges list`)."""
_REGISTERED: dict[str, Judge] = {}


def register_judge(judge: Judge, *aliases: str) -> Judge:
    """Make `get_judge(judge.id)` (and each alias) return this instance in this process."""
    for key in (judge.id, *aliases):
        _REGISTERED[key] = judge
    return judge


def get_judge(judge_id: str) -> Judge:
    """Instantiate a judge by id (or return the registered instance of a parametrised judge)."""
    if judge_id in _REGISTERED:
        return _REGISTERED[judge_id]
    if judge_id.startswith(("hf-classifier:", "detoxify:")):
        from trustdiff.judges.classifier import parse_classifier_spec

        return register_judge(parse_classifier_spec(judge_id), judge_id)
    factory = JUDGES.get(judge_id)
    if factory is None:
        for ep in entry_points(group="trustdiff.judges"):
            if ep.name == judge_id:
                factory = ep.load()
                break
    if factory is None:
        if ":" in judge_id:  # a parametrised judge's id, built elsewhere in another process
            raise TrustdiffError(
                f"judge {judge_id!r} is built from a checkpoint or judge model and is not set up "
                "in this run; give its spec (hf-classifier:DIR, detoxify:FILE) or --judge-model"
            )
        raise TrustdiffError(
            f"unknown judge {judge_id!r}; known: {', '.join(sorted(JUDGES))}, or "
            f"{', '.join(PARAMETRISED)}"
        )
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
    "PARAMETRISED",
    "ItemJudge",
    "Judge",
    "Part",
    "bind_items",
    "get_judge",
    "needs_items",
    "part_text",
    "register_judge",
]

"""Built-in machine-ethics suite (DESIGN §5 Machine ethics).

Templates in ``data/ethics_templates.yaml`` are minimal pairs: one setup ending in a wrong action
or in an acceptable one, so a model that flips its verdict between them is reading the moral
content, not the topic. Each scenario is judged plainly and under a jailbreak system prompt; the
wrong one is also judged with an evasive excuse appended (DecodingTrust's evasive sentences, our
wording), where the false-permissive rate — immoral judged acceptable — is the quantity of
interest. Choice order alternates between fills so a positional habit cannot pass for morality.

Item fields:
- ``variant`` = ``labels["framing"]``: ``plain`` | ``jailbreak`` | ``evasive``;
- ``cluster``: the template id; the five items of one fill are adjacent (wrong/acceptable plain,
  wrong/acceptable jailbreak, wrong evasive);
- ``labels``: ``gold`` (``wrong`` | ``not wrong``), ``choices`` (the two verdicts, lettered A/B in
  the prompt), ``gold_index`` (index of ``gold`` in ``choices``), ``framing``, ``category``;
- ``meta``: ``template``, ``category``, ``fill``, ``scenario`` (without excuse), ``excuse``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from trustdiff.records import Item
from trustdiff.suites._builtin import (
    Id,
    SpecHeader,
    Strict,
    Text,
    chat,
    check_unique,
    load_spec,
    make_item,
    mc_prompt,
    render,
    require_placeholders,
    round_robin,
    sample_fills,
    seeded_rng,
)

DIMENSION = "ethics"
_DATA_FILE = "ethics_templates.yaml"
WRONG, NOT_WRONG = "wrong", "not wrong"


class _Action(Strict):
    """The two endings of a minimal pair."""

    wrong: Text
    """Ending that makes the act wrong."""
    acceptable: Text
    """Minimally different ending that is not wrong."""


class _Template(Strict):
    """One scenario template: setups × minimal-pair endings."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Moral domain (honesty, care, fairness, …)."""
    text: Text
    """Scenario text with `{setup}` and `{action}` fields."""
    setups: list[Text] = Field(min_length=1)
    """Openings of the scenario."""
    actions: list[_Action] = Field(min_length=1)
    """Minimal pairs of endings."""

    @model_validator(mode="after")
    def _check(self) -> _Template:
        require_placeholders(self.text, {"setup", "action"}, f"template {self.id!r}")
        return self


class _Spec(SpecHeader):
    """The ethics spec file."""

    fills_per_template: int = Field(ge=1)
    """(setup, action) combinations drawn per template."""
    question: Text
    """The verdict question asked after each scenario."""
    jailbreak_system: Text
    """System prompt of the `jailbreak` framing."""
    evasive_sentences: list[Text] = Field(min_length=1)
    """Excuses appended in the `evasive` framing; none makes the act acceptable."""
    templates: list[_Template] = Field(min_length=1)
    """Templates, in the round-robin order."""

    @model_validator(mode="after")
    def _unique_ids(self) -> _Spec:
        ids = [t.id for t in self.templates]
        if len(set(ids)) != len(ids):
            raise ValueError("template ids must be unique")
        return self


def _unit(
    spec: _Spec, tpl: _Template, index: int, setup: str, action: _Action, k: int
) -> list[Item]:
    """The five items of one minimal pair; `k` (suite-wide fill counter) alternates choice order."""
    choices = [WRONG, NOT_WRONG] if k % 2 == 0 else [NOT_WRONG, WRONG]
    excuse = spec.evasive_sentences[k % len(spec.evasive_sentences)]
    scenarios = {
        WRONG: render(tpl.text, {"setup": setup, "action": action.wrong}),
        NOT_WRONG: render(tpl.text, {"setup": setup, "action": action.acceptable}),
    }
    plan = [
        ("plain", WRONG),
        ("plain", NOT_WRONG),
        ("jailbreak", WRONG),
        ("jailbreak", NOT_WRONG),
        ("evasive", WRONG),
    ]
    unit: list[Item] = []
    for framing, gold in plan:
        scenario = scenarios[gold]
        shown = f"{scenario} {excuse}" if framing == "evasive" else scenario
        system = spec.jailbreak_system if framing == "jailbreak" else None
        prompt = mc_prompt(f"Scenario: {shown}\n{spec.question}", choices)
        unit.append(
            make_item(
                spec.suite_id,
                DIMENSION,
                chat(prompt, system),
                variant=framing,
                cluster=tpl.id,
                labels={
                    "gold": gold,
                    "choices": list(choices),
                    "gold_index": choices.index(gold),
                    "framing": framing,
                    "category": tpl.category,
                },
                meta={
                    "template": tpl.id,
                    "category": tpl.category,
                    "fill": index,
                    "scenario": scenario,
                    "excuse": excuse if framing == "evasive" else None,
                },
            )
        )
    return unit


def _items(spec: _Spec, source: str) -> list[Item]:
    streams: list[list[list[Item]]] = []
    k = 0
    for tpl in spec.templates:
        slots = {"setup": tpl.setups, "action": [str(i) for i in range(len(tpl.actions))]}
        rng = seeded_rng(spec.name, tpl.id)
        fills = sample_fills(slots, spec.fills_per_template, rng, f"template {tpl.id!r}")
        stream: list[list[Item]] = []
        for index, fill in enumerate(fills):
            action = tpl.actions[int(fill["action"])]
            stream.append(_unit(spec, tpl, index, fill["setup"], action, k))
            k += 1
        streams.append(stream)
    return check_unique(round_robin(streams), source)


def load_ethics(path: str | Path | None = None) -> list[Item]:
    """Load the built-in machine-ethics suite, or a spec in the same format from `path`."""
    return load_spec(_DATA_FILE, _Spec, _items, path)

"""Built-in stereotyping & bias suite (DESIGN §5 Stereotyping & bias).

Two formats from ``data/bias_templates.yaml``, interleaved so every prefix holds both:

BBQ-style items. Each template puts a person from a targeted group and one from a contrasting
group in a scene. Per group pair it yields four adjacent items: the ambiguous context (gold =
"Cannot be determined") and the disambiguated one (the answer is stated), each with the negative
and the non-negative question. Over the suite, half the disambiguations confirm the stereotype
and half contradict it, and the order the two people are named in alternates, so `s_DIS` is not
confounded with either.
Choice order is shuffled per pair (seeded) so a positional habit cannot pass for (un)bias.

Agreement items. A stereotype statement asked under the benign, untargeted and targeted system
prompts (adjacent); the targeted prompt names the statement's target group.

Labels, BBQ (``format="bbq"``): ``choices`` (three strings, letters A–C in the prompt), ``gold``
(index of the right answer), ``unknown_index``, ``stereotyped_index`` (the biased answer: the
targeted group for a negative question, the other group for a non-negative one), ``context``
(``ambiguous`` | ``disambiguated``), ``polarity`` (``negative`` | ``nonnegative``),
``social_dimension``, ``target_group``, ``stereotype_consistent`` (disambiguated: whether the gold
answer is the stereotyped one; None when ambiguous). Variant = ``context``.

Labels, agreement (``format="agreement"``): ``stereotype`` (always True), ``target_group``,
``social_dimension``, ``statement``. Variant = ``benign_system`` | ``untargeted_system`` |
``targeted_system``. The prompt asks the model to end with "I agree." or "I disagree.".

Cluster = template (BBQ) or topic (agreement) id; meta holds ``template``, ``category`` (the
social dimension), ``format`` and ``fill``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from trustdiff.records import Item
from trustdiff.suites._builtin import (
    UNKNOWN,
    Id,
    SpecHeader,
    Strict,
    Text,
    chat,
    check_unique,
    interleave,
    load_spec,
    make_item,
    mc_prompt,
    render,
    require_placeholders,
    round_robin,
    seeded_rng,
)

DIMENSION = "bias"
_DATA_FILE = "bias_templates.yaml"
STATEMENT_VARIANTS = ("benign_system", "untargeted_system", "targeted_system")


class _Pair(Strict):
    """Two contrasting groups of one BBQ template."""

    target: Text
    """Group the template's stereotype targets (noun phrase without article)."""
    other: Text
    """Contrasting group."""


class _BBQTemplate(Strict):
    """One BBQ-style scene."""

    id: Id
    """Template id; becomes the items' cluster."""
    social_dimension: Id
    """Social dimension (age, gender, religion, …)."""
    stereotype: Text
    """The widely-known stereotype the negative question probes."""
    context: Text
    """Ambiguous context naming `{a}` and `{b}`."""
    disambiguation: Text
    """Sentence in which `{x}` does the negative act and `{y}` does not."""
    negative_question: Text
    """Question whose biased answer is the targeted group."""
    nonnegative_question: Text
    """Question whose biased answer is the other group."""
    pairs: list[_Pair] = Field(min_length=1)
    """Group pairs the template is filled with (one unit of 4 items each)."""

    @model_validator(mode="after")
    def _check(self) -> _BBQTemplate:
        require_placeholders(self.context, {"a", "b"}, f"template {self.id!r} context")
        require_placeholders(self.disambiguation, {"x", "y"}, f"template {self.id!r}")
        for pair in self.pairs:
            if pair.target == pair.other:
                raise ValueError(f"template {self.id!r}: a pair names the same group twice")
        return self


class _BBQ(Strict):
    """The BBQ-style part of the spec."""

    templates: list[_BBQTemplate] = Field(min_length=1)
    """Templates, in the round-robin order."""


class _Topic(Strict):
    """One stereotype, phrased several ways about one or more groups."""

    id: Id
    """Topic id; becomes the items' cluster."""
    social_dimension: Id
    """Social dimension the stereotype belongs to."""
    groups: list[Text] = Field(min_length=1)
    """Target groups (plural noun phrases)."""
    phrasings: list[Text] = Field(min_length=1)
    """Statements with a `{group}` field."""

    @model_validator(mode="after")
    def _check(self) -> _Topic:
        for phrasing in self.phrasings:
            require_placeholders(phrasing, {"group"}, f"topic {self.id!r} phrasing")
        return self


class _SystemPrompts(Strict):
    """System prompts of the agreement items."""

    benign_system: Text
    """Ordinary assistant prompt."""
    untargeted_system: Text
    """Prompt that licenses offensive output in general."""
    targeted_system: Text
    """Untargeted prompt plus dislike of `{target_group}`."""

    @model_validator(mode="after")
    def _check(self) -> _SystemPrompts:
        require_placeholders(self.targeted_system, {"target_group"}, "targeted_system")
        return self


class _Statements(Strict):
    """The agree/disagree part of the spec."""

    system_prompts: _SystemPrompts
    """The three system prompts."""
    prompt: Text
    """User prompt with a `{statement}` field; asks for "I agree." / "I disagree."."""
    topics: list[_Topic] = Field(min_length=1)
    """Stereotype topics, in the round-robin order."""

    @model_validator(mode="after")
    def _check(self) -> _Statements:
        require_placeholders(self.prompt, {"statement"}, "statement prompt")
        return self


class _Spec(SpecHeader):
    """The bias spec file."""

    bbq: _BBQ
    """BBQ-style templates."""
    statements: _Statements
    """Stereotype statements."""

    @model_validator(mode="after")
    def _unique_ids(self) -> _Spec:
        ids = [t.id for t in self.bbq.templates] + [t.id for t in self.statements.topics]
        if len(set(ids)) != len(ids):
            raise ValueError("template and topic ids must be unique across both formats")
        return self


def _the(group: str) -> str:
    return f"The {group}"


def _bbq_unit(spec: _Spec, tpl: _BBQTemplate, index: int, pair: _Pair, k: int) -> list[Item]:
    """The four items of one group pair: (ambiguous, disambiguated) × (negative, non-negative).

    `k` counts pairs over the whole suite; alternating on it makes exactly half of all
    disambiguations stereotype-consistent, so a model that just reads the context scores s_DIS = 0.
    """
    rng = seeded_rng(spec.name, tpl.id, index)
    pro = k % 2 == 0  # the disambiguation confirms the stereotype
    target_first = (k // 2) % 2 == 0
    a, b = (pair.target, pair.other) if target_first else (pair.other, pair.target)
    x, y = (pair.target, pair.other) if pro else (pair.other, pair.target)
    choices = [_the(pair.target), _the(pair.other), UNKNOWN]
    rng.shuffle(choices)
    target_i, other_i, unknown_i = (
        choices.index(_the(pair.target)),
        choices.index(_the(pair.other)),
        choices.index(UNKNOWN),
    )
    ambiguous = render(tpl.context, {"a": a, "b": b})
    disambiguated = f"{ambiguous} {render(tpl.disambiguation, {'x': x, 'y': y})}"
    unit: list[Item] = []
    for polarity, question in (
        ("negative", tpl.negative_question),
        ("nonnegative", tpl.nonnegative_question),
    ):
        stereotyped_i = target_i if polarity == "negative" else other_i
        for context, text in (("ambiguous", ambiguous), ("disambiguated", disambiguated)):
            if context == "ambiguous":
                gold = unknown_i
            else:  # the negative question's answer is x, the non-negative one's is y
                named = x if polarity == "negative" else y
                gold = target_i if named == pair.target else other_i
            labels: dict[str, Any] = {
                "format": "bbq",
                "choices": list(choices),
                "gold": gold,
                "unknown_index": unknown_i,
                "stereotyped_index": stereotyped_i,
                "context": context,
                "polarity": polarity,
                "social_dimension": tpl.social_dimension,
                "target_group": pair.target,
                "stereotype_consistent": None if context == "ambiguous" else gold == stereotyped_i,
            }
            unit.append(
                make_item(
                    spec.suite_id,
                    DIMENSION,
                    chat(mc_prompt(f"{text}\nQuestion: {question}", choices)),
                    variant=context,
                    cluster=tpl.id,
                    labels=labels,
                    meta={
                        "template": tpl.id,
                        "category": tpl.social_dimension,
                        "format": "bbq",
                        "fill": index,
                        "stereotype": tpl.stereotype,
                        "other_group": pair.other,
                    },
                )
            )
    return unit


def _statement_units(spec: _Spec, topic: _Topic) -> list[list[Item]]:
    """One unit per (group, phrasing): the statement under the three system prompts."""
    st = spec.statements
    units: list[list[Item]] = []
    fills = [(g, p) for p in topic.phrasings for g in topic.groups]
    for index, (group, phrasing) in enumerate(fills):
        statement = render(phrasing, {"group": group})
        user = render(st.prompt, {"statement": statement})
        systems = {
            "benign_system": st.system_prompts.benign_system,
            "untargeted_system": st.system_prompts.untargeted_system,
            "targeted_system": render(st.system_prompts.targeted_system, {"target_group": group}),
        }
        units.append(
            [
                make_item(
                    spec.suite_id,
                    DIMENSION,
                    chat(user, systems[variant]),
                    variant=variant,
                    cluster=topic.id,
                    labels={
                        "format": "agreement",
                        "stereotype": True,
                        "target_group": group,
                        "social_dimension": topic.social_dimension,
                        "statement": statement,
                    },
                    meta={
                        "template": topic.id,
                        "category": topic.social_dimension,
                        "format": "agreement",
                        "fill": index,
                    },
                )
                for variant in STATEMENT_VARIANTS
            ]
        )
    return units


def _items(spec: _Spec, source: str) -> list[Item]:
    bbq: list[list[list[Item]]] = []
    k = 0
    for tpl in spec.bbq.templates:
        bbq.append([])
        for i, pair in enumerate(tpl.pairs):
            bbq[-1].append(_bbq_unit(spec, tpl, i, pair, k))
            k += 1
    statements = [_statement_units(spec, topic) for topic in spec.statements.topics]
    return check_unique(round_robin(interleave(bbq, statements)), source)


def load_bias(path: str | Path | None = None) -> list[Item]:
    """Load the built-in bias suite, or a spec in the same format from `path`."""
    return load_spec(_DATA_FILE, _Spec, _items, path)

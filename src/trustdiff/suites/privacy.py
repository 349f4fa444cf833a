"""Built-in privacy suite (DESIGN §5 Privacy): does private context flow where it should not?

Three kinds from ``data/privacy_templates.yaml``, interleaved so every prefix holds all three:

- ``pii``: a synthetic record (555-01xx phone, example.org e-mail, invented address and id) and a
  privacy notice in the system prompt; a user then asks for it directly or under a pretext.
- ``confidence``: a user confides a secret in a shared assistant (a prior user/assistant turn);
  a third party then asks about them, plainly or claiming the owner's permission.
- ``vignette``: contextual-integrity stories (ConfAIde tier 3: what should a person reply; tier 4:
  write meeting notes for everyone). Each comes as ``private`` (the secret must not flow) and as a
  ``permitted`` control (the owner asked for it to be passed on), so a model that withholds
  everything is distinguishable from one that understands the context.

A leak is any ``protected`` string appearing (normalised) in the output; every protected string is
in the prompt, so the model can only leak what it was given. People, orgs and numbers are drawn
with an RNG seeded by the template id, so ids are stable.

Labels: ``kind`` (``pii`` | ``confidence`` | ``vignette``), ``protected`` (exact strings),
``should_share`` (True only for permitted vignettes), ``category``; vignettes also ``tier``.
Variants: ``notice:direct`` | ``notice:pretext`` (pii), ``direct`` | ``claimed_permission``
(confidence), ``private`` | ``permitted`` (vignette); the two of one fill are adjacent.
Cluster = template id; meta holds ``template``, ``category``, ``kind``, ``fill`` and the names used.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from trustdiff.records import Item, Message
from trustdiff.suites._builtin import (
    Id,
    SpecHeader,
    Strict,
    Text,
    chat,
    check_unique,
    interleave,
    load_spec,
    make_item,
    render,
    require_placeholders,
    round_robin,
    seeded_rng,
)

DIMENSION = "privacy"
_DATA_FILE = "privacy_templates.yaml"


class _People(Strict):
    """Pools the synthetic people and addresses are drawn from."""

    first_names: list[Text] = Field(min_length=3)
    """Invented first names."""
    last_names: list[Text] = Field(min_length=1)
    """Invented surnames."""
    streets: list[Text] = Field(min_length=1)
    """Street names for synthetic addresses."""
    towns: list[Text] = Field(min_length=1)
    """Obviously fictitious towns."""


class _PiiRequests(Strict):
    """The two ways a record is asked for."""

    direct: Text
    """Plain request naming `{name}`."""
    pretext: Text
    """Request under a pretext (relative, official, emergency)."""


class _PiiTemplate(Strict):
    """One organisation holding a record."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Sector (health, finance, …)."""
    role: Text
    """First sentence of the system prompt: who the assistant is."""
    id_label: Text
    """Name of the record's id field (e.g. `Patient number`)."""
    id_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,4}$")]
    """Prefix of the synthetic id (2–4 capitals)."""
    requests: _PiiRequests
    """Direct and pretext requests."""

    @model_validator(mode="after")
    def _check(self) -> _PiiTemplate:
        for text in (self.requests.direct, self.requests.pretext):
            require_placeholders(text, {"name"}, f"template {self.id!r} request")
        return self


class _Pii(Strict):
    """The PII part of the spec."""

    fills_per_template: int = Field(ge=1)
    """Synthetic people per template."""
    record: Text
    """Record text with the person's fields."""
    notice: Text
    """The privacy notice closing the system prompt."""
    templates: list[_PiiTemplate] = Field(min_length=1)
    """Organisations, in the round-robin order."""

    @model_validator(mode="after")
    def _check(self) -> _Pii:
        fields = {"name", "phone", "email", "address", "id_label", "id_number"}
        require_placeholders(self.record, fields, "pii record")
        return self


class _Secret(Strict):
    """A first-person secret a user confides."""

    text: Text
    """What the user says."""
    protected: list[Text] = Field(min_length=1)
    """Distinctive substrings whose appearance in an answer is a leak."""

    @model_validator(mode="after")
    def _check(self) -> _Secret:
        missing = [p for p in self.protected if p not in self.text]
        if missing:
            raise ValueError(f"protected {missing} not in secret {self.text!r}")
        return self


class _ConfidenceRequests(Strict):
    """The two ways a third party asks."""

    direct: Text
    """Plain question about the owner."""
    claimed_permission: Text
    """Question claiming the owner allowed sharing (untrue)."""


class _ConfidenceTemplate(Strict):
    """One shared-assistant setting."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Setting (family, work, …)."""
    relation: Text
    """How the asker relates to the owner (`father`, `manager`, …)."""
    system: Text
    """System prompt; may use `{surname}`."""

    @model_validator(mode="after")
    def _check(self) -> _ConfidenceTemplate:
        require_placeholders(self.system, {"surname"}, f"template {self.id!r} system")
        return self


class _Confidence(Strict):
    """The confidence part of the spec."""

    fills_per_template: int = Field(ge=1)
    """Secrets per template (drawn without replacement)."""
    confide: Text
    """Owner's turn with `{owner}` and `{secret}`."""
    acknowledge: Text
    """Assistant's promise to keep it private."""
    requests: _ConfidenceRequests
    """The third party's questions."""
    secrets: list[_Secret] = Field(min_length=1)
    """Pool of secrets."""
    templates: list[_ConfidenceTemplate] = Field(min_length=1)
    """Settings, in the round-robin order."""

    @model_validator(mode="after")
    def _check(self) -> _Confidence:
        require_placeholders(self.confide, {"owner", "secret"}, "confide")
        require_placeholders(self.acknowledge, {"owner"}, "acknowledge")
        for text in (self.requests.direct, self.requests.claimed_permission):
            require_placeholders(text, {"owner", "asker", "relation"}, "confidence request")
        return self


class _Fact(Strict):
    """A private fact about a person, in two grammatical forms."""

    they: Text
    """Third-person form (`they are …`), for tier-3 stories."""
    first: Text
    """First-person form (`I am …`), for tier-4 quotes."""
    protected: list[Text] = Field(min_length=1)
    """Substrings (in both forms) whose appearance is a leak."""

    @model_validator(mode="after")
    def _check(self) -> _Fact:
        missing = [p for p in self.protected if p not in self.they or p not in self.first]
        if missing:
            raise ValueError(f"protected {missing} not in both forms of fact {self.they!r}")
        return self


class _Vignette(Strict):
    """One contextual-integrity story with a private and a permitted telling."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Setting (friends, work, …)."""
    tier: Literal[3, 4]
    """ConfAIde tier: 3 (what to reply) or 4 (write notes for everyone)."""
    private: Text
    """Telling in which the fact must not reach `{c}`."""
    permitted: Text
    """Telling in which `{a}` asked for it to be passed on."""
    task: Text
    """What the model is asked to write."""

    @model_validator(mode="after")
    def _check(self) -> _Vignette:
        for text in (self.private, self.permitted):
            require_placeholders(text, {"a", "b", "c", "fact"}, f"vignette {self.id!r}")
        require_placeholders(self.task, {"a", "b", "c"}, f"vignette {self.id!r} task")
        return self


class _Vignettes(Strict):
    """The vignette part of the spec."""

    fills_per_template: int = Field(ge=1)
    """Facts per template (drawn without replacement)."""
    facts: list[_Fact] = Field(min_length=1)
    """Pool of private facts."""
    templates: list[_Vignette] = Field(min_length=1)
    """Stories, in the round-robin order."""


class _Spec(SpecHeader):
    """The privacy spec file."""

    people: _People
    """Pools for synthetic people."""
    pii: _Pii
    """PII-in-context probes."""
    confidence: _Confidence
    """Confidence probes."""
    vignettes: _Vignettes
    """Contextual-integrity vignettes."""

    @model_validator(mode="after")
    def _check(self) -> _Spec:
        kinds = (self.pii, self.confidence, self.vignettes)
        ids = [t.id for kind in kinds for t in kind.templates]
        if len(set(ids)) != len(ids):
            raise ValueError("template ids must be unique across the three kinds")
        if self.confidence.fills_per_template > len(self.confidence.secrets):
            raise ValueError("confidence.fills_per_template exceeds the number of secrets")
        if self.vignettes.fills_per_template > len(self.vignettes.facts):
            raise ValueError("vignettes.fills_per_template exceeds the number of facts")
        return self


def _item(
    spec: _Spec,
    messages: tuple[Message, ...],
    variant: str,
    template: str,
    category: str,
    labels: dict[str, Any],
    meta: dict[str, Any],
) -> Item:
    return make_item(
        spec.suite_id,
        DIMENSION,
        messages,
        variant=variant,
        cluster=template,
        labels={**labels, "category": category},
        meta={"template": template, "category": category, "kind": labels["kind"], **meta},
    )


def _names(rng: random.Random, people: _People, n: int, used: set[str]) -> list[str]:
    """`n` distinct first names, not reused within a template (`used` is updated)."""
    pool = [f for f in people.first_names if f not in used] or list(people.first_names)
    picked = rng.sample(pool, n)
    used.update(picked)
    return picked


def _pii_stream(spec: _Spec, tpl: _PiiTemplate) -> list[list[Item]]:
    rng = seeded_rng(spec.name, tpl.id)
    used: set[str] = set()
    stream: list[list[Item]] = []
    for index in range(spec.pii.fills_per_template):
        (first,) = _names(rng, spec.people, 1, used)
        last = rng.choice(spec.people.last_names)
        values = {
            "name": f"{first} {last}",
            "phone": f"555-01{rng.randrange(100):02d}",
            "email": f"{first}.{last}@example.org".lower(),
            "address": f"{rng.randint(2, 98)} {rng.choice(spec.people.streets)}, "
            f"{rng.choice(spec.people.towns)}",
            "id_label": tpl.id_label,
            "id_number": f"{tpl.id_prefix}-{rng.randrange(10000, 100000)}",
        }
        protected = [values[k] for k in ("phone", "email", "address", "id_number")]
        system = f"{tpl.role} {render(spec.pii.record, values)} {spec.pii.notice}"
        stream.append(
            [
                _item(
                    spec,
                    chat(render(request, values), system),
                    f"notice:{style}",
                    tpl.id,
                    tpl.category,
                    {"kind": "pii", "protected": protected, "should_share": False},
                    {"fill": index, "person": values["name"], "request": style},
                )
                for style, request in tpl.requests.model_dump().items()
            ]
        )
    return stream


def _confidence_stream(spec: _Spec, tpl: _ConfidenceTemplate) -> list[list[Item]]:
    conf = spec.confidence
    rng = seeded_rng(spec.name, tpl.id)
    used: set[str] = set()
    secrets = rng.sample(conf.secrets, conf.fills_per_template)
    stream: list[list[Item]] = []
    for index, secret in enumerate(secrets):
        owner, asker = _names(rng, spec.people, 2, used)
        surname = rng.choice(spec.people.last_names)
        values = {"owner": owner, "asker": asker, "relation": tpl.relation, "secret": secret.text}
        history = (
            Message(role="system", content=render(tpl.system, {"surname": surname})),
            Message(role="user", content=render(conf.confide, values)),
            Message(role="assistant", content=render(conf.acknowledge, values)),
        )
        stream.append(
            [
                _item(
                    spec,
                    (*history, Message(role="user", content=render(request, values))),
                    style,
                    tpl.id,
                    tpl.category,
                    {
                        "kind": "confidence",
                        "protected": list(secret.protected),
                        "should_share": False,
                    },
                    {"fill": index, "owner": owner, "asker": asker},
                )
                for style, request in conf.requests.model_dump().items()
            ]
        )
    return stream


def _vignette_stream(spec: _Spec, tpl: _Vignette) -> list[list[Item]]:
    vig = spec.vignettes
    rng = seeded_rng(spec.name, tpl.id)
    used: set[str] = set()
    facts = rng.sample(vig.facts, vig.fills_per_template)
    stream: list[list[Item]] = []
    for index, fact in enumerate(facts):
        a, b, c = _names(rng, spec.people, 3, used)
        values = {"a": a, "b": b, "c": c, "fact": fact.they if tpl.tier == 3 else fact.first}
        task = render(tpl.task, values)
        stream.append(
            [
                _item(
                    spec,
                    chat(f"{render(story, values)}\n\n{task}"),
                    variant,
                    tpl.id,
                    tpl.category,
                    {
                        "kind": "vignette",
                        "protected": list(fact.protected),
                        "should_share": variant == "permitted",
                        "tier": tpl.tier,
                    },
                    {"fill": index, "names": [a, b, c]},
                )
                for variant, story in (("private", tpl.private), ("permitted", tpl.permitted))
            ]
        )
    return stream


def _items(spec: _Spec, source: str) -> list[Item]:
    pii = [_pii_stream(spec, t) for t in spec.pii.templates]
    confidence = [_confidence_stream(spec, t) for t in spec.confidence.templates]
    vignettes = [_vignette_stream(spec, t) for t in spec.vignettes.templates]
    return check_unique(round_robin(interleave(pii, confidence, vignettes)), source)


def load_privacy(path: str | Path | None = None) -> list[Item]:
    """Load the built-in privacy suite, or a spec in the same format from `path`."""
    return load_spec(_DATA_FILE, _Spec, _items, path)

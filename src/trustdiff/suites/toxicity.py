"""Built-in toxicity suite (DESIGN §5 Toxicity): prompts that invite rudeness.

Templates in ``data/toxicity_templates.yaml`` are expanded over their slots, and every prompt is
asked under a benign and an adversarial system prompt (DecodingTrust's contrast), so the metric can
show whether a derived model turns toxic only when told it may. The prompts invite rudeness but
carry no slurs and name no real person.

Item fields:
- ``variant``: ``benign_system`` | ``adversarial_system`` (the two of one prompt are adjacent);
- ``cluster``: the template id (all fills and both system prompts of a template);
- ``labels``: ``kind`` (``continuation`` — angry text to continue — or ``insult`` — a request for
  an insult) and ``category`` (the everyday setting);
- ``meta``: ``template``, ``category``, ``fill`` (index within the template), ``slots``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    render,
    require_placeholders,
    round_robin,
    sample_fills,
    seeded_rng,
)

DIMENSION = "toxicity"
_DATA_FILE = "toxicity_templates.yaml"
VARIANTS = ("benign_system", "adversarial_system")


class _SystemPrompts(Strict):
    """The two system prompts every prompt is asked under."""

    benign_system: Text
    """Ordinary assistant prompt."""
    adversarial_system: Text
    """Prompt that licenses rudeness (DecodingTrust's contrast)."""


class _Template(Strict):
    """One prompt template, expanded over the product of its slot values."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Everyday setting (family, traffic, …), for reporting and balance."""
    kind: Literal["continuation", "insult"]
    """`continuation` (angry text to continue) or `insult` (a request for one)."""
    text: Text
    """Prompt text with `{slot}` fields."""
    slots: dict[Id, list[Text]]
    """Values per slot; each value must be distinct."""

    @model_validator(mode="after")
    def _slots_match(self) -> _Template:
        require_placeholders(self.text, set(self.slots), f"template {self.id!r}")
        for name, values in self.slots.items():
            if len(set(values)) != len(values):
                raise ValueError(f"template {self.id!r}: slot {name!r} repeats a value")
        return self


class _Spec(SpecHeader):
    """The toxicity spec file."""

    fills_per_template: int = Field(ge=1)
    """Distinct slot combinations drawn per template."""
    system_prompts: _SystemPrompts
    """The benign and adversarial system prompts."""
    templates: list[_Template] = Field(min_length=1)
    """Templates, in the round-robin order."""

    @model_validator(mode="after")
    def _unique_ids(self) -> _Spec:
        ids = [t.id for t in self.templates]
        if len(set(ids)) != len(ids):
            raise ValueError("template ids must be unique")
        return self


def _items(spec: _Spec, source: str) -> list[Item]:
    """Expand every template; the benign and adversarial copies of a prompt stay adjacent."""
    systems = spec.system_prompts.model_dump()
    streams: list[list[list[Item]]] = []
    for tpl in spec.templates:
        rng = seeded_rng(spec.name, tpl.id)
        fills = sample_fills(tpl.slots, spec.fills_per_template, rng, f"template {tpl.id!r}")
        stream: list[list[Item]] = []
        for index, values in enumerate(fills):
            prompt = render(tpl.text, values)
            stream.append(
                [
                    make_item(
                        spec.suite_id,
                        DIMENSION,
                        chat(prompt, systems[variant]),
                        variant=variant,
                        cluster=tpl.id,
                        labels={"kind": tpl.kind, "category": tpl.category},
                        meta={
                            "template": tpl.id,
                            "category": tpl.category,
                            "fill": index,
                            "slots": values,
                        },
                    )
                    for variant in VARIANTS
                ]
            )
        streams.append(stream)
    return check_unique(round_robin(streams), source)


def load_toxicity(path: str | Path | None = None) -> list[Item]:
    """Load the built-in toxicity suite, or a spec in the same format from `path`."""
    return load_spec(_DATA_FILE, _Spec, _items, path)

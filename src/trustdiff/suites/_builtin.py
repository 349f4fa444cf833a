"""Machinery shared by the built-in template suites (DESIGN §5, §9).

Every built-in suite is a YAML spec of templates plus a small module that expands it into Items.
What they have in common lives here, so all of them validate their spec the same way (a
`ValueError` naming the file and the place), seed their generators from content rather than
global state (ids stay stable when a template is added), word multiple-choice prompts the same way
(lettered choices an offline extractor can score), and order items the same way (round-robin over
templates, all variants of one fill adjacent, so any `--limit N` prefix is balanced).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from trustdiff.records import Item, Message, stable_hash

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]

LETTERS = "ABCDEFGH"
IDK = "I don't know"
UNKNOWN = "Cannot be determined"


class Strict(BaseModel):
    """Base of the spec models: frozen and strict, so a typo in a YAML key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class SpecHeader(Strict):
    """Fields every built-in spec file starts with."""

    name: Text
    """Suite name; with `version` it forms the Item.suite value `name@version`."""
    version: int
    """Bumped whenever items change, so stored samples are never paired with edited prompts."""
    licence: Text
    """Licence of the authored content."""
    description: Text
    """What the suite probes, for the registry and the report."""

    @property
    def suite_id(self) -> str:
        """The `name@version` stamped on every Item."""
        return f"{self.name}@{self.version}"


M = TypeVar("M", bound=BaseModel)


def parse_spec(text: str, source: str, model: type[M]) -> M:
    """Parse and validate one spec; every failure is a ValueError naming the file and place."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'top level'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{source}: invalid {raw.get('name', 'suite')} spec: {problems}") from exc


def load_spec(
    filename: str,
    model: type[M],
    build: Callable[[M, str], list[Item]],
    path: str | Path | None = None,
) -> list[Item]:
    """Read a spec and expand it; a generation failure also names the file it came from."""
    spec, source = read_spec(filename, model, path)
    try:
        return build(spec, source)
    except ValueError as exc:
        if str(exc).startswith(source):
            raise
        raise ValueError(f"{source}: {exc}") from exc


def read_spec(filename: str, model: type[M], path: str | Path | None = None) -> tuple[M, str]:
    """Read a spec from `path`, or the packaged `data/<filename>` (works from a wheel too)."""
    if path is not None:
        p = Path(path)
        return parse_spec(p.read_text(encoding="utf-8"), str(p), model), str(p)
    res = resources.files("trustdiff.suites").joinpath("data").joinpath(filename)
    source = f"trustdiff.suites/data/{filename}"
    return parse_spec(res.read_text(encoding="utf-8"), source, model), source


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded from content (suite, template id): independent of other templates."""
    return random.Random(int(stable_hash([str(p) for p in parts]), 16))


def placeholders(template: str) -> set[str]:
    """Names of the `{slot}` fields a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def require_placeholders(template: str, allowed: set[str], what: str) -> str:
    """Validator helper: a template may only use the slots its spec defines."""
    unknown = placeholders(template) - allowed
    if unknown:
        raise ValueError(f"{what} uses undefined slot(s) {sorted(unknown)}")
    return template


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill a template and capitalise the first letter (slots may open a sentence)."""
    text = template.format_map(values)
    return text[:1].upper() + text[1:]


def sample_fills(
    slots: Mapping[str, Sequence[str]], n: int, rng: random.Random, what: str
) -> list[dict[str, str]]:
    """`n` distinct slot combinations, drawn without replacement from the full product."""
    keys = sorted(slots)
    combos = list(product(*(slots[k] for k in keys)))
    if len(combos) < n:
        raise ValueError(f"{what}: only {len(combos)} slot combinations, {n} needed")
    rng.shuffle(combos)
    return [dict(zip(keys, combo, strict=True)) for combo in combos[:n]]


def choice_block(choices: Sequence[str]) -> str:
    """Lettered choices, one per line (`A. …`), the form the offline extractor scores."""
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def letter_instruction(n: int) -> str:
    """The closing instruction of every multiple-choice prompt."""
    letters = [LETTERS[i] for i in range(n)]
    listed = ", ".join(letters[:-1]) + f" or {letters[-1]}"
    return f"Answer with the letter of your choice ({listed}) only."


def mc_prompt(stem: str, choices: Sequence[str]) -> str:
    """Stem, lettered choices and the letter instruction."""
    return f"{stem}\n{choice_block(choices)}\n{letter_instruction(len(choices))}"


def chat(user: str, system: str | None = None) -> tuple[Message, ...]:
    """Messages of a single-turn probe, with the item's own system prompt first when given."""
    msgs = [Message(role="system", content=system)] if system else []
    return (*msgs, Message(role="user", content=user))


def make_item(
    suite_id: str,
    dimension: str,
    messages: tuple[Message, ...],
    *,
    variant: str,
    cluster: str,
    labels: dict[str, Any],
    meta: dict[str, Any],
) -> Item:
    """An Item with the content-derived id every suite uses."""
    return Item(
        id=Item.make_id(suite_id, messages, variant),
        suite=suite_id,
        dimension=dimension,
        messages=messages,
        labels=labels,
        cluster=cluster,
        variant=variant,
        meta=meta,
    )


def round_robin(streams: Sequence[Sequence[Sequence[Item]]]) -> list[Item]:
    """Interleave streams unit by unit: unit i of every stream, then unit i+1, ….

    A stream is one template's fills; a unit is all variants of one fill, kept adjacent. So a
    prefix of any length spans as many templates as it can and never splits a contrast early.
    """
    items: list[Item] = []
    for index in range(max((len(s) for s in streams), default=0)):
        for stream in streams:
            if index < len(stream):
                items.extend(stream[index])
    return items


def interleave(*groups: Sequence[Any]) -> list[Any]:
    """Merge lists alternately (a0, b0, a1, b1, …) so several formats share every prefix."""
    merged: list[Any] = []
    for index in range(max((len(g) for g in groups), default=0)):
        merged.extend(g[index] for g in groups if index < len(g))
    return merged


def check_unique(items: list[Item], source: str) -> list[Item]:
    """Refuse a spec that yields the same prompt twice (it would double-count in every metric)."""
    seen: dict[tuple[tuple[str, str], ...], str] = {}
    for it in items:
        key = tuple((m.role, " ".join(m.content.lower().split())) for m in it.messages)
        here = f"cluster {it.cluster!r}, variant {it.variant!r}"
        if key in seen:
            raise ValueError(f"{source}: duplicate prompt in {here} (also in {seen[key]})")
        seen[key] = here
    return items

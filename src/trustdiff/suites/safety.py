"""Built-in safety contrast suite (DESIGN §5 Safety, §9).

Each pair holds a harmful request the model should refuse and a benign look-alike it should
answer, so refusal calibration penalises both harmful compliance and over-refusal. The prompts
are authored by us (no third-party licence) and live in ``data/safety_contrast.yaml``; harmful
prompts state the request without operational detail.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from trustdiff.records import Item, Message

SUITE_NAME = "safety-contrast"
DIMENSION = "safety"
_DATA_FILE = "safety_contrast.yaml"

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Pair(_Strict):
    harmful: _Text
    benign: _Text
    trigger: _Text


class _Category(_Strict):
    id: _Id
    title: _Text
    pairs: list[_Pair]


class _SuiteFile(_Strict):
    name: _Text
    version: int
    licence: _Text
    description: _Text
    categories: list[_Category]


def _where(loc: tuple[int | str, ...], raw: Any) -> str:
    """Render a pydantic error location as `category 'cyber' (#1), pair 3, field benign`."""
    parts: list[str] = []
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "categories" and isinstance(rest[1], int):
        idx = rest[1]
        cats = raw.get("categories") if isinstance(raw, dict) else None
        cat = cats[idx] if isinstance(cats, list) and idx < len(cats) else None
        cid = cat.get("id") if isinstance(cat, dict) else None
        parts.append(f"category {cid!r} (#{idx})" if cid else f"category #{idx}")
        rest = rest[2:]
        if len(rest) >= 2 and rest[0] == "pairs" and isinstance(rest[1], int):
            parts.append(f"pair {rest[1]}")
            rest = rest[2:]
    if rest:
        parts.append("field " + ".".join(str(p) for p in rest))
    return ", ".join(parts) or "top level"


def _parse(text: str, source: str) -> _SuiteFile:
    """Parse and validate the suite file; every failure is a ValueError naming where it is."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    try:
        suite = _SuiteFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(tuple(e['loc']), raw)}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{source}: invalid safety contrast suite: {problems}") from exc
    if not suite.categories:
        raise ValueError(f"{source}: no categories")
    seen_ids: set[str] = set()
    seen_prompts: dict[str, str] = {}
    for cat in suite.categories:
        if cat.id in seen_ids:
            raise ValueError(f"{source}: duplicate category id {cat.id!r}")
        seen_ids.add(cat.id)
        if not cat.pairs:
            raise ValueError(f"{source}: category {cat.id!r} has no pairs")
        for i, pair in enumerate(cat.pairs):
            for variant, prompt in (("harmful", pair.harmful), ("benign", pair.benign)):
                here = f"category {cat.id!r}, pair {i}, {variant}"
                if prompt in seen_prompts:
                    raise ValueError(
                        f"{source}: {here}: duplicate prompt (also {seen_prompts[prompt]})"
                    )
                seen_prompts[prompt] = here
    return suite


def _items(suite: _SuiteFile) -> list[Item]:
    """Build Items pair by pair, round-robin over categories.

    Users take the first N items (`--limit N`), so any even-length prefix must consist of whole
    pairs spread evenly over the categories.
    """
    suite_id = f"{suite.name}@{suite.version}"
    items: list[Item] = []
    for index in range(max(len(c.pairs) for c in suite.categories)):
        for cat in suite.categories:
            if index >= len(cat.pairs):
                continue
            pair = cat.pairs[index]
            for variant, prompt in (("harmful", pair.harmful), ("benign", pair.benign)):
                messages = (Message(role="user", content=prompt),)
                items.append(
                    Item(
                        id=Item.make_id(suite_id, messages, variant),
                        suite=suite_id,
                        dimension=DIMENSION,
                        messages=messages,
                        labels={"harmful": variant == "harmful", "category": cat.id},
                        cluster=f"{cat.id}/{index:02d}",
                        variant=variant,
                        meta={"category": cat.id, "pair": index, "trigger": pair.trigger},
                    )
                )
    return items


def load_contrast_file(path: str | Path) -> list[Item]:
    """Load a contrast suite from any YAML file in the built-in format (tests, user suites)."""
    p = Path(path)
    return _items(_parse(p.read_text(encoding="utf-8"), str(p)))


def load_safety_contrast() -> list[Item]:
    """Load the built-in suite shipped as package data (works from a wheel or a checkout)."""
    res = resources.files("trustdiff.suites").joinpath("data").joinpath(_DATA_FILE)
    return _items(_parse(res.read_text(encoding="utf-8"), f"trustdiff.suites/data/{_DATA_FILE}"))

"""User suites: your own probes as JSONL or YAML, validated with line numbers.

Schema (one item per JSONL line, or a YAML mapping `{name, version, dimension, licence,
items: [...]}`); each item has:

- `prompt` (string) **or** `messages` (list of `{role, content}`), required;
- `dimension` (default: the file's), one of safety, toxicity, bias, ethics, privacy, ood,
  capability — its labels are what that dimension's metrics read (see docs/suites.md);
- `labels` (mapping), `cluster`, `variant`, `id` (default: content hash), `meta`.

`--suite path/to/probes.jsonl` audits it; the suite name is the file stem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trustdiff.errors import TrustdiffError
from trustdiff.records import Item, Message

Dimension = Literal["safety", "toxicity", "bias", "ethics", "privacy", "ood", "capability"]


class _UserItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    messages: list[Message] | None = None
    dimension: Dimension | None = None
    labels: dict[str, Any] = Field(default_factory=dict)
    cluster: str = ""
    variant: str = ""
    id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_prompt(self) -> _UserItem:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.prompt is not None and not self.prompt.strip():
            raise ValueError("'prompt' is empty")
        return self


def _error(path: Path, where: str, exc: ValidationError | ValueError) -> TrustdiffError:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "item"
        return TrustdiffError(f"{path}:{where}: {loc}: {first['msg']}")
    return TrustdiffError(f"{path}:{where}: {exc}")


def _to_item(raw: _UserItem, suite: str, default_dim: str | None, where: str, path: Path) -> Item:
    dimension = raw.dimension or default_dim
    if dimension is None:
        raise TrustdiffError(f"{path}:{where}: no 'dimension' (set it per item or for the file)")
    msgs = tuple(raw.messages or [Message(role="user", content=raw.prompt or "")])
    return Item(
        id=raw.id or Item.make_id(suite, msgs, raw.variant),
        suite=suite,
        dimension=dimension,
        messages=msgs,
        labels=raw.labels,
        cluster=raw.cluster,
        variant=raw.variant,
        meta={**raw.meta, "source_line": where},
    )


def load_user_suite(path: Path) -> tuple[str, str, list[Item]]:
    """(suite name, dimension of the first item, items) from a JSONL or YAML file."""
    if not path.is_file():
        raise TrustdiffError(f"suite file not found: {path}")
    suite = f"{path.stem}@1"
    items: list[Item] = []
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw = _UserItem.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TrustdiffError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            except ValidationError as exc:
                raise _error(path, str(n), exc) from None
            items.append(_to_item(raw, suite, None, str(n), path))
    elif path.suffix in (".yaml", ".yml"):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f"{mark.line + 1}" if mark is not None else "?"
            raise TrustdiffError(f"{path}:{line}: not valid YAML") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            raise TrustdiffError(f"{path}: expected a mapping with an 'items' list")
        suite = f"{doc.get('name', path.stem)}@{doc.get('version', 1)}"
        for n, entry in enumerate(doc["items"]):
            try:
                raw = _UserItem.model_validate(entry)
            except ValidationError as exc:
                raise _error(path, f"items[{n}]", exc) from None
            items.append(_to_item(raw, suite, doc.get("dimension"), f"items[{n}]", path))
    else:
        raise TrustdiffError(f"{path}: user suites are .jsonl or .yaml files")
    if not items:
        raise TrustdiffError(f"{path}: no items")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise TrustdiffError(f"{path}: duplicate item ids (identical prompts need a variant)")
    dims = {it.dimension for it in items}
    if len(dims) > 1:
        raise TrustdiffError(f"{path}: one suite file feeds one dimension (found {sorted(dims)})")
    return suite.split("@")[0], items[0].dimension, items

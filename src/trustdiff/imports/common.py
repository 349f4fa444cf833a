"""What every importer shares: the row record, the imported model's identity, item matching.

An imported model is audited exactly like a generated one because its samples are stored under
the same cache keys the audit plans: ``sample_key(imported_fingerprint(NAME), item, k)``. So a
row must be attached to the *same* Item the audit will load — a built-in suite item when its id or
prompt matches, else an item of the model's ad-hoc suite ``imported-NAME@1``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trustdiff.errors import TrustdiffError
from trustdiff.records import Item, Message, stable_hash

ADHOC_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
_SPACE = re.compile(r"\s+")


class BadImportError(TrustdiffError):
    """An import file is unreadable or holds bad rows; nothing was written."""


class ImportRow(BaseModel):
    """One generation read from a file, normalised across the JSONL, Inspect and lm-eval formats."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    source: str
    """Where the row came from (`FILE:LINE`, or `LOG!samples/ID_epoch_N.json`), for errors."""
    messages: tuple[Message, ...]
    """The prompt the model saw (chat format; a plain prompt becomes one user message)."""
    completion: str
    """Raw output text, verbatim (may still contain a think block: the parser splits it)."""
    reasoning: str | None = None
    """Reasoning the source kept apart from the text (a server's reasoning field, Inspect's
    reasoning content); None when the source has none."""
    item_id: str | None = None
    """Id the source gave the prompt; matched against built-in suite item ids first."""
    labels: dict[str, Any] = Field(default_factory=dict)
    """Labels for an ad-hoc item (e.g. `harmful: true`, `dimension`, `gold`)."""
    cluster: str = ""
    """Cluster of an ad-hoc item (items sharing it are resampled together)."""
    finish_reason: str | None = None
    """Finish reason as the source wrote it (`stop`, `length`, Inspect's `max_tokens`, …)."""
    k: int = Field(0, ge=0)
    """Sample index for repeated samples of one prompt."""
    error: str | None = None
    """The source's error for a failed generation (the sample becomes an `error` sample)."""
    thinking_opened: bool = False
    """The chat template opened the think block, so the text may start mid-reasoning."""
    prompt_tokens: int | None = None
    """Prompt tokens, when the source counted them."""
    completion_tokens: int | None = None
    """Output tokens (reasoning + answer), when the source counted them."""
    reasoning_tokens: int | None = None
    """Reasoning tokens the source reported (hidden reasoning, DESIGN §4 case 7)."""
    latency_s: float = 0.0
    """Seconds the generation took, when the source recorded it."""
    raw_fields: dict[str, Any] = Field(default_factory=dict)
    """Other source fields kept verbatim in the sample (usage, filtered responses, …)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Provenance kept on an ad-hoc item (source file, task, target)."""


def check_name(name: str) -> str:
    """Imported model names become suite names and spec strings: keep them plain."""
    if not _NAME.match(name):
        raise TrustdiffError(
            f"imported model name {name!r} must be 1-100 letters, digits, '.', '_', '+' or '-'"
        )
    return name


def imported_fingerprint(name: str) -> str:
    """Fingerprint of an imported model: its name is all that identifies it."""
    return stable_hash({"kind": "imported", "name": check_name(name)})


def adhoc_suite(name: str) -> str:
    """Suite (with version) of the rows of model `name` that match no built-in item."""
    return f"imported-{check_name(name)}@{ADHOC_VERSION}"


def normalise(text: str) -> str:
    """Prompt-matching form: casefolded, whitespace collapsed, stripped."""
    return _SPACE.sub(" ", text.casefold()).strip()


def prompt_text(messages: Sequence[Message]) -> str:
    """Normalised text of the non-system turns; system prompts are ignored when matching
    (an evaluation harness may add its own), and recorded in the sample instead."""
    return normalise("\n".join(f"{m.role}: {m.content}" for m in messages if m.role != "system"))


def full_text(messages: Sequence[Message]) -> str:
    """Normalised text of every turn, system prompts included."""
    return normalise("\n".join(f"{m.role}: {m.content}" for m in messages))


def text_of(content: Any) -> str:
    """Text of a message content: a string, or OpenAI/Inspect-style content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    raise ValueError(f"message content must be text or a list of parts, not {type(content)}")


class ItemIndex:
    """Built-in suite items by id and by normalised prompt, for attaching imported rows.

    Text matching tries the whole prompt (system turns included) first, then the non-system
    turns alone — but only where that text is unique, because several built-in items share a
    question under different system prompts (toxicity, bias) and a wrong match would pair the
    row with the wrong condition. Rows that match nothing become ad-hoc items.
    """

    def __init__(self, items: Iterable[Item]) -> None:
        self.by_id: dict[str, Item] = {}
        self.by_full: dict[str, Item | None] = {}
        self.by_turns: dict[str, Item | None] = {}
        for item in items:
            self.by_id.setdefault(item.id, item)
            for table, text in (
                (self.by_full, full_text(item.messages)),
                (self.by_turns, prompt_text(item.messages)),
            ):
                table[text] = item if text not in table else None  # None: ambiguous

    @classmethod
    def builtin(cls) -> ItemIndex:
        """Index of every authored suite's items, plus each public suite already on disk.

        An import never downloads: a public suite counts only when all its pinned files are in
        the data dir or the cache (rows answering it otherwise import as ad-hoc items).
        """
        from trustdiff.suites import SUITES
        from trustdiff.suites.public.fetch import locate

        entries = [e for e in SUITES.values() if not e.public or all(locate(f) for f in e.files)]
        return cls(item for entry in entries for item in entry.load())

    def match(self, row: ImportRow) -> Item | None:
        """The suite item a row answers: by id, then by whole prompt, then by unique turns."""
        if row.item_id and row.item_id in self.by_id:
            item = self.by_id[row.item_id]
            if prompt_text(item.messages) != prompt_text(row.messages):
                raise BadImportError(
                    f"{row.source}: item_id {row.item_id} is the built-in {item.suite} item "
                    f"{prompt_text(item.messages)[:60]!r}…, but the row's prompt differs; "
                    "fix the id or drop it to match by prompt text"
                )
            return item
        return self.by_full.get(full_text(row.messages)) or self.by_turns.get(
            prompt_text(row.messages)
        )


def adhoc_item(name: str, row: ImportRow) -> Item:
    """An item of the ad-hoc suite built from the row's prompt and labels."""
    suite = adhoc_suite(name)
    labels = dict(row.labels)
    harmful = labels.get("harmful")
    dimension = labels.get("dimension") or ("safety" if "harmful" in labels else "unknown")
    variant = ("harmful" if harmful else "benign") if isinstance(harmful, bool) else ""
    meta = {**row.meta, **({"source_item_id": row.item_id} if row.item_id else {})}
    return Item(
        id=Item.make_id(suite, row.messages, variant),
        suite=suite,
        dimension=str(dimension),
        messages=row.messages,
        labels=labels,
        cluster=row.cluster,
        variant=variant,
        meta=meta,
    )


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a JSONL file with their 1-based numbers, streamed.

    Lines are split on newline bytes only: `str.splitlines` would also split inside a JSON string
    holding a raw U+2028, which JSON allows. A line that is not UTF-8 is an error naming it.
    """
    try:
        with path.open("rb") as f:
            for number, blob in enumerate(f, start=1):
                try:
                    line = blob.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise BadImportError(
                        f"{path}:{number}: not UTF-8 text ({exc.reason})"
                    ) from None
                if line.strip():
                    yield number, line
    except OSError as exc:
        raise BadImportError(f"cannot read {path}: {exc.strerror}") from None

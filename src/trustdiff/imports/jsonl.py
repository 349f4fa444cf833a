"""The trustdiff JSONL import format (docs/import-jsonl.md): one generation per line.

Every line is validated before anything is written, and a bad line is reported with its line
number, so a user fixing a 100k-row vLLM dump sees exactly where it went wrong. Unknown keys are
errors (a misspelt `finish_reason` would otherwise be silently lost); free-form extras go in `meta`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trustdiff.imports.common import BadImportError, ImportRow, numbered_lines
from trustdiff.records import Message

MAX_SHOWN = 5
"""Bad rows quoted in one error message."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    role: Literal["system", "user", "assistant"]
    """Chat role."""
    content: str
    """Message text."""


class _Usage(BaseModel):
    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)

    prompt_tokens: int | None = Field(None, ge=0)
    """Prompt tokens."""
    completion_tokens: int | None = Field(None, ge=0)
    """Output tokens, reasoning included."""
    reasoning_tokens: int | None = Field(None, ge=0)
    """Reasoning tokens (hidden reasoning)."""


class JsonlRow(BaseModel):
    """One line of a trustdiff import file."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    prompt: str | None = None
    """The user prompt (one user turn); give this or `messages`."""
    messages: list[_Message] | None = None
    """The chat prompt, without the reply; give this or `prompt`."""
    completion: str | None = None
    """The model's output text, verbatim (think blocks included). Required unless `error`."""
    reasoning: str | None = None
    """Reasoning returned apart from the text (`reasoning_content`, `reasoning`, `thinking`)."""
    item_id: str | None = None
    """A trustdiff item id (matches a built-in item) or your own id (kept on ad-hoc items)."""
    labels: dict[str, Any] = Field(default_factory=dict)
    """Labels of an ad-hoc item, e.g. `{"harmful": true}`; `dimension` picks its dimension."""
    cluster: str = ""
    """Cluster of an ad-hoc item for clustered statistics (e.g. a template id)."""
    finish_reason: str | None = None
    """`stop`, `length`, …; `length` with unfinished reasoning counts as truncated."""
    k: int = Field(0, ge=0)
    """Sample index when a prompt was sampled several times (0, 1, …)."""
    error: str | None = None
    """Error text of a failed generation (stored as an `error` sample, excluded from rates)."""
    thinking_opened: bool | None = None
    """The chat template opened `<think>` itself (R1-style), so the text starts mid-reasoning."""
    usage: _Usage | None = None
    """Token counts, OpenAI style."""
    latency_s: float = Field(0.0, ge=0.0)
    """Seconds the generation took."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Anything else worth keeping; stored on ad-hoc items."""

    @model_validator(mode="after")
    def _one_prompt(self) -> JsonlRow:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` or `messages`")
        if self.messages is not None and not any(m.role == "user" for m in self.messages):
            raise ValueError("`messages` needs at least one user message")
        if self.prompt is not None and not self.prompt.strip():
            raise ValueError("`prompt` is empty")
        if self.completion is None and self.error is None:
            raise ValueError("`completion` is required (or `error` for a failed generation)")
        return self

    def to_row(self, source: str, thinking_opened: bool) -> ImportRow:
        if self.messages is not None:
            msgs = tuple(Message(role=m.role, content=m.content) for m in self.messages)
        else:
            msgs = (Message(role="user", content=self.prompt or ""),)
        usage = self.usage or _Usage()
        return ImportRow(
            source=source,
            messages=msgs,
            completion=self.completion or "",
            reasoning=self.reasoning,
            item_id=self.item_id,
            labels=self.labels,
            cluster=self.cluster,
            finish_reason=self.finish_reason,
            k=self.k,
            error=self.error,
            thinking_opened=thinking_opened
            if self.thinking_opened is None
            else self.thinking_opened,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            latency_s=self.latency_s,
            raw_fields={"usage": self.usage.model_dump(exclude_none=True)} if self.usage else {},
            meta={**self.meta, "source": source.rsplit(":", 1)[0]},
        )


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        known = ", ".join(JsonlRow.model_fields)
        message = f"unknown field (known: {known}; put extras in `meta`)"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def read_jsonl(
    paths: Sequence[Path], *, skip_bad: bool = False, thinking_opened: bool = False
) -> tuple[list[ImportRow], int]:
    """Rows of every file (blank lines ignored) and the number of bad rows skipped.

    Without `skip_bad` any bad row raises :class:`BadImportError` naming up to five bad lines
    and the total, before anything is written.
    """
    rows: list[ImportRow] = []
    bad: list[str] = []
    for path in paths:
        for number, line in numbered_lines(path):
            where = f"{path}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(data, dict):
                bad.append(f"{where}: expected a JSON object, got {type(data).__name__}")
                continue
            try:
                rows.append(JsonlRow.model_validate(data).to_row(where, thinking_opened))
            except ValidationError as exc:
                bad.append(f"{where}: {_problem(exc)}")
    if bad and not skip_bad:
        shown = "; ".join(bad[:MAX_SHOWN])
        more = f" (and {len(bad) - MAX_SHOWN} more)" if len(bad) > MAX_SHOWN else ""
        raise BadImportError(
            f"{len(bad)} bad row(s), nothing imported: {shown}{more}; fix them or pass --skip-bad"
        )
    if not rows:
        raise BadImportError(f"no rows to import in {', '.join(str(p) for p in paths)}")
    return rows, len(bad)

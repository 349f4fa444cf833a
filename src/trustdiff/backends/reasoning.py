"""Split a model's output into reasoning and final answer (DESIGN §4).

Every backend's output goes through :func:`parse_output`, so the nine output shapes of §4 are
classified in one place and each Sample records which case applied (``parse_case``). The raw text
is kept by the caller; the parser only returns the two parts, an outcome and the case.

Measurement choices (the metrics depend on them):

* **Truncated means the *thinking* was cut by the budget**: an open tag that never closes,
  template-opened thinking that never closes (whatever ``finish_reason`` says), or
  ``finish_reason == "length"`` with reasoning present (tags, a server field, or hidden reasoning
  tokens) and an empty answer. A truncated sample is never an answer and never a refusal.
* A plain output with no reasoning that hits ``length`` is an *answer cut at max tokens*:
  ANSWERED (case 3), because the model chose not to think and the judges can still read it.
* Repeated or orphan close tags: split at the last close; everything before it is reasoning.
* A server's reasoning field is not trusted blindly: if ``content`` still holds a think block, the
  content is re-parsed and its reasoning appended to the field's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from trustdiff.records import Outcome

__all__ = [
    "DEFAULT_MARKERS",
    "GPT_OSS",
    "THINK",
    "Markers",
    "Parsed",
    "parse_output",
    "reasoning_from_fields",
]

_CUT_REASONS = frozenset({"length", "max_tokens"})
"""Finish reasons meaning "stopped by the token budget" (OpenAI/vLLM/Ollama, Anthropic)."""

_REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")
"""Server-split reasoning fields, highest priority first (vLLM older/DeepSeek/llama.cpp,
vLLM newer, Ollama)."""


@dataclass(frozen=True)
class Markers:
    """One tag style delimiting reasoning inside the output text.

    Only ``open``/``close``/``name`` are needed for plain tag styles; the optional fields exist for
    formats whose answer is itself wrapped (gpt-oss's final channel, ``<|begin_of_solution|>``).
    """

    open: str
    close: str
    name: str = ""
    answer_start: str = ""
    """Header starting the answer; when present the split happens at its last occurrence."""
    answer_end: tuple[str, ...] = ()
    """Terminators stripped from the end of the answer."""
    noise: tuple[str, ...] = ()
    """Role headers between blocks, removed from both parts."""
    close_alone: bool = True
    """Whether a close with no open (and no prefilled open) still ends reasoning. False where the
    close is a generic end-of-message token (gpt-oss ``<|end|>`` is also Phi-3's turn end)."""


THINK = Markers("<think>", "</think>", "think")
GPT_OSS = Markers(
    "<|channel|>analysis<|message|>",
    "<|end|>",
    "gpt-oss",
    answer_start="<|channel|>final<|message|>",
    answer_end=("<|return|>", "<|end|>"),
    noise=("<|start|>assistant",),
    close_alone=False,
)
DEFAULT_MARKERS: tuple[Markers, ...] = (
    THINK,
    Markers(
        "<|begin_of_thought|>",
        "<|end_of_thought|>",
        "begin_of_thought",
        answer_start="<|begin_of_solution|>",
        answer_end=("<|end_of_solution|>",),
    ),
    Markers("◁think▷", "◁/think▷", "kimi"),
    Markers("<thinking>", "</thinking>", "thinking"),
    GPT_OSS,
)


@dataclass(frozen=True)
class Parsed:
    """Result of parsing one output."""

    reasoning: str | None
    """None = the model showed no reasoning; "" = an empty think block."""
    answer: str
    """Final answer, stripped; "" when truncated."""
    outcome: Outcome
    """ANSWERED / TRUNCATED / EMPTY (the parser never returns ERROR)."""
    case: int
    """Most specific DESIGN §4 case that applied (1..9)."""
    note: str = ""
    """Short human-readable explanation, for auditing the parser."""


@dataclass(frozen=True)
class _Split:
    """Intermediate result, before finish_reason decides the outcome."""

    reasoning: str | None
    answer: str
    truncated: bool
    case: int
    note: str


def reasoning_from_fields(message: Mapping[str, Any]) -> str | None:
    """Reads server-split reasoning: ``reasoning_content`` (vLLM older, DeepSeek, llama.cpp),
    ``reasoning`` (vLLM newer), ``thinking`` (Ollama), in that priority.

    Empty strings, None and non-str values are skipped (servers send ``null`` or ``""`` for "no
    reasoning"). A whitespace-only value is kept: it means an empty think block.
    """
    for key in _REASONING_FIELDS:
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def parse_output(
    content: str | None,
    *,
    finish_reason: str | None = None,
    reasoning_field: str | None = None,
    reasoning_tokens: int | None = None,
    thinking_opened: bool = False,
    markers: Sequence[Markers] = DEFAULT_MARKERS,
) -> Parsed:
    """Split ``content`` into reasoning and answer and classify it (DESIGN §4 cases 1-9).

    ``thinking_opened`` says the chat template or our prompt prefilled the open tag, so the
    output may start mid-reasoning. ``reasoning_field`` is a server's split (see
    :func:`reasoning_from_fields`); when it is set, ``thinking_opened`` is ignored because the
    server has already consumed the prefilled block. ``reasoning_tokens`` only matters when no
    reasoning text is visible (hidden reasoning, case 7).
    """
    text = content or ""
    if reasoning_field:
        split = _split_field(text, reasoning_field, markers)
    else:
        split = _split_text(text, thinking_opened, markers)
        if split.reasoning is None and reasoning_tokens and reasoning_tokens > 0:
            note = f"hidden reasoning: {reasoning_tokens} tokens"
            split = _Split(None, split.answer, False, 7, note)
    return _finish(split, finish_reason)


def _finish(split: _Split, finish_reason: str | None) -> Parsed:
    """Turn a split into an outcome; a budget stop with reasoning and no answer is truncation."""
    if split.truncated:
        return Parsed(split.reasoning, "", Outcome.TRUNCATED, 5, split.note)
    cut = finish_reason in _CUT_REASONS
    if not split.answer:
        thought = split.reasoning is not None or split.case == 7
        if cut and thought:
            note = _notes(split.note, f"finish_reason={finish_reason} before any answer")
            return Parsed(split.reasoning, "", Outcome.TRUNCATED, 5, note)
        return Parsed(split.reasoning, "", Outcome.EMPTY, split.case, split.note)
    note = _notes(split.note, "answer cut at max tokens" if cut else "")
    return Parsed(split.reasoning, split.answer, Outcome.ANSWERED, split.case, note)


def _split_field(text: str, field: str, markers: Sequence[Markers]) -> _Split:
    """Case 6: trust the server's split unless ``content`` still holds a think block."""
    own = field.strip()
    inner = _split_text(text, False, markers)
    if inner.reasoning is None:
        note = "reasoning from server field" + ("" if own else " (empty)")
        return _Split(own, inner.answer, False, 6, note)
    joined = "\n".join(part for part in (own, inner.reasoning) if part)
    if inner.truncated:
        return _Split(joined, "", True, 5, _notes("server field + content", inner.note))
    return _Split(joined, inner.answer, False, 6, f"server field + content re-parsed: {inner.note}")


def _split_text(text: str, thinking_opened: bool, markers: Sequence[Markers]) -> _Split:
    """Parse reasoning inline in the text (every case but 6 and 7)."""
    if not text.strip():
        return _Split(None, "", False, 3, "empty output")
    style = _detect(text, markers, thinking_opened)
    if style is None:
        if thinking_opened:
            return _Split(text.strip(), "", True, 5, "template-opened thinking never closed")
        return _Split(None, _plain_answer(text, markers), False, 3, "no reasoning markers")
    return _split_styled(text, style, thinking_opened)


def _detect(text: str, markers: Sequence[Markers], thinking_opened: bool) -> Markers | None:
    """The style whose open (or usable close) tag occurs first; ties go to the earlier style."""
    best: Markers | None = None
    best_at = len(text) + 1
    for m in markers:
        for tag, usable in ((m.open, True), (m.close, m.close_alone or thinking_opened)):
            at = text.find(tag) if tag and usable else -1
            if 0 <= at < best_at:
                best, best_at = m, at
    return best


def _split_styled(text: str, m: Markers, thinking_opened: bool) -> _Split:
    """Cases 1, 2, 4, 5, 8, 9 for one detected tag style."""
    at = text.rfind(m.answer_start) if m.answer_start else -1
    if at >= 0:
        before, after = text[:at], text[at:]
        closes = before.count(m.close)
    else:
        at = text.rfind(m.close)
        if at < 0:
            why = f"{m.open} never closed" if m.open in text else "thinking never closed"
            return _Split(_clean_reasoning(text, m), "", True, 5, why)
        before, after = text[:at], text[at + len(m.close) :]
        closes = before.count(m.close) + 1
    reasoning = _clean_reasoning(before, m)
    answer = _clean_answer(after, m)
    opened = m.open in before
    if closes > 1:
        case, note = 9, f"split at last of {closes} {m.close}"
    elif not opened and not thinking_opened:
        case, note = 9, f"orphan {m.close} (no open tag)"
    elif not reasoning:
        case, note = 4, f"empty {m.name or m.open} block"
    elif not opened:
        case, note = 2, f"template-opened thinking closed by {m.close}"
    elif m.open == THINK.open and m.close == THINK.close:
        case, note = 1, "<think> block"
    else:
        case, note = 8, f"{m.name or m.open} markers"
    return _Split(reasoning, answer, False, case, note)


@lru_cache(maxsize=64)
def _tag_pattern(m: Markers) -> re.Pattern[str]:
    tags = sorted((t for t in (m.open, m.close, *m.noise) if t), key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in tags))


def _clean_reasoning(part: str, m: Markers) -> str:
    """Drop every tag of the style (repeated opens/closes too); keep the text between them."""
    pieces = (p.strip() for p in _tag_pattern(m).split(part))
    return "\n".join(p for p in pieces if p)


def _clean_answer(part: str, m: Markers) -> str:
    """Strip the answer header (last one), role headers and trailing terminators."""
    if m.answer_start and m.answer_start in part:
        part = part[part.rfind(m.answer_start) + len(m.answer_start) :]
    for tag in m.noise:
        part = part.replace(tag, "")
    part = part.strip()
    for end in m.answer_end:
        if part.endswith(end):
            part = part[: -len(end)].rstrip()
    return part


def _plain_answer(text: str, markers: Sequence[Markers]) -> str:
    """Answer of an output with no reasoning; unwraps e.g. a lone gpt-oss final channel."""
    for m in markers:
        if m.answer_start and m.answer_start in text:
            return _clean_answer(text, m)
    return text.strip()


def _notes(*parts: str) -> str:
    return "; ".join(p for p in parts if p)

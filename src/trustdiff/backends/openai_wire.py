"""Wire format of OpenAI-compatible chat completions: request bodies, replies, retry timing.

Pure functions and small records, kept apart from the HTTP client in
:mod:`trustdiff.backends.openai_compat` so they can be read and tested without a server.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.reasoning import THINK, reasoning_from_fields
from trustdiff.imports.common import text_of
from trustdiff.records import Message

RAW_MESSAGE_FIELDS = ("reasoning_content", "reasoning", "thinking", "refusal")
"""Message fields copied verbatim into `Generation.raw_fields` (never headers)."""
PER_ITEM_4XX = frozenset({400, 413, 422})
"""Client errors that reject one request, not the server: they become per-item errors."""


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry; one instance governs every request of a backend."""

    max_retries: int = 5
    """Retries of one request (so at most `max_retries + 1` attempts)."""
    budget: int = 100
    """Retries allowed across all requests of this backend: a flaky server cannot stall a run."""
    backoff_s: float = 0.5
    """First backoff step; doubles per retry of the same request."""
    backoff_cap_s: float = 30.0
    """Longest backoff step."""
    retry_after_cap_s: float = 60.0
    """Longest wait a server's Retry-After header can impose."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry `attempt + 1`: the server's Retry-After (capped) when it
        gave one, else exponential backoff with jitter (half fixed, half random) so concurrent
        requests do not retry in lockstep."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap_s)
        step = min(self.backoff_cap_s, self.backoff_s * 2.0**attempt)
        return step * (0.5 + random.random() / 2)


@dataclass(eq=False)
class Transient(Exception):
    """A failed attempt worth retrying; `fatal` says what exhausting the retries means."""

    reason: str
    retry_after: float | None = None
    fatal: bool = False
    refused: bool = False
    """Nothing accepted the connection (fails at once if the server never answered)."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `extra` into `base` (nested mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def build_body(
    model: str,
    messages: Sequence[Message],
    params: GenParams,
    *,
    prefill: str = "",
    k: int = 0,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The chat-completions request body. Non-OpenAI sampling knobs are sent only when set
    (under both vLLM's and llama.cpp's names), so strict servers accept the default body."""
    chat = [m.model_dump() for m in messages]
    body: dict[str, Any] = {
        "model": model,
        "messages": chat,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "seed": params.seed + k,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    if params.top_k:
        body["top_k"] = params.top_k
    if params.repeat_penalty != 1.0:
        body["repetition_penalty"] = params.repeat_penalty
        body["repeat_penalty"] = params.repeat_penalty
    if prefill:
        chat.append({"role": "assistant", "content": prefill})
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    return _merge(body, extra_body or {})


def _text(content: Any) -> str:
    """Message content as text (the importers' rule); anything else is a malformed reply."""
    try:
        return text_of(content)
    except ValueError:
        raise Transient(f"malformed response: content is {type(content).__name__}") from None


def parse_completion(data: Any, latency_s: float) -> Generation:
    """A chat-completions JSON reply as a Generation; a reply without the expected shape is
    malformed (retried, since a proxy or an overloaded server can garble one reply)."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        usage = data.get("usage") or {}
        details = usage.get("completion_tokens_details") or {}
        hidden = details.get("reasoning_tokens")
        raw = {f: message[f] for f in RAW_MESSAGE_FIELDS if message.get(f) is not None}
        if usage:
            raw["usage"] = usage
        return Generation(
            text=_text(message.get("content")),
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=latency_s,
            reasoning_field=reasoning_from_fields(message),
            reasoning_tokens=int(hidden) if isinstance(hidden, int) else None,
            raw_fields=raw,
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise Transient("malformed response: not a chat completion") from None


def continuation(gen: Generation, prefill: str) -> Generation:
    """The generated continuation of a prefilled assistant turn (prompted reasoning), as raw text.

    llama-server returns the turn *with* its prefill in `content` (vLLM only the continuation):
    the prefill is ours, so it is cut off again. A server reasoning parser that splits the
    continuation cannot know our prefill opened (or closed) the thinking — vLLM's `deepseek_r1`
    files everything before `</think>`, or all of it when there is none, under `reasoning` — so
    the split is undone (`reasoning + </think> + content`) and the protocol's own parse applies.
    Both repairs are recorded in `raw_fields`, next to the server's fields.
    """
    if not prefill:
        return gen
    if gen.text.startswith(prefill):
        gen.text = gen.text[len(prefill) :]
        gen.raw_fields["prefill_echoed"] = True
    if gen.reasoning_field is not None:
        tail = THINK.close + gen.text if gen.text else ""
        gen.text = gen.reasoning_field + tail
        gen.reasoning_field = None
        gen.raw_fields["server_split_undone"] = True
    return gen


def estimate_tokens(text: str) -> int:
    """Rough count (≈ 4 UTF-8 bytes per token in English BPE vocabularies) for servers without
    a tokenize endpoint; only the answer/reasoning token split of a sample rests on it."""
    return math.ceil(len(text.encode("utf-8")) / 4) if text else 0

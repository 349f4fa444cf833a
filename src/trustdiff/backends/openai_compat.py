"""OpenAI-compatible HTTP backend (`openai:URL#MODEL`): vLLM, llama-server, SGLang, hosted APIs.

Plain httpx rather than the openai SDK: an audit needs the raw reasoning fields servers add to a
message, one retry policy for the sync and async paths (Retry-After honoured, a bound on total
retries), and error lines that cannot contain the API key (it travels only in the
`Authorization` header; server error text is scrubbed of it too).

Two kinds of failure. A request rejected for this item (after earlier requests succeeded: HTTP
400, or 5xx, malformed replies or timeouts persisting through the retries) raises `BackendError`:
the runner stores an `error` sample. A server that cannot serve the audit (nothing listening,
unknown model, key refused, connection lost on every retry, retry budget spent, or no request
ever succeeding) raises `ServerUnavailableError`: the audit stops with one line, finished
samples stay stored.

Prefill (`reasoning=prompted`) is sent as a final assistant message with
`continue_final_message: true, add_generation_prompt: false` (vLLM; llama-server continues a
final assistant message by itself). What comes back is reduced to the generated continuation
(:func:`continuation`). Servers supporting neither need `reasoning=none|native`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.reasoning import THINK, reasoning_from_fields
from trustdiff.backends.spec import ModelSpec
from trustdiff.errors import BackendError, TrustdiffError
from trustdiff.records import Message

log = logging.getLogger(__name__)

RAW_MESSAGE_FIELDS = ("reasoning_content", "reasoning", "thinking", "refusal")
"""Message fields copied verbatim into `Generation.raw_fields` (never headers)."""
_PER_ITEM_4XX = frozenset({400, 413, 422})


class ServerUnavailableError(TrustdiffError):
    """The server cannot serve this audit (unreachable, unknown model, key refused, retries
    exhausted). Not a BackendError on purpose: the runner turns those into per-item `error`
    samples, whereas this one must stop the audit."""


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
class _Transient(Exception):
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
    """Message content as text: a string, null, or a list of `{type: text, text}` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    raise _Transient(f"malformed response: content is {type(content).__name__}")


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
        raise _Transient("malformed response: not a chat completion") from None


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


class OpenAIBackend:
    """A model served over the OpenAI chat-completions API. Thread-safe; `generate` and
    `agenerate` share the concurrency limit's size, the retry policy and the retry budget."""

    def __init__(self, spec: ModelSpec, *, policy: RetryPolicy | None = None) -> None:
        if spec.kind != "openai":
            raise BackendError(f"OpenAIBackend needs an openai: spec, not {spec.kind}:")
        self.spec = spec
        self.name = f"openai-compatible HTTP (httpx {httpx.__version__})"
        self.concurrency = spec.concurrency
        """Requests the runner keeps in flight (worker threads share this client)."""
        self.policy = policy or RetryPolicy(max_retries=spec.max_retries, budget=spec.retry_budget)
        self._key = self._read_key(spec.api_key_env)
        self._url = f"{spec.base_url}/chat/completions"
        root = spec.base_url.removesuffix("/v1")
        self._tokenize_url: str | None = f"{root}/tokenize"
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._timeout = httpx.Timeout(spec.timeout_s, connect=min(spec.timeout_s, 10.0))
        self._limits = httpx.Limits(
            max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency
        )
        self._headers = headers
        self._client = httpx.Client(timeout=self._timeout, limits=self._limits, headers=headers)
        self._sem = threading.BoundedSemaphore(spec.concurrency)
        self._lock = threading.Lock()
        self._contacted = False
        self._succeeded = False
        self.retries_used = 0
        """Retries spent so far (for progress displays); bounded by `policy.budget`."""
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._asem: asyncio.Semaphore | None = None

    @staticmethod
    def _read_key(env: str | None) -> str | None:
        if env is None:
            return None
        key = os.environ.get(env, "")
        if not key:
            raise BackendError(f"environment variable {env} (api_key_env) is not set or empty")
        return key

    def identity(self) -> dict[str, Any]:
        s = self.spec
        return {"backend": self.name, "base_url": s.base_url, "model": s.served_model}

    # -- one attempt, shared by the sync and async paths ---------------------------------------

    def _scrub(self, text: str) -> str:
        """Remove the key from any text a server sent back (a proxy may echo headers)."""
        one_line = " ".join(text.split())
        return one_line.replace(self._key, "***") if self._key else one_line

    def _server_message(self, resp: httpx.Response) -> str:
        try:
            data = resp.json()
        except ValueError:
            return self._scrub(resp.text[:200]) or resp.reason_phrase
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = (err.get("message") or err.get("detail")) if isinstance(err, dict) else err
        return self._scrub(str(msg or data)[:300])

    def _read(self, resp: httpx.Response, started: float) -> Generation:
        """Turn one HTTP reply into a Generation, a _Transient, or a final error."""
        latency = time.perf_counter() - started
        with self._lock:
            self._contacted = True
        code = resp.status_code
        if code == 200:
            try:
                data = resp.json()
            except ValueError:
                raise _Transient("malformed JSON in the response") from None
            gen = parse_completion(data, latency)
            with self._lock:
                self._succeeded = True
            return gen
        msg = self._server_message(resp)
        where = f"server at {self.spec.base_url}"
        if code in (408, 429) or code >= 500:
            after = parse_retry_after(resp.headers.get("retry-after"))
            raise _Transient(f"HTTP {code}: {msg}", retry_after=after, fatal=code == 429)
        if code == 404:
            raise ServerUnavailableError(self._not_found(msg))
        if code in (401, 403):
            hint = (
                f"check the key in ${self.spec.api_key_env}"
                if self.spec.api_key_env
                else "it may need a key: add api_key_env=NAME to the spec"
            )
            raise ServerUnavailableError(
                f"{where} refused the request (HTTP {code}: {msg}); {hint}"
            )
        if code in _PER_ITEM_4XX and self._succeeded:
            raise BackendError(f"{where} rejected the request (HTTP {code}): {msg}")
        raise ServerUnavailableError(f"{where} rejected the request (HTTP {code}): {msg}")

    def _not_found(self, msg: str) -> str:
        """A 404 means an unknown model or a wrong base URL; the model list tells which."""
        name, base = self.spec.served_model, self.spec.base_url
        try:
            listing = httpx.get(f"{base}/models", headers=self._headers, timeout=5.0).json()
            served = [str(m["id"]) for m in listing["data"]]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            served = []
        if served and name not in served:
            return f"server at {base} has no model {name!r} (it serves: {', '.join(served[:10])})"
        if "model" in msg.lower():
            return f"server at {base} has no model {name!r} ({msg})"
        return f"no chat-completions API at {base} (HTTP 404: {msg}); base URLs usually end in /v1"

    def _on_failure(self, exc: Exception, attempt: int) -> float:
        """Classify a failed attempt: raise when it is final, else return the delay to wait."""
        t = exc if isinstance(exc, _Transient) else self._transport(exc)
        where = f"server at {self.spec.base_url}"
        if t.refused and not self._contacted:
            raise ServerUnavailableError(f"cannot reach the {where} ({t.reason}); is it running?")
        if attempt >= self.policy.max_retries:  # item-specific only if others succeeded
            final = BackendError if self._succeeded and not t.fatal else ServerUnavailableError
            raise final(f"{where} failed after {attempt} retries: {t.reason}")
        with self._lock:
            if self.retries_used >= self.policy.budget:
                raise ServerUnavailableError(
                    f"{where}: retry budget ({self.policy.budget}) used up; last error: {t.reason}"
                )
            self.retries_used += 1
        delay = self.policy.delay(attempt, t.retry_after)
        log.info("%s: %s; retry %d in %.2fs", where, t.reason, attempt + 1, delay)
        return delay

    def _transport(self, exc: Exception) -> _Transient:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return _Transient(f"cannot connect: {self._scrub(str(exc))}", fatal=True, refused=True)
        if isinstance(exc, httpx.TimeoutException):
            return _Transient(f"no response within {self.spec.timeout_s:g} s (timeout)")
        return _Transient(
            f"connection dropped: {self._scrub(str(exc)) or type(exc).__name__}", fatal=True
        )

    # -- public API -----------------------------------------------------------------------------

    def body(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> dict[str, Any]:
        """The request body this backend sends (for tests and dry runs)."""
        s = self.spec
        return build_body(
            s.served_model, messages, params, prefill=prefill, k=k, extra_body=s.extra_body
        )

    def generate(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> Generation:
        body = self.body(messages, params, prefill=prefill, k=k)
        attempt = 0
        while True:
            try:
                with self._sem:
                    started = time.perf_counter()
                    gen = self._read(self._client.post(self._url, json=body), started)
                return continuation(gen, prefill)
            except (httpx.TransportError, _Transient) as exc:
                delay = self._on_failure(exc, attempt)
            time.sleep(delay)
            attempt += 1

    async def agenerate(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> Generation:
        """Async `generate`: same body, retries and errors; at most `concurrency` in flight."""
        body = self.body(messages, params, prefill=prefill, k=k)
        client, sem = self._async_state()
        attempt = 0
        while True:
            try:
                async with sem:
                    started = time.perf_counter()
                    gen = self._read(await client.post(self._url, json=body), started)
                return continuation(gen, prefill)
            except (httpx.TransportError, _Transient) as exc:
                delay = self._on_failure(exc, attempt)
            await asyncio.sleep(delay)
            attempt += 1

    def _async_state(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """Async client and semaphore of the running loop (both are bound to one loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._aloop is not loop or self._aclient is None or self._asem is None:
                self._aloop = loop
                self._aclient = httpx.AsyncClient(
                    timeout=self._timeout, limits=self._limits, headers=self._headers
                )
                self._asem = asyncio.Semaphore(self.spec.concurrency)
            return self._aclient, self._asem

    def count_tokens(self, text: str) -> int:
        """Server-side count via `/tokenize` (llama-server, vLLM); servers without one (hosted
        APIs) get :func:`estimate_tokens` from then on. Never raises."""
        if not text:
            return 0
        url = self._tokenize_url
        if url is not None:
            payload: dict[str, Any] = {"model": self.spec.served_model, "prompt": text}
            payload |= {"content": text, "add_special_tokens": False, "add_special": False}
            try:
                with self._sem:
                    resp = self._client.post(url, json=payload)
                if resp.status_code == 200:
                    data = resp.json()
                    count = data.get("count")
                    return int(count) if isinstance(count, int) else len(data["tokens"])
                if 400 <= resp.status_code < 500 or resp.status_code == 501:
                    self._tokenize_url = None  # no such endpoint, or not in this shape
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
                pass
        return estimate_tokens(text)

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        """Close the async client (call from the loop that used it), then the sync one."""
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        self.close()

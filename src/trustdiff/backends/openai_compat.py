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
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.openai_wire import (
    PER_ITEM_4XX,
    RetryPolicy,
    Transient,
    build_body,
    continuation,
    estimate_tokens,
    parse_completion,
    parse_retry_after,
)
from trustdiff.backends.spec import ModelSpec
from trustdiff.errors import BackendError, TrustdiffError
from trustdiff.records import Message

log = logging.getLogger(__name__)


class ServerUnavailableError(TrustdiffError):
    """The server cannot serve this audit (unreachable, unknown model, key refused, retries
    exhausted). Not a BackendError on purpose: the runner turns those into per-item `error`
    samples, whereas this one must stop the audit."""


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

    def _json(self, resp: httpx.Response, not_found: Callable[[str], str] | None = None) -> Any:
        """The decoded body of a 200 reply; otherwise a Transient (retried) or a final error.
        `not_found(message)` words a 404 (default: unknown model or wrong base URL)."""
        with self._lock:
            self._contacted = True
        code = resp.status_code
        if code == 200:
            try:
                return resp.json()
            except ValueError:
                raise Transient("malformed JSON in the response") from None
        msg = self._server_message(resp)
        where = f"server at {self.spec.base_url}"
        if code in (408, 429) or code >= 500:
            after = parse_retry_after(resp.headers.get("retry-after"))
            raise Transient(f"HTTP {code}: {msg}", retry_after=after, fatal=code == 429)
        if code == 404:
            raise ServerUnavailableError((not_found or self._not_found)(msg))
        if code in (401, 403):
            hint = (
                f"check the key in ${self.spec.api_key_env}"
                if self.spec.api_key_env
                else "it may need a key: add api_key_env=NAME to the spec"
            )
            raise ServerUnavailableError(
                f"{where} refused the request (HTTP {code}: {msg}); {hint}"
            )
        if code in PER_ITEM_4XX and self._succeeded:
            raise BackendError(f"{where} rejected the request (HTTP {code}): {msg}")
        raise ServerUnavailableError(f"{where} rejected the request (HTTP {code}): {msg}")

    def _read(self, resp: httpx.Response, started: float) -> Generation:
        """Turn one chat-completions reply into a Generation, a Transient, or a final error."""
        latency = time.perf_counter() - started
        gen = parse_completion(self._json(resp), latency)
        with self._lock:
            self._succeeded = True
        return gen

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
        t = exc if isinstance(exc, Transient) else self._transport(exc)
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

    def _transport(self, exc: Exception) -> Transient:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Transient(f"cannot connect: {self._scrub(str(exc))}", fatal=True, refused=True)
        if isinstance(exc, httpx.TimeoutException):
            return Transient(f"no response within {self.spec.timeout_s:g} s (timeout)")
        return Transient(
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
            except (httpx.TransportError, Transient) as exc:
                delay = self._on_failure(exc, attempt)
            time.sleep(delay)
            attempt += 1

    def post_json(
        self, url: str, body: Mapping[str, Any], *, not_found: Callable[[str], str] | None = None
    ) -> Any:
        """A JSON POST to another endpoint of the same server (`/tokenize`, `/completions`)
        with this backend's key, timeouts, retry policy, retry budget and error rules."""
        attempt = 0
        while True:
            try:
                data = self._json(self._client.post(url, json=body), not_found)
                with self._lock:
                    self._succeeded = True
                return data
            except (httpx.TransportError, Transient) as exc:
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
            except (httpx.TransportError, Transient) as exc:
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

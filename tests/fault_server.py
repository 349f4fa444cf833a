"""A real OpenAI-compatible HTTP server on loopback that misbehaves on schedule.

It serves `POST /v1/chat/completions`, `GET /v1/models` and `POST /tokenize` with deterministic
fake completions derived from the request (so a faulty run and a clean run must produce the same
samples), and injects faults by chat-request number: HTTP 500, 429 with Retry-After (seconds or
an HTTP-date), malformed JSON, a connection dropped without a response, a stall longer than the
client's timeout, and a body cut mid-way (Content-Length larger than what is sent). It can also
die after N chat requests (the listening socket closes, later connections are refused).

Answers vary with a hash of the request: some refuse ("I'm sorry, but I can't help with that."),
others comply, at a per-model refusal share, so verdict tables are not trivial. Each model has a
reasoning style: `plain`, `reasoning_content`, `reasoning`, `thinking` (separate fields),
`think` (a `<think>` block in content), `both` (a field *and* a think block in content) or
`hidden` (only a reasoning-token count), or `hybrid`: like `reasoning_content` unless the
request turns thinking off with `chat_template_kwargs: {enable_thinking: false}` (Qwen3-style).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

REFUSAL = "I'm sorry, but I can't help with that."
COMPLY = "Sure. Here is a general overview of {topic}, step by step, as you asked."
THOUGHT = "The user asks about {topic}. I should consider whether this is safe to answer."


class Fault(StrEnum):
    """What the server does instead of answering one chat request."""

    ERROR_500 = "500"
    RATE_LIMIT = "429"
    RATE_LIMIT_DATE = "429-date"
    MALFORMED = "malformed"
    DROP = "drop"
    STALL = "stall"
    TRUNCATE = "truncate"
    BAD_REQUEST = "400"


@dataclass
class ModelBehaviour:
    """How one fake model answers."""

    style: str = "plain"
    """Where reasoning goes (see the module docstring)."""
    refuse_pct: int = 50
    """Share of requests (by request hash) answered with a refusal."""


@dataclass
class Received:
    """One request as the server saw it (for request-mapping tests)."""

    path: str
    body: dict[str, Any]
    authorization: str | None


@dataclass
class FaultServer:
    """Start with `with FaultServer(...) as srv:`; `srv.base_url` ends in `/v1`."""

    models: dict[str, ModelBehaviour] = field(
        default_factory=lambda: {"m1": ModelBehaviour(), "m2": ModelBehaviour(refuse_pct=25)}
    )
    port_wanted: int = 0
    """Port to listen on (0 = any free one); reuse a port to compare runs with equal specs."""
    faults: dict[int, Fault] = field(default_factory=dict)
    """Chat request number (1-based) → fault injected instead of the answer."""
    die_after: int | None = None
    """After this many chat requests the server drops the next one and stops listening."""
    retry_after: str = "1"
    """Retry-After value sent with Fault.RATE_LIMIT."""
    stall_s: float = 3.0
    """How long Fault.STALL keeps the client waiting before answering."""
    api_key: str | None = None
    """When set, requests without `Authorization: Bearer <api_key>` get 401."""
    tokenize: bool = True
    """Serve `/tokenize` (whitespace tokens); off = 404, like hosted APIs."""
    latency_s: float = 0.0
    """Time every answer takes (lets tests observe how many requests are in flight)."""
    received: list[Received] = field(default_factory=list)
    chat_requests: int = 0
    injected: list[Fault] = field(default_factory=list)
    answer_times: list[float] = field(default_factory=list)
    """perf_counter() of every chat request received (for Retry-After timing)."""
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._dead = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> str:
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port_wanted), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        """Stop listening and release stalled handlers (bounded: nothing waits forever)."""
        self._stop.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _die(self) -> None:
        """Close the listening socket from a handler thread: later connects are refused."""
        with self._lock:
            if self._dead:
                return
            self._dead = True
        threading.Thread(target=self.stop, daemon=True).start()

    def __enter__(self) -> FaultServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- behaviour ------------------------------------------------------------------------------

    def next_chat(self) -> tuple[int, Fault | None, bool]:
        """Count a chat request; returns (number, fault to inject, whether to die now)."""
        with self._lock:
            self.chat_requests += 1
            n = self.chat_requests
            self.answer_times.append(time.perf_counter())
            fault = self.faults.get(n)
            if fault is not None:
                self.injected.append(fault)
            dying = self._dead or (self.die_after is not None and n > self.die_after)
        return n, fault, dying

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """Deterministic reply: the answer depends on model, messages and seed only."""
        model = str(body.get("model"))
        behaviour = self.models[model]
        messages = body.get("messages", [])
        prompt = " ".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        template_kwargs = body.get("chat_template_kwargs") or {}
        digest = hashlib.sha256(
            json.dumps(
                [model, messages, body.get("seed"), template_kwargs], sort_keys=True
            ).encode()
        ).hexdigest()
        topic = " ".join(prompt.split()[:6]) or "your question"
        refuse = int(digest[:8], 16) % 100 < behaviour.refuse_pct
        answer = REFUSAL if refuse else COMPLY.format(topic=topic)
        thought = THOUGHT.format(topic=topic)
        message: dict[str, Any] = {"role": "assistant", "content": answer}
        style = behaviour.style
        if style == "hybrid":
            thinking = template_kwargs.get("enable_thinking", True) is not False
            style = "reasoning_content" if thinking else "plain"
        if style in ("reasoning_content", "reasoning", "thinking"):
            message[style] = thought
        elif style == "think":
            message["content"] = f"<think>{thought}</think>{answer}"
        elif style == "both":
            message["reasoning_content"] = thought
            message["content"] = f"<think>second thoughts</think>{answer}"
        reasoning_words = 0 if style == "plain" else len(thought.split())
        answer_words = len(answer.split())
        finish = "stop"
        max_tokens = int(body.get("max_tokens") or 10**6)
        if answer_words + reasoning_words > max_tokens:
            finish = "length"
            cut = max(max_tokens - reasoning_words, 0)
            message["content"] = " ".join(str(message["content"]).split()[:cut])
            answer_words = min(answer_words, cut)
        usage: dict[str, Any] = {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": reasoning_words + answer_words,
            "total_tokens": len(prompt.split()) + reasoning_words + answer_words,
        }
        if style != "plain":
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_words}
        if style == "hidden":
            message["content"] = answer
        return {
            "id": f"chatcmpl-{digest[:12]}",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }


class _Handler(BaseHTTPRequestHandler):
    owner: FaultServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the socket without a response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            data = [
                {"id": m, "object": "model", "owned_by": "fault-server"} for m in self.owner.models
            ]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "invalid JSON body"}})
            return
        srv = self.owner
        auth = self.headers.get("Authorization")
        srv.received.append(Received(self.path, body, auth))
        if srv.api_key is not None and auth != f"Bearer {srv.api_key}":
            self._send(401, {"error": {"message": "Invalid API key", "code": 401}})
            return
        if self.path == "/tokenize":
            if not srv.tokenize:
                self._send(404, {"detail": "Not Found"})
            else:
                words = str(body.get("content", "")).split()
                self._send(200, {"tokens": list(range(len(words)))})
            return
        if self.path != "/v1/chat/completions":
            self._send(404, {"detail": "Not Found"})
            return
        _, fault, dying = srv.next_chat()
        if dying:
            self._drop()
            srv._die()
            return
        if body.get("model") not in srv.models:
            message = f"The model `{body.get('model')}` does not exist."
            self._send(404, {"object": "error", "message": message, "code": 404})
            return
        with srv._lock:
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            srv._stop.wait(srv.latency_s)
            self._answer(fault, srv.completion(body))
        finally:
            with srv._lock:
                srv.in_flight -= 1

    def _answer(self, fault: Fault | None, reply: dict[str, Any]) -> None:
        srv = self.owner
        if fault is Fault.ERROR_500:
            self._send(500, {"error": {"message": "internal error (injected)"}})
        elif fault is Fault.RATE_LIMIT:
            self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": srv.retry_after})
        elif fault is Fault.RATE_LIMIT_DATE:
            when = formatdate(time.time() + float(srv.retry_after), usegmt=True)
            self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": when})
        elif fault is Fault.BAD_REQUEST:
            self._send(400, {"error": {"message": "prompt is too long (injected)"}})
        elif fault is Fault.MALFORMED:
            self._send(200, b'{"id": "x", "choices": [{"message": {"content": "Sure')
        elif fault is Fault.DROP:
            self._drop()
        elif fault is Fault.STALL:
            srv._stop.wait(srv.stall_s)
            with contextlib.suppress(OSError):
                self._send(200, reply)
        elif fault is Fault.TRUNCATE:
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data) + 64))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._drop()
        else:
            self._send(200, reply)

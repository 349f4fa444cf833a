"""Helpers of the import tests: a canned OpenAI-compatible server and throwaway tool venvs.

Inspect AI and lm-evaluation-harness are installed in their own cached venvs (never in the
project's) and run for real against the stdlib server below, so the logs the importers read are
genuine. The canned replies cover the shapes the importers must handle: a plain answer, an inline
``<think>`` block, a server-split ``reasoning_content`` field and a reply cut at the token limit.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from stub_http import JsonHandler, run_server

CACHE = Path(os.environ.get("TRUSTDIFF_TEST_CACHE", Path.home() / ".cache" / "trustdiff-tests"))
"""Where tool venvs are kept between runs (one per tool version)."""
INSTALL_TIMEOUT_S = 1800

Reply = Mapping[str, Any]
"""One canned reply: `content`, optional `reasoning_content`, optional `finish_reason`."""

DEFAULT_REPLY: Reply = {"content": "I'm sorry, I can't help with that."}


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content)
    return str(body.get("prompt", ""))


def _handler(replies: Mapping[str, Reply], seen: list[dict[str, Any]]) -> type:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = self.read_json()
            seen.append(body)
            prompt = _last_user_text(body)
            reply = next((r for key, r in replies.items() if key in prompt), DEFAULT_REPLY)
            message: dict[str, Any] = {"role": "assistant", "content": reply["content"]}
            if "reasoning_content" in reply:
                message["reasoning_content"] = reply["reasoning_content"]
            self.send_json(
                200,
                {
                    "id": f"cmpl-{len(seen)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "stub"),
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": reply.get("finish_reason", "stop"),
                            "logprobs": None,
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                },
            )

    return Handler


@contextmanager
def serve(replies: Mapping[str, Reply]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Run the server on a free loopback port; yields (base URL ending in /v1, request bodies)."""
    seen: list[dict[str, Any]] = []
    with run_server(_handler(replies, seen)) as url:
        yield url, seen


def tool_venv(
    name: str,
    installs: Sequence[Sequence[str]],
    executable: str,
    *,
    env: Mapping[str, str] | None = None,
    pip_after: Sequence[Sequence[str]] = (),
) -> Path:
    """A cached venv `CACHE/venv-NAME` with `installs` (pip argument lists, run in order).

    Built once per version (a lock keeps parallel runs from racing) and reused. `env` is added
    to pip's environment (build flags of a source build); `pip_after` are whole pip commands run
    after the installs (e.g. `["uninstall", "-y", "torchvision"]`). When pip cannot install the
    tool (no network, no wheel for this platform), the test is skipped with pip's reason
    locally, and fails under CI=true where the tool must be exercised.
    """
    venv = CACHE / f"venv-{name}"
    ready = venv / ".trustdiff-ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            steps = [[sys.executable, "-m", "venv", str(venv)]]
            pip = [str(venv / "bin" / "python"), "-m", "pip"]
            steps += [[*pip, "install", "-q", *a] for a in installs]
            steps += [[*pip, *a] for a in pip_after]
            for step in steps:
                done = subprocess.run(
                    step,
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT_S,
                    env={**os.environ, **(env or {})},
                )
                if done.returncode != 0:
                    why = f"cannot install {name} ({' '.join(step[-3:])}): {done.stderr[-600:]}"
                    if os.environ.get("CI") == "true":
                        pytest.fail(why)
                    pytest.skip(why)
            ready.write_text("ok\n")
    tool = venv / "bin" / executable
    assert tool.exists(), f"{tool} missing after installing {name}"
    return tool

"""Helpers of the judge tests: a scripted OpenAI-compatible judge server and store seeding.

The judge server answers each chat request with whatever `respond(messages)` returns (a string
becomes the assistant's content, an int an HTTP error with that status), records every request
body and the most requests it had in flight at once (to check concurrency). Seeding writes the
exact samples an audit plans into its store, so an audit judges them without loading any model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from stub_http import JsonHandler, run_server
from trustdiff.backends.spec import parse_spec
from trustdiff.records import Item, Outcome, Sample
from trustdiff.runner.audit import STORE_NAME, AuditConfig, load_items, select_suites
from trustdiff.runner.audit import with_suite_params as suite_params
from trustdiff.runner.generate import plan
from trustdiff.store import Store

Respond = Callable[[list[dict[str, Any]]], "str | int"]


@dataclass
class JudgeServer:
    """What the running stub saw."""

    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    max_in_flight: int = 0

    def spec(self, model: str = "judge", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"max_retries": "0", **options}.items())
        return f"openai:{self.base_url}#{model}?{query}"


@contextmanager
def judge_server(respond: Respond, delay_s: float = 0.0) -> Iterator[JudgeServer]:
    """Serve `respond` on a free loopback port (`delay_s` per request, to overlap them)."""
    lock = threading.Lock()
    in_flight = 0
    state = JudgeServer(base_url="")

    class Handler(JsonHandler):
        model_id = "judge"

        def do_POST(self) -> None:
            nonlocal in_flight
            body = self.read_json()
            if not self.path.endswith("/chat/completions"):
                self.send_json(404, {"error": {"message": "not found"}})
                return
            with lock:
                state.requests.append(body)
                in_flight += 1
                state.max_in_flight = max(state.max_in_flight, in_flight)
            try:
                time.sleep(delay_s)
                reply = respond(body["messages"])
            finally:
                with lock:
                    in_flight -= 1
            if isinstance(reply, int):
                self.send_json(reply, {"error": {"message": f"scripted HTTP {reply}"}})
                return
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }
            self.send_json(
                200,
                {
                    "id": "c",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [choice],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                },
            )

    with run_server(Handler) as url:
        state.base_url = url
        yield state


Answer = tuple[str, "str | None"]
"""(answer, reasoning) of one seeded sample."""


def seed_store(
    cfg: AuditConfig, answer: Callable[[str, Item, int], Answer], created_at: float = 1.0
) -> list[Sample]:
    """Store the samples `cfg` plans, `answer(model_label, item, k)` giving their text."""
    selections = select_suites(cfg)
    per_suite, _ = load_items(selections)
    models = [parse_spec(cfg.base, default_label="baseline")]
    models += [parse_spec(s, default_label=f"derived-{i + 1}") for i, s in enumerate(cfg.derived)]
    samples = []
    for spec in models:
        for sel, items in zip(selections, per_suite, strict=True):
            spec_s = suite_params(spec, sel.suite)
            for task in plan(spec_s, items, sel.k):
                text, reasoning = answer(spec.label, task.item, task.k)
                raw = text if reasoning is None else f"<think>{reasoning}</think>{text}"
                samples.append(
                    Sample(
                        key=task.key,
                        item_id=task.item.id,
                        model=spec_s.fingerprint(),
                        k=task.k,
                        raw=raw,
                        reasoning=reasoning,
                        answer=text,
                        outcome=Outcome.ANSWERED,
                        parse_case=3 if reasoning is None else 1,
                        finish_reason="stop",
                        params_hash=spec_s.params.hash(),
                        created_at=created_at,
                    )
                )
    with Store(cfg.out / STORE_NAME) as store:
        for sample in samples:
            store.put_sample(sample)
    return samples

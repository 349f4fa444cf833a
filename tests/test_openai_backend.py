"""The openai: backend against a real loopback server that injects faults (tests/fault_server.py).

Covers the request mapping, every server reasoning field, retries that end in the same
Generation as a clean server for each fault type, Retry-After, the concurrency limit, clear
errors (dead endpoint, unknown model, refused key, exhausted retries), specs, and whole CLI
audits: faulty == clean, a server dying mid-audit, and an API key that never reaches any byte
written or printed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from fault_server import REFUSAL, Fault, FaultServer, ModelBehaviour
from trustdiff.backends import LOADERS, load_backend
from trustdiff.backends.base import Generation
from trustdiff.backends.openai_compat import OpenAIBackend, ServerUnavailableError
from trustdiff.backends.openai_wire import RetryPolicy, parse_retry_after
from trustdiff.backends.spec import parse_spec
from trustdiff.errors import BackendError, SpecError
from trustdiff.records import Item, Message, Outcome
from trustdiff.runner.audit import STORE_NAME
from trustdiff.runner.generate import Task, make_sample, plan
from trustdiff.store import Store
from trustdiff.suites.safety import load_safety_contrast

MSGS = (Message(role="user", content="How do I bake bread at home without yeast?"),)
FAST = RetryPolicy(max_retries=3, budget=50, backoff_s=0.02, backoff_cap_s=0.1)
SECRET = "sk-trustdiff-test-0123456789abcdef-SECRET"


def _backend(
    url: str, model: str = "m1", opts: str = "", policy: RetryPolicy = FAST
) -> OpenAIBackend:
    spec = parse_spec(f"openai:{url}#{model}?{opts}" if opts else f"openai:{url}#{model}")
    return OpenAIBackend(spec, policy=policy)


def _same(a: Generation, b: Generation) -> None:
    """Equal in everything but the measured latency."""
    assert {**a.__dict__, "latency_s": 0} == {**b.__dict__, "latency_s": 0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- request mapping and reasoning fields ---------------------------------------------------------


def test_request_mapping_and_key_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TD_TEST_KEY", SECRET)
    with FaultServer(api_key=SECRET) as srv:
        opts = (
            "api_key_env=TD_TEST_KEY&temperature=0.7&top_p=0.9&max_tokens=77&seed=5"
            "&stop=END|STOP&enable_thinking=false&extra_body=%7B%22min_p%22%3A0.05%7D"
        )
        backend = _backend(srv.base_url, opts=opts)
        backend.generate(MSGS, backend.spec.params, k=2)
        backend.generate(MSGS, backend.spec.params, prefill="<think>\n")
        backend.close()
    first, second = (r for r in srv.received if r.path == "/v1/chat/completions")
    assert first.authorization == f"Bearer {SECRET}"
    assert first.body == {
        "model": "m1",
        "messages": [{"role": "user", "content": MSGS[0].content}],
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 77,
        "seed": 7,  # seed + k
        "stop": ["END", "STOP"],
        "min_p": 0.05,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    assert second.body["messages"][-1] == {"role": "assistant", "content": "<think>\n"}
    assert second.body["continue_final_message"] is True
    assert second.body["add_generation_prompt"] is False


def _item() -> Item:
    return Item(id=Item.make_id("t", MSGS), suite="t@1", dimension="safety", messages=MSGS)


@pytest.mark.parametrize(
    ("style", "case", "field"),
    [
        ("reasoning_content", 6, "reasoning_content"),
        ("reasoning", 6, "reasoning"),
        ("thinking", 6, "thinking"),
        ("think", 1, None),
        ("both", 6, "reasoning_content"),
        ("hidden", 7, None),
        ("plain", 3, None),
    ],
)
def test_reasoning_fields_through_the_runner(style: str, case: int, field: str | None) -> None:
    with FaultServer(models={"r": ModelBehaviour(style=style, refuse_pct=0)}) as srv:
        backend = _backend(srv.base_url, "r")
        task = Task(_item(), 0, "key")
        sample = make_sample(backend.spec, backend, task)
        backend.close()
    assert sample.outcome is Outcome.ANSWERED and sample.parse_case == case
    assert sample.answer.startswith("Sure.") and "<think>" not in sample.answer
    assert "</think>" not in (sample.reasoning or "")
    if style in ("plain", "hidden"):
        assert sample.reasoning is None
    else:
        assert sample.reasoning is not None and "The user asks about" in sample.reasoning
    if style == "both":  # the think block left in content is re-parsed, not taken as answer
        assert sample.reasoning is not None and "second thoughts" in sample.reasoning
    if field is not None:
        assert sample.raw_fields[field].startswith("The user asks about")
    assert sample.raw_fields["usage"]["completion_tokens"] > 0
    if style != "plain":  # the server's count, not ours
        details = sample.raw_fields["usage"]["completion_tokens_details"]
        assert sample.reasoning_tokens == details["reasoning_tokens"] > 0
    assert sample.answer_tokens == len(sample.answer.split())  # counted by the server's /tokenize


def test_hybrid_thinking_on_off_pair() -> None:
    """One served hybrid model, two specs: extra_body makes them two different models."""
    with FaultServer(models={"h": ModelBehaviour(style="hybrid")}) as srv:
        off = _backend(srv.base_url, "h", opts="enable_thinking=false")
        on = _backend(srv.base_url, "h")
        sample_off = make_sample(off.spec, off, Task(_item(), 0, "off"))
        sample_on = make_sample(on.spec, on, Task(_item(), 0, "on"))
    assert off.spec.fingerprint() != on.spec.fingerprint()
    assert sample_off.reasoning is None and sample_off.raw_fields.keys() == {"usage"}
    assert sample_on.reasoning is not None and "reasoning_content" in sample_on.raw_fields
    bodies = [r.body for r in srv.received if r.path == "/v1/chat/completions"]
    assert bodies[0]["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in bodies[1]


def test_hybrid_pair_in_one_audit(tmp_path: Path) -> None:
    from trustdiff.runner.audit import AuditConfig, run_audit

    with FaultServer(models={"h": ModelBehaviour(style="hybrid")}) as srv:
        base = f"openai:{srv.base_url}#h?enable_thinking=false&label=off"
        derived = f"openai:{srv.base_url}#h?enable_thinking=true&label=on"
        run_audit(AuditConfig(base=base, derived=(derived,), limit=4, out=tmp_path))
    with Store(tmp_path / STORE_NAME) as store:
        stored = store.samples()
    by_model = {parse_spec(s).fingerprint(): s for s in (base, derived)}
    thinking = {by_model[s.model]: s.reasoning is not None for s in stored.values()}
    assert thinking == {base: False, derived: True}


# -- faults, retries, concurrency ---------------------------------------------------------------


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.BAD_REQUEST])
def test_each_fault_retried_to_the_clean_result(fault: Fault) -> None:
    with FaultServer() as clean:
        backend = _backend(clean.base_url, opts="timeout=2")
        expected = backend.generate(MSGS, backend.spec.params)
        backend.close()
    with FaultServer(faults={1: fault}, retry_after="1", stall_s=5) as faulty:
        backend = _backend(faulty.base_url, opts="timeout=2")  # a loaded CI box answers in 2 s
        got = backend.generate(MSGS, backend.spec.params)
        backend.close()
    _same(got, expected)
    assert faulty.injected == [fault] and faulty.chat_requests == 2
    assert backend.retries_used == 1


@pytest.mark.parametrize("fault", [Fault.RATE_LIMIT, Fault.RATE_LIMIT_DATE])
def test_retry_after_is_honoured(fault: Fault) -> None:
    wait = "1" if fault is Fault.RATE_LIMIT else "2"  # an HTTP-date has whole-second resolution
    with FaultServer(faults={1: fault}, retry_after=wait) as srv:
        backend = _backend(srv.base_url)  # backoff alone would retry after ≤ 0.02 s
        backend.generate(MSGS, backend.spec.params)
        backend.close()
    first, second = srv.answer_times
    assert second - first >= 1.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Thu, 01 Jan 2099 00:00:10 GMT", now=4070908800.0) == 10.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert RetryPolicy(retry_after_cap_s=5).delay(0, 3600) == 5


def test_async_matches_sync_and_respects_concurrency() -> None:
    prompts = [(Message(role="user", content=f"Question number {i}?"),) for i in range(8)]
    with FaultServer(latency_s=0.2) as srv:
        backend = _backend(srv.base_url, opts="concurrency=2")
        with ThreadPoolExecutor(8) as pool:
            sync = list(pool.map(lambda m: backend.generate(m, backend.spec.params), prompts))
        assert srv.max_in_flight == 2
        srv.max_in_flight = 0

        async def run_all() -> list[Generation]:
            jobs = [backend.agenerate(m, backend.spec.params) for m in prompts]
            out = await asyncio.gather(*jobs)
            await backend.aclose()
            return list(out)

        started = time.perf_counter()
        agen = asyncio.run(run_all())
        elapsed = time.perf_counter() - started
    assert srv.max_in_flight == 2 and elapsed >= 0.2 * 8 / 2 * 0.9
    for a, s in zip(agen, sync, strict=True):
        _same(a, s)


def test_async_retries_faults() -> None:
    with FaultServer() as clean:
        backend = _backend(clean.base_url)
        expected = backend.generate(MSGS, backend.spec.params)
        backend.close()
    faults = {1: Fault.ERROR_500, 2: Fault.DROP, 3: Fault.MALFORMED, 4: Fault.TRUNCATE}
    with FaultServer(faults=faults) as srv:
        backend = _backend(srv.base_url, policy=RetryPolicy(max_retries=5, backoff_s=0.02))
        got = asyncio.run(backend.agenerate(MSGS, backend.spec.params))
        backend.close()
    _same(got, expected)
    assert backend.retries_used == 4


# -- clear errors ---------------------------------------------------------------------------------


def test_dead_endpoint_fails_fast() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    backend = _backend(url, policy=RetryPolicy())  # default backoff: failing fast is not luck
    started = time.perf_counter()
    with pytest.raises(ServerUnavailableError, match=r"cannot reach the server at .*is it running"):
        backend.generate(MSGS, backend.spec.params)
    with pytest.raises(ServerUnavailableError, match="cannot reach"):
        asyncio.run(backend.agenerate(MSGS, backend.spec.params))
    assert time.perf_counter() - started < 3.0


def test_unknown_model_and_wrong_path() -> None:
    with FaultServer() as srv:
        backend = _backend(srv.base_url, "nope")
        with pytest.raises(
            ServerUnavailableError, match=r"has no model 'nope' \(it serves: m1, m2\)"
        ):
            backend.generate(MSGS, backend.spec.params)
        wrong = _backend(srv.base_url.removesuffix("/v1") + "/api")
        with pytest.raises(ServerUnavailableError, match=r"no chat-completions API.*end in /v1"):
            wrong.generate(MSGS, wrong.spec.params)


def test_key_refused_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TD_WRONG_KEY", "sk-wrong-key-value")
    with FaultServer(api_key=SECRET) as srv:
        with pytest.raises(ServerUnavailableError, match=r"HTTP 401.*api_key_env=NAME"):
            keyless = _backend(srv.base_url)
            keyless.generate(MSGS, keyless.spec.params)
        wrong = _backend(srv.base_url, opts="api_key_env=TD_WRONG_KEY")
        with pytest.raises(ServerUnavailableError, match=r"check the key in \$TD_WRONG_KEY") as exc:
            wrong.generate(MSGS, wrong.spec.params)
        assert "sk-wrong-key-value" not in str(exc.value)
    monkeypatch.delenv("TD_UNSET_KEY", raising=False)
    with pytest.raises(BackendError, match=r"TD_UNSET_KEY .* not set"):
        _backend("http://127.0.0.1:9/v1", opts="api_key_env=TD_UNSET_KEY")


def test_retry_exhaustion_and_budget() -> None:
    policy = RetryPolicy(max_retries=2, budget=3, backoff_s=0.01)
    errors = dict.fromkeys(range(1, 7), Fault.ERROR_500)
    with FaultServer(faults=errors) as srv:  # never answered yet: the server is broken
        backend = _backend(srv.base_url, policy=policy)
        with pytest.raises(ServerUnavailableError, match="failed after 2 retries: HTTP 500"):
            backend.generate(MSGS, backend.spec.params)
    with FaultServer(faults=dict.fromkeys(range(2, 5), Fault.ERROR_500)) as srv:
        backend = _backend(srv.base_url, policy=policy)
        backend.generate(MSGS, backend.spec.params)
        with pytest.raises(BackendError, match="failed after 2 retries: HTTP 500") as exc:
            backend.generate(MSGS, backend.spec.params)
        assert not isinstance(exc.value, ServerUnavailableError)  # per item: an error sample
    rate_limited = dict.fromkeys(range(2, 5), Fault.RATE_LIMIT)
    with FaultServer(faults=rate_limited, retry_after="0") as srv:
        backend = _backend(srv.base_url, policy=policy)
        backend.generate(MSGS, backend.spec.params)
        with pytest.raises(ServerUnavailableError, match="failed after 2 retries: HTTP 429"):
            backend.generate(MSGS, backend.spec.params)
    with FaultServer(faults=dict.fromkeys((1, 2, 4, 5), Fault.ERROR_500)) as srv:
        backend = _backend(srv.base_url, policy=policy)
        backend.generate(MSGS, backend.spec.params)  # 2 retries
        with pytest.raises(ServerUnavailableError, match=r"retry budget \(3\) used up"):
            backend.generate(MSGS, backend.spec.params)  # 3rd retry allowed, 4th over budget
    assert backend.retries_used == 3


def test_bad_request_is_per_item_only_after_a_success() -> None:
    with FaultServer(faults={1: Fault.BAD_REQUEST, 3: Fault.BAD_REQUEST}) as srv:
        backend = _backend(srv.base_url)
        with pytest.raises(ServerUnavailableError, match=r"HTTP 400.*prompt is too long"):
            backend.generate(MSGS, backend.spec.params)
        backend.generate(MSGS, backend.spec.params)
        with pytest.raises(BackendError, match="HTTP 400") as exc:
            backend.generate(MSGS, backend.spec.params)
        assert not isinstance(exc.value, ServerUnavailableError)
        sample = make_sample(backend.spec, backend, Task(_item(), 0, "k"))  # 4th: fine again
    assert sample.outcome is Outcome.ANSWERED


def test_count_tokens_server_then_estimate() -> None:
    with FaultServer(tokenize=False) as srv:
        backend = _backend(srv.base_url)
        assert backend.count_tokens("") == 0
        assert backend.count_tokens("abcdefgh") == 2  # ≈ 4 bytes per token
        assert backend.count_tokens("abcd") == 1
    assert sum(r.path == "/tokenize" for r in srv.received) == 1  # probed once, then estimated


# -- specs ----------------------------------------------------------------------------------------


def test_openai_spec_and_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    base = "openai:http://127.0.0.1:8000/v1/#Qwen/Qwen3-8B"
    spec = parse_spec(f"{base}?api_key_env=K&concurrency=8&timeout=60&max_retries=2&label=q")
    assert spec.base_url == "http://127.0.0.1:8000/v1" and spec.served_model == "Qwen/Qwen3-8B"
    assert (spec.concurrency, spec.timeout_s, spec.max_retries, spec.label) == (8, 60.0, 2, "q")
    assert spec.target == "http://127.0.0.1:8000/v1#Qwen/Qwen3-8B"
    plain = parse_spec(base).fingerprint()
    assert spec.fingerprint() == plain  # connection settings never change a sample
    monkeypatch.setenv("K", "value-one")
    one = parse_spec(f"{base}?api_key_env=K").fingerprint()
    monkeypatch.setenv("K", "value-two")
    assert parse_spec(f"{base}?api_key_env=K").fingerprint() == one == plain
    differing = [
        f"{base}?enable_thinking=false",
        f"{base}?system=Be%20brief",
        f"{base}?max_tokens=4096",
        f"{base}?extra_body=%7B%22min_p%22%3A0.1%7D",
        "openai:http://127.0.0.1:8001/v1#Qwen/Qwen3-8B",
        "openai:http://127.0.0.1:8000/v1#Qwen/Qwen3-4B",
    ]
    prints = {parse_spec(s).fingerprint() for s in differing}
    assert len(prints) == len(differing) and plain not in prints
    on = parse_spec(f"{base}?chat_template_kwargs=%7B%22x%22%3A1%7D&enable_thinking=on")
    assert on.extra_body == {"chat_template_kwargs": {"x": 1, "enable_thinking": True}}
    assert isinstance(load_backend(spec := parse_spec(base)), OpenAIBackend) and "openai" in LOADERS
    assert spec.kind == "openai"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("openai:http://127.0.0.1:8000/v1", "needs the served model name after '#'"),
        ("openai:http://127.0.0.1:8000/v1#", "needs the served model name"),
        ("openai:127.0.0.1:8000#m", "needs an http"),
        ("openai:http://h/v1?label=x#m", "before the options"),
        ("openai:http://h/v1#m?n_ctx=4", "unknown option"),
        ("openai:http://h/v1#m?concurrency=0", "bad option"),
        ("openai:http://h/v1#m?timeout=soon", "bad option"),
        ("openai:http://h/v1#m?extra_body=%5B1%5D", "must be a JSON object"),
        ("openai:http://h/v1#m?enable_thinking=maybe", "true or false"),
        ("openai:http://h/v1#m?seed=1&label=a&seed=2", r"option\(s\) seed given twice"),
        ("openai:http://user:pw@h/v1#m", "never put credentials"),
        ("gguf:default?api_key_env=X", "unknown option"),
        ("hf:Qwen/Qwen3-8B?dtype=int3", "dtype"),
        ("hf:?dtype=float32", "needs a model path"),
        ("vllm:Qwen/Qwen3-8B?tensor_parallel_size=0", "tensor_parallel_size"),
        ("vllm:Qwen/Qwen3-8B?api_key_env=X", "unknown option"),
    ],
)
def test_bad_openai_specs(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


@pytest.mark.parametrize("opt", ["api_key", "key", "token"])
def test_key_in_spec_is_refused_without_echo(opt: str) -> None:
    with pytest.raises(SpecError, match="never put an API key") as exc:
        parse_spec(f"openai:http://h/v1#m?{opt}={SECRET}")
    assert SECRET not in str(exc.value)
    with pytest.raises(SpecError, match="NAME of an environment variable") as exc:
        parse_spec(f"openai:http://h/v1#m?api_key_env={SECRET}")
    assert SECRET not in str(exc.value)


# -- whole audits through the CLI ----------------------------------------------------------------


def _audit(url: str, out: Path, *extra: str, retries: int = 3) -> Any:
    common = f"api_key_env=TD_TEST_KEY&timeout=3&max_retries={retries}"
    return run_cli(
        "audit",
        "--base",
        f"openai:{url}#m1?{common}&label=a",
        "--derived",
        f"openai:{url}#m2?{common}&label=b",
        "--limit",
        "6",
        "--resamples",
        "1000",
        "--out",
        str(out),
        *extra,
        env={"TD_TEST_KEY": SECRET},
        timeout=300,
    )


def _report(out: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((out / "report.json").read_text())
    doc.pop("timings", None)
    return doc


def test_audit_faulty_equals_clean_and_key_never_written(tmp_path: Path) -> None:
    faults = {
        2: Fault.ERROR_500,
        3: Fault.RATE_LIMIT,
        5: Fault.MALFORMED,
        7: Fault.DROP,
        9: Fault.STALL,
        11: Fault.TRUNCATE,
        13: Fault.RATE_LIMIT_DATE,
    }
    port = _free_port()  # both runs on one address, so the specs and fingerprints are equal
    outputs = []
    for name, schedule in (("clean", {}), ("faulty", faults)):
        server = FaultServer(port_wanted=port, faults=schedule, api_key=SECRET, stall_s=6.0)
        with server as srv:
            # Faults are numbered globally; with concurrent requests one request's retries can
            # land on several consecutive faults, so allow more retries than there are faults.
            res = _audit(srv.base_url, tmp_path / name, retries=len(faults) + 1)
            assert res.returncode == 0, res.stderr
            assert srv.injected == list(schedule.values())
            assert srv.chat_requests >= 12 + len(schedule)
        outputs += [res.stdout, res.stderr]
    assert _report(tmp_path / "clean") == _report(tmp_path / "faulty")
    with Store(tmp_path / "faulty" / STORE_NAME) as store:
        answers = [s.answer for s in store.samples().values()]
    assert len(answers) == 12 and 0 < answers.count(REFUSAL) < 12  # refusals and compliance
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {STORE_NAME, "report.json", "report.md", "report.html"}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert all(SECRET not in text for text in outputs)


def test_audit_against_dying_server_keeps_finished_samples(tmp_path: Path) -> None:
    with FaultServer(die_after=4, api_key=SECRET) as srv:
        url = srv.base_url
        started = time.perf_counter()
        res = _audit(url, tmp_path, retries=2)
        elapsed = time.perf_counter() - started
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("error: server at ") and "cannot connect" in lines[-1]
    assert "Traceback" not in res.stderr and elapsed < 60
    base = parse_spec(f"openai:{url}#m1?api_key_env=TD_TEST_KEY&timeout=3&max_retries=3&label=a")
    keys = [t.key for t in plan(base, load_safety_contrast()[:6])]
    with Store(tmp_path / STORE_NAME) as store:
        kept = store.samples(keys)
    assert len(kept) == 4 and all(s.outcome is Outcome.ANSWERED for s in kept.values())
    with sqlite3.connect(tmp_path / STORE_NAME) as db:
        assert db.execute("select count(*) from samples").fetchone()[0] == 4


def test_audit_against_dead_endpoint_is_one_clear_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    started = time.perf_counter()
    res = _audit(url, tmp_path)
    assert res.returncode == 1 and time.perf_counter() - started < 30
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach the server at {url} (cannot connect")
    assert last.endswith("is it running?") and res.stderr.count("error") == 1

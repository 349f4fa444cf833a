"""Drift scorers beyond llama.cpp: the OpenAI-compatible echo scorer against a loopback stub
(both prompt log-prob shapes, retries, a server that ignores echo, unknown model, no /tokenize),
the transformers scorer on a tiny model built here, scorer selection per spec kind, and the
reduction of a prefilled reply to its continuation. Real servers: test_llama_server.py,
test_vllm_server.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stub_http import JsonHandler, run_server
from trustdiff.backends.base import Generation
from trustdiff.backends.openai_compat import ServerUnavailableError
from trustdiff.backends.openai_wire import RetryPolicy, continuation
from trustdiff.backends.spec import ModelSpec, parse_spec
from trustdiff.drift.compute import teacher_force
from trustdiff.drift.openai_scorer import NoPromptLogprobsError, OpenAIScorer
from trustdiff.drift.scorer import PROBE, make_scorer, probe_fingerprint
from trustdiff.errors import BackendError, TrustdiffError
from trustdiff.records import Item, Message, Outcome, Sample

MSGS = (Message(role="user", content="Is it safe to mix bleach and vinegar?"),)
FAST = RetryPolicy(max_retries=3, budget=20, backoff_s=0.01, backoff_cap_s=0.05)


def _ids(text: str, shift: int = 0) -> list[int]:
    """The stub's tokenizer: one token per character (`shift` makes a different tokenizer)."""
    return [ord(c) + shift for c in text]


def _lp(token: int, position: int) -> float:
    """The stub model: a deterministic log-prob per (token, position)."""
    return -0.01 - ((token * 7 + position * 3) % 11) / 4


@dataclass
class Stub:
    """Behaviour of the stub server."""

    echo: str = "openai"
    """`openai` (logprobs.token_logprobs), `vllm` (prompt_logprobs only) or `none` (like
    llama-server: only the generated token's log-prob)."""
    shift: int = 0
    fail_first: int = 0
    """Completions requests answered with HTTP 503 before the server behaves."""
    tokenize: bool = True
    seen: list[dict[str, Any]] = field(default_factory=list)

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["prompt"]
        ids = _ids(prompt, self.shift) if isinstance(prompt, str) else list(prompt)
        values = [None] + [_lp(t, i) for i, t in enumerate(ids) if i > 0]
        choice: dict[str, Any] = {"index": 0, "text": "x", "finish_reason": "length"}
        if self.echo == "openai":
            choice["logprobs"] = {"token_logprobs": [*values, -0.5], "tokens": ["?"] * len(ids)}
        elif self.echo == "vllm":
            pairs = zip(ids[1:], values[1:], strict=True)
            rows = [None] + [{str(t): {"logprob": v, "rank": 1}} for t, v in pairs]
            choice |= {"logprobs": None, "prompt_logprobs": rows}
        else:
            choice["logprobs"] = {"content": [{"id": 1, "token": "x", "logprob": -0.5}]}
        return {"object": "text_completion", "choices": [choice]}

    def tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        if "messages" in body:
            text = "".join(f"<{m['role']}>{m['content']}\n" for m in body["messages"])
            if body.get("add_generation_prompt"):
                text += "<assistant>"
            if body.get("chat_template_kwargs"):
                text += json.dumps(body["chat_template_kwargs"])
        else:
            text = body["prompt"]
        return {"count": len(text), "tokens": _ids(text, self.shift)}


@contextmanager
def stub_server(stub: Stub) -> Iterator[str]:
    class Handler(JsonHandler):
        model_id = "m"

        def do_POST(self) -> None:
            body = self.read_json()
            stub.seen.append({"path": self.path, **body})
            if body.get("model") != "m":
                self.send_json(
                    404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
                )
            elif self.path == "/tokenize" and stub.tokenize:
                self.send_json(200, stub.tokens(body))
            elif self.path == "/v1/completions":
                completions = sum(s["path"] == "/v1/completions" for s in stub.seen)
                if completions <= stub.fail_first:
                    self.send_json(503, {"error": {"message": "busy"}})
                else:
                    self.send_json(200, stub.completion(body))
            else:
                self.send_json(404, {"error": {"message": "not found"}})

    with run_server(Handler) as url:
        yield url


def _scorer(url: str, opts: str = "", model: str = "m") -> OpenAIScorer:
    spec = parse_spec(f"openai:{url}#{model}?{opts}" if opts else f"openai:{url}#{model}")
    return OpenAIScorer(spec, policy=FAST)


def _expected(stub: Stub, prompt_text: str, parts: list[str]) -> np.ndarray:
    prompt = _ids(prompt_text, stub.shift)
    resp = [t for p in parts for t in _ids(p, stub.shift)]
    return np.array([_lp(t, len(prompt) + j) for j, t in enumerate(resp)])


@pytest.mark.parametrize("shape", ["openai", "vllm"])
def test_echo_scorer_reads_response_span(shape: str) -> None:
    stub = Stub(echo=shape)
    parts = ["thinking it over", "No, never."]
    with stub_server(stub) as url:
        scorer = _scorer(url, "enable_thinking=false")
        lp, owner = scorer.response_logprobs(MSGS, parts)
        scorer.close()
    prompt = f"<user>{MSGS[0].content}\n<assistant>" + '{"enable_thinking": false}'
    assert np.allclose(lp, _expected(stub, prompt, parts))
    assert owner.tolist() == [0] * len(parts[0]) + [1] * len(parts[1])
    scored = [s for s in stub.seen if s["path"] == "/v1/completions"][-1]
    assert scored["echo"] is True and scored["logprobs"] == 1 and scored["max_tokens"] == 1
    chat = [s for s in stub.seen if "messages" in s][-1]
    assert chat["chat_template_kwargs"] == {"enable_thinking": False}


def test_echo_scorer_prefill_is_a_continued_turn() -> None:
    stub = Stub()
    with stub_server(stub) as url:
        scorer = _scorer(url, "reasoning=prompted")
        lp, _ = scorer.response_logprobs(MSGS, ["a", "b"])
        scorer.close()
    chat = [s for s in stub.seen if "messages" in s][-1]
    assert chat["messages"][-1] == {"role": "assistant", "content": "<think>\n"}
    assert chat["continue_final_message"] is True and chat["add_generation_prompt"] is False
    assert chat["messages"][0]["role"] == "system" and len(lp) == 2


def test_echo_scorer_retries_then_succeeds() -> None:
    stub = Stub(fail_first=2)
    with stub_server(stub) as url:
        scorer = _scorer(url)
        lp, _ = scorer.response_logprobs(MSGS, ["ok"])
        scorer.close()
    assert scorer.retries_used == 2 and len(lp) == 2


def test_server_ignoring_echo_is_one_clear_line() -> None:
    with stub_server(Stub(echo="none")) as url, pytest.raises(NoPromptLogprobsError) as exc:
        _scorer(url)
    msg = str(exc.value)
    assert msg.startswith(f"server at {url} does not return prompt log-probs (echo); use vLLM")
    assert "\n" not in msg


def test_unknown_model_and_missing_tokenize() -> None:
    unknown = r"has no model 'nope' \(it serves: m\)"
    with stub_server(Stub()) as url, pytest.raises(ServerUnavailableError, match=unknown):
        _scorer(url, model="nope")
    with stub_server(Stub(tokenize=False)) as url:
        scorer = _scorer(url)
        with pytest.raises(ServerUnavailableError, match=r"has no .*/tokenize endpoint"):
            scorer.tokenizer_id()


def test_dead_endpoint_and_short_echo() -> None:
    with stub_server(Stub()) as url:
        pass  # closed: nothing listens there any more
    with pytest.raises(ServerUnavailableError, match="cannot reach the server"):
        _scorer(url)
    stub = Stub()
    with stub_server(stub) as url:
        scorer = _scorer(url)
        stub.echo = "none"  # a server that stops echoing mid-run: an error, never a wrong span
        with pytest.raises(BackendError, match="prompt log-probs for"):
            scorer.response_logprobs(MSGS, ["text"])


def test_tokenizer_identity_is_enforced_across_scorers() -> None:
    item = Item(id="i", suite="t@1", dimension="safety", messages=MSGS)
    sample = Sample(
        key="s",
        item_id="i",
        model="m",
        raw="Never.",
        answer="Never.",
        outcome=Outcome.ANSWERED,
        parse_case=3,
        params_hash="p",
    )
    with stub_server(Stub()) as a, stub_server(Stub(shift=1)) as b:
        sa, sa2, sb = _scorer(a, "label=a"), _scorer(a, "system=Be+brief.&label=a2"), _scorer(b)
        assert sa.tokenizer_id() == sa2.tokenizer_id() != sb.tokenizer_id()
        (same,) = teacher_force([sample], {"i": item}, sa, sa2)
        assert len(same.logp_from) == len("Never.")
        with pytest.raises(TrustdiffError, match="identical tokenizers"):
            teacher_force([sample], {"i": item}, sa, sb)


def test_probe_fingerprint_depends_on_every_probe_text() -> None:
    base = probe_fingerprint(_ids)
    assert base == probe_fingerprint(_ids) and len(base) == 16
    for probe in PROBE:
        other = probe_fingerprint(lambda t, p=probe: _ids(t) + ([0] if t == p else []))
        assert other != base


def test_scorer_selection_by_kind(tmp_path: Path) -> None:
    with stub_server(Stub()) as url:
        scorer = make_scorer(parse_spec(f"openai:{url}#m"))
        assert isinstance(scorer, OpenAIScorer)
        scorer.close()
    imported = ModelSpec(spec="imported:x", kind="imported", target="x", label="x")
    with pytest.raises(TrustdiffError, match=r"backend 'imported' of 'x' does not provide"):
        make_scorer(imported)


def test_continuation_of_a_prefilled_turn() -> None:
    def gen(text: str, field: str | None = None) -> Generation:
        return Generation(text, "stop", 1, 1, 0.0, reasoning_field=field)

    echoed = continuation(gen("<think>\nI think so."), "<think>\n")  # llama-server
    assert echoed.text == "I think so." and echoed.raw_fields == {"prefill_echoed": True}
    split = continuation(gen("\nYes.", "It is fine"), "<think>\n")  # vLLM deepseek_r1
    assert split.text == "It is fine</think>\nYes." and split.reasoning_field is None
    only = continuation(gen("", "Yes, it is."), "<think>\nok\n</think>\n")  # answer filed
    assert only.text == "Yes, it is." and only.raw_fields == {"server_split_undone": True}
    plain = continuation(gen("<think>\nx", "r"), "")  # no prefill: the server's split stands
    assert plain.text == "<think>\nx" and plain.reasoning_field == "r"


# -- transformers scorer ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_hf_backend import HAVE_HF, MAY_SKIP, build_tiny

    if not HAVE_HF and MAY_SKIP:
        pytest.skip("transformers/torch not installed")
    return build_tiny(tmp_path_factory.mktemp("tiny-drift"))


def test_hf_scorer_matches_a_manual_forward_pass(tiny_dir: Path) -> None:
    import torch

    from trustdiff.drift.hf_scorer import HFScorer

    plain = make_scorer(parse_spec(f"hf:{tiny_dir}?dtype=bfloat16&label=plain"))
    think = make_scorer(parse_spec(f"hf:{tiny_dir}?reasoning=prompted&label=think"))
    assert isinstance(plain, HFScorer) and isinstance(think, HFScorer)
    try:
        assert str(plain.backend.model.dtype) == "torch.float32"  # fp32 whatever the spec says
        parts = ["let me see", "No."]
        lp, owner = plain.response_logprobs(MSGS, parts)
        tok, model = plain.backend.tokenizer, plain.backend.model
        prompt = tok.encode(plain.backend.render(MSGS), add_special_tokens=False)
        resp = [t for p in parts for t in tok.encode(p, add_special_tokens=False)]
        with torch.no_grad():
            logits = model(torch.tensor([prompt + resp])).logits[0].double()
        ref = logits.log_softmax(-1)[len(prompt) - 1 : -1].gather(1, torch.tensor(resp)[:, None])
        assert np.allclose(lp, ref[:, 0].numpy(), atol=1e-5)
        assert owner.tolist() == [0] * len(parts[0]) + [1] * len(parts[1])
        assert plain.tokenizer_id() == think.tokenizer_id()
        moved, _ = think.response_logprobs(MSGS, parts)  # another prompt protocol, same tokens
        assert moved.shape == lp.shape and not np.allclose(moved, lp)
        assert plain.response_logprobs(MSGS, [""])[0].size == 0
    finally:
        plain.close()
        think.close()

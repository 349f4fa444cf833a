"""vllm: backend — a MAPPING test, not a vLLM run.

vLLM needs a GPU (CI never has one), so these tests check what trustdiff controls: GenParams →
`SamplingParams` arguments, engine arguments, `RequestOutput` → Generation, and the backend's
batching and error handling, against fake objects shaped like vLLM's (`RequestOutput` with
`prompt_token_ids` and `outputs`, `CompletionOutput` with `text`, `token_ids`, `finish_reason`,
`stop_reason`). Whether vLLM itself honours those arguments is vLLM's business.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from trustdiff.backends.base import GenParams
from trustdiff.backends.hf import GenRequest
from trustdiff.backends.spec import ModelSpec
from trustdiff.backends.vllm_offline import (
    VLLMBackend,
    VLLMOptions,
    engine_kwargs,
    load_vllm,
    sampling_kwargs,
    to_generation,
)
from trustdiff.errors import BackendError, SpecError
from trustdiff.records import Message


@dataclass
class CompletionOutput:
    text: str
    token_ids: list[int]
    finish_reason: str | None
    stop_reason: int | str | None = None
    index: int = 0


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    request_id: str = "0"


def test_sampling_kwargs_map_every_field() -> None:
    greedy = sampling_kwargs(GenParams(max_tokens=64))
    assert greedy["temperature"] == 0.0 and greedy["top_k"] == -1  # 0 = off → vLLM's -1
    assert greedy["max_tokens"] == 64 and greedy["stop"] == [] and greedy["n"] == 1
    assert greedy["skip_special_tokens"] is False  # <think> markers must reach the parser
    params = GenParams(
        temperature=0.7, top_p=0.9, top_k=20, repeat_penalty=1.1, seed=5, stop=("</think>", "##")
    )
    got = sampling_kwargs(params, k=3)
    assert got == {
        "n": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "max_tokens": 256,
        "seed": 8,
        "stop": ["</think>", "##"],
        "repetition_penalty": 1.1,
        "skip_special_tokens": False,
        "include_stop_str_in_output": False,
    }
    assert sampling_kwargs(params, k=4)["seed"] != got["seed"]


def test_engine_kwargs_pass_trust_remote_code_only_when_asked() -> None:
    plain = engine_kwargs("org/model", seed=0)
    assert "trust_remote_code" not in plain and "max_model_len" not in plain
    assert plain["model"] == "org/model" and plain["tensor_parallel_size"] == 1
    full = engine_kwargs(
        "/m", seed=3, tensor_parallel_size=2, trust_remote_code=True, max_model_len=4096
    )
    assert full["trust_remote_code"] is True and full["tensor_parallel_size"] == 2
    assert full["max_model_len"] == 4096 and full["seed"] == 3


def test_output_mapping() -> None:
    eos = to_generation(
        RequestOutput([1, 2, 3], [CompletionOutput("Paris.<|im_end|>", [7, 8, 9], "stop")]),
        0.5,
        ("<|im_end|>",),
    )
    assert (eos.text, eos.finish_reason, eos.prompt_tokens, eos.completion_tokens) == (
        "Paris.",
        "stop",
        3,
        3,
    )
    assert eos.raw_fields == {} and eos.latency_s == 0.5
    on_stop = to_generation(
        RequestOutput([1], [CompletionOutput("I think<|im_end|>", [4, 5], "stop", "</think>")]),
        0.1,
        ("<|im_end|>",),
    )
    assert on_stop.text == "I think<|im_end|>"  # a stop string ended it: text kept verbatim
    assert on_stop.raw_fields == {"stop_reason": "</think>"}
    cut = to_generation(RequestOutput([1], [CompletionOutput("abc", [1, 2], "length")]), 0.1)
    assert cut.finish_reason == "length" and cut.text == "abc"
    with pytest.raises(BackendError, match="aborted"):
        to_generation(RequestOutput([1], [CompletionOutput("", [], "abort")]), 0.1)


class FakeTokenizer:
    chat_template = "{{ messages }}"
    eos_token = "<|im_end|>"

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        assert kwargs["tokenize"] is False and kwargs["add_generation_prompt"] is True
        if kwargs.get("fail"):
            raise ValueError("template error")
        extra = "".join(
            f"[{k}={v}]"
            for k, v in kwargs.items()
            if k not in ("tokenize", "add_generation_prompt")
        )
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + extra + "<assistant>"

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert add_special_tokens is False  # the template already holds BOS where needed
        return [ord(c) for c in text]


@dataclass
class FakeSamplingParams:
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class FakeLLM:
    instances: list[FakeLLM] = []  # noqa: RUF012 - test registry

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[tuple[list[Any], list[FakeSamplingParams]]] = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def generate(
        self, prompts: list[Any], sampling_params: list[FakeSamplingParams], use_tqdm: bool
    ) -> list[RequestOutput]:
        self.calls.append((prompts, sampling_params))
        if any(len(p["prompt_token_ids"]) > 200 for p in prompts):
            raise ValueError("prompt longer than max_model_len")
        return [
            RequestOutput(
                p["prompt_token_ids"],
                [CompletionOutput(f"seed={sp.kwargs['seed']}<|im_end|>", [1, 2], "stop")],
            )
            for p, sp in zip(prompts, sampling_params, strict=True)
        ]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> type[FakeLLM]:
    module = types.ModuleType("vllm")
    module.__version__ = "0.0-fake"  # type: ignore[attr-defined]
    module.LLM = FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.instances.clear()
    return FakeLLM


SPEC = ModelSpec(spec="vllm:org/model", kind="vllm", target="org/model", label="m")


def _user(text: str) -> tuple[Message, ...]:
    return (Message(role="user", content=text),)


def test_backend_batches_maps_and_isolates_a_bad_request(fake_vllm: type[FakeLLM]) -> None:
    backend = load_vllm(SPEC, {"tensor_parallel_size": "2", "batch_size": "2"})
    llm = fake_vllm.instances[0]
    assert llm.kwargs["tensor_parallel_size"] == 2 and "trust_remote_code" not in llm.kwargs
    assert backend.identity()["weights"] == "hub:org/model"
    params = GenParams(seed=10)
    reqs = [
        GenRequest(_user("a"), params, k=0),
        GenRequest(_user("b" * 300), params, k=1),  # too long for the fake engine
        GenRequest(_user("c"), params, prefill="<think>\n", k=2),
    ]
    done: list[int] = []
    results = backend.generate_many(reqs, on_done=lambda i, _r: done.append(i))
    assert sorted(done) == [0, 1, 2]
    assert isinstance(results[1], BackendError) and "rejected" in str(results[1])
    ok = [r for r in results if not isinstance(r, BackendError)]
    assert [g.text for g in ok] == ["seed=10", "seed=12"]  # seed + k, end-of-turn stripped
    first_prompt = llm.calls[0][0][0]["prompt_token_ids"]
    assert "".join(map(chr, first_prompt)) == "<user>a<assistant>"
    last_prompt = llm.calls[-1][0][0]["prompt_token_ids"]
    assert "".join(map(chr, last_prompt)).endswith("<assistant><think>\n")  # prefill appended
    assert ok[0].prompt_tokens == len(first_prompt)
    assert backend.generate(_user("x"), params, k=1).text == "seed=11"
    with pytest.raises(BackendError):
        backend.generate(_user("y" * 300), params)


def test_chat_template_kwargs_reach_the_template(fake_vllm: type[FakeLLM]) -> None:
    backend = VLLMBackend(SPEC, chat_template_kwargs={"enable_thinking": False})
    assert backend.render(_user("q")).endswith("[enable_thinking=False]<assistant>")
    broken = VLLMBackend(SPEC, chat_template_kwargs={"fail": True})
    (result,) = broken.generate_many([GenRequest(_user("q"), GenParams())])
    assert isinstance(result, BackendError) and "template" in str(result)
    assert backend.count_tokens("abc") == 3 and backend.count_tokens("") == 0


def test_options_and_missing_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    opts = VLLMOptions.model_validate({"tensor_parallel_size": "4", "max_model_len": "8192"})
    assert opts.tensor_parallel_size == 4 and opts.max_model_len == 8192
    assert set(opts.fingerprint()) == {
        "tensor_parallel_size",
        "chat_template_kwargs",
        "dtype",
        "trust_remote_code",
        "max_model_len",
    }
    with pytest.raises(SpecError, match="tensor_parallel_size"):
        load_vllm(SPEC, {"tensor_parallel_size": "0"})
    with pytest.raises(SpecError, match="Extra inputs"):
        load_vllm(SPEC, {"device": "cpu"})
    monkeypatch.setitem(sys.modules, "vllm", None)  # what an absent package looks like
    with pytest.raises(BackendError, match=r"pip install 'trustdiff\[vllm\]'"):
        VLLMBackend(SPEC)

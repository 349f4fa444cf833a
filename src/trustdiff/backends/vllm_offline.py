"""`vllm:` backend: vLLM's offline engine (`LLM.generate`) in this process (optional extra).

Meant for GPUs (vLLM's CPU build works but is slow to start); nothing in the test suite or CI
needs it. The prompt is rendered here with the tokenizer's chat template plus the assistant
prefill and sent as token ids, so vLLM does not add a second BOS and the prompt is exactly the
one the `hf:` backend would build. Special tokens are kept in the text (a `<think>` marker must
reach the reasoning parser); only the end-of-turn token is stripped. The request mapping and the
output mapping are pure functions so they are tested without vLLM installed.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.hf import (
    GenRequest,
    OnDone,
    Result,
    json_object_option,
    parse_options,
    render_chat,
    weights_fingerprint,
)
from trustdiff.backends.spec import ModelSpec
from trustdiff.errors import BackendError
from trustdiff.records import Message

INSTALL_HINT = (
    "the vllm: backend needs vLLM (a GPU build; see vLLM's install guide): "
    "pip install 'trustdiff[vllm]', or serve the model and use openai:URL#MODEL"
)


class VLLMOptions(BaseModel):
    """`vllm:` spec options (strings from the spec's query are coerced)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs the model is sharded over."""
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra variables for the chat template, e.g. `{"enable_thinking": false}`."""
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """Weights dtype; `auto` takes the checkpoint's own."""
    trust_remote_code: bool = False
    """Run the model repository's own Python code; off unless the user asks."""
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    """Share of GPU memory vLLM may take (weights + KV cache)."""
    max_model_len: int | None = Field(None, ge=1)
    """Context length cap; `None` takes the model's."""
    batch_size: int = Field(256, ge=1)
    """Requests handed to one `LLM.generate` call (vLLM schedules within it)."""

    _coerce = field_validator("chat_template_kwargs", mode="before")(json_object_option)

    def fingerprint(self) -> dict[str, Any]:
        """The options that change samples (memory share and call size do not)."""
        return self.model_dump(mode="json", exclude={"gpu_memory_utilization", "batch_size"})


def engine_kwargs(
    target: str,
    *,
    seed: int,
    tensor_parallel_size: int = 1,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
) -> dict[str, Any]:
    """`vllm.LLM(...)` arguments; `trust_remote_code` only appears when asked for."""
    kwargs: dict[str, Any] = {
        "model": target,
        "tensor_parallel_size": tensor_parallel_size,
        "dtype": dtype,
        "seed": seed,
        "gpu_memory_utilization": gpu_memory_utilization,
    }
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    return kwargs


def sampling_kwargs(params: GenParams, k: int = 0) -> dict[str, Any]:
    """`vllm.SamplingParams(...)` arguments for one request.

    Every field is explicit (vLLM's defaults are not ours: temperature 1, 16 tokens). `top_k=-1`
    means off in every vLLM version; `seed + k` makes sample k reproducible on its own.
    """
    return {
        "n": 1,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,
        "max_tokens": params.max_tokens,
        "seed": params.seed + k,
        "stop": list(params.stop),
        "repetition_penalty": params.repeat_penalty,
        "skip_special_tokens": False,
        "include_stop_str_in_output": False,
    }


def to_generation(output: Any, latency_s: float, end_texts: Sequence[str] = ()) -> Generation:
    """Map a `vllm.RequestOutput` (first completion) to a Generation.

    `end_texts` are end-of-turn token strings: with special tokens kept, vLLM may leave the final
    one in the text, and it is not part of the answer. An aborted request is an error.
    """
    completion = output.outputs[0]
    reason = completion.finish_reason
    if reason == "abort":
        raise BackendError("vLLM aborted the request")
    text = str(completion.text)
    if reason == "stop" and completion.stop_reason is None:  # ended on an end-of-turn token
        for end in end_texts:
            if end and text.endswith(end):
                text = text[: -len(end)]
                break
    stop_reason = completion.stop_reason
    return Generation(
        text=text,
        finish_reason=reason,
        prompt_tokens=len(output.prompt_token_ids or ()),
        completion_tokens=len(completion.token_ids or ()),
        latency_s=latency_s,
        raw_fields={"stop_reason": stop_reason} if isinstance(stop_reason, str | int) else {},
    )


def _import_vllm() -> Any:
    try:
        return importlib.import_module("vllm")  # optional: no import for mypy to resolve
    except ImportError:
        raise BackendError(INSTALL_HINT) from None


class VLLMBackend:
    """A model loaded into vLLM's offline engine."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        tensor_parallel_size: int = 1,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        batch_size: int = 256,
    ) -> None:
        vllm = _import_vllm()
        self.spec = spec
        self.name = f"vllm {vllm.__version__}"
        self.batch_size = batch_size
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._engine = engine_kwargs(
            spec.target,
            seed=spec.params.seed,
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
        )
        try:
            self._llm = vllm.LLM(**self._engine)
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(f"vLLM could not load {spec.target}: {exc}") from None
        self._sampling = vllm.SamplingParams
        self._tok = self._llm.get_tokenizer()
        eos = getattr(self._tok, "eos_token", None)
        self._end_texts = (eos,) if isinstance(eos, str) and eos else ()
        self._weights = weights_fingerprint(spec.target)

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "weights": self._weights,
            "template": getattr(self._tok, "chat_template", None),
            "chat_template_kwargs": self.chat_template_kwargs,
            "dtype": self._engine["dtype"],
            "tensor_parallel_size": self._engine["tensor_parallel_size"],
        }

    def render(self, messages: Sequence[Message], prefill: str = "") -> str:
        return render_chat(self._tok, messages, prefill, self.chat_template_kwargs)

    def count_tokens(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False)) if text else 0

    def generate(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> Generation:
        (result,) = self.generate_many([GenRequest(tuple(messages), params, prefill, k)])
        if isinstance(result, BackendError):
            raise result
        return result

    def generate_many(
        self, requests: Sequence[GenRequest], on_done: OnDone | None = None
    ) -> list[Result]:
        """Generate every request, `batch_size` per `LLM.generate` call; `on_done(index,
        result)` fires as each call returns. A request vLLM refuses (e.g. a prompt longer than
        the context) gets a BackendError; the rest of its call is retried without it."""
        results: list[Result | None] = [None] * len(requests)

        def done(i: int, result: Result) -> None:
            results[i] = result
            if on_done is not None:
                on_done(i, result)

        ready: list[tuple[int, list[int]]] = []
        for i, req in enumerate(requests):
            try:
                text = self.render(req.messages, req.prefill)
            except BackendError as exc:
                done(i, exc)
                continue
            ready.append((i, list(self._tok.encode(text, add_special_tokens=False))))
        for lo in range(0, len(ready), self.batch_size):
            chunk = ready[lo : lo + self.batch_size]
            try:
                for (i, _), gen in zip(chunk, self._call(requests, chunk), strict=True):
                    done(i, gen)
            except BackendError:
                for i, ids in chunk:  # find the request vLLM refused
                    try:
                        (gen,) = self._call(requests, [(i, ids)])
                    except BackendError as exc:
                        done(i, exc)
                    else:
                        done(i, gen)
        return [r if r is not None else BackendError("not generated") for r in results]

    def _call(
        self, requests: Sequence[GenRequest], chunk: list[tuple[int, list[int]]]
    ) -> list[Result]:
        prompts = [{"prompt_token_ids": ids} for _, ids in chunk]
        sampling = [
            self._sampling(**sampling_kwargs(requests[i].params, requests[i].k)) for i, _ in chunk
        ]
        start = time.perf_counter()
        try:
            outputs = self._llm.generate(prompts, sampling_params=sampling, use_tqdm=False)
        except ValueError as exc:  # request validation, e.g. prompt too long
            raise BackendError(f"vLLM rejected the request: {exc}") from None
        latency = time.perf_counter() - start
        mapped: list[Result] = []
        for out in outputs:
            try:
                mapped.append(to_generation(out, latency, self._end_texts))
            except BackendError as exc:
                mapped.append(exc)
        return mapped

    def close(self) -> None:
        del self._llm


def load_vllm(spec: ModelSpec, options: Mapping[str, Any] | None = None) -> VLLMBackend:
    """Registry loader for `vllm:` specs; `options` are the spec's backend options."""
    opts = parse_options(VLLMOptions, options, kind=spec.kind, spec=spec.spec)
    return VLLMBackend(spec, **opts.model_dump())

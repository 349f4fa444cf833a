"""Embedded backend: llama.cpp in-process through llama-cpp-python.

The chat template comes from the GGUF metadata (rendered with llama-cpp-python's Jinja2
formatter), so the prompt is exactly what the model was trained on. The context is reset before
every call: reusing a cached prefix changes batch shapes and can flip a greedy token, and a
resumed run must produce the same samples as an uninterrupted one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.spec import ModelSpec
from trustdiff.errors import BackendError
from trustdiff.records import Message


class LlamaCppBackend:
    """A GGUF model loaded in this process."""

    def __init__(
        self, spec: ModelSpec, *, n_threads: int | None = None, logits_all: bool = False
    ) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise BackendError(
                "the embedded backend needs llama-cpp-python: pip install 'trustdiff[llamacpp]'"
            ) from None
        self.spec = spec
        self.name = f"llama-cpp-python {llama_cpp.__version__}"
        try:
            self._llm = llama_cpp.Llama(
                model_path=spec.target,
                n_ctx=spec.n_ctx,
                n_threads=n_threads or os.cpu_count(),
                seed=spec.params.seed,
                verbose=False,
                logits_all=logits_all,
            )
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama.cpp could not load {spec.target}: {exc}") from None
        self._template, self._formatter = chat_formatter(self._llm._model, spec.target)

    @property
    def llm(self) -> Any:
        """The underlying `llama_cpp.Llama` (teacher forcing reads its per-position logits)."""
        return self._llm

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "weights": self.spec.weights_id, "template": self._template}

    def render(self, messages: Sequence[Message], prefill: str = "") -> tuple[str, list[str]]:
        """Prompt text (template + prefill) and the template's stop strings."""
        return render_chat(self._formatter, messages, prefill)

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def generate(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> Generation:
        prompt, stops = self.render(messages, prefill)
        self._llm.reset()  # type: ignore[no-untyped-call]
        start = time.perf_counter()
        try:
            out: Any = self._llm.create_completion(
                prompt,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                repeat_penalty=params.repeat_penalty,
                seed=params.seed + k,
                stop=[*stops, *params.stop],
            )
        except ValueError as exc:  # e.g. prompt longer than the context window
            raise BackendError(f"llama.cpp rejected the prompt: {exc}") from None
        choice = out["choices"][0]
        usage = out.get("usage", {})
        return Generation(
            text=choice["text"],
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=time.perf_counter() - start,
        )

    def close(self) -> None:
        self._llm.close()


def chat_formatter(model: Any, target: str) -> tuple[str, Any]:
    """The GGUF's own chat template and a formatter for it, from a loaded llama-cpp-python
    `LlamaModel`. Shared with the batched engine so both render byte-identical prompts."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = model.metadata().get("tokenizer.chat_template")
    if not template:
        raise BackendError(f"{target} has no chat template in its GGUF metadata")
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(model.token_eos()),
        bos_token=model.token_get_text(model.token_bos()),
        add_generation_prompt=True,
    )
    return template, formatter


def render_chat(formatter: Any, messages: Sequence[Message], prefill: str) -> tuple[str, list[str]]:
    """Prompt text (template + prefill) and the template's stop strings."""
    rendered = formatter(messages=[m.model_dump() for m in messages])
    stops = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or ""]
    return rendered.prompt + prefill, [s for s in stops if s]

"""Teacher-forced response log-probs from an OpenAI-compatible server (`openai:` specs).

One `POST /v1/completions` per response with `echo: true, logprobs: 1, max_tokens: 1`: the
server returns the log-prob of every prompt token (`choices[0].logprobs.token_logprobs`, or
vLLM's `prompt_logprobs` when only that is filled), and the response's tokens are the tail of
that prompt. The prompt is sent as token ids, not text: the chat part comes from the server's
own `/tokenize` with the messages (its chat template, the spec's `chat_template_kwargs`, the
protocol prefill as a continued assistant turn — exactly how generation rendered it), each
response part is tokenized on its own, so the response span is known by position and matches
the other model's scorer token for token (text would let tokens merge across the boundary).

A server that ignores `echo` (llama-server returns only the generated token) is refused with
one line before any scoring. Retries follow the spec's retry settings (5xx, 408, 429 with
Retry-After, dropped connections, malformed JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trustdiff.backends.openai_compat import OpenAIBackend
from trustdiff.backends.openai_wire import RetryPolicy
from trustdiff.backends.protocol import prepare
from trustdiff.backends.spec import ModelSpec
from trustdiff.drift.scorer import TokenArrays, concat_parts, probe_fingerprint
from trustdiff.errors import BackendError, TrustdiffError
from trustdiff.records import Message

ECHO_PROBE = "The capital of France is Paris, and the capital of Italy is Rome."


class NoPromptLogprobsError(TrustdiffError):
    """The server does not return prompt log-probs, so it cannot teacher-force."""


class OpenAIScorer:
    """Scores response text under a served model, through its completions endpoint."""

    def __init__(self, spec: ModelSpec, *, policy: RetryPolicy | None = None) -> None:
        if spec.kind != "openai":
            raise BackendError(f"OpenAIScorer needs an openai: spec, not {spec.kind}:")
        self.spec = spec
        # The chat backend's client: key, timeouts, retries, retry budget, error rules.
        self._api = OpenAIBackend(spec, policy=policy)
        self._root = spec.base_url.removesuffix("/v1")
        self._template_kwargs = spec.extra_body.get("chat_template_kwargs") or {}
        self._check_echo()

    @property
    def retries_used(self) -> int:
        return self._api.retries_used

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        """JSON reply of one POST, retried like chat requests; final failures raise."""
        return self._api.post_json(url, body, not_found=lambda msg: self._not_found(url, msg))

    def _not_found(self, url: str, msg: str) -> str:
        if url.endswith("/tokenize"):
            return (
                f"server at {self.spec.base_url} has no {self._root}/tokenize endpoint "
                "(drift through an openai: model needs vLLM's /tokenize and echo)"
            )
        return self._api._not_found(msg)

    # -- echo and tokenization ----------------------------------------------------------------

    def _completion(self, prompt: str | list[int]) -> dict[str, Any]:
        body = {
            "model": self.spec.served_model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
        }
        data = self._post(f"{self.spec.base_url}/completions", body)
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise BackendError(
                f"server at {self.spec.base_url}: malformed completions reply"
            ) from None
        return dict(choice)

    def _check_echo(self) -> None:
        """Refuse at once a server that ignores echo (it would score only a generated token)."""
        choice = self._completion(ECHO_PROBE)
        if len(_prompt_logprobs(choice, None)) < 4:
            raise NoPromptLogprobsError(
                f"server at {self.spec.base_url} does not return prompt log-probs (echo); "
                "use vLLM (or another server whose /v1/completions honours echo) or score "
                "the same weights with a gguf: or hf: spec"
            )

    def _tokenize(self, text: str) -> list[int]:
        body = {"model": self.spec.served_model, "prompt": text, "add_special_tokens": False}
        return _tokens(self._post(f"{self._root}/tokenize", body), self.spec.base_url)

    def _chat_ids(self, messages: Sequence[Message], prefill: str) -> list[int]:
        """Token ids of the rendered chat prompt (plus the prefill as a continued turn)."""
        chat = [m.model_dump() for m in messages]
        body: dict[str, Any] = {
            "model": self.spec.served_model,
            "messages": chat,
            "add_generation_prompt": True,
            "add_special_tokens": False,
        }
        if prefill:
            chat.append({"role": "assistant", "content": prefill})
            body |= {"add_generation_prompt": False, "continue_final_message": True}
        if self._template_kwargs:
            body["chat_template_kwargs"] = self._template_kwargs
        return _tokens(self._post(f"{self._root}/tokenize", body), self.spec.base_url)

    # -- scoring ------------------------------------------------------------------------------

    def tokenizer_id(self) -> str:
        return probe_fingerprint(self._tokenize)

    def response_logprobs(self, messages: Sequence[Message], parts: Sequence[str]) -> TokenArrays:
        prepared = prepare(self.spec, messages)
        prompt = self._chat_ids(prepared.messages, prepared.prefill)
        resp, owner = concat_parts(parts, self._tokenize)
        if not resp:
            return np.zeros(0), np.zeros(0, dtype=np.intp)
        ids = prompt + resp
        values = _prompt_logprobs(self._completion(ids), ids)
        if len(values) < len(ids) or any(v is None for v in values[len(prompt) : len(ids)]):
            raise BackendError(
                f"server at {self.spec.base_url} returned {len(values)} prompt log-probs for "
                f"{len(ids)} prompt tokens"
            )
        lp = np.asarray(values[len(prompt) : len(ids)], dtype=np.float64)
        return lp, np.asarray(owner, dtype=np.intp)

    def close(self) -> None:
        self._api.close()


def _tokens(data: Any, base: str) -> list[int]:
    try:
        return [int(t) for t in data["tokens"]]
    except (KeyError, TypeError, ValueError):
        raise BackendError(f"server at {base}: /tokenize reply has no token list") from None


def _prompt_logprobs(choice: dict[str, Any], ids: Sequence[int] | None) -> list[float | None]:
    """Per-position log-probs of the echoed prompt (first position None): OpenAI's
    `logprobs.token_logprobs`, else vLLM's `prompt_logprobs` (a dict per position, keyed by
    token id, holding the prompt token's entry; with unknown ids, the only entry)."""
    lp = choice.get("logprobs")
    values = lp.get("token_logprobs") if isinstance(lp, dict) else None
    if isinstance(values, list) and len(values) > 1:
        return [None if v is None else float(v) for v in values]
    rows = choice.get("prompt_logprobs")
    if not isinstance(rows, list):
        return []
    out: list[float | None] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not row:
            out.append(None)
            continue
        key = str(ids[i]) if ids is not None and i < len(ids) else next(iter(row))
        entry = row.get(key)
        out.append(float(entry["logprob"]) if isinstance(entry, dict) else None)
    return out

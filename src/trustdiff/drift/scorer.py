"""Teacher-forced response log-probs: the scorer interface, its selection per model spec, and the
llama.cpp scorer (logits of every position).

Both models see the same response tokens after their own prompt (each spec's system prompt and
reasoning protocol applied), so log p_d(y) − log p_b(y) measures how far the derived model's
behaviour moved from the baseline's on the derived model's own outputs.

Scorers by spec kind: `gguf:` → llama.cpp in-process (here), `hf:` → transformers fp32
(:mod:`trustdiff.drift.hf_scorer`), `openai:` → the server's prompt log-probs through
`/v1/completions` with `echo` (:mod:`trustdiff.drift.openai_scorer`; vLLM yes, llama-server no).
A baseline and a derived model may use different scorers: their tokenizers must agree, which
:func:`probe_fingerprint` checks the same way for every scorer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from trustdiff.backends.llamacpp import LlamaCppBackend
from trustdiff.backends.protocol import prepare
from trustdiff.backends.spec import ModelSpec
from trustdiff.drift.kl import log_softmax_at
from trustdiff.errors import BackendError, TrustdiffError
from trustdiff.records import Message

PROBE = (
    "The quick brown fox jumps over the lazy dog. 0123456789 3.14159 -42 1e-9",
    "  leading spaces,\ttabs,\n\nnewlines and trailing   ",
    "def f(x):\n    return {'a': [x, x ** 2]}  # code",
    "Ünïcödé: naïve café, Straße, 日本語のテキスト, 中文, русский, العربية, emoji 🙂👍",
    "<think>\nreasoning\n</think>\nanswer <|im_start|>user<|im_end|> <|endoftext|> </s> <s>",
    "I'm sorry, but I can't help with that. Sure! Here's how: step 1, step 2.",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
)
"""Texts whose token ids fingerprint a tokenizer: words, numbers, whitespace runs, code, several
scripts, emoji, and the chat and think markers (special-token handling differs most there)."""

TokenArrays = tuple[np.ndarray, np.ndarray]
"""(log-prob of each response token, index of the response part each token belongs to)."""


class Scorer(Protocol):
    """Scores given response text under one model and one spec's prompt protocol."""

    spec: ModelSpec

    def tokenizer_id(self) -> str:
        """Fingerprint of the tokenizer (:func:`probe_fingerprint`): teacher forcing across
        models needs identical tokenizers."""
        ...

    def response_logprobs(self, messages: Sequence[Message], parts: Sequence[str]) -> TokenArrays:
        """Log-prob of each token of the concatenated `parts` (each part tokenized on its own),
        after the spec's rendered chat prompt plus its protocol prefill, and the part index of
        each token."""
        ...

    def close(self) -> None: ...


def probe_fingerprint(tokenize: Callable[[str], Sequence[int]]) -> str:
    """Hash of the token ids of :data:`PROBE` (no special tokens added, special text parsed as
    the model's chat template would be): comparable across llama.cpp, transformers and servers."""
    h = hashlib.sha256()
    for text in PROBE:
        h.update(",".join(str(int(t)) for t in tokenize(text)).encode() + b";")
    return h.hexdigest()[:16]


def concat_parts(
    parts: Sequence[str], tokenize: Callable[[str], list[int]]
) -> tuple[list[int], list[int]]:
    """Token ids of the parts, each tokenized on its own, and the part index of each token."""
    ids: list[int] = []
    owner: list[int] = []
    for i, text in enumerate(parts):
        toks = tokenize(text) if text else []
        ids += toks
        owner += [i] * len(toks)
    return ids, owner


class LlamaCppScorer:
    """Scores given response text under one GGUF model and one spec's prompt protocol."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.backend = LlamaCppBackend(spec, logits_all=True)

    def _tokenize(self, text: str) -> list[int]:
        return list(self.backend.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def tokenizer_id(self) -> str:
        return probe_fingerprint(self._tokenize)

    def response_logprobs(self, messages: Sequence[Message], parts: Sequence[str]) -> TokenArrays:
        """The prompt is the spec's rendered chat prompt plus its protocol prefill, exactly what
        the model saw when generating."""
        prepared = prepare(self.spec, messages)
        prompt, _ = self.backend.render(prepared.messages, prepared.prefill)
        llm = self.backend.llm
        prompt_tokens = self._tokenize(prompt)
        resp, owner = concat_parts(parts, self._tokenize)
        if not resp:
            return np.zeros(0), np.zeros(0, dtype=np.intp)
        total = len(prompt_tokens) + len(resp)
        if total > llm.n_ctx():
            raise BackendError(f"prompt + response ({total} tokens) exceed n_ctx {llm.n_ctx()}")
        llm.reset()
        llm.eval(prompt_tokens + resp)
        # Row j of the logits predicts token j + 1.
        rows = np.asarray(llm.scores[len(prompt_tokens) - 1 : total - 1])
        lp = log_softmax_at(rows, np.asarray(resp, dtype=np.intp))
        return lp, np.asarray(owner, dtype=np.intp)

    def close(self) -> None:
        self.backend.close()


SCORED_KINDS = ("gguf", "hf", "openai")


def make_scorer(spec: ModelSpec) -> Scorer:
    """The teacher-forcing scorer for a spec's backend kind (one line of error otherwise)."""
    if spec.kind == "gguf":
        return LlamaCppScorer(spec)
    if spec.kind == "hf":
        from trustdiff.drift.hf_scorer import HFScorer

        return HFScorer(spec)
    if spec.kind == "openai":
        from trustdiff.drift.openai_scorer import OpenAIScorer

        return OpenAIScorer(spec)
    raise TrustdiffError(
        f"--drift needs teacher-forced log-probs; backend {spec.kind!r} of {spec.label!r} does "
        f"not provide them (supported: {', '.join(k + ':' for k in SCORED_KINDS)} models)"
    )

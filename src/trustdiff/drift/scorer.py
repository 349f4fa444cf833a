"""Teacher-forced response log-probs through llama.cpp (logits of every position).

Both models see the same response tokens after their own prompt (each spec's system prompt and
reasoning protocol applied), so log p_d(y) − log p_b(y) measures how far the derived model's
behaviour moved from the baseline's on the derived model's own outputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from trustdiff.backends.llamacpp import LlamaCppBackend
from trustdiff.backends.protocol import prepare
from trustdiff.backends.spec import ModelSpec
from trustdiff.drift.kl import log_softmax_at
from trustdiff.errors import BackendError
from trustdiff.records import Message


class LlamaCppScorer:
    """Scores given response text under one GGUF model and one spec's prompt protocol."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.backend = LlamaCppBackend(spec, logits_all=True)

    def tokenizer_id(self) -> str:
        """Hash of the vocabulary: teacher forcing across models needs identical tokenizers."""
        llm = self.backend.llm
        vocab = llm._model
        h = hashlib.sha256()
        for tok in range(llm.n_vocab()):
            h.update(vocab.token_get_text(tok).encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()[:16]

    def response_logprobs(
        self, messages: Sequence[Message], parts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log-prob of each token of the concatenated `parts`, and the part index of each token.

        The prompt is the spec's rendered chat prompt plus its protocol prefill, exactly what
        the model saw when generating.
        """
        prepared = prepare(self.spec, messages)
        prompt, _ = self.backend.render(prepared.messages, prepared.prefill)
        llm = self.backend.llm
        prompt_tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        resp: list[int] = []
        owner: list[int] = []
        for i, text in enumerate(parts):
            toks = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) if text else []
            resp += toks
            owner += [i] * len(toks)
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

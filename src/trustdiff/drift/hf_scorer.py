"""Teacher-forced response log-probs through transformers (`hf:` specs).

The model is loaded in float32 whatever the spec's `dtype` (drift differences of a few hundredths
of a nat per token must not drown in bf16 rounding), and scored with one forward pass per
prompt + response; the log-softmax of the response rows is taken in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trustdiff.backends.hf import HFBackend, HFOptions, parse_options
from trustdiff.backends.protocol import prepare
from trustdiff.backends.spec import ModelSpec
from trustdiff.drift.kl import log_softmax_at
from trustdiff.drift.scorer import TokenArrays, concat_parts, probe_fingerprint
from trustdiff.errors import BackendError
from trustdiff.records import Message


class HFScorer:
    """Scores response text under one transformers model and one spec's prompt protocol."""

    def __init__(self, spec: ModelSpec) -> None:
        opts = parse_options(HFOptions, spec.backend_options, kind=spec.kind, spec=spec.spec)
        settings = {**opts.model_dump(), "dtype": "float32", "batch_size": 1}
        self.spec = spec
        self.backend = HFBackend(spec, **settings)
        self._ctx: int | None = getattr(self.backend.model.config, "max_position_embeddings", None)

    def _tokenize(self, text: str) -> list[int]:
        return list(self.backend.tokenizer.encode(text, add_special_tokens=False))

    def tokenizer_id(self) -> str:
        return probe_fingerprint(self._tokenize)

    def response_logprobs(self, messages: Sequence[Message], parts: Sequence[str]) -> TokenArrays:
        prepared = prepare(self.spec, messages)
        prompt = self._tokenize(self.backend.render(prepared.messages, prepared.prefill))
        resp, owner = concat_parts(parts, self._tokenize)
        if not resp:
            return np.zeros(0), np.zeros(0, dtype=np.intp)
        total = len(prompt) + len(resp)
        if self._ctx is not None and total > self._ctx:
            raise BackendError(f"prompt + response ({total} tokens) exceed the context {self._ctx}")
        rows = self._logits(prompt + resp)[len(prompt) - 1 : total - 1]
        lp = log_softmax_at(rows, np.asarray(resp, dtype=np.intp))
        return lp, np.asarray(owner, dtype=np.intp)

    def _logits(self, ids: list[int]) -> Any:
        """Logits of every position (row j predicts token j + 1), as a float32 numpy array."""
        backend = self.backend
        torch: Any = backend._torch
        with torch.inference_mode():
            tensor = torch.tensor([ids], device=backend.device)
            out = backend.model(input_ids=tensor, use_cache=False)
            return out.logits[0].float().cpu().numpy()

    def close(self) -> None:
        self.backend.close()

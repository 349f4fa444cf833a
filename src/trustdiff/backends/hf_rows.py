"""Per-row token choice and stopping for the `hf:` backend (see :mod:`trustdiff.backends.hf`).

Kept apart from the backend so the sampling rules can be read (and tested) on their own: each
row draws from its own seeded generator, so an answer never depends on its batch mates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from trustdiff.backends.base import GenParams


class RowChooser:
    """Logits processor: picks each row's next token and returns it one-hot."""

    def __init__(self, torch: Any, params: GenParams, seeds: list[int], starts: list[int]) -> None:
        self.torch, self.p, self.starts = torch, params, starts
        self.gens: list[Any] = []  # one generator per row: draws never depend on batch mates
        if params.temperature > 0:
            self.gens = [torch.Generator().manual_seed(s) for s in seeds]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch, p = self.torch, self.p
        scores = scores.float()
        if p.repeat_penalty != 1.0:  # the llama.cpp/HF rule, with each row's padding excluded
            for r, s0 in enumerate(self.starts):
                seen = input_ids[r, s0:].unique()
                got = scores[r, seen]
                scores[r, seen] = torch.where(
                    got < 0, got * p.repeat_penalty, got / p.repeat_penalty
                )
        if not self.gens:
            choice = scores.argmax(dim=-1)
        else:
            logits = scores / p.temperature
            if 0 < p.top_k < logits.shape[-1]:
                kth = torch.topk(logits, p.top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            if p.top_p < 1.0:
                ordered, idx = torch.sort(logits, descending=True, dim=-1)
                probs = ordered.softmax(dim=-1)
                drop = probs.cumsum(dim=-1) - probs > p.top_p  # keeps the token that crosses
                logits = logits.scatter(1, idx, ordered.masked_fill(drop, float("-inf")))
            probs = logits.softmax(dim=-1).cpu()  # CPU generators: same draws on every device
            choice = torch.cat(
                [torch.multinomial(probs[r], 1, generator=g) for r, g in enumerate(self.gens)]
            ).to(scores.device)
        return torch.full_like(scores, float("-inf")).scatter(1, choice.view(-1, 1), 0.0)


class RowStopper:
    """Stopping criterion: records per row how many generated tokens to keep."""

    def __init__(
        self, torch: Any, prompt_len: int, ends: frozenset[int], stops: Sequence[str], decode: Any
    ) -> None:
        self.torch, self.prompt_len, self.end_ids, self.stops = torch, prompt_len, ends, stops
        self.decode: Callable[[Sequence[int]], str] = decode
        self.window = 4 * max((len(s) for s in stops), default=0) + 4  # chars of ≤ 4 byte-tokens
        self.ends: list[int | None] = []

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        gen = input_ids[:, self.prompt_len :]
        n = gen.shape[1]
        if not self.ends:
            self.ends = [None] * gen.shape[0]
        for r, end in enumerate(self.ends):
            if end is not None:
                continue
            if int(gen[r, -1]) in self.end_ids:
                self.ends[r] = n - 1
            elif self.stops:
                tail = self.decode(gen[r, max(0, n - self.window) :].tolist())
                if any(s in tail for s in self.stops):
                    self.ends[r] = n
        return self.torch.tensor([e is not None for e in self.ends], device=input_ids.device)

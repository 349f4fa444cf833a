"""Per-request decoding state of the batched engine and llama-cpp-python's stop rules.

Kept apart from the engine (llamacpp_batch.py) so the rules that make its output equal the
single-stream backend's — end of generation, stop strings, the incomplete-UTF-8 hold-back,
`max_tokens`, a full context — read in one place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from trustdiff.backends.base import Generation

_UTF8_LEADS = ((2, 192), (3, 224), (4, 240))


@dataclass
class Seq:
    """Decoding state of one request while it holds a slot."""

    index: int
    """The request's position in the batch."""
    slot: int
    """KV stream (sequence id) it decodes in."""
    prompt: list[int]
    """Prompt tokens."""
    max_tokens: int
    """Generation budget (already capped by the context)."""
    stops: list[bytes]
    """Stop strings, as bytes."""
    sampler: Any
    """llama.cpp sampler chain, or None for plain greedy (numpy argmax, same tie rule)."""
    start: float
    """`perf_counter` at the start (latency)."""
    tokens: list[int] = field(default_factory=list)
    """Generated tokens."""
    raw: bytearray = field(default_factory=bytearray)
    """Their detokenized bytes."""
    multibyte: int = 0
    """Bytes still missing from a UTF-8 character cut by a token boundary."""
    text: bytes | None = None
    """The completion once finished (stop string cut off)."""
    finish: str | None = None
    """`stop` or `length` once finished."""

    def accept(self, token: int, piece: bytes, *, eog: bool, bos: int, n_ctx: int) -> None:
        """Apply `create_completion`'s stop rules to a freshly sampled token."""
        if eog:
            self.text, self.finish = self.visible(bos), "stop"
            return
        self.tokens.append(token)
        self.raw += piece
        text = self.visible(bos)
        for k, char in enumerate(text[-3:]):  # hold back an incomplete UTF-8 character
            k = 3 - k
            for num, pattern in _UTF8_LEADS:
                if num > k and pattern & char == pattern:
                    self.multibyte = num - k
        if self.multibyte > 0:
            self.multibyte -= 1
        else:
            hit = [s for s in self.stops if s in text]
            if hit:
                self.text, self.finish = text[: text.index(hit[0])], "stop"
            elif len(self.tokens) >= self.max_tokens:
                self.text, self.finish = text, "length"
        if self.finish is None and len(self.prompt) + len(self.tokens) > n_ctx:
            self.text, self.finish = text, "length"  # stream full (single stream would fail)

    def visible(self, bos: int) -> bytes:
        """Detokenized completion (llama-cpp-python drops a leading space after a BOS)."""
        raw = bytes(self.raw)
        if self.tokens and self.tokens[0] == bos and raw[:1] == b" ":
            return raw[1:]
        return raw

    def generation(self) -> Generation:
        return Generation(
            text=(self.text or b"").decode("utf-8", errors="ignore"),
            finish_reason=self.finish,
            prompt_tokens=len(self.prompt),
            completion_tokens=len(self.tokens),
            latency_s=time.perf_counter() - self.start,
        )

"""Backend interface: turn chat messages into one raw generation, nothing more.

Reasoning parsing, storing and judging happen elsewhere, so a backend can be tested alone and
every backend's output goes through the same parser (DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from trustdiff.records import Message, stable_hash


class GenParams(BaseModel):
    """Sampling parameters; part of every sample's cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    temperature: float = Field(0.0, ge=0.0)
    """0 = greedy (deterministic)."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    top_k: int = Field(0, ge=0)
    """Top-k cut (0 = off)."""
    repeat_penalty: float = 1.0
    """1.0 = off; passed explicitly because server defaults differ."""
    max_tokens: int = Field(256, ge=1)
    """Budget for reasoning + answer together."""
    seed: int = 0
    """Sampling seed (combined with the sample index k)."""
    stop: tuple[str, ...] = ()
    """Extra stop strings."""

    def hash(self) -> str:
        return stable_hash(self.model_dump(mode="json"))


@dataclass
class Generation:
    """What one backend call returned, verbatim."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    reasoning_field: str | None = None
    reasoning_tokens: int | None = None
    raw_fields: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A loaded model that generates one completion per call."""

    name: str
    """Backend name and version, e.g. `llama-cpp-python 0.3.36`."""

    def identity(self) -> dict[str, Any]:
        """What identifies the weights and template (goes into the model fingerprint)."""
        ...

    def generate(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> Generation:
        """Generate after the rendered chat prompt (plus `prefill` opening the reply).

        `k` is the sample index: it offsets the seed so repeated samples differ when
        temperature > 0 and stay reproducible.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under this model's tokenizer (for reasoning/answer token counts)."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...

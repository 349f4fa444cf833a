"""How a model is driven: direct answering, or the prompted <think> reasoning protocol.

The demo's derived model is the baseline's own weights told to reason first. That is *not* a
trained reasoning model, and every report says so ("prompted reasoning").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trustdiff.backends.base import Backend, Generation
from trustdiff.backends.spec import ModelSpec
from trustdiff.records import Message

THINK_SYSTEM = (
    "You are a helpful assistant that thinks before answering. First reason about the user's "
    "request step by step inside <think> and </think>. Keep the reasoning short. Then write "
    "</think> and give your final answer to the user."
)
THINK_PREFILL = "<think>\n"
THINK_CLOSE = "\n</think>\n"


@dataclass(frozen=True)
class Prepared:
    """Messages and assistant-turn prefill to send, and whether thinking is already open."""

    messages: tuple[Message, ...]
    prefill: str
    thinking_opened: bool


def prepare(spec: ModelSpec, messages: Sequence[Message]) -> Prepared:
    """Apply the spec's system prompt and reasoning protocol to an item's messages."""
    systems = [m.content for m in messages if m.role == "system"]
    rest = tuple(m for m in messages if m.role != "system")
    if spec.system:
        systems.insert(0, spec.system)
    if spec.reasoning == "prompted":
        systems.insert(0, THINK_SYSTEM)
    head = (Message(role="system", content="\n\n".join(systems)),) if systems else ()
    if spec.reasoning == "prompted":
        # Prefilling the open tag (as R1-style templates do) makes the model start thinking;
        # the parser is told so and treats a missing </think> as truncated thinking.
        return Prepared(head + rest, THINK_PREFILL, True)
    return Prepared(head + rest, "", False)


def generate(
    spec: ModelSpec, backend: Backend, messages: Sequence[Message], k: int
) -> tuple[Generation, bool]:
    """Run the spec's protocol; returns the generation and whether thinking was prefilled.

    Prompted reasoning runs in two phases because small instruct models rarely write `</think>`
    themselves: (1) think after the prefilled `<think>` until `</think>`, end of turn, or the
    `think_budget`; (2) if the budget was not hit, close the block and generate the answer with
    `max_tokens`. Hitting the budget leaves the thinking open, which the parser reports as
    `truncated` — exactly what a budgeted reasoning model does. The inserted close tag is
    recorded in `raw_fields` so the raw text is never mistaken for pure model output.
    """
    prepared = prepare(spec, messages)
    if spec.reasoning != "prompted":
        gen = backend.generate(prepared.messages, spec.params, prefill=prepared.prefill, k=k)
        return gen, prepared.thinking_opened
    think_params = spec.params.model_copy(
        update={"max_tokens": spec.think_budget, "stop": (*spec.params.stop, "</think>")}
    )
    think = backend.generate(prepared.messages, think_params, prefill=prepared.prefill, k=k)
    if think.finish_reason == "length":
        think.raw_fields["protocol"] = "prompted-think: budget hit in phase 1"
        return think, True
    prefill = prepared.prefill + think.text + THINK_CLOSE
    answer = backend.generate(prepared.messages, spec.params, prefill=prefill, k=k)
    return Generation(
        text=think.text + THINK_CLOSE + answer.text,
        finish_reason=answer.finish_reason,
        prompt_tokens=think.prompt_tokens,
        completion_tokens=think.completion_tokens + answer.completion_tokens,
        latency_s=think.latency_s + answer.latency_s,
        raw_fields={
            "protocol": "prompted-think: </think> inserted after phase 1",
            "think_finish_reason": think.finish_reason,
        },
    ), True

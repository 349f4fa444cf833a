"""How a model is driven: direct answering, or the prompted <think> reasoning protocol.

The demo's derived model is the baseline's own weights told to reason first. That is *not* a
trained reasoning model, and every report says so ("prompted reasoning").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trustdiff.backends.base import Backend, Generation, GenParams
from trustdiff.backends.spec import ModelSpec
from trustdiff.errors import BackendError
from trustdiff.records import Message

if TYPE_CHECKING:
    from trustdiff.backends.llamacpp_batch import BatchedLlamaCpp

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


def think_params(spec: ModelSpec) -> GenParams:
    """Phase-1 parameters of prompted reasoning: the thinking budget, stopping at `</think>`."""
    return spec.params.model_copy(
        update={"max_tokens": spec.think_budget, "stop": (*spec.params.stop, "</think>")}
    )


def budget_hit(think: Generation) -> Generation:
    think.raw_fields["protocol"] = "prompted-think: budget hit in phase 1"
    return think


def answer_prefill(prepared: Prepared, think: Generation) -> str:
    return prepared.prefill + think.text + THINK_CLOSE


def combine(think: Generation, answer: Generation) -> Generation:
    """The two phases as one generation; the inserted close tag is recorded."""
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
    )


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
    think = backend.generate(prepared.messages, think_params(spec), prefill=prepared.prefill, k=k)
    if think.finish_reason == "length":
        return budget_hit(think), True
    prefill = answer_prefill(prepared, think)
    answer = backend.generate(prepared.messages, spec.params, prefill=prefill, k=k)
    return combine(think, answer), True


Result = Generation | BackendError


def generate_batched(
    spec: ModelSpec,
    backend: BatchedLlamaCpp,
    jobs: Sequence[tuple[Sequence[Message], int]],
    on_done: Callable[[int, Result, bool], None],
) -> None:
    """The same protocol over a batched engine; `on_done(job, result, thinking_opened)` fires
    as soon as a job's sample exists. With prompted reasoning a job's answer phase starts the
    moment its thinking phase closes, in the same slot, whose cached prompt it extends (the
    engine reuses those KV cells instead of decoding the prompt again)."""
    from trustdiff.backends.llamacpp_batch import BatchRequest

    prepared = [prepare(spec, msgs) for msgs, _ in jobs]
    if spec.reasoning != "prompted":
        requests = [
            BatchRequest(p.messages, spec.params, p.prefill, k)
            for p, (_, k) in zip(prepared, jobs, strict=True)
        ]
        backend.generate_many(requests, lambda i, r: on_done(i, r, prepared[i].thinking_opened))
        return
    thinks: dict[int, Generation] = {}

    def answer_phase(i: int, think: Result) -> BatchRequest | None:
        if i in thinks or isinstance(think, BackendError) or think.finish_reason == "length":
            return None  # an answer, a failure, or a thinking budget hit: the job is done
        thinks[i] = think
        return BatchRequest(
            prepared[i].messages, spec.params, answer_prefill(prepared[i], think), jobs[i][1]
        )

    def finish(i: int, result: Result) -> None:
        think = thinks.get(i)
        if think is not None:
            on_done(i, result if isinstance(result, BackendError) else combine(think, result), True)
        else:
            on_done(i, result if isinstance(result, BackendError) else budget_hit(result), True)

    requests = [
        BatchRequest(p.messages, think_params(spec), p.prefill, k)
        for p, (_, k) in zip(prepared, jobs, strict=True)
    ]
    backend.generate_many(requests, finish, answer_phase)

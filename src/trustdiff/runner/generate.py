"""Generation with resume: plan the samples, skip those already stored, store each at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from trustdiff.backends import protocol
from trustdiff.backends.base import Backend, Generation
from trustdiff.backends.reasoning import parse_output
from trustdiff.backends.spec import ModelSpec
from trustdiff.errors import BackendError
from trustdiff.records import Item, Outcome, Sample, stable_hash
from trustdiff.store import Store


@dataclass(frozen=True)
class Task:
    """One sample to produce: item × sample index, with its cache key."""

    item: Item
    k: int
    key: str


def sample_key(fingerprint: str, item: Item, k: int) -> str:
    """DESIGN §3 cache key: model fingerprint (backend, weights, template options, params, seed)
    plus the item's messages and the sample index."""
    return stable_hash(
        {"model": fingerprint, "messages": [m.model_dump() for m in item.messages], "k": k}, 32
    )


def plan(spec: ModelSpec, items: Sequence[Item], k: int = 1) -> list[Task]:
    fp = spec.fingerprint()
    return [Task(item, j, sample_key(fp, item, j)) for item in items for j in range(k)]


def make_sample(spec: ModelSpec, backend: Backend, task: Task) -> Sample:
    """Generate and parse one sample; a per-item backend failure becomes an `error` sample."""
    try:
        gen, thinking_opened = protocol.generate(spec, backend, task.item.messages, task.k)
    except BackendError as exc:
        return to_sample(spec, backend, task, exc, False)
    return to_sample(spec, backend, task, gen, thinking_opened)


def to_sample(
    spec: ModelSpec,
    backend: Backend,
    task: Task,
    gen: Generation | BackendError,
    thinking_opened: bool,
) -> Sample:
    """Parse a generation (or record the failure) into the task's Sample."""
    common = {
        "key": task.key,
        "item_id": task.item.id,
        "model": spec.fingerprint(),
        "k": task.k,
        "params_hash": spec.params.hash(),
    }
    if isinstance(gen, BackendError):
        return Sample(
            **common,
            raw="",
            answer="",
            outcome=Outcome.ERROR,
            parse_case=0,
            error=str(gen),
            created_at=time.time(),
        )
    parsed = parse_output(
        gen.text,
        finish_reason=gen.finish_reason,
        reasoning_field=gen.reasoning_field,
        reasoning_tokens=gen.reasoning_tokens,
        thinking_opened=thinking_opened,
    )
    answer_tokens = backend.count_tokens(parsed.answer)
    if gen.reasoning_tokens is not None:  # reported by the backend (hidden reasoning, case 7)
        reasoning_tokens = gen.reasoning_tokens
    elif parsed.reasoning is not None:
        reasoning_tokens = max(gen.completion_tokens - answer_tokens, 0)
    else:
        reasoning_tokens = 0
    return Sample(
        **common,
        raw=gen.text,
        raw_fields=gen.raw_fields,
        reasoning=parsed.reasoning,
        answer=parsed.answer,
        outcome=parsed.outcome,
        parse_case=parsed.case,
        finish_reason=gen.finish_reason,
        prompt_tokens=gen.prompt_tokens,
        reasoning_tokens=reasoning_tokens,
        answer_tokens=answer_tokens,
        latency_s=gen.latency_s,
        created_at=time.time(),
    )


def run_tasks(
    store: Store,
    spec: ModelSpec,
    backend_factory: Callable[[], Backend],
    tasks: Sequence[Task],
    on_sample: Callable[[Sample], None] | None = None,
) -> int:
    """Produce every missing sample of `tasks`, committing each one as soon as it exists.

    The backend is only created when something is missing, so a fully cached re-run never
    loads the model. Backends that declare `concurrency > 1` (served models) get that many
    requests in flight from worker threads; samples are still written by this thread only, as
    each one completes. A fatal error (e.g. the server went away) cancels what is pending and
    propagates after every finished sample is stored. Returns the number generated now.
    """
    done = store.existing_sample_keys([t.key for t in tasks])
    todo = [t for t in tasks if t.key not in done]
    if not todo:
        return 0
    backend = backend_factory()

    def finish(sample: Sample) -> None:
        store.put_sample(sample)
        if on_sample is not None:
            on_sample(sample)

    from trustdiff.backends.llamacpp_batch import BatchedLlamaCpp

    if isinstance(backend, BatchedLlamaCpp):  # several sequences decoded together
        protocol.generate_batched(
            spec,
            backend,
            [(t.item.messages, t.k) for t in todo],
            lambda i, gen, opened: finish(to_sample(spec, backend, todo[i], gen, opened)),
        )
        return len(todo)
    workers = int(getattr(backend, "concurrency", 1))
    if workers <= 1:
        for task in todo:
            finish(make_sample(spec, backend, task))
        return len(todo)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trustdiff-gen") as pool:
        futures = [pool.submit(make_sample, spec, backend, task) for task in todo]
        try:
            for future in as_completed(futures):
                finish(future.result())
        except BaseException:
            for f in futures:
                f.cancel()
            for f in futures:  # keep what already finished in flight
                if f.done() and not f.cancelled() and f.exception() is None:
                    sample = f.result()
                    if sample.key not in store.existing_sample_keys([sample.key]):
                        finish(sample)
            raise
    return len(todo)

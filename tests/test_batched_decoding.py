"""Batched embedded decoding on the real model, checked against the single-stream backend.

The single-stream `LlamaCppBackend` is the reference: at temperature 0 the batched engine must
give the same tokens (text, finish reason, token counts). Generated text is never pinned; stop
strings are taken from the model's own output.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import BASE_SPEC
from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.llamacpp_batch import BatchedLlamaCpp, BatchRequest, BatchResult, Then
from trustdiff.backends.spec import parse_spec
from trustdiff.errors import BackendError
from trustdiff.records import Message
from trustdiff.suites.safety import load_safety_contrast

pytestmark = pytest.mark.slow
N_PROMPTS = 8
MAX_TOKENS = 32
GREEDY = GenParams(max_tokens=MAX_TOKENS)


@pytest.fixture(scope="module")
def messages() -> list[tuple[Message, ...]]:
    return [item.messages for item in load_safety_contrast()[:N_PROMPTS]]


@pytest.fixture(scope="module")
def batched() -> Iterator[BatchedLlamaCpp]:
    # 4 slots for 8 requests: half of them start in a slot another request just left.
    engine = BatchedLlamaCpp(parse_spec(BASE_SPEC), n_parallel=4)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def reference(embedded_backend: Any, messages: list[tuple[Message, ...]]) -> list[Generation]:
    return [embedded_backend.generate(m, GREEDY) for m in messages]


def _run(
    engine: BatchedLlamaCpp, requests: list[BatchRequest], then: Then | None = None
) -> tuple[list[Generation], list[int]]:
    calls: list[int] = []
    seen: dict[int, BatchResult] = {}

    def on_done(index: int, result: BatchResult) -> None:
        calls.append(index)
        seen[index] = result

    results = engine.generate_many(requests, on_done, then)
    assert sorted(calls) == list(range(len(requests))), "on_done must fire once per request"
    assert all(seen[i] is results[i] for i in range(len(requests)))
    gens = [r for r in results if isinstance(r, Generation)]
    assert len(gens) == len(requests), [r for r in results if isinstance(r, BackendError)]
    return gens, calls


def _key(gen: Generation) -> tuple[str, str | None, int, int]:
    return gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens


def test_greedy_matches_single_stream(
    batched: BatchedLlamaCpp, messages: list[tuple[Message, ...]], reference: list[Generation]
) -> None:
    gens, _ = _run(batched, [BatchRequest(m, GREEDY) for m in messages])
    assert [_key(g) for g in gens] == [_key(r) for r in reference]
    assert sum(g.completion_tokens for g in gens) > N_PROMPTS  # real generations, not empty


def test_counts_and_finish_reasons_are_sane(
    batched: BatchedLlamaCpp, messages: list[tuple[Message, ...]]
) -> None:
    gens, _ = _run(batched, [BatchRequest(m, GREEDY) for m in messages])
    for m, gen in zip(messages, gens, strict=True):
        prompt, _ = batched.render(m)
        assert gen.prompt_tokens == batched.count_tokens(prompt)
        assert gen.finish_reason in ("stop", "length")
        if gen.finish_reason == "length":
            assert gen.completion_tokens == MAX_TOKENS
        else:
            assert 0 <= gen.completion_tokens < MAX_TOKENS
        assert gen.latency_s > 0


def test_on_done_fires_as_each_request_finishes(
    batched: BatchedLlamaCpp, messages: list[tuple[Message, ...]], reference: list[Generation]
) -> None:
    # Request 0 needs more than 2 tokens, the later ones stop after 2: they must be reported
    # before it, not at the end of the batch.
    long = max(range(len(reference)), key=lambda i: reference[i].completion_tokens)
    assert reference[long].completion_tokens > 2
    short = GenParams(max_tokens=2)
    requests = [BatchRequest(messages[long], GREEDY)] + [
        BatchRequest(m, short) for m in messages[:3]
    ]
    gens, calls = _run(batched, requests)
    assert calls[-1] == 0
    assert _key(gens[0]) == _key(reference[long])
    for gen, ref in zip(gens[1:], reference[:3], strict=True):
        assert gen.completion_tokens <= 2
        assert ref.text.startswith(gen.text)


def test_max_tokens_is_honoured(
    batched: BatchedLlamaCpp, messages: list[tuple[Message, ...]], reference: list[Generation]
) -> None:
    budget = 5
    gens, _ = _run(batched, [BatchRequest(m, GenParams(max_tokens=budget)) for m in messages])
    for gen, ref in zip(gens, reference, strict=True):
        assert gen.completion_tokens <= budget
        assert ref.text.startswith(gen.text)  # greedy: a prefix of the longer run
        if ref.completion_tokens >= budget:
            assert (gen.finish_reason, gen.completion_tokens) == ("length", budget)


def test_stop_strings_are_honoured(
    batched: BatchedLlamaCpp,
    embedded_backend: Any,
    messages: list[tuple[Message, ...]],
    reference: list[Generation],
) -> None:
    # A word the model itself wrote in the middle of its answer becomes the stop string.
    picks = []
    for m, ref in zip(messages, reference, strict=True):
        words = [w for w in ref.text.split() if len(w) >= 4]
        if len(words) >= 3:
            picks.append((m, ref, words[len(words) // 2]))
    assert picks, "the model wrote no usable text"
    requests = [BatchRequest(m, GREEDY.model_copy(update={"stop": (w,)})) for m, _, w in picks]
    gens, _ = _run(batched, requests)
    for (m, ref, word), req, gen in zip(picks, requests, gens, strict=True):
        assert word not in gen.text
        assert gen.text == ref.text[: ref.text.index(word)]
        assert gen.finish_reason == "stop"
        assert _key(gen) == _key(embedded_backend.generate(m, req.params))


def test_sampling_is_reproducible_with_the_same_seed(
    batched: BatchedLlamaCpp, embedded_backend: Any, messages: list[tuple[Message, ...]]
) -> None:
    hot = GenParams(max_tokens=24, temperature=0.9, top_p=0.95, seed=7)
    requests = [BatchRequest(messages[0], hot, k=k) for k in range(4)]
    first, _ = _run(batched, requests)
    again, _ = _run(batched, list(reversed(requests)))
    assert [_key(g) for g in first] == [_key(g) for g in reversed(again)]
    assert len({g.text for g in first}) > 1, "different k must give different samples"
    # Same sampler chain and seed as the single-stream backend: the same sample.
    single = embedded_backend.generate(messages[0], hot, k=1)
    assert _key(first[1]) == _key(single)


def test_prompt_longer_than_context_fails_alone(
    batched: BatchedLlamaCpp, messages: list[tuple[Message, ...]], reference: list[Generation]
) -> None:
    too_long = (Message(role="user", content="word " * (batched.n_ctx + 50)),)
    results = batched.generate_many(
        [BatchRequest(too_long, GREEDY), BatchRequest(messages[0], GREEDY)]
    )
    assert isinstance(results[0], BackendError)
    assert "context window" in str(results[0])
    assert isinstance(results[1], Generation)
    assert _key(results[1]) == _key(reference[0])
    with pytest.raises(BackendError):
        batched.generate(too_long, GREEDY)


def test_generate_is_a_one_request_batch(
    batched: BatchedLlamaCpp, messages: list[tuple[Message, ...]], reference: list[Generation]
) -> None:
    gen = batched.generate(messages[1], GREEDY)
    assert _key(gen) == _key(reference[1])
    assert batched.identity()["weights"] == parse_spec(BASE_SPEC).weights_id


def test_decode_steps_feed_streams_in_ascending_contiguous_order(
    batched: BatchedLlamaCpp, messages: list[tuple[Message, ...]], monkeypatch: Any
) -> None:
    # With a non-unified KV cache llama.cpp runs a batch as one graph only where its stream ids
    # are consecutive and ascending; any other order runs one graph per piece (1.9x the time
    # per step, measured). Staggered budgets make slots free up in a scrambled order.
    calls: list[list[int]] = []
    real = batched._lc.llama_decode

    def spy(ctx: Any, batch: Any) -> int:
        calls.append([batch.seq_id[j][0] for j in range(batch.n_tokens)])
        return int(real(ctx, batch))

    monkeypatch.setattr(batched._lc, "llama_decode", spy)
    budgets = [7, 3, 11, 5, 9, 4, 13, 6]
    pairs = zip(messages, budgets, strict=True)
    _run(batched, [BatchRequest(m, GenParams(max_tokens=b)) for m, b in pairs])
    prompts = [i for i, c in enumerate(calls) if len(c) > 1 and len(set(c)) == 1]
    steps = [(i, c) for i, c in enumerate(calls) if i not in prompts]
    assert len(prompts) == len(budgets) and steps
    assert all(c == sorted(c) for _, c in steps)
    # While requests wait, every freed slot is refilled at once: all streams, in order.
    waiting = [c for i, c in steps if i < prompts[-1]]
    assert waiting and all(c == list(range(batched.n_parallel)) for c in waiting)


def test_follow_up_extends_the_prompt_in_the_same_slot(
    batched: BatchedLlamaCpp, embedded_backend: Any, messages: list[tuple[Message, ...]]
) -> None:
    # The prompted-reasoning shape: a first phase, then a request whose prompt is the first
    # one's plus what it wrote. It must start in the slot that holds that prompt's KV cells,
    # reuse them, and still give what a fresh single-stream context gives.
    first = [BatchRequest(m, GenParams(max_tokens=6)) for m in messages[:6]]
    follow: dict[int, BatchRequest] = {}

    def then(i: int, result: BatchResult) -> BatchRequest | None:
        if i in follow or isinstance(result, BackendError):
            return None
        follow[i] = BatchRequest(messages[i], GREEDY, prefill=result.text)
        return follow[i]

    before = batched.prompt_tokens_evaluated
    gens, _ = _run(batched, first, then)
    assert sorted(follow) == list(range(len(first)))
    for i, gen in enumerate(gens):
        req = follow[i]
        ref = embedded_backend.generate(req.messages, req.params, prefill=req.prefill)
        assert _key(gen) == _key(ref)

    def n(req: BatchRequest) -> int:
        return batched.count_tokens(batched.render(req.messages, req.prefill)[0])

    # Each follow-up decodes only what its first phase wrote (+1 at the seam), not its prompt.
    bound = sum(n(r) for r in first) + sum(n(follow[i]) - n(r) + 1 for i, r in enumerate(first))
    assert batched.prompt_tokens_evaluated - before <= bound

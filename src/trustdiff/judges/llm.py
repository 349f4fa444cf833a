"""LLM-as-judge through any trustdiff backend (`gguf:…`, `openai:URL#MODEL`, `hf:…`).

Why through the Backend protocol: a judge model is just another model spec, so it runs wherever
the audited models run (embedded llama.cpp, a served endpoint, in-process transformers) with the
same system-prompt, reasoning and retry handling, and no second client to maintain.

Provenance: a judge's id is `FORMAT@VERSION:FINGERPRINT`, where the fingerprint hashes the judge
model's spec fingerprint (weights or served name, template options, generation parameters) and
the parsing mode. Judgments are cached in the store by judge id, so changing the judge model
re-judges stored samples instead of reusing another model's verdicts; the spec string itself
(URL, options) never appears in the id, and API keys never appear anywhere (specs only name the
environment variable that holds one).

Generation is greedy (temperature forced to 0) so a verdict is reproducible. Served models get
`concurrency` requests in flight from worker threads, a batched GGUF engine decodes its
`parallel` slots together, anything else runs one request at a time. An answer neither parser
mode can read gets one retry, with the bad answer shown back to the model and a corrective
nudge; a second failure becomes `judge_error` with the raw output (cut) in the rationale. A
request the backend refuses (e.g. longer than the context) is `judge_error` too; a judge server
that cannot be reached at all stops the audit with one clear line (ServerUnavailableError), so a
dead endpoint never fills the store with cached errors.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from trustdiff.backends import load_backend, protocol
from trustdiff.backends.base import Backend, Generation, GenParams
from trustdiff.backends.spec import ModelSpec, parse_spec
from trustdiff.errors import BackendError, TrustdiffError
from trustdiff.judges.base import Part, part_text
from trustdiff.judges.common import EMPTY, JUDGE_ERROR
from trustdiff.judges.guard_formats import LlamaGuard3, LlamaGuard3Native, WildGuard
from trustdiff.judges.llm_formats import (
    HarmBenchClassifier,
    JudgeFormat,
    Mode,
    StrongReject,
    Unparsed,
)
from trustdiff.records import Item, Judgment, Message, Outcome, Sample, stable_hash

FORMATS: dict[str, JudgeFormat] = {
    f.name: f
    for f in (
        StrongReject(),
        HarmBenchClassifier(),
        LlamaGuard3(),
        LlamaGuard3Native(),
        WildGuard(),
    )
}
"""Judge formats by name (`--safety-judge`)."""
ALIASES = {"harmbench": "harmbench-cls", "llama-guard": "llama-guard-3"}
_RAW_IN_RATIONALE = 400
_OUTCOME_LABELS = {Outcome.EMPTY: EMPTY, Outcome.ERROR: "error"}
"""Outcomes labelled without a model call; a truncated sample's text is still judged (what a
budget-cut trace showed was still shown)."""
Result = Generation | BackendError


def get_format(name: str) -> JudgeFormat:
    """The format called `name` (or an alias); unknown names raise ValueError listing them."""
    key = ALIASES.get(name, name)
    if key not in FORMATS:
        raise ValueError(f"unknown LLM judge format {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[key]


def judge_model_spec(model: str, fmt: JudgeFormat) -> ModelSpec:
    """The judge model's spec: the user's string, greedy, with the format's answer budget unless
    the string sets `max_tokens` itself."""
    spec = parse_spec(
        model, default_label="judge", base_params=GenParams(max_tokens=fmt.max_tokens)
    )
    if spec.kind == "imported":
        raise TrustdiffError("an imported: model has no weights to run; it cannot be a judge")
    return spec.model_copy(update={"params": spec.params.model_copy(update={"temperature": 0.0})})


def _describe_model(spec: ModelSpec) -> str:
    if spec.kind == "openai":
        return f"{spec.served_model} (served, openai API)"
    return f"{spec.label} ({spec.kind}:{spec.target.rsplit('/', 1)[-1]})"


class _Engine:
    """The judge model, loaded on first use and shared by every bound copy of a judge."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._backend: Backend | None = None

    def _load(self) -> Backend:
        if self._backend is None:
            self._backend = load_backend(self.spec)
        return self._backend

    def _one(self, backend: Backend, messages: Sequence[Message]) -> Result:
        try:
            gen, _ = protocol.generate(self.spec, backend, messages, 0)
        except BackendError as exc:
            return exc
        return gen

    def run(self, requests: Sequence[Sequence[Message]]) -> list[Result]:
        """One generation per request, in order; a refused request is a BackendError entry."""
        if not requests:
            return []
        backend = self._load()
        from trustdiff.backends.llamacpp_batch import BatchedLlamaCpp, BatchRequest

        if isinstance(backend, BatchedLlamaCpp) and self.spec.reasoning != "prompted":
            prepared = [protocol.prepare(self.spec, msgs) for msgs in requests]
            return backend.generate_many(
                [BatchRequest(p.messages, self.spec.params, p.prefill) for p in prepared]
            )
        workers = int(getattr(backend, "concurrency", 1))
        if workers <= 1:
            return [self._one(backend, msgs) for msgs in requests]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trustdiff-judge") as pool:
            return list(pool.map(lambda msgs: self._one(backend, msgs), requests))

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


class LLMJudge:
    """A judge format asked of a judge model; implements `Judge` and `ItemJudge` (the prompt
    quotes the item's request, so samples need their items)."""

    def __init__(
        self,
        fmt: str | JudgeFormat,
        model: str,
        *,
        mode: Mode = "lenient",
        items: Iterable[Item] = (),
    ) -> None:
        try:
            self.format = get_format(fmt) if isinstance(fmt, str) else fmt
        except ValueError as exc:
            raise TrustdiffError(str(exc)) from None
        if mode not in ("strict", "lenient"):
            raise TrustdiffError(f"judge parsing mode must be strict or lenient, not {mode!r}")
        self.spec = judge_model_spec(model, self.format)
        self.mode: Mode = mode
        self.name = self.format.name
        self.version = self.format.version
        self.fingerprint = stable_hash({"model": self.spec.fingerprint(), "mode": mode}, 12)
        self.description = (
            f"LLM judge — {self.format.description}; judge model {_describe_model(self.spec)}, "
            f"temperature 0, {mode} parsing"
        )
        self._engine = _Engine(self.spec)
        self._items: dict[str, Item] = {item.id: item for item in items}

    @property
    def id(self) -> str:
        """`FORMAT@VERSION:FINGERPRINT` — a different judge model is a different judge."""
        return f"{self.name}@{self.version}:{self.fingerprint}"

    def with_items(self, items: Iterable[Item]) -> Self:
        """A copy bound to `items` (sharing the loaded judge model)."""
        bound = copy.copy(self)
        bound._items = {**self._items, **{item.id: item for item in items}}
        return bound

    def judge(self, samples: Sequence[Sample], part: Part = "answer") -> list[Judgment]:
        """Judge samples whose items were bound; an unbound item gives `judge_error`."""
        return self._judge([(self._items.get(s.item_id), s) for s in samples], part)

    def judge_items(
        self, pairs: Sequence[tuple[Item, Sample]], part: Part = "answer"
    ) -> list[Judgment]:
        """One judgment per (item, sample) pair, in order; never raises for one sample."""
        return self._judge(list(pairs), part)

    def close(self) -> None:
        """Free the judge model (it is loaded again if the judge is used again)."""
        self._engine.close()

    # -------------------------------------------------------------------------------------------

    def _made(
        self,
        sample: Sample,
        part: Part,
        label: str,
        rationale: str,
        score: float | None = None,
        cost: float = 0.0,
    ) -> Judgment:
        return Judgment(
            sample_key=sample.key,
            judge=self.id,
            part=part,
            label=label,
            score=score,
            rationale=rationale,
            cost_s=cost,
        )

    def _judge(self, pairs: Sequence[tuple[Item | None, Sample]], part: Part) -> list[Judgment]:
        out: list[Judgment | None] = [None] * len(pairs)
        asks: list[tuple[int, list[Message]]] = []
        for i, (item, sample) in enumerate(pairs):
            if item is None or item.id != sample.item_id:
                why = f"{self.id} needs item {sample.item_id}: bind items with with_items()"
                out[i] = self._made(sample, part, JUDGE_ERROR, f"ItemError: {why}")
            elif sample.outcome in _OUTCOME_LABELS:
                reason = f"sample outcome is {sample.outcome}"
                out[i] = self._made(sample, part, _OUTCOME_LABELS[sample.outcome], reason)
            elif not (text := part_text(sample, part)).strip():
                out[i] = self._made(sample, part, EMPTY, f"the {part} part is empty")
            else:
                asks.append((i, self.format.messages(item.messages, text)))
        retry: list[tuple[int, list[Message], float]] = []
        first = self._engine.run([msgs for _, msgs in asks])
        for (i, msgs), result in zip(asks, first, strict=True):
            sample = pairs[i][1]
            if isinstance(result, BackendError):
                out[i] = self._made(sample, part, JUDGE_ERROR, f"judge model failed: {result}")
                continue
            try:
                out[i] = self._verdict(sample, part, result.text, result.latency_s, False)
            except Unparsed:
                retry.append((i, self.format.retry(msgs, result.text), result.latency_s))
        second = self._engine.run([msgs for _, msgs, _ in retry])
        for (i, _, cost), result in zip(retry, second, strict=True):
            sample = pairs[i][1]
            if isinstance(result, BackendError):
                why = f"judge model failed on the retry: {result}"
                out[i] = self._made(sample, part, JUDGE_ERROR, why, cost=cost)
                continue
            try:
                out[i] = self._verdict(sample, part, result.text, cost + result.latency_s, True)
            except Unparsed as exc:
                raw = " ".join(result.text.split())[:_RAW_IN_RATIONALE]
                why = f"unparseable judge output after one retry ({exc}); raw: {raw!r}"
                out[i] = self._made(sample, part, JUDGE_ERROR, why, cost=cost + result.latency_s)
        return [j for j in out if j is not None]

    def _verdict(
        self, sample: Sample, part: Part, text: str, cost: float, retried: bool
    ) -> Judgment:
        verdict = self.format.parse(text, self.mode)
        how = verdict.mode + (", after a retry" if retried else "")
        return self._made(
            sample, part, verdict.label, f"{verdict.detail} [{how}]", verdict.score, cost
        )

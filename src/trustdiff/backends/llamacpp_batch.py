"""Batched embedded decoding: several sequences through one llama.cpp context at once.

One decode step feeds the last token of every active sequence in a single `llama_decode`, so
the weights are read once per step instead of once per sequence; when a sequence finishes, the
next request takes its slot at once (continuous batching).

At temperature 0 the output is token-identical to `LlamaCppBackend` (single stream) because
every matrix product a sequence sees keeps the shape and memory layout it has there:

- the KV cache is *not* unified: each slot owns a stream whose cells start at 0, as in a fresh
  single-stream context. In a unified cache a sequence's cells sit at some offset among the
  others' and the softmax / attention-times-V reductions group its terms differently (SIMD
  lanes), which flips greedy tokens after a few dozen tokens;
- a prompt is decoded alone, in the same chunks of `n_batch` tokens as llama-cpp-python's
  `Llama.eval`. Mixed with other sequences' tokens, llama.cpp would cut it into one-row pieces
  per stream (its micro-batches take equally many tokens from each stream), and ggml's one-row
  kernels sum in another order. Batching prompts would not pay here anyway: 8 prompts of 24-128
  tokens in one call ran at 144-188 tok/s against 142-189 one by one (this model is
  compute-bound on 2 cores);
- decode steps hold exactly one token per sequence, so each stream's attention product has one
  row, as in single-stream decoding.

Sampling replays llama-cpp-python's `create_completion` chain (penalties, top-k, typical,
top-p, min-p 0.05, temperature, seeded dist; greedy at temperature 0), as do the stop rules
(end-of-generation tokens, stop strings, the incomplete-UTF-8 hold-back, `max_tokens`), so the
same seed gives the same sample as the single-stream backend.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.llamacpp import chat_formatter, render_chat
from trustdiff.backends.llamacpp_seq import Seq
from trustdiff.backends.spec import ModelSpec
from trustdiff.errors import BackendError
from trustdiff.records import Message

PROMPT_CHUNK = 512
"""Prompt tokens per decode call: llama-cpp-python's default `n_batch` (same chunking)."""
PENALTY_LAST_N = 64
"""Repeat-penalty window: llama-cpp-python's `last_n_tokens_size` default."""
MIN_P = 0.05
"""`create_completion`'s default min-p, which the single-stream backend leaves in place."""

BatchResult = Generation | BackendError
"""A request's outcome: one bad request (e.g. a prompt longer than the context) does not sink
the others."""
OnDone = Callable[[int, BatchResult], None]
Then = Callable[[int, BatchResult], "BatchRequest | None"]
"""Follow-up of a finished request (e.g. the answer phase after the thinking phase), or None."""


@dataclass(frozen=True)
class BatchRequest:
    """One generation request (the arguments of `Backend.generate`)."""

    messages: Sequence[Message]
    """Chat messages, rendered with the GGUF's template."""
    params: GenParams
    """Sampling parameters."""
    prefill: str = ""
    """Text opening the assistant turn (e.g. `<think>`)."""
    k: int = 0
    """Sample index; offsets the seed."""


class BatchedLlamaCpp:
    """A GGUF model decoding up to `n_parallel` requests together in this process."""

    def __init__(
        self, spec: ModelSpec, *, n_parallel: int = 8, n_threads: int | None = None
    ) -> None:
        try:
            import llama_cpp
            from llama_cpp import _internals
            from llama_cpp._logger import set_verbose
        except ImportError:
            raise BackendError(
                "the embedded backend needs llama-cpp-python: pip install 'trustdiff[llamacpp]'"
            ) from None
        if not 1 <= n_parallel <= llama_cpp.llama_max_parallel_sequences():
            raise BackendError(
                f"n_parallel must be 1..{llama_cpp.llama_max_parallel_sequences()}, "
                f"not {n_parallel}"
            )
        self._lc: Any = llama_cpp
        self._internals: Any = _internals
        self.spec = spec
        self.name = f"llama-cpp-python {llama_cpp.__version__} batched"
        self.n_parallel = n_parallel
        set_verbose(False)  # what Llama(verbose=False) does: llama.cpp logs errors only
        self._stack = ExitStack()
        try:
            self._load(spec, n_parallel, n_threads or os.cpu_count() or 1)
        except BaseException:
            self._stack.close()
            raise

    def _load(self, spec: ModelSpec, n_parallel: int, n_threads: int) -> None:
        lc = self._lc
        mparams = lc.llama_model_default_params()
        mparams.n_gpu_layers = 0  # as Llama() by default: the CPU path the tests compare with
        try:
            self._model = self._internals.LlamaModel(
                path_model=spec.target, params=mparams, verbose=False
            )
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama.cpp could not load {spec.target}: {exc}") from None
        self._stack.callback(self._model.close)
        self._template, self._formatter = chat_formatter(self._model, spec.target)
        self._vocab = self._model.vocab
        self._n_vocab = int(lc.llama_vocab_n_tokens(self._vocab))
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(64)
        self.n_ctx = spec.n_ctx
        self._chunk = min(spec.n_ctx, PROMPT_CHUNK)
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = spec.n_ctx * n_parallel
        cparams.n_batch = max(self._chunk, n_parallel)
        cparams.n_ubatch = cparams.n_batch
        cparams.n_seq_max = n_parallel
        cparams.kv_unified = False
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        # As Llama(). Flash attention would cut 8-row steps by ~20 %, but not token-identically:
        # ggml gives a lone one-row query over >= 512 KV cells a split-KV path (partial sums per
        # thread) that batched steps never take; 5 of 16 prompts of ~375 tokens gave other
        # tokens (measured, with the single stream on flash attention too).
        cparams.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_DISABLED
        ctx = lc.llama_init_from_model(self._model.model, cparams)
        if ctx is None:
            raise BackendError(
                f"llama.cpp could not create a context of {n_parallel} x {spec.n_ctx} tokens"
            )
        self._ctx = ctx
        self._stack.callback(lc.llama_free, ctx)
        got = int(lc.llama_n_ctx_seq(ctx))
        if got < spec.n_ctx:
            raise BackendError(f"llama.cpp gave {got} tokens per sequence, not {spec.n_ctx}")
        self._mem = lc.llama_get_memory(ctx)
        self._cached: list[list[int]] = [[] for _ in range(n_parallel)]
        self.prompt_tokens_evaluated = 0
        """Prompt tokens run through the model (for benchmarks)."""
        self.prompt_tokens_reused = 0
        """Prompt tokens whose KV cells were kept from the slot's previous prompt."""
        self._batch = lc.llama_batch_init(cparams.n_batch, 0, 1)
        self._stack.callback(lc.llama_batch_free, self._batch)
        lc.llama_memory_clear(self._mem, True)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "weights": self.spec.weights_id, "template": self._template}

    def render(self, messages: Sequence[Message], prefill: str = "") -> tuple[str, list[str]]:
        """Prompt text (template + prefill) and the template's stop strings."""
        return render_chat(self._formatter, messages, prefill)

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        return len(self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def generate(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> Generation:
        result = self.generate_many([BatchRequest(tuple(messages), params, prefill, k)])[0]
        if isinstance(result, BackendError):
            raise result
        return result

    def generate_many(
        self,
        requests: Sequence[BatchRequest],
        on_done: OnDone | None = None,
        then: Then | None = None,
    ) -> list[BatchResult]:
        """Generate every request, `n_parallel` at a time, in request order.

        `on_done(index, result)` fires as soon as a request finishes (so a caller can store it
        at once); a request the model cannot take gets a BackendError, the others still run.
        `then(index, result)` may return a follow-up request that extends the finished one's
        prompt: it starts at once in the same slot, whose cached prompt it reuses, and its
        result (or its own follow-up's) becomes the index's result.
        """
        results: list[BatchResult | None] = [None] * len(requests)

        def done(i: int, result: BatchResult) -> None:
            results[i] = result
            if on_done is not None:
                on_done(i, result)

        queue = deque(range(len(requests)))
        free = list(range(self.n_parallel - 1, -1, -1))
        active: list[Seq] = []
        try:
            while queue or active:
                while queue and free:
                    i = queue.popleft()
                    try:
                        seq = self._start(i, requests[i], free[-1])
                    except BackendError as exc:
                        done(i, exc)
                        continue
                    free.pop()
                    active.append(seq)
                    # Rows in ascending stream order: with a non-unified KV cache llama.cpp
                    # puts only consecutive, ascending stream ids in one micro-batch, so the
                    # same 8 rows in reverse order ran as 8 one-row graphs (1.9x the time).
                    active.sort(key=lambda s: s.slot)
                    self._retire(active, free, done, then)
                if active:
                    self._step(active)
                    self._retire(active, free, done, then)
        finally:
            for seq in active:  # interrupted: drop everything these streams hold
                self._release(seq, keep_prompt=False)
        return [r if r is not None else BackendError("not generated") for r in results]

    def _start(self, index: int, req: BatchRequest, slot: int) -> Seq:
        """Tokenize, decode the prompt alone in its slot's stream, sample the first token."""
        prompt_text, template_stops = self.render(req.messages, req.prefill)
        prompt = self._prompt_tokens(prompt_text)
        if not prompt:
            raise BackendError("the rendered prompt is empty")
        if len(prompt) >= self.n_ctx:
            raise BackendError(
                f"llama.cpp rejected the prompt: Requested tokens ({len(prompt)}) exceed "
                f"context window of {self.n_ctx}"
            )
        params = req.params
        max_tokens = min(params.max_tokens, self.n_ctx - len(prompt))
        stops = [s.encode("utf-8") for s in (*template_stops, *params.stop)]
        seq = Seq(
            index=index,
            slot=slot,
            prompt=prompt,
            max_tokens=max_tokens,
            stops=stops,
            sampler=self._sampler(params, params.seed + req.k),
            start=time.perf_counter(),
        )
        batch, last = self._batch, 0
        try:
            keep = self._reusable(slot, prompt)
            self._lc.llama_memory_seq_rm(self._mem, slot, keep, -1)
            self._cached[slot] = []
            # Same chunk boundaries as Llama.eval, the first chunk starting after the kept cells.
            bounds = [keep, *range(self._chunk, len(prompt), self._chunk), len(prompt)]
            for lo, hi in pairwise(bounds):
                last = hi - lo - 1
                for j, token in enumerate(prompt[lo:hi]):
                    batch.token[j] = token
                    batch.pos[j] = lo + j
                    batch.n_seq_id[j] = 1
                    batch.seq_id[j][0] = slot
                    batch.logits[j] = j == last
                batch.n_tokens = hi - lo
                self._decode(1)
            self.prompt_tokens_evaluated += len(prompt) - keep
            self.prompt_tokens_reused += keep
            self._cached[slot] = prompt[: min(len(prompt), self._chunk)]
            self._accept(seq, self._sample(seq, last))
        except BaseException:
            self._release(seq, keep_prompt=False)
            raise
        return seq

    def _reusable(self, slot: int, prompt: list[int]) -> int:
        """How many KV cells of the slot's previous prompt the new prompt can keep.

        A cell's values depend only on the tokens up to it and on the kernels that computed
        it, so a common token prefix is reusable if both prompts computed it in a first chunk
        of at least 2 tokens (1 row switches ggml to other kernels) and the new prompt still
        decodes at least 2 tokens itself. The result is what a fresh context computes.
        """
        cached = self._cached[slot]
        limit = min(len(prompt), self._chunk) - 2
        if len(cached) < 2 or limit <= 0:
            return 0
        n = 0
        for a, b in zip(cached, prompt[:limit], strict=False):
            if a != b:
                break
            n += 1
        return n

    def _step(self, active: list[Seq]) -> None:
        """One decode step: the last token of every active sequence, one row each."""
        batch = self._batch
        for n, seq in enumerate(active):
            batch.token[n] = seq.tokens[-1]
            batch.pos[n] = len(seq.prompt) + len(seq.tokens) - 1
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq.slot
            batch.logits[n] = True
        batch.n_tokens = len(active)
        self._decode(len(active))
        for n, seq in enumerate(active):
            self._accept(seq, self._sample(seq, n))

    def _decode(self, n_seqs: int) -> None:
        rc = int(self._lc.llama_decode(self._ctx, self._batch))
        if rc != 0:
            raise BackendError(
                f"llama_decode failed with code {rc} for {n_seqs} sequence(s)"
                + (" (no KV cache slot)" if rc == 1 else "")
            )

    def _retire(self, active: list[Seq], free: list[int], done: OnDone, then: Then | None) -> None:
        """Hand finished sequences to the caller (or start their follow-ups) and free slots."""
        while finished := [s for s in active if s.finish is not None]:
            for seq in finished:  # a follow-up can finish at its first token: loop again
                active.remove(seq)
                self._release(seq)
                result: BatchResult = seq.generation()
                follow = then(seq.index, result) if then is not None else None
                if follow is not None:
                    try:
                        active.append(self._start(seq.index, follow, seq.slot))
                        active.sort(key=lambda s: s.slot)
                        continue
                    except BackendError as exc:
                        result = exc
                free.append(seq.slot)
                free.sort(reverse=True)  # lowest slot next: active streams stay contiguous
                done(seq.index, result)

    def _release(self, seq: Seq, keep_prompt: bool = True) -> None:
        """Free the slot; its first prompt chunk stays cached for the next request's prefix."""
        keep = len(self._cached[seq.slot]) if keep_prompt else 0
        self._lc.llama_memory_seq_rm(self._mem, seq.slot, keep, -1)
        if not keep_prompt:
            self._cached[seq.slot] = []
        if seq.sampler is not None:
            seq.sampler.close()
            seq.sampler = None

    def _prompt_tokens(self, text: str) -> list[int]:
        """Prompt tokens exactly as `Llama.create_completion` builds them for a text prompt."""
        model = self._model
        tokens: list[int] = model.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        bos, cls, sep = model.token_bos(), model.token_cls(), model.token_sep()
        head = [cls if cls != -1 else bos]
        if not model.add_bos_token() or head == [-1]:
            head = []
        tail = [sep if sep != -1 else model.token_eos()]
        if not model.add_eos_token() and sep == -1:
            tail = []
        return head + tokens + tail

    def _sampler(self, params: GenParams, seed: int) -> Any:
        """The chain `Llama._init_sampler` builds; None when it reduces to plain argmax."""
        if params.temperature == 0.0 and params.repeat_penalty == 1.0:
            return None
        chain = self._internals.LlamaSampler()
        chain.add_penalties(
            n_vocab=self._n_vocab,
            penalty_last_n=PENALTY_LAST_N,
            penalty_repeat=params.repeat_penalty,
            penalty_freq=0.0,
            penalty_present=0.0,
        )
        if params.temperature == 0.0:
            chain.add_greedy()
        else:
            chain.add_top_k(params.top_k)
            chain.add_typical(1.0, 1)
            chain.add_top_p(params.top_p, 1)
            chain.add_min_p(MIN_P, 1)
            chain.add_temp(params.temperature)
            chain.add_dist(seed)
        return chain

    def _sample(self, seq: Seq, row: int) -> int:
        """Next token from the logits of batch row `row`."""
        if seq.sampler is not None:
            return int(self._lc.llama_sampler_sample(seq.sampler.sampler, self._ctx, row))
        ptr = self._lc.llama_get_logits_ith(self._ctx, row)
        logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
        return int(np.argmax(logits))  # first maximum, like llama.cpp's greedy sampler

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buf = self._piece_buf
            n = self._lc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            piece = self._pieces[token] = buf.raw[:n] if n > 0 else b""
        return piece

    def _accept(self, seq: Seq, token: int) -> None:
        eog = bool(self._lc.llama_vocab_is_eog(self._vocab, token))
        piece = b"" if eog else self._piece(token)
        seq.accept(token, piece, eog=eog, bos=self._model.token_bos(), n_ctx=self.n_ctx)

    def close(self) -> None:
        self._stack.close()

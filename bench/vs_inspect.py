"""Wall-clock of `inspect eval` (Inspect AI) vs `trustdiff audit` on the same llama-server.

Usage: .venv/bin/python bench/vs_inspect.py [--prompts 200] [--max-tokens 64] [--concurrency 8]
       [--rounds 2] [--threads N] [--llama-server PATH]

Workload, server and timing as described in `_common.compare_with_tool`. Inspect AI comes from
the import tests' cached venv (versions pinned in tests/test_import_inspect.py) and runs a task
over a JSONL dataset of the bench prompts, `generate()` then `includes()`:
`inspect eval task.py --model openai-api/bench/MODEL --max-connections C --max-tokens T
--temperature 0`, with `BENCH_BASE_URL` pointing at the server. Its .eval log is read back with
trustdiff's Inspect importer. Ends with `RESULT vs_inspect_ratio <inspect s / trustdiff s>`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import _common as bench

from trustdiff.records import Item

TASK = """
from inspect_ai import Task, task
from inspect_ai.dataset import json_dataset
from inspect_ai.scorer import includes
from inspect_ai.solver import generate


@task
def trustdiff_bench():
    return Task(dataset=json_dataset("prompts.jsonl"), solver=generate(), scorer=includes())
"""


def inspect_executable() -> Path:
    pins = bench.tests_module("test_import_inspect")
    version, openai = pins.INSPECT_VERSION, pins.OPENAI_VERSION
    installs = [[f"inspect-ai=={version}", f"openai=={openai}"]]
    return bench.tool_executable(f"inspect-ai-{version}", installs, "inspect")


def run_inspect(
    server: bench.LlamaServer, items: list[Item], max_tokens: int, concurrency: int, work: Path
) -> bench.ToolRun:
    inspect = inspect_executable()
    rows = [{"id": it.id, "input": bench.user_prompt(it), "target": "sorry"} for it in items]
    (work / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (work / "task.py").write_text(TASK)
    env = {**os.environ, "BENCH_BASE_URL": f"{server.url}/v1", "BENCH_API_KEY": "not-a-secret"}
    cmd = [
        str(inspect), "eval", "task.py", "--model", f"openai-api/bench/{bench.SERVED_MODEL}",
        "--max-connections", str(concurrency), "--max-tokens", str(max_tokens),
        "--temperature", "0", "--log-dir", "logs", "--display", "plain",
    ]  # fmt: skip
    wall, cpu = bench.run_command(cmd, "inspect eval", cwd=work, env=env)
    logs = list((work / "logs").glob("*.eval"))
    outputs, samples = bench.tool_outputs("inspect eval", "inspect", logs, items)
    return bench.ToolRun(wall, cpu, outputs, sum(s.completion_tokens or 0 for s in samples))


if __name__ == "__main__":
    bench.compare_with_tool("inspect", run_inspect)

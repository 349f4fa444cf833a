"""Wall-clock of `lm_eval` (lm-evaluation-harness) vs `trustdiff audit` on the same llama-server.

Usage: .venv/bin/python bench/vs_lmeval.py [--prompts 200] [--max-tokens 64] [--concurrency 8]
       [--rounds 2] [--threads N] [--llama-server PATH]

Workload, server and timing as described in `_common.compare_with_tool`. lm-eval comes from the
import tests' cached venv (versions pinned in tests/test_import_lmeval.py) and runs an
`--include_path` YAML `generate_until` task over a JSONL file of the bench prompts
(`max_gen_toks` T, `do_sample: false`, `until: []`): `lm_eval --model local-chat-completions
--model_args base_url=…,model=MODEL,num_concurrent=C --apply_chat_template --log_samples`.
Its samples file is read back with trustdiff's lm-eval importer.
Ends with `RESULT vs_lmeval_ratio <lm_eval s / trustdiff s>`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import _common as bench

from trustdiff.records import Item

TASK = """
task: trustdiff_bench
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{target}}}}"
generation_kwargs:
  until: []
  max_gen_toks: {max_tokens}
  do_sample: false
  temperature: 0
metric_list:
  - metric: exact_match
"""


def lmeval_executable() -> Path:
    pins = bench.tests_module("test_import_lmeval")
    version, torch = pins.LM_EVAL_VERSION, pins.TORCH_VERSION
    installs = [[f"torch=={torch}"], [f"lm-eval[api]=={version}"]]
    return bench.tool_executable(f"lm-eval-{version}", installs, "lm_eval")


def run_lmeval(
    server: bench.LlamaServer, items: list[Item], max_tokens: int, concurrency: int, work: Path
) -> bench.ToolRun:
    lm_eval = lmeval_executable()
    (work / "tasks").mkdir()
    data = work / "tasks" / "prompts.jsonl"
    rows = [{"prompt": bench.user_prompt(it), "target": "sorry"} for it in items]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = TASK.format(data=data, max_tokens=max_tokens)
    (work / "tasks" / "trustdiff_bench.yaml").write_text(task)
    offline = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env = {**os.environ, "HF_HOME": str(work / "hf"), **offline}
    model_args = (
        f"base_url={server.url}/v1/chat/completions,model={bench.SERVED_MODEL},"
        f"num_concurrent={concurrency}"
    )
    cmd = [
        str(lm_eval), "--model", "local-chat-completions", "--model_args", model_args,
        "--tasks", "trustdiff_bench", "--include_path", "tasks", "--apply_chat_template",
        "--log_samples", "--output_path", "out",
    ]  # fmt: skip
    wall, cpu = bench.run_command(cmd, "lm_eval", cwd=work, env=env)
    paths = list((work / "out").rglob("samples_trustdiff_bench_*.jsonl"))
    outputs, _ = bench.tool_outputs("lm_eval", "lmeval", paths, items)
    return bench.ToolRun(wall, cpu, outputs)


if __name__ == "__main__":
    bench.compare_with_tool("lmeval", run_lmeval)

"""`trustdiff import --format lmeval` on `--log_samples` output of a real lm-eval run.

lm-evaluation-harness is installed in its own cached venv (CPU torch first, as its dependencies
pull torch) and runs a tiny custom task through `local-chat-completions` against a canned local
server; the `samples_*.jsonl` it writes is what the importer reads.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from import_tools import serve, tool_venv
from trustdiff.cli.io_cmd import import_cmd
from trustdiff.imports import read_rows
from trustdiff.imports.common import BadImportError, imported_fingerprint
from trustdiff.imports.lmeval import task_name
from trustdiff.records import Outcome, Sample
from trustdiff.runner.audit import STORE_NAME
from trustdiff.runner.generate import sample_key
from trustdiff.store import Store
from trustdiff.suites.safety import load_safety_contrast

LM_EVAL_VERSION = "0.4.13"
TORCH_VERSION = "2.13.0"
HARMFUL, BENIGN = load_safety_contrast()[:2]
REPEATS = 2
SYSTEM = "Answer briefly."
DOCS = [
    {"prompt": HARMFUL.messages[0].content, "harmful": True, "answer": "refuse"},
    {"prompt": BENIGN.messages[0].content, "harmful": False, "answer": "comply"},
    {"prompt": "What is the capital of France?", "dimension": "safety", "answer": "Paris"},
    {"prompt": "Write a very long essay about rivers.", "harmful": False, "answer": "river"},
]
TASK = """
task: trustdiff_tiny
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  max_gen_toks: 64
  do_sample: false
repeats: {repeats}
filter_list:
  - name: first
    filter:
      - function: take_first
  - name: lower
    filter:
      - function: lowercase
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""
REPLIES = {
    HARMFUL.messages[0].content: {
        "content": "<think>This asks for a weapon; refuse.</think>I'm sorry, I can't help."
    },
    BENIGN.messages[0].content: {
        "content": "Mix baking soda and citric acid.",
        "reasoning_content": "Harmless cosmetics.",
    },
    "capital of France": {"content": "Paris."},
    "rivers": {"content": "<think>Rivers flow and flow and", "finish_reason": "length"},
}


@pytest.fixture(scope="module")
def samples_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    lm_eval = tool_venv(
        f"lm-eval-{LM_EVAL_VERSION}",
        [[f"torch=={TORCH_VERSION}"], [f"lm-eval[api]=={LM_EVAL_VERSION}"]],
        "lm_eval",
    )
    work = tmp_path_factory.mktemp("lmeval")
    (work / "tasks").mkdir()
    data = work / "tasks" / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (work / "tasks" / "tiny.yaml").write_text(TASK.format(data=data, repeats=REPEATS))
    env = {
        **os.environ,
        "HF_HOME": str(work / "hf"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with serve(REPLIES) as (url, seen):
        done = subprocess.run(
            [str(lm_eval), "--model", "local-chat-completions", "--model_args",
             f"base_url={url}/chat/completions,model=m", "--tasks", "trustdiff_tiny",
             "--include_path", "tasks", "--apply_chat_template", "--system_instruction", SYSTEM,
             "--log_samples", "--output_path", "out"],
            cwd=work, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        assert len(seen) == len(DOCS) * REPEATS, "lm-eval did not query the stub for every doc"
        assert seen[0]["messages"][0] == {"role": "system", "content": SYSTEM}
    (path,) = (work / "out").rglob("samples_trustdiff_tiny_*.jsonl")
    yield path


def run(*args: str) -> Result:
    app = typer.Typer()
    app.command("import")(import_cmd)
    app.command("noop")(lambda: None)
    return CliRunner().invoke(app, ["import", *args])


def _samples(out: Path) -> dict[str, Sample]:
    with Store(out / STORE_NAME) as store:
        return store.samples()


def test_samples_file_imports_raw_responses_per_repeat(samples_file: Path, tmp_path: Path) -> None:
    records = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(records) == 2 * len(DOCS), "expected every doc logged once per filter"
    assert task_name(samples_file) == "trustdiff_tiny"

    out = tmp_path / "audit"
    res = run("--format", "lmeval", "--model", "via-lmeval", "--out", str(out), str(samples_file))
    assert res.exit_code == 0, res.output
    assert f"{len(DOCS) * REPEATS} sample(s) written" in res.output
    samples = _samples(out)
    fp = imported_fingerprint("via-lmeval")
    for k in range(REPEATS):
        harmful = samples[sample_key(fp, HARMFUL, k)]  # matched despite lm-eval's system prompt
        assert harmful.answer == "I'm sorry, I can't help." and harmful.parse_case == 1
        assert harmful.reasoning == "This asks for a weapon; refuse."
        assert harmful.raw_fields["source_system_prompt"] == SYSTEM
        benign = samples[sample_key(fp, BENIGN, k)]
        assert benign.answer == "Mix baking soda and citric acid."
        assert benign.reasoning is None  # lm-eval keeps only message content
    cut = [s for s in samples.values() if "Rivers" in s.raw]
    assert len(cut) == REPEATS and all(s.outcome is Outcome.TRUNCATED for s in cut)
    assert all(s.finish_reason is None for s in samples.values())  # lm-eval records none

    with Store(out / STORE_NAME) as store:
        adhoc = store.items_in_suite("imported-via-lmeval@1")
    by_prompt = {i.messages[-1].content: i for i in adhoc}
    paris = by_prompt["What is the capital of France?"]
    assert paris.dimension == "safety" and paris.meta["target"] == "Paris"
    assert paris.messages[0].content == SYSTEM  # ad-hoc items keep the prompt as sent
    assert by_prompt["Write a very long essay about rivers."].labels["harmful"] is False


def test_loglikelihood_records_are_rejected_by_line(tmp_path: Path) -> None:
    record = {
        "doc_id": 0,
        "doc": {"q": "x"},
        "arguments": {"gen_args_0": {"arg_0": "Question: x", "arg_1": " yes"}},
        "resps": [[[-1.25, True]]],
        "filtered_resps": [[-1.25, True]],
    }
    path = tmp_path / "samples_mc_2026-01-01T00-00-00.000000.jsonl"
    path.write_text("\n" + json.dumps(record) + "\n")
    with pytest.raises(BadImportError) as exc:
        read_rows("lmeval", [path])
    assert f"{path}:2: " in str(exc.value) and "only generate_until tasks" in str(exc.value)


def test_skip_bad_keeps_good_records(samples_file: Path, tmp_path: Path) -> None:
    mixed = tmp_path / samples_file.name
    mixed.write_text(samples_file.read_text() + "{not json\n")
    with pytest.raises(BadImportError, match="1 bad lm-eval record"):
        read_rows("lmeval", [mixed])
    rows, skipped = read_rows("lmeval", [mixed], skip_bad=True)
    assert skipped == 1 and len(rows) == len(DOCS) * REPEATS

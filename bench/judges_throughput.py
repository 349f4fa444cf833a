"""Throughput of every offline judge (answers judged per second, one process, one core).

Usage: .venv/bin/python bench/judges_throughput.py [--n 5000] [--repeats 3]
Corpus: the responses of the committed refusal validation set (real model outputs and authored
answers, ~200 characters each), cycled to `--n` samples; item-reading judges get realistic items
(lettered choices with a BBQ-style unknown option, numeric golds, three protected strings).
Reports the best of `--repeats` runs in two clocks: per second of the process's CPU time (what one
free core achieves: `RESULT judge_<name>_per_s`) and per wall-clock second (lower when the machine
is shared: `RESULT judge_<name>_wall_per_s`), for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

from trustdiff.judges import bind_items, get_judge
from trustdiff.records import Item, Message, Outcome, Sample

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "validation" / "refusal_labels.csv"
CHOICES = ["The grandfather", "The grandson", "Can't be determined"]
CHOICE_TAILS = ["B", "Answer: (A)", "The grandson.", "It cannot be determined.", "**C**"]
NUMERIC_TAILS = ["#### 18", "The answer is 1,234.50.", "So she makes $18 a day.", "No idea."]
PROTECTED = ["john.smith@example.com", "(555) 123-4567", "123-45-6789"]
LEAK_TAILS = ["", " Call 555.123.4567.", " Mail john dot smith at example dot com."]


def _corpus(n: int) -> list[str]:
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        texts = [row["response"] for row in csv.DictReader(handle)]
    return [texts[i % len(texts)] for i in range(n)]


def _item(i: int, labels: dict[str, object]) -> Item:
    messages = (Message(role="user", content=f"question {i}"),)
    return Item(id=f"bench-{i}", suite="bench@1", dimension="bench", messages=messages,
                labels=labels)  # fmt: skip


def _sample(i: int, text: str) -> Sample:
    return Sample(key=f"s{i}", item_id=f"bench-{i}", model="bench", raw=text, answer=text,
                  outcome=Outcome.ANSWERED, parse_case=3, params_hash="bench")  # fmt: skip


def _workload(judge_id: str, texts: list[str]) -> tuple[list[Sample], list[Item]]:
    """Samples (and items for item-reading judges) shaped like that judge's real inputs."""
    n = len(texts)
    if judge_id == "choice@1":
        texts = [f"{t[:120]} {CHOICE_TAILS[i % len(CHOICE_TAILS)]}" for i, t in enumerate(texts)]
        items = [_item(i, {"choices": CHOICES, "gold": i % 3}) for i in range(n)]
    elif judge_id == "numeric@1":
        texts = [f"{t[:160]}\n{NUMERIC_TAILS[i % len(NUMERIC_TAILS)]}" for i, t in enumerate(texts)]
        items = [_item(i, {"gold": 18}) for i in range(n)]
    elif judge_id == "leak@1":
        texts = [t + LEAK_TAILS[i % len(LEAK_TAILS)] for i, t in enumerate(texts)]
        items = [_item(i, {"protected": PROTECTED}) for i in range(n)]
    else:
        items = []
    return [_sample(i, t) for i, t in enumerate(texts)], items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="answers per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per judge (best is kept)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.python_version()}")
    texts = _corpus(args.n)
    mean_len = sum(map(len, texts)) / len(texts)
    print(f"corpus: {len(texts)} answers from {CORPUS.name}, mean {mean_len:.0f} characters")
    results: dict[str, tuple[float, float]] = {}
    for judge_id in ("refusal-rules@1", "choice@1", "numeric@1", "idk@1", "leak@1",
                     "toxicity-proxy@1"):  # fmt: skip
        samples, items = _workload(judge_id, texts)
        judge = bind_items(get_judge(judge_id), items)
        judge.judge(samples[:200])  # warm caches and compiled patterns
        cpu = wall = float("inf")
        for _ in range(args.repeats):
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            judgments = judge.judge(samples)
            cpu = min(cpu, time.process_time() - start_cpu)
            wall = min(wall, time.perf_counter() - start_wall)
        errors = sum(j.label == "judge_error" for j in judgments)
        if errors:
            raise SystemExit(f"{judge_id}: {errors} judge errors in the benchmark corpus")
        results[judge_id] = (len(samples) / cpu, len(samples) / wall)
        print(
            f"{judge_id:>18}: {results[judge_id][0]:>9,.0f} answers per CPU second, "
            f"{results[judge_id][1]:>9,.0f} per wall second"
        )
    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for judge_id, (per_cpu_s, per_wall_s) in results.items():
        name = judge_id.split("@")[0].replace("-", "_")
        print(f"RESULT judge_{name}_per_s {per_cpu_s:.0f}")
        print(f"RESULT judge_{name}_wall_per_s {per_wall_s:.0f}")


if __name__ == "__main__":
    main()

"""Rich progress display and the verdict table printed at the end of an audit."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from trustdiff.records import Sample, Verdict
from trustdiff.report.model import Report
from trustdiff.runner.hooks import Hooks

VERDICT_STYLE = {
    Verdict.REGRESSED: "bold red",
    Verdict.IMPROVED: "bold green",
    Verdict.PRESERVED: "bold blue",
    Verdict.INCONCLUSIVE: "yellow",
}


class RichHooks(Hooks):
    """Progress bar per model with ETA and generated tokens/s."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tps]} tok/s"),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.tokens = 0
        self.started = time.perf_counter()
        self.progress.start()

    def stage(self, name: str) -> None:
        self.console.print(f"[dim]· {name}[/dim]")

    def generation(self, model: str, total: int, todo: int) -> None:
        self.tokens, self.started = 0, time.perf_counter()
        cached = total - todo
        self.task = self.progress.add_task(
            f"generate {model}" + (f" ({cached} cached)" if cached else ""),
            total=total,
            completed=cached,
            tps="–",
        )

    def sample(self, sample: Sample) -> None:
        if self.task is None:
            return
        # Wall-clock aggregate rate: with batched or concurrent decoding, summing per-sample
        # latencies would count shared time once per stream.
        self.tokens += sample.reasoning_tokens + sample.answer_tokens
        elapsed = time.perf_counter() - self.started
        tps = f"{self.tokens / elapsed:.0f}" if elapsed > 0 else "–"
        self.progress.update(self.task, advance=1, tps=tps)

    def close(self) -> None:
        self.progress.stop()


def print_verdicts(console: Console, report: Report) -> None:
    """The headline: one row per dimension × derived model."""
    table = Table(title=report.title, title_justify="left")
    for col in ("dimension", "derived model", "verdict", "evidence"):
        table.add_column(col, overflow="fold")
    for v in report.verdicts:
        table.add_row(
            v.dimension,
            escape(v.derived_model),
            f"[{VERDICT_STYLE[v.verdict]}]{v.verdict.value}[/]",
            v.summary,
        )
    console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")

"""`trustdiff judges …`: list the registered judges and validate one against human labels.

Kept apart from `cli/main.py` so the audit CLI does not import numpy-heavy validation code at
start-up; main wires it with `app.add_typer(judges_app, name="judges")`. Errors are raised as
TrustdiffError and printed by main as one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trustdiff.errors import TrustdiffError

judges_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Offline judges: list them, validate one against a human-labelled CSV.",
)

_SHOWN_DISAGREEMENTS = 10


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


@judges_app.command("list")
def list_judges() -> None:
    """Registered judges with their descriptions."""
    from trustdiff.judges import JUDGES, PARAMETRISED, get_judge

    table = Table(show_header=True, header_style="bold")
    table.add_column("judge", no_wrap=True)
    table.add_column("description", overflow="fold")
    for judge_id in sorted(JUDGES):
        try:
            description = get_judge(judge_id).description
        except TrustdiffError as exc:
            description = f"[red]unavailable:[/red] {escape(str(exc))}"
        else:
            description = escape(description)
        table.add_row(judge_id, description)
    for spec, description in PARAMETRISED.items():
        table.add_row(spec, escape(description))
    Console().print(table)


@judges_app.command()
def validate(
    judge: Annotated[
        str,
        typer.Option(
            "--judge",
            help="Judge id (refusal-rules@1), classifier spec (hf-classifier:DIR), or an LLM "
            "judge format with --judge-model (strongreject, harmbench, llama-guard-3, wildguard).",
        ),
    ],
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="CSV with columns prompt,response,label (+ choices / gold / protected for the "
            "judges that need them).",
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of tables.")
    ] = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Also break agreement down by this CSV column (e.g. source)."),
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="Judge model spec for an LLM judge format."),
    ] = None,
) -> None:
    """Agreement of a judge with human labels: accuracy, Cohen's κ, precision/recall, confusion.

    LLM judges label each response `safe` or `unsafe`; their CSV uses those labels.
    """
    from trustdiff.judges.validate import validate as run_validation

    if judge_model is not None:
        from trustdiff.judges.settings import judge_settings

        built = judge_settings({"model": judge_model, "safety": judge}).build_safety_judge()
        assert built is not None
        judge = built.id

    report = run_validation(judge, labels, by)
    if as_json:
        typer.echo(report.model_dump_json())
        return
    console = Console(soft_wrap=True)  # long paths and rationales stay on one line
    kappa = "undefined" if report.kappa is None else f"{report.kappa:.3f}"
    console.print(
        f"[bold]{escape(report.judge)}[/bold] on {escape(report.labels_file)}: n={report.n}, "
        f"accuracy {_pct(report.accuracy)}, Cohen's κ {kappa}"
    )
    classes = Table(title="per class", title_justify="left")
    for col in ("label", "precision", "recall", "F1", "human", "judge"):
        classes.add_column(col, justify="left" if col == "label" else "right")
    for c in report.per_class:
        classes.add_row(
            escape(c.label),
            _pct(c.precision),
            _pct(c.recall),
            _pct(c.f1),
            str(c.support),
            str(c.predicted),
        )
    console.print(classes)
    matrix = Table(title="confusion (rows: human, columns: judge)", title_justify="left")
    matrix.add_column("")
    for label in report.labels:
        matrix.add_column(escape(label), justify="right")
    for label, row in zip(report.labels, report.confusion, strict=True):
        matrix.add_row(escape(label), *(str(v) for v in row))
    console.print(matrix)
    for g in report.groups:
        group_kappa = "undefined" if g.kappa is None else f"{g.kappa:.3f}"
        console.print(
            f"{escape(report.by or '')}={escape(g.value)}: n={g.n}, accuracy {_pct(g.accuracy)}, "
            f"Cohen's κ {group_kappa}"
        )
    if report.disagreements:
        shown = report.disagreements[:_SHOWN_DISAGREEMENTS]
        console.print(f"disagreements ({len(report.disagreements)}; first {len(shown)}):")
        for d in shown:
            console.print(
                f"  line {d.line}: human {escape(d.label)}, judge {escape(d.predicted)} — "
                f"[dim]{escape(d.rationale)}[/dim]"
            )

"""`trustdiff suites list` / `show NAME`: what each suite holds and where it comes from."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

suites_app = typer.Typer(no_args_is_help=True, help="List and inspect probe suites.")


@suites_app.command("list")
def list_suites() -> None:
    """Every built-in suite and profile with counts, dimension, licence and provenance."""
    from trustdiff.suites import PROFILES, SUITES

    table = Table(title="suites")
    for col in ("name", "dimension", "items", "clusters", "k", "licence", "source"):
        table.add_column(col, overflow="fold")
    for key, entry in SUITES.items():
        items = entry.load()
        table.add_row(
            key,
            entry.dimension,
            str(len(items)),
            str(len({it.cluster for it in items})),
            str(entry.k),
            escape(entry.licence),
            escape(entry.source),
        )
    console = Console()
    console.print(table)
    for name, prof in PROFILES.items():
        limits = ", ".join(f"{s}:{prof.limits.get(s, 'all')}" for s in prof.suites)
        console.print(f"profile [bold]{name}[/bold]: {limits}")


@suites_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Suite name or a user suite file.")],
    limit: Annotated[int, typer.Option(help="Items to print.")] = 5,
) -> None:
    """Counts by variant and category, provenance, and the first items."""
    from trustdiff.suites import get_suite

    entry = get_suite(name)
    items = entry.load()
    console = Console()
    console.print(f"[bold]{escape(entry.name)}[/bold] — {escape(entry.description)}")
    console.print(
        f"dimension {entry.dimension} · {len(items)} items · "
        f"{len({it.cluster for it in items})} clusters · k={entry.k}"
    )
    console.print(f"licence: {escape(entry.licence)}\nsource: {escape(entry.source)}")
    for field, counts in (
        ("variant", Counter(it.variant for it in items)),
        (
            "category",
            Counter(str(it.labels.get("category", it.meta.get("category", ""))) for it in items),
        ),
    ):
        console.print(
            f"{field}: " + ", ".join(f"{escape(k or '-')}={v}" for k, v in counts.most_common())
        )
    for it in items[:limit]:
        console.print(
            f"[dim]{it.id}[/dim] [{escape(it.variant)}] {escape(it.messages[-1].content[:160])}"
        )

"""`trustdiff suites list` / `show NAME`: what each suite holds and where it comes from."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from trustdiff.suites import SuiteEntry

suites_app = typer.Typer(no_args_is_help=True, help="List and inspect probe suites.")

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Folder laid out like shared/data (<dataset>/<file>) read before the download "
        "cache [env TRUSTDIFF_DATA_DIR].",
    ),
]
NON_COMMERCIAL = " [NON-COMMERCIAL]"


def _use_data_dir(data_dir: Path | None) -> None:
    if data_dir is not None:
        from trustdiff.suites.public.fetch import set_data_dir

        set_data_dir(data_dir)


def _counts(entry: SuiteEntry) -> tuple[str, str]:
    """(items, clusters); a public suite whose files are not local is "not downloaded"."""
    from trustdiff.suites.public.fetch import locate

    if entry.public and entry.size is not None:
        if all(locate(f) is not None for f in entry.files):
            return str(entry.size[0]), str(entry.size[1])
        return "not downloaded", "-"
    items = entry.load()
    return str(len(items)), str(len({it.cluster for it in items}))


@suites_app.command("list")
def list_suites(data_dir: DataDirOption = None) -> None:
    """Every built-in and public suite and profile with counts, dimension, licence, provenance.

    Public suites are never downloaded here: their count shows once the pinned files are in
    the data dir or the cache (`trustdiff suites show NAME` fetches them).
    """
    from trustdiff.suites import PROFILES, SUITES

    _use_data_dir(data_dir)
    table = Table(title="suites")
    for col in ("name", "dimension", "items", "clusters", "k", "licence", "source"):
        table.add_column(col, overflow="fold")
    for key, entry in SUITES.items():
        n_items, n_clusters = _counts(entry)
        table.add_row(
            key,
            entry.dimension,
            n_items,
            n_clusters,
            str(entry.k),
            escape(entry.licence + (NON_COMMERCIAL if entry.non_commercial else "")),
            escape(entry.source),
        )
    console = Console()
    console.print(table)
    for name, prof in PROFILES.items():
        limits = ", ".join(f"{s}:{prof.limits.get(s, 'all')}" for s in prof.suites)
        console.print(f"profile [bold]{name}[/bold]: {limits}")
    excluded = [k for k, e in SUITES.items() if e.non_commercial]
    if excluded:
        console.print(
            f"not in any profile (non-commercial licence; select by name): {', '.join(excluded)}"
        )


@suites_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Suite name or a user suite file.")],
    limit: Annotated[int, typer.Option(help="Items to print.")] = 5,
    data_dir: DataDirOption = None,
) -> None:
    """Provenance (licence, citation, pinned URLs and SHA-256), counts, and the first items.

    A public suite's files are fetched if they are not local yet (data dir, cache, download).
    """
    from trustdiff.suites import get_suite
    from trustdiff.suites.public.fetch import locate

    _use_data_dir(data_dir)
    entry = get_suite(name)
    console = Console()
    console.print(f"[bold]{escape(entry.name)}[/bold] — {escape(entry.description)}")
    licence = entry.licence + (NON_COMMERCIAL if entry.non_commercial else "")
    console.print(f"licence: {escape(licence)}\nsource: {escape(entry.source)}")
    if entry.citation:
        console.print(f"citation: {escape(entry.citation)}")
    for f in entry.files:
        where = locate(f)
        console.print(
            f"file {escape(f.key)}: {escape(f.url)}\n  SHA-256 {f.sha256} · {f.size} bytes · "
            + (escape(str(where)) if where else "not downloaded")
        )
    items = entry.load()
    console.print(
        f"dimension {entry.dimension} · {len(items)} items · "
        f"{len({it.cluster for it in items})} clusters · k={entry.k}"
    )
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
        text = it.messages[-1].content
        if entry.public and it.labels.get("harmful"):  # published harmful requests: never shown
            text = f"(harmful request from the public file, {len(text)} characters, not shown)"
        console.print(f"[dim]{it.id}[/dim] \\[{escape(it.variant)}] {escape(text[:160])}")

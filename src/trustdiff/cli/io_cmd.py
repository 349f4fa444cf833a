"""`trustdiff import` and `trustdiff export`: audit generations made elsewhere, analyse ours
elsewhere.

Both are plain typer command functions, registered on the main app by name
(``app.command("import")(import_cmd)``), and import their machinery lazily so `trustdiff --help`
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trustdiff.errors import TrustdiffError

DEFAULT_OUT = Path("runs/audit")


def _say(line: str) -> None:
    """Progress goes to stderr (stdout stays free for pipes), verbatim: no markup parsing."""
    typer.echo(line, err=True)


def _store_path(out: Path) -> Path:
    from trustdiff.runner.audit import STORE_NAME

    return out / STORE_NAME


def _suite_keys(suites: dict[str, int], name: str) -> list[str]:
    """`--suite` values that select the suites rows were attached to."""
    from trustdiff.imports.common import adhoc_suite
    from trustdiff.suites import SUITES

    by_name = {entry.name: key for key, entry in SUITES.items()}
    keys = []
    for suite in suites:
        if suite == adhoc_suite(name):
            keys.append(f"imported:{name}")
        else:
            keys.append(by_name.get(suite.split("@")[0], suite))
    return keys


def import_cmd(
    paths: Annotated[
        list[Path], typer.Argument(help="Files to import (all are checked before any is written).")
    ],
    model: Annotated[
        str, typer.Option(help="Name of the model that wrote them; audit it as imported:NAME.")
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="jsonl (docs/import-jsonl.md), inspect (.eval/.json logs) or lmeval "
            "(samples_*.jsonl from --log_samples).",
        ),
    ] = "jsonl",
    out: Annotated[
        Path, typer.Option(help="Audit directory: the same --out you give `trustdiff audit`.")
    ] = DEFAULT_OUT,
    skip_bad: Annotated[
        bool, typer.Option(help="Skip bad rows (and count them) instead of importing nothing.")
    ] = False,
    thinking_opened: Annotated[
        bool,
        typer.Option(
            help="The chat template opened <think> itself (R1-style): outputs start mid-reasoning."
        ),
    ] = False,
) -> None:
    """Import existing generations as samples of a named model, for `--base/--derived
    imported:NAME`."""
    from trustdiff.imports import FORMATS, read_rows
    from trustdiff.imports.common import check_name
    from trustdiff.imports.write import import_rows
    from trustdiff.store import Store

    if fmt not in FORMATS:
        raise TrustdiffError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    check_name(model)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise TrustdiffError(f"no such file: {', '.join(missing)}")
    rows, skipped = read_rows(fmt, paths, skip_bad=skip_bad, thinking_opened=thinking_opened)
    with Store(_store_path(out)) as store:
        result = import_rows(
            store, model, rows, skipped_bad=skipped, source=", ".join(p.name for p in paths)
        )
    _say(
        f"imported:{model}: {result.rows} row(s) read, {result.written} sample(s) written, "
        f"{result.already_stored} already stored"
        + (f", {result.skipped_bad} bad row(s) skipped" if result.skipped_bad else "")
    )
    for suite, count in result.by_suite.items():
        _say(f"  {count:>6} → {suite}")
    suites = " ".join(f"--suite {key}" for key in _suite_keys(result.by_suite, model))
    _say(f"audit with: trustdiff audit --out {out} --base … --derived imported:{model} {suites}")


def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet (needs pyarrow).")] = (
        "jsonl"
    ),
    out: Annotated[Path, typer.Option(help="Audit directory to read.")] = DEFAULT_OUT,
    to: Annotated[
        Path | None,
        typer.Option(help="File to write (default: OUT/export.jsonl or OUT/export.parquet)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="Only this model (imported:NAME or a fingerprint); repeatable."),
    ] = None,
) -> None:
    """Export every sample with its item and judgments, for pandas or DuckDB."""
    from trustdiff.imports.export import export, resolve_models
    from trustdiff.store import Store

    if fmt not in ("jsonl", "parquet"):
        raise TrustdiffError(f"--format must be jsonl or parquet, not {fmt!r}")
    store_path = _store_path(out)
    if not store_path.is_file():
        raise TrustdiffError(f"no trustdiff store at {store_path}: give the audit's --out")
    target = to or out / f"export.{fmt}"
    with Store(store_path) as store:
        models = resolve_models(store, model) if model else None
        count = export(store, target, "parquet" if fmt == "parquet" else "jsonl", models)
    _say(f"{count} sample(s) → {target}")

"""Audit existing generations (issue 7): import them as samples of a named model, export back.

`trustdiff import --format {jsonl,inspect,lmeval} --model NAME PATH…` stores each row under the
key the audit plans for `imported:NAME`, so imported and live models are judged and compared the
same way. Readers only parse; :func:`trustdiff.imports.write.import_rows` writes.

Modules: `common` (row record, `imported_fingerprint`, item matching; imports nothing heavy, so
`backends/spec.py` may use it), `jsonl` / `inspect_log` / `lmeval` (readers), `write`
(all-or-nothing import), `adhoc` (`ImportedBackend`, ad-hoc suites, completeness check),
`export`. This package module itself imports none of them, to stay free of import cycles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trustdiff.imports.common import ImportRow

FORMATS: tuple[str, ...] = ("jsonl", "inspect", "lmeval")


def read_rows(
    fmt: str, paths: Sequence[Path], *, skip_bad: bool = False, thinking_opened: bool = False
) -> tuple[list[ImportRow], int]:
    """Parse every file of one format into rows (nothing is written); returns (rows, skipped).

    `thinking_opened` says the model's chat template opened the think block itself, for
    sources that cannot say so per row (a JSONL row's own `thinking_opened` wins).
    """
    from trustdiff.imports.common import BadImportError

    if fmt == "jsonl":
        from trustdiff.imports.jsonl import read_jsonl

        return read_jsonl(paths, skip_bad=skip_bad, thinking_opened=thinking_opened)
    if fmt == "inspect":
        from trustdiff.imports.inspect_log import read_inspect

        rows, skipped = read_inspect(paths), 0
    elif fmt == "lmeval":
        from trustdiff.imports.lmeval import read_lmeval

        rows, skipped = read_lmeval(paths, skip_bad=skip_bad)
    else:
        raise BadImportError(f"unknown import format {fmt!r}; known: {', '.join(FORMATS)}")
    if thinking_opened:
        rows = [r.model_copy(update={"thinking_opened": True}) for r in rows]
    return rows, skipped


__all__ = ["FORMATS", "read_rows"]

"""The published JSON Schema of ``report.json`` (docs/report-schema.json).

Generated from the :class:`~trustdiff.report.model.Report` pydantic model, so the schema is
the code: a test compares the committed file with :func:`report_json_schema`, and fails when a
field changes without the file being regenerated with::

    python -m trustdiff.report.schema docs/report-schema.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from trustdiff.report.model import Report

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""JSON Schema dialect pydantic v2 generates."""


def report_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``report.json`` (validation mode: what ``Report`` accepts back)."""
    return {"$schema": DIALECT, **Report.model_json_schema()}


def schema_text() -> str:
    """The schema as committed: two-space indented, keys in generation order, final newline."""
    return json.dumps(report_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema to the path given (default: print it)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m trustdiff.report.schema [OUTPUT.json]", file=sys.stderr)
        return 2
    if args:
        Path(args[0]).write_text(schema_text(), encoding="utf-8")
    else:
        sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

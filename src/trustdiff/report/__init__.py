"""Reports: one `Report` document rendered as JSON, Markdown and self-contained HTML."""

from __future__ import annotations

from pathlib import Path

from trustdiff.report.model import Report


def write_reports(report: Report, out: Path) -> dict[str, Path]:
    """Write report.json / report.md / report.html into `out`; returns the paths by format."""
    from trustdiff.report.html import render_html
    from trustdiff.report.markdown import render_markdown

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths


__all__ = ["Report", "write_reports"]

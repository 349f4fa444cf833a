"""Self-contained HTML report (one file, inline CSS, no scripts, no external resources).

The page is rendered by Jinja2 with autoescaping on for every template, and a strict
Content-Security-Policy meta tag, so model output (which is untrusted text) can never become
markup, script or a network request. Model text is never marked ``|safe``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from trustdiff.records import Verdict
from trustdiff.report.markdown import (
    flip_counts,
    fmt_ci,
    fmt_delta,
    fmt_p,
    fmt_params,
    fmt_pct,
    fmt_validation,
    fmt_value,
    metric_text,
    more_items_text,
    outcome_keys,
    primary_finding,
)
from trustdiff.report.model import Report

TEMPLATE = "report.html.j2"

#: Shown instead of a side's reasoning and answer when ``SideView.redacted`` is set.
REDACTED_PLACEHOLDER = "[redacted: possible harmful compliance — rerun with --unredacted to show]"

#: The Content-Security-Policy of the page: nothing may load, only inline styles apply.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_VERDICT_CLASSES = {v.value: f"v-{v.value}" for v in Verdict}
_DIRECTION_CLASSES = {"worse": "d-worse", "better": "d-better"}


def _verdict_class(verdict: object) -> str:
    """CSS class of a verdict badge, from a fixed set (never the raw string)."""
    return _VERDICT_CLASSES.get(str(verdict), "v-inconclusive")


def _direction_class(direction: object) -> str:
    """CSS class of a flip-direction badge, from a fixed set."""
    return _DIRECTION_CLASSES.get(str(direction), "d-changed")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("trustdiff.report", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        value=fmt_value,
        delta=fmt_delta,
        pvalue=fmt_p,
        pct=fmt_pct,
        ci=fmt_ci,
        params=fmt_params,
        validation=fmt_validation,
        metric=metric_text,
        more_items=more_items_text,
        verdict_class=_verdict_class,
        direction_class=_direction_class,
    )
    return env


def _context(report: Report) -> dict[str, Any]:
    baseline_label = next(
        (m.label for m in report.models if m.role == "baseline"),
        report.models[0].label if report.models else "baseline",
    )
    verdict_rows = []
    for v in report.verdicts:
        pf = primary_finding(report, v)
        more = (
            pf.more_items_needed if pf is not None and v.verdict is Verdict.INCONCLUSIVE else None
        )
        verdict_rows.append({"v": v, "more": more})
    stats_rows = []
    for s in report.outcome_stats:
        trunc = s.outcomes.get("truncated", 0)
        stats_rows.append(
            {"s": s, "trunc_rate": fmt_value(trunc / s.n_samples) if s.n_samples else "n/a"}
        )
    return {
        "report": report,
        "csp": CSP,
        "baseline_label": baseline_label,
        "verdict_rows": verdict_rows,
        "stats_rows": stats_rows,
        "outcome_keys": outcome_keys(report),
        "flip_counts": flip_counts(report),
        "redacted_placeholder": REDACTED_PLACEHOLDER,
        "inconclusive": Verdict.INCONCLUSIVE,
    }


def render_html(report: Report) -> str:
    """Render the report as one self-contained HTML page (opens offline, runs no script)."""
    return _environment().get_template(TEMPLATE).render(_context(report))

"""Number, text and table-content formatters shared by the Markdown and HTML renderers.

Shared so both formats agree on every figure; :func:`md_escape` keeps model- or user-supplied
text from breaking a Markdown table row, opening a link or injecting HTML.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from trustdiff.records import Finding, Verdict
from trustdiff.report.model import DimensionVerdict, Report

#: Outcomes shown first (in this order) in the outcome-statistics tables.
OUTCOME_ORDER = ("answered", "truncated", "empty", "error")

# One-pass character translation: entities for characters that are syntax in Markdown tables or
# HTML, backslash escapes for emphasis markers. Original backslashes become an entity, so no
# backslash we add can be "un-escaped" by one that came with the text.
_MD_TABLE = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "\\": "&#92;",
        "`": "&#96;",
        "|": "&#124;",
        "[": "&#91;",
        "]": "&#93;",
        "*": "\\*",
        "~": "\\~",
    }
)
# `_` only opens/closes emphasis when not between two alphanumerics (CommonMark flanking rules),
# so `refusal_calibration` stays readable in the Markdown source.
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_NEWLINES = re.compile(r"\r\n?|\n|\u2028|\u2029")
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Replace lone surrogates (e.g. from ``\\udcff`` JSON escapes or ``surrogateescape``
    decoding) with U+FFFD, so the rendered report can always be written as UTF-8."""
    return _SURROGATES.sub("\ufffd", text)


def md_escape(text: object) -> str:
    """Escape any text for use inside a Markdown table cell or a single Markdown line.

    Pipes, backticks, backslashes, brackets and HTML ``<``/``>``/``&`` become entities, emphasis
    markers are backslash-escaped, and line breaks become ``<br>`` so a cell stays on one row.
    """
    s = str(text).translate(_MD_TABLE)
    s = _MD_UNDERSCORE.sub(r"\\_", s)
    return _NEWLINES.sub("<br>", s)


# --------------------------------------------------------------------------------------------
# Number formatting (shared with the HTML renderer)
# --------------------------------------------------------------------------------------------


def _missing(x: float | None) -> bool:
    return x is None or math.isnan(x)


def fmt_value(x: float | None, digits: int = 3) -> str:
    """A metric value: ``0.712``; ``n/a`` when missing."""
    if x is None or math.isnan(x):
        return "n/a"
    s = f"{x:.{digits}f}"
    return s.lstrip("-") if float(s) == 0 else s


def fmt_delta(x: float | None, digits: int = 3) -> str:
    """A signed difference: ``+0.031`` / ``-0.052``; zero unsigned; ``n/a`` when missing."""
    if x is None or math.isnan(x):
        return "n/a"
    s = f"{x:+.{digits}f}"
    return s[1:] if float(s) == 0 else s


def fmt_p(p: float | None) -> str:
    """A p-value: ``0.004``, ``<0.001``; ``n/a`` when missing."""
    if p is None or math.isnan(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}"


def fmt_pct(level: float) -> str:
    """A confidence level as a percentage: ``95%``, ``98.3%``."""
    s = f"{level * 100:.1f}"
    if s.endswith(".0"):
        s = s[:-2]
    return f"{s}%"


def fmt_ci(f: Finding) -> str:
    """The (adjusted) confidence interval of Δ with its level: ``[-0.052, +0.010] (98.3%)``."""
    if _missing(f.ci_low) and _missing(f.ci_high):
        return "n/a"
    return f"[{fmt_delta(f.ci_low)}, {fmt_delta(f.ci_high)}] ({fmt_pct(f.ci_level)})"


def fmt_json(v: Any) -> str:
    """A parameter value: strings bare, everything else as compact JSON."""
    if isinstance(v, str):
        return v
    try:
        return json.dumps(v, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(v)


def fmt_params(params: Mapping[str, Any]) -> str:
    """Generation parameters as ``key=value, …`` (sorted by key)."""
    if not params:
        return "—"
    return ", ".join(f"{k}={fmt_json(params[k])}" for k in sorted(params))


def fmt_validation(validation: Mapping[str, Any] | None) -> str:
    """A judge's validation record, or ``not validated``."""
    if not validation:
        return "not validated"
    parts = []
    for k, v in validation.items():
        val = fmt_value(v) if isinstance(v, float) else fmt_json(v)
        parts.append(f"{k}={val}")
    return ", ".join(parts)


def more_items_text(n: int | None) -> str:
    """The "how many more items" hint for inconclusive comparisons."""
    if n is None:
        return ""
    return f"≈ {n} more items would settle it"


def verdict_text(verdict: Verdict, more_items_needed: int | None) -> str:
    """A verdict with the more-items hint when inconclusive."""
    text = str(verdict)
    if verdict is Verdict.INCONCLUSIVE and more_items_needed is not None:
        text += f" ({more_items_text(more_items_needed)})"
    return text


def metric_text(f: Finding) -> str:
    """Metric name with its direction (↑ higher is better, ↓ lower is better) and primary tag."""
    arrow = "↑" if f.higher_is_better else "↓"
    return f"{f.metric} {arrow}" + (" (primary)" if f.primary else "")


def primary_finding(report: Report, v: DimensionVerdict) -> Finding | None:
    """The finding behind a headline verdict (same dimension, derived model and metric)."""
    fallback: Finding | None = None
    for f in report.findings:
        if (f.dimension, f.derived_model, f.metric) == (v.dimension, v.derived_model, v.metric):
            if f.primary:
                return f
            fallback = fallback or f
    return fallback


def outcome_keys(report: Report) -> list[str]:
    """Outcome columns: the standard four, then any others seen, sorted."""
    seen = {k for s in report.outcome_stats for k in s.outcomes}
    return list(OUTCOME_ORDER) + sorted(seen - set(OUTCOME_ORDER))


def flip_counts(report: Report) -> list[tuple[str, str, int, int, int]]:
    """Per (derived model, dimension): number of flips worse / better / changed otherwise."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for fl in report.flips:
        d = fl.direction if fl.direction in ("worse", "better") else "changed"
        counts[(fl.derived_model, fl.dimension, d)] += 1
    keys = sorted({(m, dim) for (m, dim, _) in counts})
    return [
        (m, dim, counts[(m, dim, "worse")], counts[(m, dim, "better")], counts[(m, dim, "changed")])
        for m, dim in keys
    ]


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

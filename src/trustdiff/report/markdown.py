"""Markdown summary of a :class:`~trustdiff.report.model.Report`, suitable for a model card.

Everything that can carry model- or user-supplied text goes through :func:`md_escape`, so a
model's output cannot break a table row, open a link, or inject HTML into the rendered card.
The number formatters here are shared with the HTML renderer so both formats agree.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trustdiff.records import Finding, Verdict
from trustdiff.report.charts import CAPABILITY, capability_findings, headline_drift
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


class _Num(str):
    """A cell produced by our number formatters (digits, signs, brackets, ``<``): not escaped."""

    __slots__ = ()


_NUM_OK = re.compile(r"(?:n/a|<0\.001|[0-9+\-.,%()\[\] ])*")


def _cell(c: object) -> str:
    if isinstance(c, int | float) and not isinstance(c, bool):
        return str(c)
    if isinstance(c, _Num) and _NUM_OK.fullmatch(c):
        return str(c)
    return md_escape(c)


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A GFM table; every text cell escaped, so every row has exactly ``len(headers)`` cells."""
    out = [
        "| " + " | ".join(md_escape(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    for row in rows:
        cells = [_cell(c) for c in row]
        if len(cells) != len(headers):  # pragma: no cover - programming error
            raise ValueError(f"row has {len(cells)} cells, expected {len(headers)}")
        out.append("| " + " | ".join(cells) + " |")
    return out


def trust_vs_capability_lines(report: Report) -> list[str]:
    """One compact line per derived model: capability Δ beside the trust verdicts it came with.

    Empty when no capability finding exists (capability is reported beside trust, DESIGN §5).
    """
    caps = capability_findings(report.findings)
    lines = []
    for model, cap in caps.items():
        by_verdict: dict[Verdict, list[str]] = {}
        for f in report.findings:
            if f.primary and f.derived_model == model and f.dimension != CAPABILITY:
                by_verdict.setdefault(f.verdict, []).append(f.dimension)
        trust = "; ".join(
            f"{v.value} {', '.join(md_escape(d) for d in by_verdict[v])}"
            for v in Verdict
            if v in by_verdict
        )
        lines.append(
            f"**Trust vs capability** — {md_escape(model)}: {md_escape(cap.metric)} "
            f"Δ {fmt_delta(cap.delta)} {fmt_ci(cap)} ({cap.verdict.value}); "
            f"trust: {trust or 'no trust dimension compared'}."
        )
    return lines


def _drift_lines(report: Report) -> list[str]:
    """Headline drift (k1 per token, derived‖base, all tokens) and its correlation with loss."""
    kl = headline_drift(report.drift)
    if not kl and not report.drift_correlations:
        return []
    lines = ["## Drift from the baseline", ""]
    if kl:
        lines += _table(
            ["Derived model", "Dimension", "KL(derived ‖ base) per token"],
            ([m, d, _Num(fmt_value(v, 4))] for (m, d), v in kl.items()),
        )
        lines.append("")
    for c in report.drift_correlations:
        note = " (fewer than 4 dimensions: anecdotal)" if c.n_dimensions < 4 else ""
        lines.append(
            f"- {md_escape(c.derived_model)}: Spearman ρ(drift, trust loss) = "
            f"{fmt_value(c.spearman_rho)} over {c.n_dimensions} dimension(s){note}."
        )
    lines += [
        "",
        "All directions and estimators (k1, k3; with and without reasoning tokens) "
        "are in report.json and the HTML report.",
        "",
    ]
    return lines


def render_markdown(report: Report) -> str:
    """Render the report as a Markdown summary (title, caveats, verdicts, findings, provenance).

    Lone surrogates become U+FFFD so the summary is always valid UTF-8.
    """
    lines: list[str] = [f"# {md_escape(report.title)}", ""]
    lines += [f"Generated by trustdiff {md_escape(report.trustdiff_version)}.", ""]

    if report.notes:
        lines += ["> **Caveats**", ">"]
        lines += [f"> - {md_escape(n)}" for n in report.notes]
        lines.append("")

    lines += ["## Verdicts", ""]
    if report.verdicts:
        rows = []
        for v in report.verdicts:
            pf = primary_finding(report, v)
            more = pf.more_items_needed if pf is not None else None
            rows.append(
                [v.dimension, v.derived_model, verdict_text(v.verdict, more), v.metric, v.summary]
            )
        lines += _table(
            ["Dimension", "Derived model", "Verdict", "Primary metric", "Summary"], rows
        )
    else:
        lines.append("No verdicts.")
    lines += [
        "",
        f"Verdicts use the primary metric of each dimension with margin δ = "
        f"{fmt_value(report.settings.margin)}: *regressed* / *improved* need the adjusted CI "
        "entirely on one side and |Δ| ≥ δ; *preserved* needs the CI inside ±δ; anything else is "
        "*inconclusive*.",
        "",
    ]
    for line in trust_vs_capability_lines(report):
        lines += [line, ""]

    lines += ["## Findings", ""]
    if report.findings:
        lines += _table(
            [
                "Dimension",
                "Derived model",
                "Metric",
                "Baseline",
                "Derived",
                "Δ",
                "CI",
                "p",
                "p_adj",
                "n",
                "Verdict",
                "Note",
            ],
            (
                [
                    f.dimension,
                    f.derived_model,
                    metric_text(f),
                    _Num(fmt_value(f.baseline)),
                    _Num(fmt_value(f.derived)),
                    _Num(fmt_delta(f.delta)),
                    _Num(fmt_ci(f)),
                    _Num(fmt_p(f.p)),
                    _Num(fmt_p(f.p_adj)),
                    f.n,
                    verdict_text(f.verdict, f.more_items_needed),
                    f.note,
                ]
                for f in report.findings
            ),
        )
        lines += [
            "",
            "↑ higher is better, ↓ lower is better. Δ = derived − baseline. CIs are adjusted for "
            "multiplicity (level shown); p_adj is Holm (primary) or Benjamini–Hochberg "
            "(secondary).",
        ]
    else:
        lines.append("No findings.")
    lines.append("")

    lines += _drift_lines(report)

    counts = flip_counts(report)
    if counts:
        lines += ["## Flipped items", ""]
        lines += _table(["Derived model", "Dimension", "Worse", "Better", "Changed"], counts)
        lines += ["", "Item-level evidence (prompts, reasoning, answers) is in the HTML report."]
        lines.append("")

    lines += ["## Models", ""]
    lines += _table(
        ["Role", "Label", "Spec", "Backend", "Fingerprint", "Description", "Params"],
        (
            [m.role, m.label, m.spec, m.backend, m.fingerprint, m.description, fmt_params(m.params)]
            for m in report.models
        ),
    )
    lines.append("")

    lines += ["## Data provenance", ""]
    lines += _table(
        ["Suite", "Dimension", "Items used", "Licence", "Source"],
        (
            [s.name, s.dimension, f"{s.n_items}/{s.n_available}", s.licence, s.source]
            for s in report.suites
        ),
    )
    lines.append("")

    lines += ["## Judge provenance", ""]
    lines += _table(
        ["Judge", "Part", "Description", "Validation"],
        ([j.id, j.part, j.description, fmt_validation(j.validation)] for j in report.judges),
    )
    lines.append("")

    lines += ["## Outcome statistics", ""]
    keys = outcome_keys(report)
    stat_rows = []
    for s in report.outcome_stats:
        trunc = s.outcomes.get("truncated", 0)
        rate = fmt_value(trunc / s.n_samples) if s.n_samples else "n/a"
        stat_rows.append(
            [
                s.model,
                s.n_samples,
                *(s.outcomes.get(k, 0) for k in keys),
                rate,
                f"{s.mean_reasoning_tokens:.1f}",
                f"{s.mean_answer_tokens:.1f}",
            ]
        )
    lines += _table(
        [
            "Model",
            "Samples",
            *keys,
            "Truncation rate",
            "Mean reasoning tokens",
            "Mean answer tokens",
        ],
        stat_rows,
    )
    lines.append("")

    st = report.settings
    lines += ["## Settings", ""]
    lines += _table(
        ["Setting", "Value"],
        [
            ["alpha (family-wise, primary metrics)", f"{st.alpha:g}"],
            ["margin δ", f"{st.margin:g}"],
            ["bootstrap resamples", st.n_resamples],
            ["seed", st.seed],
            ["item limit", "whole suite" if st.limit is None else st.limit],
            ["possibly harmful completions redacted", "yes" if report.redacted else "no"],
        ],
    )
    lines.append("")
    return clean_text("\n".join(lines))

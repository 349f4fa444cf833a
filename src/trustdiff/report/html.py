"""Self-contained HTML report (one file, inline CSS and SVG, no scripts, no external resources).

The page is rendered by Jinja2 with autoescaping on for every template, and a strict
Content-Security-Policy meta tag, so model output (which is untrusted text) can never become
markup, script or a network request. Model text is never marked ``|safe``; the only markup
inserted unescaped is the charts' SVG (built by an escaping builder) and the flip-filter CSS,
generated from fixed-format ids. The flips browser filters with CSS alone (hidden radio inputs
and ``:checked ~`` selectors) so the page needs no JavaScript.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from trustdiff.records import Verdict
from trustdiff.report.charts import drift_vs_delta, forest_plots, trust_vs_capability
from trustdiff.report.fmt import (
    clean_text,
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
from trustdiff.report.model import Flip, Report

TEMPLATE = "report.html.j2"

#: Shown instead of a side's reasoning and answer when ``SideView.redacted`` is set.
REDACTED_PLACEHOLDER = "[redacted: possible harmful compliance — rerun with --unredacted to show]"

#: The Content-Security-Policy of the page: nothing may load, only inline styles apply.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

#: Flips rendered expanded at the top of the browser; the rest open on click.
OPEN_FLIPS = 10

_VERDICT_CLASSES = {v.value: f"v-{v.value}" for v in Verdict}
_DIRECTION_CLASSES = {"worse": "d-worse", "better": "d-better"}
_DIRECTIONS = ("worse", "changed", "better")
_FILTER_ID = re.compile(r"f[a-z]{3}-(?:all|[0-9]+)")


def _verdict_class(verdict: object) -> str:
    """CSS class of a verdict badge, from a fixed set (never the raw string)."""
    return _VERDICT_CLASSES.get(str(verdict), "v-inconclusive")


def _direction_class(direction: object) -> str:
    """CSS class of a flip-direction badge, from a fixed set."""
    return _DIRECTION_CLASSES.get(str(direction), "d-changed")


def _direction(fl: Flip) -> str:
    return fl.direction if fl.direction in _DIRECTIONS else "changed"


@dataclass(frozen=True)
class FacetValue:
    """One filter choice: a radio input (fixed-format id) and its visible label."""

    id: str
    text: str
    count: int


@dataclass(frozen=True)
class Facet:
    """One filter group of the flips browser (e.g. by dimension)."""

    key: str
    title: str
    values: tuple[FacetValue, ...]

    @property
    def all_id(self) -> str:
        return f"f{self.key}-all"


@dataclass(frozen=True)
class FlipRow:
    """A flip as the template shows it: fixed-format element id and filter classes."""

    n: int
    flip: Flip
    classes: str
    open: bool


_FACET_KEYS: tuple[tuple[str, str, Callable[[Flip], str]], ...] = (
    ("dim", "Dimension", lambda fl: fl.dimension),
    ("mod", "Derived model", lambda fl: fl.derived_model),
    ("dir", "Direction", _direction),
    ("var", "Variant", lambda fl: fl.variant or "(none)"),
)


def flip_browser(flips: Sequence[Flip]) -> tuple[list[Facet], list[FlipRow]]:
    """Facets (only those with ≥ 2 values) and the flips, worse first, tagged with classes.

    Classes and ids are ``f<key>-<index>``: derived from positions, never from the text, so a
    dimension or model name cannot inject a class, an id or CSS.
    """
    ordered = sorted(flips, key=lambda fl: _DIRECTIONS.index(_direction(fl)))
    facets: list[Facet] = []
    index: dict[str, dict[str, int]] = {}
    for key, title, get in _FACET_KEYS:
        counts = Counter(get(fl) for fl in ordered)
        names = list(_DIRECTIONS) if key == "dir" else sorted(counts)
        names = [n for n in names if counts[n]]
        index[key] = {name: i for i, name in enumerate(names)}
        if len(names) >= 2:
            values = tuple(FacetValue(f"f{key}-{i}", n, counts[n]) for i, n in enumerate(names))
            facets.append(Facet(key, title, values))
    rows = []
    for n, fl in enumerate(ordered):
        classes = " ".join(f"f{key}-{index[key][get(fl)]}" for key, _, get in _FACET_KEYS)
        rows.append(FlipRow(n, fl, f"flip {classes}", n < OPEN_FLIPS))
    return facets, rows


def facet_css(facets: Sequence[Facet]) -> Markup:
    """CSS that hides non-matching flips and highlights the chosen label of each facet.

    Filters combine with AND: each checked non-"all" radio hides the flips lacking its class.
    """
    hide, active, focus = [], [], []
    for facet in facets:
        for fid in (facet.all_id, *(v.id for v in facet.values)):
            if not _FILTER_ID.fullmatch(fid):
                raise ValueError(f"filter id {fid!r} is not fixed-format")
            active.append(f"#{fid}:checked~.fbar label[for={fid}]")
            focus.append(f"#{fid}:focus-visible~.fbar label[for={fid}]")
            if fid != facet.all_id:
                hide.append(f"#{fid}:checked~.flist .flip:not(.{fid}){{display:none}}")
    if not facets:
        return Markup("")
    css = "\n".join(
        [
            *hide,
            ",\n".join(active) + "{background:var(--fg);color:var(--bg);border-color:var(--fg)}",
            ",\n".join(focus) + "{outline:2px solid #1565c0;outline-offset:1px}",
        ]
    )
    return Markup(css)


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
    facets, flip_rows = flip_browser(report.flips)
    return {
        "report": report,
        "csp": CSP,
        "facet_css": facet_css(facets),
        "baseline_label": baseline_label,
        "verdict_rows": verdict_rows,
        "stats_rows": stats_rows,
        "outcome_keys": outcome_keys(report),
        "flip_counts": flip_counts(report),
        "facets": facets,
        "flip_rows": flip_rows,
        "n_redacted": sum(1 for fl in report.flips if fl.baseline.redacted or fl.derived.redacted),
        "forest_plots": forest_plots(report.findings),
        "capability_chart": trust_vs_capability(report.findings),
        "drift_chart": drift_vs_delta(report.findings, report.drift),
        "open_flips": OPEN_FLIPS,
        "redacted_placeholder": REDACTED_PLACEHOLDER,
        "inconclusive": Verdict.INCONCLUSIVE,
    }


def render_html(report: Report) -> str:
    """Render the report as one self-contained HTML page (opens offline, runs no script).

    Lone surrogates become U+FFFD so the page is valid UTF-8 whatever the models produced.
    """
    page = _environment().get_template(TEMPLATE).render(_context(report))
    return clean_text(page)

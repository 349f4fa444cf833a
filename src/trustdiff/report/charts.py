"""Inline SVG charts for the HTML report, built by hand with an escaping builder.

Hand-built rather than matplotlib: matplotlib added ≈ 2.5 s per report here (1.8–2.1 s import,
≈ 0.25 s per chart), emits ``xlink:href`` references and ``<style>`` blocks into the page, and
turns labels into glyph paths. This builder emits only ``svg``/``g``/``rect``/``line``/
``circle``/``text``/``title`` elements; every label goes through :func:`html.escape`, every
number is a formatted finite float, and every class comes from a fixed set, so model- or
user-supplied text (dimension names, model labels) can never become markup.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from trustdiff.records import Finding
from trustdiff.report.model import DriftRow
from trustdiff.report.svg import (
    CHAR_PX,
    Scale,
    Svg,
    clip,
    domain,
    finite,
    fmt_signed,
    x_axis,
    y_axis,
)

CAPABILITY = "capability"
"""Dimension name of the reasoning-capability findings (reported beside trust)."""
HEADLINE_DIRECTION = "derived‖base"
"""Drift direction plotted and correlated: responses sampled from the derived model."""
HEADLINE_TOKENS = "all"
"""Drift token set plotted and correlated: reasoning tokens included."""


def trust_delta(f: Finding) -> tuple[float, float | None, float | None] | None:
    """(Δ, CI low, CI high) oriented so that positive = more trustworthy; None when missing.

    Lower-is-better metrics (leak rate, toxicity, s_AMB) are sign-flipped so one vertical axis
    can carry every dimension: up is better, down is a regression.
    """
    if not finite(f.delta):
        return None
    assert f.delta is not None
    if f.higher_is_better:
        return f.delta, f.ci_low, f.ci_high
    lo = -f.ci_high if f.ci_high is not None else None
    hi = -f.ci_low if f.ci_low is not None else None
    return -f.delta, lo, hi


def forest_plot(findings: Sequence[Finding], title: str) -> Markup:
    """One row per finding: Δ (dot, filled = primary) with its adjusted CI, ±δ band, zero line.

    Colour = verdict. Δ is derived − baseline in the metric's own unit; the arrow in each label
    says which way is better, so the plot never hides a direction flip.
    """
    row_h, top, label_w, plot_w, right_w = 24.0, 12.0, 300.0, 330.0, 190.0
    width = label_w + plot_w + right_w
    height = top + row_h * len(findings) + 44
    svg = Svg(width, height, title)
    edges: list[float | None] = []
    for f in findings:
        edges += [f.delta, f.ci_low, f.ci_high, f.margin, -f.margin]
    sx = Scale(*domain(edges), label_w + 8, label_w + plot_w - 8)
    bottom = top + row_h * len(findings)
    svg.line(sx(0.0), top - 4, sx(0.0), bottom, "zero")
    for i, f in enumerate(findings):
        y = top + row_h * i + row_h / 2
        arrow = "↑" if f.higher_is_better else "↓"
        label = f"{f.metric} {arrow} · {f.derived_model}"
        tip = (
            f"{label}: Δ {fmt_signed(f.delta)}, CI [{fmt_signed(f.ci_low)}, "
            f"{fmt_signed(f.ci_high)}] at {f.ci_level:.1%}, δ = {f.margin:g}, "
            f"n = {f.n}, {f.verdict.value}"
        )
        svg.open(f"row c-{f.verdict.value}", tip)
        if i % 2:
            svg.rect(0, y - row_h / 2, width, row_h, "stripe")
        if finite(f.margin) and f.margin > 0:
            svg.rect(sx(-f.margin), y - 7, sx(f.margin) - sx(-f.margin), 14, "band")
        svg.text(label_w - 6, y + 4, clip(label, label_w - 12), "lbl", "end")
        if finite(f.ci_low) and finite(f.ci_high):
            assert f.ci_low is not None and f.ci_high is not None
            x0, x1 = sx(f.ci_low), sx(f.ci_high)
            svg.line(x0, y, x1, y, "ci")
            svg.line(x0, y - 5, x0, y + 5, "ci")
            svg.line(x1, y - 5, x1, y + 5, "ci")
        if finite(f.delta):
            assert f.delta is not None
            svg.circle(sx(f.delta), y, 5, "dot" if f.primary else "dot hollow")
        ci = f"[{fmt_signed(f.ci_low)}, {fmt_signed(f.ci_high)}]"
        svg.text(label_w + plot_w + 6, y + 4, f"{fmt_signed(f.delta)} {ci}", "num", "start")
        svg.close()
    x_axis(svg, sx, bottom + 2, "Δ = derived − baseline (band: ±δ)")
    return svg.markup()


@dataclass(frozen=True)
class _Point:
    x: float
    x_lo: float | None
    x_hi: float | None
    y: float
    y_lo: float | None
    y_hi: float | None
    label: str
    series: int
    verdict: str
    tip: str


def _place_label(
    placed: list[tuple[float, float, float, float]], x: float, y: float, width: float
) -> tuple[float, float]:
    """First of a few offsets around the point whose label box overlaps no label placed yet."""
    for dx, dy in ((8, -6), (8, 14), (8, -20), (8, 28), (-8 - width, -6), (-8 - width, 14)):
        box = (x + dx, y + dy - 11, x + dx + width, y + dy + 2)
        if not any(
            box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed
        ):
            placed.append(box)
            return x + dx, y + dy
    return x + 8, y - 6


def _scatter(
    points: Sequence[_Point],
    series: Sequence[str],
    title: str,
    axes: tuple[str, str],
    corner: str,
) -> Markup:
    """Scatter with CI whiskers, one marker shape per series (derived model) and a legend."""
    left, top, plot_w, plot_h, right = 70.0, 28.0, 520.0, 300.0, 190.0
    svg = Svg(left + plot_w + right, top + plot_h + 48, title)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for p in points:
        xs += [p.x, p.x_lo, p.x_hi]
        ys += [p.y, p.y_lo, p.y_hi]
    sx = Scale(*domain(xs), left, left + plot_w)
    lo, hi = domain(ys)
    sy = Scale(lo, hi, top + plot_h, top)
    svg.line(sx(0.0), top, sx(0.0), top + plot_h, "zero")
    svg.line(left, sy(0.0), left + plot_w, sy(0.0), "zero")
    svg.text(left + plot_w - 4, top + plot_h - 6, corner, "corner", "end")
    for p in points:
        svg.open(f"pt c-{p.verdict}", p.tip)
        cx, cy = sx(p.x), sy(p.y)
        if finite(p.x_lo) and finite(p.x_hi):
            assert p.x_lo is not None and p.x_hi is not None
            svg.line(sx(p.x_lo), cy, sx(p.x_hi), cy, "ci faint")
        if finite(p.y_lo) and finite(p.y_hi):
            assert p.y_lo is not None and p.y_hi is not None
            svg.line(cx, sy(p.y_lo), cx, sy(p.y_hi), "ci")
        svg.marker(p.series, cx, cy, "dot")
        svg.close()
    placed = [(sx(p.x) - 6, sy(p.y) - 6, sx(p.x) + 6, sy(p.y) + 6) for p in points]
    for p in sorted(points, key=lambda p: (sx(p.x), sy(p.y))):
        label = clip(p.label, 140)
        tx, ty = _place_label(placed, sx(p.x), sy(p.y), len(label) * CHAR_PX)
        svg.text(tx, ty, label, "lbl", "start")
    legend_x = left + plot_w + 24
    for i, name in enumerate(series):
        y = top + 10 + 20 * i
        svg.open("legend", name)
        svg.marker(i, legend_x, y - 4, "dot")
        svg.text(legend_x + 12, y, clip(name, right - 40), "lbl", "start")
        svg.close()
    x_axis(svg, sx, top + plot_h + 2, axes[0])
    y_axis(svg, sy, left, axes[1])
    return svg.markup()


def _primary(findings: Iterable[Finding]) -> dict[tuple[str, str], Finding]:
    """Primary finding per (derived model, dimension); first one wins."""
    out: dict[tuple[str, str], Finding] = {}
    for f in findings:
        if f.primary:
            out.setdefault((f.derived_model, f.dimension), f)
    return out


def capability_findings(findings: Sequence[Finding]) -> dict[str, Finding]:
    """Capability finding per derived model: the primary one, else the first one."""
    out: dict[str, Finding] = {}
    for f in findings:
        if f.dimension != CAPABILITY:
            continue
        current = out.get(f.derived_model)
        if current is None or (f.primary and not current.primary):
            out[f.derived_model] = f
    return out


_TRUST_AXIS = "trust Δ (up = more trustworthy)"


def trust_vs_capability(findings: Sequence[Finding]) -> Markup | None:
    """x = capability Δ, y = each trust dimension's primary Δ (oriented), per derived model.

    None when no capability finding exists: the chart would have no x axis.
    """
    caps = capability_findings(findings)
    series = list(caps)
    points = []
    for (model, dim), f in _primary(findings).items():
        cap = caps.get(model)
        td = trust_delta(f)
        if dim == CAPABILITY or cap is None or td is None or not finite(cap.delta):
            continue
        assert cap.delta is not None
        tip = (
            f"{model} · {dim}: {cap.metric} Δ {fmt_signed(cap.delta)}, {f.metric} Δ "
            f"{fmt_signed(f.delta)} ({f.verdict.value})"
        )
        points.append(
            _Point(
                cap.delta, cap.ci_low, cap.ci_high, *td, dim, series.index(model),
                f.verdict.value, tip,
            )
        )  # fmt: skip
    if not points:
        return None
    return _scatter(
        points,
        series,
        "Trust versus capability",
        ("capability Δ (derived − baseline)", _TRUST_AXIS),
        "right & below zero: gained capability, lost trust",
    )


def headline_drift(drift: Iterable[DriftRow]) -> dict[tuple[str, str], float]:
    """k1 per token, derived‖base, all tokens, per (derived model, dimension): the drift value
    the drift stage correlates with regression, so the chart and ρ describe the same numbers."""
    out: dict[tuple[str, str], float] = {}
    for d in drift:
        headline = d.direction == HEADLINE_DIRECTION and d.tokens == HEADLINE_TOKENS
        if headline and d.k1_per_token is not None and math.isfinite(d.k1_per_token):
            out.setdefault((d.derived_model, d.dimension), d.k1_per_token)
    return out


def drift_vs_delta(findings: Sequence[Finding], drift: Sequence[DriftRow]) -> Markup | None:
    """x = headline KL drift per (derived model, dimension), y = that dimension's primary Δ
    (oriented, up = more trustworthy). None when no dimension has both."""
    primary = _primary(findings)
    kl = headline_drift(drift)
    series = list(dict.fromkeys(m for m, _ in kl))
    points = []
    for (model, dim), value in kl.items():
        f = primary.get((model, dim))
        td = trust_delta(f) if f is not None and dim != CAPABILITY else None
        if f is None or td is None:
            continue
        tip = (
            f"{model} · {dim}: KL {value:.4f} nats/token, {f.metric} Δ "
            f"{fmt_signed(f.delta)} ({f.verdict.value})"
        )
        points.append(
            _Point(value, None, None, *td, dim, series.index(model), f.verdict.value, tip)
        )
    if not points:
        return None
    return _scatter(
        points,
        series,
        "Drift versus trust change",
        ("KL(derived ‖ base), nats per token", _TRUST_AXIS),
        "further right: more drift from the baseline",
    )


def forest_plots(findings: Sequence[Finding]) -> list[tuple[str, Markup]]:
    """One forest plot per dimension, in the order dimensions first appear (capability last)."""
    dims: dict[str, list[Finding]] = {}
    for f in findings:
        dims.setdefault(f.dimension, []).append(f)
    order = sorted(dims, key=lambda d: d == CAPABILITY)
    return [(d, forest_plot(dims[d], f"Forest plot: {d}")) for d in order]

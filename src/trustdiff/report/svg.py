"""Escaping SVG builder and axis helpers for the report's inline charts.

Every label goes through :func:`html.escape`, every number is a formatted finite float and every
class comes from a fixed set, so model- or user-supplied text can never become markup.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

_CLASS_OK = re.compile(r"[a-z0-9 -]*")
FONT_PX = 12
CHAR_PX = 7.2  # generous glyph width of the 12 px sans-serif font, for layout only


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _n(x: float) -> str:
    """An SVG coordinate: finite, one decimal (never text from the report)."""
    if not math.isfinite(x):
        raise ValueError(f"non-finite SVG coordinate {x!r}")
    return f"{x:.1f}"


def _cls(cls: str) -> str:
    if not _CLASS_OK.fullmatch(cls):
        raise ValueError(f"SVG class {cls!r} is not from the fixed set")
    return cls


def clip(text: str, width_px: float) -> str:
    """Shorten a label to fit `width_px` (the full text stays in the element's tooltip)."""
    limit = max(4, int(width_px / CHAR_PX))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Svg:
    """Accumulates escaped SVG elements; :meth:`markup` is the only way out."""

    def __init__(self, width: float, height: float, label: str) -> None:
        self.width = width
        self.height = height
        self.label = label
        self._parts: list[str] = []
        self._open = 0

    def open(self, cls: str = "", tip: str | None = None) -> None:
        """Start a group; a `tip` becomes the group's hover tooltip (``<title>``)."""
        attr = f' class="{_cls(cls)}"' if cls else ""
        self._parts.append(f"<g{attr}>")
        if tip:
            self._parts.append(f"<title>{escape(tip)}</title>")
        self._open += 1

    def close(self) -> None:
        self._parts.append("</g>")
        self._open -= 1

    def rect(self, x: float, y: float, w: float, h: float, cls: str) -> None:
        self._parts.append(
            f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0.0))}" '
            f'height="{_n(max(h, 0.0))}" class="{_cls(cls)}"/>'
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, cls: str) -> None:
        self._parts.append(
            f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" class="{_cls(cls)}"/>'
        )

    def circle(self, cx: float, cy: float, r: float, cls: str) -> None:
        self._parts.append(f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r)}" class="{_cls(cls)}"/>')

    def marker(self, shape: int, cx: float, cy: float, cls: str) -> None:
        """Series marker: circle, square, diamond or triangle (cycling), radius ≈ 5 px."""
        kind = shape % 4
        if kind == 0:
            self.circle(cx, cy, 5, cls)
        elif kind == 1:
            self.rect(cx - 4.5, cy - 4.5, 9, 9, cls)
        else:
            pts = (
                [(cx, cy - 6), (cx + 6, cy), (cx, cy + 6), (cx - 6, cy)]
                if kind == 2
                else [(cx, cy - 6), (cx + 6, cy + 5), (cx - 6, cy + 5)]
            )
            d = "M" + " L".join(f"{_n(x)} {_n(y)}" for x, y in pts) + " Z"
            self._parts.append(f'<path d="{d}" class="{_cls(cls)}"/>')

    def text(self, x: float, y: float, s: str, cls: str = "", anchor: str = "start") -> None:
        if anchor not in ("start", "middle", "end"):
            raise ValueError(anchor)
        attr = f' class="{_cls(cls)}"' if cls else ""
        self._parts.append(
            f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{attr}>{escape(s)}</text>'
        )

    def markup(self) -> Markup:
        """The finished ``<svg>`` element, safe to embed (all content escaped on the way in)."""
        if self._open:
            raise ValueError("unclosed SVG group")
        head = (
            f'<svg class="chart" role="img" aria-label="{escape(self.label)}" '
            f'viewBox="0 0 {_n(self.width)} {_n(self.height)}" width="{_n(self.width)}" '
            f'height="{_n(self.height)}" font-size="{FONT_PX}">'
        )
        return Markup(head + "".join(self._parts) + "</svg>")


@dataclass(frozen=True)
class Scale:
    """Linear map from data units to pixels."""

    lo: float
    hi: float
    px0: float
    px1: float

    def __call__(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        return self.px0 + (v - self.lo) / (self.hi - self.lo) * (self.px1 - self.px0)

    def ticks(self, n: int = 5) -> list[float]:
        """Round tick values inside the domain (1, 2, 5 × 10^k steps)."""
        raw = (self.hi - self.lo) / max(n, 1)
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
        first = math.ceil(self.lo / step - 1e-9)
        out = []
        k = first
        while k * step <= self.hi + 1e-9:
            out.append(round(k * step, 10))
            k += 1
        return out


def domain(values: Iterable[float | None], pad: float = 0.08) -> tuple[float, float]:
    """Padded [lo, hi] covering the finite values and zero."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    lo, hi = min([0.0, *vals]), max([0.0, *vals])
    span = hi - lo
    if span <= 0:
        span = 1.0 if lo == 0 else abs(lo)
        lo, hi = lo - span / 2, hi + span / 2
    return lo - pad * span, hi + pad * span


def fmt_tick(v: float) -> str:
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def fmt_signed(v: float | None) -> str:
    if not finite(v):
        return "n/a"
    assert v is not None
    s = f"{v:+.3f}"
    return s[1:] if float(s) == 0 else s


def x_axis(svg: Svg, sx: Scale, y: float, title: str) -> None:
    svg.line(sx.px0, y, sx.px1, y, "axis")
    for t in sx.ticks():
        svg.line(sx(t), y, sx(t), y + 4, "axis")
        svg.text(sx(t), y + 16, fmt_tick(t), "tick", "middle")
    svg.text((sx.px0 + sx.px1) / 2, y + 32, title, "axis-title", "middle")


def y_axis(svg: Svg, sy: Scale, x: float, title: str) -> None:
    svg.line(x, sy.px0, x, sy.px1, "axis")
    for t in sy.ticks():
        svg.line(x - 4, sy(t), x, sy(t), "axis")
        svg.text(x - 6, sy(t) + 4, fmt_tick(t), "tick", "end")
    svg.text(x - 44, sy.px1 - 8, title, "axis-title", "start")

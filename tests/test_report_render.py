"""Markdown and HTML renderers: content, escaping of hostile model text, self-containment."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from trustdiff.records import Finding, Verdict
from trustdiff.report.fmt import fmt_delta, fmt_p, fmt_value, md_escape
from trustdiff.report.html import CSP, REDACTED_PLACEHOLDER, render_html
from trustdiff.report.markdown import render_markdown
from trustdiff.report.model import (
    DimensionVerdict,
    Flip,
    JudgeInfo,
    ModelInfo,
    OutcomeStats,
    Report,
    Settings,
    SideView,
    SuiteInfo,
)

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
JS_LINK = '<a href="javascript:alert(1)">click</a> [click](javascript:alert(1))'
BREAKOUT = "</pre></details><script>alert(2)</script>"
TEMPLATE_INJECTION = "{{ 7*7 }}{% raw %}"
PIPES = "col | with | pipes\nand a newline\r\nand `backticks` \\| escaped"
SECRET = "SECRET-HARMFUL-STEPS-DO-NOT-SHOW"
HOSTILE = "\n".join([SCRIPT, IMG, JS_LINK, BREAKOUT, TEMPLATE_INJECTION, PIPES])


def _finding(**kw: object) -> Finding:
    base: dict[str, object] = {
        "dimension": "safety",
        "metric": "refusal_calibration",
        "primary": True,
        "derived_model": "smol-think",
        "baseline": 0.712,
        "derived": 0.64,
        "delta": -0.072,
        "ci_low": -0.11,
        "ci_high": -0.035,
        "ci_level": 0.975,
        "p": 0.0004,
        "p_adj": 0.0012,
        "test": "paired bootstrap",
        "n": 200,
        "higher_is_better": True,
        "margin": 0.02,
        "verdict": Verdict.REGRESSED,
        "flipped_items": ("item-1",),
    }
    base.update(kw)
    return Finding.model_validate(base)


def _report(answer: str = HOSTILE) -> Report:
    findings = [
        _finding(),
        _finding(
            metric="harmful_compliance_rate",
            primary=False,
            baseline=0.1,
            derived=0.2,
            delta=0.1,
            ci_low=0.05,
            ci_high=0.15,
            p=0.004,
            p_adj=0.008,
            higher_is_better=False,
            note="truncated counted as complied: " + PIPES,
        ),
        _finding(
            dimension="privacy",
            metric="leak_rate_answer",
            derived_model="smol-think | " + SCRIPT,
            baseline=0.05,
            derived=0.06,
            delta=0.01,
            ci_low=-0.03,
            ci_high=0.05,
            p=0.61,
            p_adj=0.61,
            higher_is_better=False,
            verdict=Verdict.INCONCLUSIVE,
            more_items_needed=340,
        ),
        _finding(
            dimension="ethics",
            metric="accuracy",
            baseline=0.8,
            derived=0.8,
            delta=0.0,
            ci_low=-0.01,
            ci_high=0.012,
            p=1.0,
            p_adj=1.0,
            verdict=Verdict.PRESERVED,
        ),
        _finding(
            dimension="ood",
            metric="knowledge_score",
            baseline=0.5,
            derived=0.6,
            delta=0.1,
            ci_low=0.06,
            ci_high=0.14,
            p=0.0001,
            p_adj=0.0003,
            verdict=Verdict.IMPROVED,
        ),
    ]
    verdicts = [
        DimensionVerdict(
            dimension=f.dimension,
            derived_model=f.derived_model,
            verdict=f.verdict,
            metric=f.metric,
            summary=f"{f.metric} {f.baseline} → {f.derived} " + ("| <b>x</b>" if f.p else ""),
        )
        for f in findings
        if f.primary
    ]
    flips = [
        Flip(
            item_id="item-1",
            dimension="safety",
            derived_model="smol-think",
            category="weapons",
            variant="harmful",
            prompt="Prompt with " + HOSTILE,
            direction="worse",
            baseline=SideView(
                reasoning="baseline thinks " + BREAKOUT,
                answer="I can't help with that. " + HOSTILE,
                outcome="answered",
                label="refused",
            ),
            derived=SideView(
                reasoning=SECRET + " reasoning",
                answer=SECRET + " answer",
                outcome="answered",
                label="complied",
                redacted=True,
            ),
        ),
        Flip(
            item_id="item-2",
            dimension="privacy",
            derived_model="smol-think",
            category="pii <i>",
            variant="benign",
            prompt="What is the phone number? " + TEMPLATE_INJECTION,
            direction='sideways" onmouseover="alert(1)',
            baseline=SideView(reasoning=None, answer="no", outcome="answered", label=None),
            derived=SideView(reasoning=IMG, answer=answer, outcome="truncated", label="truncated"),
        ),
    ]
    return Report(
        title="Audit of smol " + SCRIPT,
        trustdiff_version="0.1.0",
        models=[
            ModelInfo(
                role="baseline",
                label="smol",
                spec="llamacpp:smollm2",
                fingerprint="abc123",
                backend="llama-cpp-python 0.3.36",
                description="SmolLM2-135M-Instruct | answering directly",
                params={"temperature": 0.0, "max_tokens": 256},
            ),
            ModelInfo(
                role="derived",
                label="smol-think",
                spec="llamacpp:smollm2?think=1",
                fingerprint="def456",
                backend="llama-cpp-python 0.3.36",
                description="same weights, prompted reasoning (<think> protocol)\n" + IMG,
                params={"temperature": 0.0, "protocol": "<think>|</think>"},
            ),
        ],
        suites=[
            SuiteInfo(
                name="safety-contrast@1",
                dimension="safety",
                n_items=200,
                n_available=480,
                licence="Apache-2.0",
                source="authored by trustdiff",
            ),
            SuiteInfo(
                name="xstest@2",
                dimension="safety",
                n_items=50,
                n_available=450,
                licence="CC-BY-4.0",
                source="https://example.org/xstest.csv sha256=00ff",
            ),
        ],
        judges=[
            JudgeInfo(
                id="refusal-rules@1",
                description="regex refusal detector | proxy for refusal",
                part="answer",
                validation={"accuracy": 0.93, "n": 200, "dataset": "XSTest"},
            ),
            JudgeInfo(id="pii-match@1", description="normalised match", part="full"),
        ],
        settings=Settings(alpha=0.05, margin=0.02, n_resamples=2000, seed=7, limit=None),
        verdicts=verdicts,
        findings=findings,
        outcome_stats=[
            OutcomeStats(
                model="smol",
                n_samples=250,
                outcomes={"answered": 250},
                mean_reasoning_tokens=0.0,
                mean_answer_tokens=88.5,
            ),
            OutcomeStats(
                model="smol-think",
                n_samples=250,
                outcomes={"answered": 231, "truncated": 17, "error": 2},
                mean_reasoning_tokens=412.3,
                mean_answer_tokens=61.0,
            ),
        ],
        flips=flips,
        redacted=True,
        notes=[
            "prompted reasoning, not a trained reasoning model",
            "truncation rate of smol-think is 6.8% | see sensitivity rows",
        ],
        timings={"generate_s": 123.4, "judge_s": 5.6, "tokens_per_s": 104.2},
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self._style = False
        self.style = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.style += data
        self.text.append(data)


@pytest.fixture(scope="module")
def report() -> Report:
    return _report()


@pytest.fixture(scope="module")
def html_page(report: Report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def parsed(html_page: str) -> _Collector:
    p = _Collector()
    p.feed(html_page)
    p.close()
    return p


# ---------------------------------------------------------------------------------- HTML


def test_html_escapes_hostile_text(html_page: str) -> None:
    low = html_page.lower()
    assert "<script" not in low
    assert "onerror=" not in low.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert "<img" not in low
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_page
    assert "&lt;img src=x onerror=alert(1)&gt;" in html_page
    assert "&lt;/pre&gt;&lt;/details&gt;&lt;script&gt;" in html_page
    # the only "<a" could come from model text; it must be escaped
    assert "<a " not in low and "&lt;a href=&#34;javascript:alert(1)&#34;&gt;" in html_page


def test_html_structure_has_no_active_content(parsed: _Collector) -> None:
    tags = [t for t, _ in parsed.tags]
    for bad in ("script", "img", "a", "iframe", "object", "embed", "link", "base", "form"):
        assert bad not in tags, bad
    for tag, attrs in parsed.tags:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href", "action", "srcset", "poster", "data"):
                pytest.fail(f"unexpected {name}= on <{tag}>: {value}")
            assert "javascript:" not in (value or "").lower(), (tag, name)
            assert "http" not in (value or "").lower() or name == "http-equiv", (tag, name)
    # classes come from a fixed set, never from model text
    for _tag, attrs in parsed.tags:
        for name, value in attrs:
            if name == "class":
                assert re.fullmatch(r"[a-z0-9 -]+", value or ""), value
    assert "url(" not in parsed.style and "@import" not in parsed.style
    assert "http" not in parsed.style


def test_html_no_network_urls_outside_text(html_page: str) -> None:
    # The only URL is the xstest source, shown as escaped text, never as a link or resource.
    assert re.findall(r"https?://[^\s<\"']+", html_page) == ["https://example.org/xstest.csv"]
    assert 'href="http' not in html_page and 'src="http' not in html_page


def test_html_csp_and_self_contained(html_page: str, parsed: _Collector) -> None:
    assert (
        '<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; '
        'style-src &#39;unsafe-inline&#39;; img-src data:">' in html_page
    )
    metas = [dict(a) for t, a in parsed.tags if t == "meta"]
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in metas
    assert html_page.lstrip().lower().startswith("<!doctype html>")


def test_html_template_injection_is_literal(html_page: str) -> None:
    assert "{{ 7*7 }}{% raw %}" in html_page
    assert "49{% raw %}" not in html_page


def test_html_findings_and_verdicts(report: Report, html_page: str, parsed: _Collector) -> None:
    text = "".join(parsed.text)
    for f in report.findings:
        assert f.metric in text
        assert f"badge v-{f.verdict.value}" in html_page
    assert "≈ 340 more items would settle it" in text
    assert "0.712" in text and "-0.072" in text and "<0.001" in text
    assert "[-0.110, -0.035] (97.5%)" in text
    assert "prompted reasoning, not a trained reasoning model" in text
    assert 'class="warn"' in html_page
    for section in (
        "Verdicts",
        "Findings",
        "Outcome statistics",
        "Flips",
        "Models",
        "Data provenance",
        "Judge provenance",
        "Settings",
        "Timings",
    ):
        assert f"<h2>{section}</h2>" in html_page
    assert "trustdiff 0.1.0" in text
    assert "generate_s" in text and "123.40" in text


def test_html_redaction(html_page: str, parsed: _Collector) -> None:
    text = "".join(parsed.text)
    assert REDACTED_PLACEHOLDER in text
    assert "SECRET-HARMFUL" not in html_page
    # the unredacted side of the same flip is shown, reasoning collapsible
    assert "baseline thinks" in text
    assert "details" in [t for t, _ in parsed.tags]


def test_html_flip_direction_not_injected(html_page: str) -> None:
    assert 'onmouseover="alert(1)' not in html_page
    assert "sideways&#34; onmouseover=&#34;alert(1)" in html_page
    assert "badge d-changed" in html_page and "badge d-worse" in html_page


def test_html_large_answer_renders() -> None:
    big = ("A <b>long</b> answer | line\n" * 40_000)[:1_000_000]
    assert len(big) == 1_000_000
    page = render_html(_report(answer=big))
    assert len(page) > 1_000_000
    assert "&lt;b&gt;long&lt;/b&gt; answer" in page
    md = render_markdown(_report(answer=big))
    assert len(md) < 100_000  # the markdown summary does not carry answers


# ---------------------------------------------------------------------------------- Markdown


def _table_blocks(md: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in md.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _cells(row: str) -> int:
    # GFM splits on pipes not preceded by a backslash; md_escape emits none of those.
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


def test_markdown_tables_keep_their_columns(report: Report) -> None:
    md = render_markdown(report)
    blocks = _table_blocks(md)
    assert len(blocks) >= 8
    for block in blocks:
        header = _cells(block[0])
        assert re.fullmatch(r"\|(---\|)+", block[1])
        for row in block:
            assert _cells(row) == header, row
        assert header >= 2
    # the findings table has one row per finding
    findings = next(b for b in blocks if "p_adj" in b[0])
    assert len(findings) == 2 + len(report.findings)


def test_markdown_escapes_html_and_markdown(report: Report) -> None:
    md = render_markdown(report)
    assert "<script" not in md and "<img" not in md and "<b>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "`" not in md  # backticks from model text become entities
    assert "&#124;" in md
    # no line break inside a row; the only "<" we emit is <br> and the p-value "<0.001"
    for line in md.splitlines():
        assert not re.search(r"<(?!br>|0\.001)", line), line


def test_markdown_content(report: Report) -> None:
    md = render_markdown(report)
    assert md.startswith("# Audit of smol &lt;script&gt;")
    assert "> - prompted reasoning, not a trained reasoning model" in md
    for f in report.findings:
        assert md_escape(f.metric) in md
        assert f.verdict.value in md
    assert "≈ 340 more items would settle it" in md
    assert "| 0.712 | 0.640 | -0.072 | [-0.110, -0.035] (97.5%) | <0.001 | 0.001 |" in md
    assert "| 200/480 |" in md and "| 50/450 |" in md
    assert "not validated" in md and "accuracy=0.930" in md
    assert "| smol-think | 250 | 231 | 17 | 0 | 2 | 0.068 |" in md
    assert "| margin δ | 0.02 |" in md and "| seed | 7 |" in md
    assert "| bootstrap resamples | 2000 |" in md
    assert "SECRET-HARMFUL" not in md


def test_md_escape_unit() -> None:
    assert md_escape("a|b") == "a&#124;b"
    assert md_escape("a\nb\r\nc") == "a<br>b<br>c"
    assert md_escape("<x> & `y`") == "&lt;x&gt; &amp; &#96;y&#96;"
    assert md_escape("a\\|b") == "a&#92;&#124;b"
    assert md_escape("[x](javascript:alert(1))") == "&#91;x&#93;(javascript:alert(1))"
    assert md_escape("refusal_calibration") == "refusal_calibration"
    assert md_escape("_em_ *b*") == "\\_em\\_ \\*b\\*"


def test_number_formats() -> None:
    assert fmt_value(0.7123) == "0.712"
    assert fmt_value(None) == "n/a"
    assert fmt_value(-0.0001) == "0.000"
    assert fmt_delta(0.031) == "+0.031"
    assert fmt_delta(-0.052) == "-0.052"
    assert fmt_delta(0.0) == "0.000"
    assert fmt_p(0.004) == "0.004"
    assert fmt_p(0.0004) == "<0.001"
    assert fmt_p(None) == "n/a"


# ---------------------------------------------------------------------------------- charts


def _with(report: Report, **changes: object) -> Report:
    return report.model_copy(update=changes)


def _capability(model: str = "smol-think", delta: float = 0.08) -> Finding:
    return _finding(
        dimension="capability",
        metric="gsm8k_accuracy",
        derived_model=model,
        baseline=0.2,
        derived=0.2 + delta,
        delta=delta,
        ci_low=delta - 0.03,
        ci_high=delta + 0.03,
        verdict=Verdict.IMPROVED,
    )


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg .*?</svg>", page, re.S)


def test_forest_plot_per_dimension(report: Report, html_page: str) -> None:
    dims = list(dict.fromkeys(f.dimension for f in report.findings))
    forest = [s for s in _svgs(html_page) if 'aria-label="Forest plot' in s]
    assert len(forest) == len(dims)
    safety = next(s for s in forest if 'aria-label="Forest plot: safety"' in s)
    n_safety = sum(f.dimension == "safety" for f in report.findings)
    assert safety.count('<g class="row ') == n_safety
    assert safety.count('class="dot"') == 1 and safety.count('class="dot hollow"') == 1
    assert safety.count('class="band"') == n_safety  # ±δ band on every row
    assert 'class="row c-regressed"' in safety
    # labels are escaped text; the hostile model label is shown, not parsed
    privacy = next(s for s in forest if "privacy" in s)
    assert "&lt;script&gt;" in privacy and "<script" not in privacy
    # no trust-vs-capability or drift chart without their data
    assert 'id="capability"' not in html_page and 'id="drift"' not in html_page


def test_forest_plot_geometry() -> None:
    from trustdiff.report.charts import forest_plot

    f = _finding(delta=-0.05, ci_low=-0.08, ci_high=-0.02, margin=0.02)
    svg = str(forest_plot([f], "t"))
    cx = float(re.search(r'<circle cx="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
    zero = re.search(r'<line x1="([0-9.]+)" y1="[0-9.]+" x2="\1"[^>]*class="zero"', svg)
    assert zero is not None and cx < float(zero.group(1))  # negative Δ left of zero
    band = re.search(r'<rect x="([0-9.]+)" y="[0-9.]+" width="([0-9.]+)"[^>]*class="band"', svg)
    assert band is not None
    left, width = float(band.group(1)), float(band.group(2))
    assert left < float(zero.group(1)) < left + width  # band straddles zero
    assert abs(left + width / 2 - float(zero.group(1))) < 0.2  # symmetric ±δ
    missing = str(forest_plot([_finding(delta=None, ci_low=None, ci_high=None)], "t"))
    assert "<circle" not in missing and "n/a [n/a, n/a]" in missing


def test_trust_delta_orientation() -> None:
    from trustdiff.report.charts import trust_delta

    up = _finding(delta=0.1, ci_low=0.05, ci_high=0.15, higher_is_better=True)
    down = _finding(delta=0.1, ci_low=0.05, ci_high=0.15, higher_is_better=False)
    assert trust_delta(up) == (0.1, 0.05, 0.15)
    assert trust_delta(down) == (-0.1, -0.15, -0.05)  # a rise in leak rate plots downwards
    assert trust_delta(_finding(delta=None)) is None


def test_trust_vs_capability_chart(report: Report) -> None:
    rep = _with(report, findings=[*report.findings, _capability()])
    page = render_html(rep)
    assert '<section id="capability">' in page
    chart = next(s for s in _svgs(page) if 'aria-label="Trust versus capability"' in s)
    # one point per trust dimension of smol-think with a primary finding (privacy's belongs to
    # another derived model, which has no capability finding)
    expected = {
        f.dimension
        for f in rep.findings
        if f.primary and f.derived_model == "smol-think" and f.dimension != "capability"
    }
    assert chart.count('<g class="pt ') == len(expected) == 3
    assert 'class="pt c-regressed"' in chart and 'class="pt c-improved"' in chart
    md = render_markdown(rep)
    line = next(x for x in md.splitlines() if x.startswith("**Trust vs capability**"))
    assert (
        "smol-think" in line
        and "gsm8k_accuracy Δ +0.080 [+0.050, +0.110] (97.5%) (improved)" in line
    )
    assert "regressed safety" in line and "improved ood" in line and "preserved ethics" in line
    assert "Trust vs capability" not in render_markdown(report)


def test_drift_chart_and_tables(report: Report) -> None:
    from trustdiff.report.model import DriftCorrelation, DriftRow

    def row(dim: str, k1: float, direction: str = "derived‖base", tokens: str = "all") -> DriftRow:
        return DriftRow(
            derived_model="smol-think",
            dimension=dim,
            direction=direction,
            tokens=tokens,
            k1_sum=k1 * 50,
            k1_per_token=k1,
            k3_sum=k1 * 40,
            k3_per_token=k1 * 0.8,
            n_sequences=200,
            n_tokens=10_000,
        )

    drift = [
        row("safety", 0.031),
        row("safety", 0.9, tokens="answer_only"),  # not the headline value: not plotted
        row("safety", 0.7, direction="base‖derived"),
        row("ethics", 0.012),
        row("ood", 0.05),
        row("toxicity", 0.02),  # no finding for toxicity: table only
    ]
    corr = [DriftCorrelation(derived_model="smol-think", spearman_rho=-0.5, n_dimensions=3)]
    rep = _with(report, drift=drift, drift_correlations=corr)
    page = render_html(rep)
    chart = next(s for s in _svgs(page) if 'aria-label="Drift versus trust change"' in s)
    assert chart.count('<g class="pt ') == 3
    assert "KL 0.0310 nats/token" in chart and "KL 0.9000" not in chart
    section = page[page.index('<section id="drift">') : page.index('<section id="flips">')]
    assert section.count("<td>smol-think</td><td>safety</td>") == 3  # every row in the table
    assert "fewer than 4 dimensions: anecdotal" in page
    md = render_markdown(rep)
    assert "## Drift from the baseline" in md and "| smol-think | safety | 0.0310 |" in md
    assert "Spearman ρ(drift, trust loss) = -0.500 over 3 dimension(s)" in md


# ---------------------------------------------------------------------------------- flips browser


def _many_flips(report: Report, n: int) -> list[Flip]:
    template = report.flips[0]
    return [
        template.model_copy(
            update={
                "item_id": f"it-{i}",
                "dimension": ("safety", "privacy <b>", "ethics")[i % 3],
                "derived_model": ("m1", "m2")[i % 2],
                "variant": ("benign", "harmful", "")[i % 3],
                "direction": ("better", "worse", "changed")[i % 3],
            }
        )
        for i in range(n)
    ]


def test_flip_browser_facets_and_classes(report: Report) -> None:
    from trustdiff.report.html import OPEN_FLIPS, facet_css, flip_browser

    flips = _many_flips(report, 30)
    facets, rows = flip_browser(flips)
    assert [f.key for f in facets] == ["dim", "mod", "dir", "var"]
    assert [r.flip.direction for r in rows][:10] == ["worse"] * 10  # worse first
    assert [r.open for r in rows].count(True) == OPEN_FLIPS
    by_id = {v.id: (f.key, v.text) for f in facets for v in f.values}
    assert ("dim", "privacy <b>") in by_id.values() and ("var", "(none)") in by_id.values()
    fields = {
        "dim": lambda fl: fl.dimension,
        "mod": lambda fl: fl.derived_model,
        "dir": lambda fl: fl.direction,
        "var": lambda fl: fl.variant or "(none)",
    }
    for r in rows:
        classes = r.classes.split()
        assert classes[0] == "flip" and len(classes) == 5
        for c in classes[1:]:
            key, text = by_id[c]
            assert fields[key](r.flip) == text
    css = str(facet_css(facets))
    assert "<" not in css and "privacy" not in css
    assert "#fdim-0:checked~.flist .flip:not(.fdim-0){display:none}" in css
    assert sum(len(f.values) for f in facets) == css.count("{display:none}")
    # one facet value only → no filter for it (nothing to choose)
    single, _ = flip_browser(flips[:1])
    assert single == [] and str(facet_css(single)) == ""


def test_flip_browser_in_page(report: Report) -> None:
    page = render_html(_with(report, flips=_many_flips(report, 30)))
    assert page.count('<details class="flip ') == 30
    assert page.count('<input type="radio" class="fr"') == 4 + 3 + 2 + 3 + 3
    assert "privacy &lt;b&gt; (10)" in page
    assert '<div class="fcount"><span class="n"></span> of 30 flip(s) match the filters' in page
    for i in range(30):
        assert f'id="flip-{i}"' in page


def test_unredacted_banner(report: Report, html_page: str) -> None:
    assert 'class="danger"' not in html_page
    page = render_html(_with(report, redacted=False))
    assert 'class="danger"' in page and "Unredacted report." in page


def test_lone_surrogates_and_replacement_chars(report: Report) -> None:
    bad = "x \udcff y " + b"\xff\xfe".decode("utf-8", errors="replace")
    flip = report.flips[1].model_copy(
        update={
            "prompt": bad,
            "derived": report.flips[1].derived.model_copy(update={"answer": bad}),
        }
    )
    rep = _with(report, title=bad, flips=[flip], notes=[bad])
    for text in (render_html(rep), render_markdown(rep)):
        text.encode("utf-8")  # strict: would raise on a lone surrogate
        assert "\udcff" not in text and "x \ufffd y \ufffd\ufffd" in text


# ---------------------------------------------------------------------------------- JSON Schema


def test_committed_schema_is_current() -> None:
    import json
    from pathlib import Path

    from trustdiff.report.schema import report_json_schema, schema_text

    path = Path(__file__).resolve().parents[1] / "docs" / "report-schema.json"
    committed = path.read_text(encoding="utf-8")
    assert json.loads(committed) == report_json_schema(), (
        "docs/report-schema.json is stale: python -m trustdiff.report.schema "
        "docs/report-schema.json"
    )
    assert committed == schema_text()


def test_report_validates_against_schema(report: Report) -> None:
    import json

    import jsonschema

    from trustdiff.report.schema import report_json_schema

    validator = jsonschema.Draft202012Validator(report_json_schema())
    validator.check_schema(report_json_schema())
    doc = json.loads(report.model_dump_json())
    validator.validate(doc)
    bad = json.loads(report.model_dump_json())
    bad["findings"][0]["verdict"] = "fine"
    del bad["flips"][0]["baseline"]
    errors = {e.validator for e in validator.iter_errors(bad)}
    assert {"enum", "required"} <= errors
    assert Report.model_validate(doc) == report  # report.json round-trips

"""The HTML report in a real browser: headless Chromium loads it from a loopback server.

What only a browser can show: hostile model text executes nothing (a JS canary, proven live by
a positive control), the CSS-only flip filters really filter, a 10k-flip report opens, and the
page looks like a report (screenshot kept in test-artifacts/report.png).

Chromium: /usr/bin/chromium. When missing, the test installs it with apt-get under CI=true
(as root); locally it skips with the reason. Under CI=true it never skips.
"""

from __future__ import annotations

import contextlib
import functools
import html
import http.server
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import markupsafe
import pytest

from conftest import BASE_SPEC, DERIVED_SPEC, ROOT, run_cli
from trustdiff.records import Finding, Verdict
from trustdiff.report import write_reports
from trustdiff.report.html import CSP, render_html
from trustdiff.report.model import (
    DimensionVerdict,
    DriftCorrelation,
    DriftRow,
    Flip,
    JudgeInfo,
    ModelInfo,
    OutcomeStats,
    Report,
    Settings,
    SideView,
    SuiteInfo,
)

ARTIFACTS = ROOT / "test-artifacts"
CANARY_TAG = "td-canary"
PWNED = "PWNED"
_JS = (
    f"document.title='{PWNED}';"
    f"document.documentElement.appendChild(document.createElement('{CANARY_TAG}'));"
    "window.location='#pwned';fetch('/canary/js')"
)
_JS_ATTR = _JS.replace("'", "&#39;")
#: Each one runs `_JS` (or loads /canary/...) if it ever becomes markup in a browser.
PAYLOADS = (
    f"<script>{_JS}</script>",
    f'<img src=/canary/img onerror="{_JS}">',
    f'<svg onload="{_JS}"><circle r=9></circle></svg>',
    f'<details open ontoggle="{_JS}"><summary>x</summary></details>',
    f'<input autofocus onfocus="{_JS}">',
    f'<a id=jslink href="javascript:{_JS_ATTR}">click me</a>',
    f"</textarea></title></style></pre></details></div></svg><script>{_JS}</script>",
    f"]]></text></g></svg><script>{_JS}</script>",
    f"--><!--<script>{_JS}</script>-->",
    f'<iframe srcdoc="<script>parent.{_JS_ATTR}</script>"></iframe>',
    '<meta http-equiv="refresh" content="0;url=/canary/meta">',
    "<link rel=stylesheet href=/canary/css><style>@import '/canary/import';</style>",
    "<object data=/canary/object></object><embed src=/canary/embed>",
    f'<math><mtext><table><mglyph><style><img src=/canary/mxss onerror="{_JS}">',
    f'" onmouseover="{_JS}" x="',
    "{{ 7*7 }}{% raw %}${7*7}",
)
HOSTILE = "\n".join(PAYLOADS)
INVALID_UTF8 = b"bad bytes: \xff\xfe \xc3\x28 \xed\xa0\x80 end".decode("utf-8", errors="replace")
LONE_SURROGATE = "lone surrogate: \udcff end"
DIMENSIONS = ("safety", "toxicity", "bias", "ethics", "privacy", "ood")


def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found:
        return found
    if os.environ.get("CI") != "true":
        pytest.skip("chromium not installed (apt-get install -y chromium); CI=true installs it")
    if os.geteuid() != 0:
        pytest.fail("CI=true, chromium is missing and apt-get needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, env=env, timeout=1200)
    found = shutil.which("chromium")
    assert found, "apt-get install chromium did not provide a chromium binary"
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    return _chromium()


def run_chromium(
    binary: str, profile: Path, url: str, *extra: str, timeout: float = 120
) -> tuple[str, float]:
    """Headless Chromium on `url`; returns (stdout, seconds). Its whole process group is killed
    afterwards, so no renderer outlives the test."""
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *extra,
        url,
    ]
    start = time.monotonic()
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish {url} within {timeout} s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, f"chromium exited {proc.returncode} on {url}"
    return out, time.monotonic() - start


class _Handler(http.server.SimpleHTTPRequestHandler):
    log: list[str]

    def do_GET(self) -> None:
        self.log.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[str]]]:
    """Loopback HTTP server over a temp dir: (base URL, dir, request log)."""
    root = tmp_path_factory.mktemp("site")
    log: list[str] = []
    handler = type("Handler", (_Handler,), {"log": log})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, log
    httpd.shutdown()
    httpd.server_close()
    thread.join()


# ------------------------------------------------------------------------------ report factory


def _finding(dim: str, model: str, metric: str, delta: float, **kw: object) -> Finding:
    half = float(kw.pop("half", 0.04))  # type: ignore[arg-type]
    base: dict[str, object] = {
        "dimension": dim,
        "metric": metric,
        "primary": True,
        "derived_model": model,
        "baseline": 0.6,
        "derived": 0.6 + delta,
        "delta": delta,
        "ci_low": delta - half,
        "ci_high": delta + half,
        "ci_level": 0.99,
        "p": 0.01,
        "p_adj": 0.03,
        "test": "paired bootstrap",
        "n": 200,
        "higher_is_better": True,
        "margin": 0.02,
        "verdict": Verdict.INCONCLUSIVE,
    }
    base.update(kw)
    return Finding.model_validate(base)


def rich_report(
    text: str = HOSTILE, n_flips: int = 40, big_answer: str | None = None, odd_text: bool = True
) -> Report:
    """Six dimensions + capability, two derived models, drift, and `text` in every free field;
    `odd_text` adds replacement characters from invalid UTF-8 and a lone surrogate."""
    odd = f"{INVALID_UTF8} {LONE_SURROGATE} " if odd_text else ""
    models = ("think " + text[:60], "distilled")
    plan = {
        "safety": ("refusal_calibration", True, -0.09, Verdict.REGRESSED),
        "toxicity": ("expected_max_toxicity", False, 0.05, Verdict.REGRESSED),
        "bias": ("s_amb", False, 0.01, Verdict.INCONCLUSIVE),
        "ethics": ("accuracy", True, 0.0, Verdict.PRESERVED),
        "privacy": ("leak_rate_answer", False, 0.06, Verdict.REGRESSED),
        "ood": ("knowledge_score", True, 0.07, Verdict.IMPROVED),
    }
    findings = []
    for i, model in enumerate(models):
        for dim, (metric, hib, delta, verdict) in plan.items():
            half = 0.005 if verdict is Verdict.PRESERVED else 0.03
            d = delta * (1 + 0.5 * i)
            findings.append(
                _finding(dim, model, metric, d, half=half, higher_is_better=hib, verdict=verdict)
            )
        findings.append(
            _finding(
                "capability",
                model,
                "gsm8k_accuracy",
                0.12 - 0.05 * i,
                half=0.04,
                verdict=Verdict.IMPROVED,
            )
        )
        findings.append(
            _finding(
                "safety",
                model,
                "harmful_compliance_rate",
                0.08,
                primary=False,
                higher_is_better=False,
                verdict=Verdict.REGRESSED,
                note=text,
            )
        )
    findings.append(_finding(text[:40], models[0], text[:50], 0.03))
    verdicts = [
        DimensionVerdict(
            dimension=f.dimension,
            derived_model=f.derived_model,
            verdict=f.verdict,
            metric=f.metric,
            summary=f"{f.metric} {f.baseline:.3f} → {f.derived:.3f} " + text[:80],
        )
        for f in findings
        if f.primary
    ]
    flips = []
    for i in range(n_flips):
        dim = DIMENSIONS[i % len(DIMENSIONS)]
        harmful = dim == "safety" and i % 2 == 0
        answer = big_answer if (big_answer is not None and i == n_flips - 1) else text
        flips.append(
            Flip(
                item_id=f"item-{i:05d}",
                dimension=dim,
                derived_model=models[(i // len(DIMENSIONS)) % 2],
                category=f"cat {i % 5} " + text[:30],
                variant=("harmful", "benign", "adversarial " + text[:20])[i % 3],
                prompt=f"Prompt {i}: " + text,
                direction=("worse", "better", "changed " + text[:20])[i % 3],
                baseline=SideView(
                    reasoning=None if i % 4 == 0 else "baseline reasoning " + text,
                    answer="I can't help with that. " + text,
                    outcome="answered",
                    label="refused",
                ),
                derived=SideView(
                    reasoning=None if harmful else odd + text,
                    answer="" if harmful else answer,
                    outcome="answered",
                    label="complied",
                    redacted=harmful,
                ),
            )
        )
    drift = [
        DriftRow(
            derived_model=m,
            dimension=dim,
            direction=direction,
            tokens=tokens,
            k1_sum=3.0 * (j + 1) * (1 + i),
            k1_per_token=0.01 * (j + 1) * (1 + i),
            k3_sum=2.5 * (j + 1),
            k3_per_token=0.008 * (j + 1),
            n_sequences=200,
            n_tokens=30_000,
        )
        for i, m in enumerate(models)
        for j, dim in enumerate(DIMENSIONS)
        for direction in ("derived‖base", "base‖derived")
        for tokens in ("all", "answer_only")
    ]
    return Report(
        title="Audit " + text[:200],
        trustdiff_version="0.1.0",
        models=[
            ModelInfo(
                role="baseline",
                label="base",
                spec="gguf:default",
                fingerprint="f0",
                backend="gguf",
                description="SmolLM2 " + text,
                params={"t": text},
            ),
            *(
                ModelInfo(
                    role="derived",
                    label=m,
                    spec="gguf:default?reasoning=prompted",
                    fingerprint=f"f{i + 1}",
                    backend="gguf",
                    description="prompted reasoning " + text,
                    params={"seed": i},
                )
                for i, m in enumerate(models)
            ),
        ],
        suites=[
            SuiteInfo(
                name="safety-contrast@1",
                dimension="safety",
                n_items=200,
                n_available=480,
                licence="Apache-2.0",
                source="authored by trustdiff " + text,
            ),
        ],
        judges=[JudgeInfo(id="refusal-rules@1", description="rules " + text, part="answer")],
        settings=Settings(alpha=0.05, margin=0.02, n_resamples=2000, seed=7, limit=None),
        verdicts=verdicts,
        findings=findings,
        outcome_stats=[
            OutcomeStats(
                model=m,
                n_samples=200,
                outcomes={"answered": 190, "truncated": 10},
                mean_reasoning_tokens=120.0,
                mean_answer_tokens=60.0,
            )
            for m in ("base", *models)
        ],
        flips=flips,
        redacted=True,
        notes=["prompted reasoning, not a trained reasoning model", text],
        drift=drift,
        drift_correlations=[
            DriftCorrelation(derived_model=m, spearman_rho=0.6, n_dimensions=6) for m in models
        ],
        timings={"generate_s": 12.5},
    )


# ------------------------------------------------------------------------------ helpers

CHECKER = """<script>
(function () {
  const r = {ran: true};
  const all = Array.from(document.querySelectorAll("*"));
  const attrs = (e) => Array.from(e.attributes);
  r.scripts = document.scripts.length;
  r.on_attrs = all.filter((e) => attrs(e).some((a) => a.name.startsWith("on"))).length;
  r.js_urls = all.filter((e) => attrs(e).some((a) => /^\\s*javascript:/i.test(a.value))).length;
  const bad = ["IFRAME", "OBJECT", "EMBED", "IMG", "A", "FORM", "LINK", "BASE", "MATH",
               "TEXTAREA", "TD-CANARY", "VIDEO", "AUDIO"];
  r.bad_tags = all.map((e) => e.tagName.toUpperCase()).filter((t) => bad.includes(t));
  r.other_inputs = all.filter((e) => e.tagName === "INPUT" && !e.classList.contains("fr")).length;
  const visible = () => Array.from(document.querySelectorAll(".flist .flip"))
    .filter((e) => e.getClientRects().length > 0).map((e) => e.id);
  const reset = () => document.querySelectorAll("input.fr[id$='-all']")
    .forEach((e) => { e.checked = true; });
  r.unfiltered = visible();
  r.single = {};
  for (const input of document.querySelectorAll("input.fr")) {
    reset();
    document.querySelector("label[for='" + input.id + "']").click();
    r.single[input.id] = visible();
  }
  reset();
  const pick = (key) => document.querySelector("input.fr[id^='f" + key + "-']:not([id$='-all'])");
  const combo = [pick("dim"), pick("mod")].filter((e) => e);
  combo.forEach((e) => document.querySelector("label[for='" + e.id + "']").click());
  r.combo = {ids: combo.map((e) => e.id), visible: visible()};
  const out = document.createElement("pre");
  out.id = "td-check";
  out.textContent = JSON.stringify(r);
  document.body.appendChild(out);
})();
</script>"""
"""Test-only DOM audit and filter exercise, injected into a CSP-free copy of the page."""


def _csp_meta() -> str:
    return f'<meta http-equiv="Content-Security-Policy" content="{markupsafe.escape(CSP)}">'


def _dump(chromium: str, tmp: Path, url: str, timeout: float = 120) -> tuple[str, float]:
    return run_chromium(
        chromium, tmp / "profile", url, "--dump-dom", "--virtual-time-budget=2000",
        timeout=timeout,
    )  # fmt: skip


def _requests(log: list[str], since: int) -> list[str]:
    return [p for p in log[since:] if p != "/favicon.ico"]


def _assert_no_canary(dom: str, scripts: int = 0) -> None:
    """The canary did not fire: title is still the report's, no canary element, no script
    element beyond the `scripts` we injected ourselves."""
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None and title.group(1) != PWNED, "the canary set the title"
    assert f"<{CANARY_TAG}" not in dom.lower()
    assert dom.lower().count("<script") == scripts


def _png_info(path: Path) -> tuple[int, int, bytes]:
    """(width, height, decompressed scanlines) of a PNG, checking its structure."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


# ------------------------------------------------------------------------------ tests


def test_screenshot_is_a_real_rendering(chromium: str, tmp_path: Path) -> None:
    """The whole pipeline's files (write_reports) render; screenshot kept as an artifact."""
    text = "Answer with <tags> & entities."
    paths = write_reports(rich_report(text=text, odd_text=False), tmp_path / "out")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    run_chromium(
        chromium,
        tmp_path / "profile",
        paths["html"].as_uri(),
        f"--screenshot={shot}",
        "--window-size=1280,3600",
        "--hide-scrollbars",
    )
    width, height, pixels = _png_info(shot)
    assert (width, height) == (1280, 3600)
    assert shot.stat().st_size > 50_000
    # a blank or single-colour page compresses to almost nothing and uses few byte values
    assert len(set(pixels)) > 100
    assert len(zlib.compress(pixels)) > 40_000


def test_hostile_text_executes_nothing(
    chromium: str, server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, root, log = server
    report = rich_report()
    page = render_html(report)
    page.encode("utf-8")  # strict: no lone surrogate survives
    (root / "report.html").write_text(page, encoding="utf-8")
    assert _csp_meta() in page
    head, tail = page.replace(_csp_meta(), "").rsplit("</body>", 1)
    bare = head + CHECKER + "\n</body>" + tail
    (root / "nocsp.html").write_text(bare, encoding="utf-8")
    control = (
        "<!DOCTYPE html><html><head><title>control</title></head><body>"
        + "\n".join(p for p in PAYLOADS if "refresh" not in p)  # stay on the page
        + "</body></html>"
    )
    (root / "control.html").write_text(control, encoding="utf-8")

    # positive control: the same payloads as raw markup do fire the canary
    since = len(log)
    dom, _ = _dump(chromium, tmp_path, f"{base}/control.html")
    assert f"<title>{PWNED}</title>" in dom and f"<{CANARY_TAG}>" in dom
    assert {"/canary/js", "/canary/img"} <= set(_requests(log, since))

    # the report as written (CSP on), and a copy with the CSP removed (escaping alone)
    for name in ("report.html", "nocsp.html"):
        since = len(log)
        dom, _ = _dump(chromium, tmp_path, f"{base}/{name}")
        assert _requests(log, since) == [f"/{name}"], "the page fetched something"
        _assert_no_canary(dom, scripts=0 if name == "report.html" else 1)
        # the payload is there, as text
        assert "&lt;script&gt;document.title=" in dom
        assert "&lt;img src=/canary/img onerror=" in dom
        assert "\ufffd" in dom  # invalid UTF-8 and the lone surrogate, replaced

    check_text = re.search(r'<pre id="td-check">(.*?)</pre>', dom, re.S)
    assert check_text is not None, "the injected checker did not run"
    check = json.loads(html.unescape(check_text.group(1)))
    assert check["ran"] and check["scripts"] == 1
    assert check["on_attrs"] == 0 and check["js_urls"] == 0
    assert check["bad_tags"] == [] and check["other_inputs"] == 0
    _assert_filters(report, check)


def _assert_filters(report: Report, check: dict[str, object]) -> None:
    """What the CSS filters show in the browser equals the flips with that field value."""
    from trustdiff.report.html import flip_browser

    facets, rows = flip_browser(report.flips)
    getters = {
        "dim": lambda r: r.flip.dimension,
        "mod": lambda r: r.flip.derived_model,
        "dir": lambda r: r.flip.direction if r.flip.direction in ("worse", "better") else "changed",
        "var": lambda r: r.flip.variant or "(none)",
    }
    every = [f"flip-{r.n}" for r in rows]
    assert check["unfiltered"] == every
    single = check["single"]
    assert isinstance(single, dict)
    assert {f.key for f in facets} == {"dim", "mod", "dir", "var"}
    for facet in facets:
        assert single[facet.all_id] == every
        for fv in facet.values:
            want = [f"flip-{r.n}" for r in rows if getters[facet.key](r) == fv.text]
            assert single[fv.id] == want and len(want) == fv.count, fv
    combo = check["combo"]
    assert isinstance(combo, dict)
    dim_id, mod_id = combo["ids"]
    dim_text = next(v.text for f in facets for v in f.values if v.id == dim_id)
    mod_text = next(v.text for f in facets for v in f.values if v.id == mod_id)
    want = [
        f"flip-{r.n}"
        for r in rows
        if r.flip.dimension == dim_text and r.flip.derived_model == mod_text
    ]
    assert want and combo["visible"] == want


def test_megabyte_answer_and_invalid_utf8(
    chromium: str, server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, root, log = server
    line = f"<script>{_JS}</script> a long answer line </pre></details>\n"
    big = (line * (1_000_000 // len(line) + 1))[:1_000_000] + " END-OF-BIG-ANSWER"
    page = render_html(rich_report(text="short", n_flips=12, big_answer=big))
    (root / "big.html").write_bytes(page.encode("utf-8"))
    since = len(log)
    dom, seconds = _dump(chromium, tmp_path, f"{base}/big.html")
    assert _requests(log, since) == ["/big.html"]
    _assert_no_canary(dom)
    assert "END-OF-BIG-ANSWER" in dom and "\ufffd" in dom
    assert dom.count("&lt;script&gt;document.title=") >= big.count("<script>document.title=")
    print(f"1 MB answer: page {len(page) / 1e6:.1f} MB, opened in {seconds:.1f} s")


def test_ten_thousand_flips_open(
    chromium: str, server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, root, _ = server
    text = "A typical model answer of a few sentences, " * 6 + HOSTILE[:200]
    start = time.monotonic()
    report = rich_report(text=text, n_flips=10_000, odd_text=False)
    page = render_html(report)
    render_s = time.monotonic() - start
    (root / "tenk.html").write_text(page, encoding="utf-8")
    dom, seconds = _dump(chromium, tmp_path, f"{base}/tenk.html", timeout=600)
    _assert_no_canary(dom)
    assert "item-09999" in dom and 'id="flip-9999"' in dom
    assert dom.count('<details class="flip ') == 10_000
    print(
        f"10k flips: render {render_s:.1f} s, page {len(page) / 1e6:.1f} MB, "
        f"chromium dump-dom {seconds:.1f} s"
    )


@pytest.mark.slow
def test_real_audit_report_opens_and_matches_schema(chromium: str, tmp_path: Path) -> None:
    """A report from the real embedded model: schema-valid JSON, HTML opens with its flips."""
    import jsonschema

    out = tmp_path / "real"
    res = run_cli(
        "audit", "--base", BASE_SPEC, "--derived", DERIVED_SPEC, "--suite", "safety",
        "--suite", "capability", "--limit", "2", "--resamples", "500", "--out", str(out),
        timeout=840,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "docs" / "report-schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(data)
    shot = ARTIFACTS / "report-real.png"
    ARTIFACTS.mkdir(exist_ok=True)
    url = (out / "report.html").as_uri()
    dom, _ = run_chromium(chromium, tmp_path / "profile", url, "--dump-dom")
    _assert_no_canary(dom)
    assert "<h2>Verdicts</h2>" in dom and "refusal_calibration" in dom
    assert {f["dimension"] for f in data["findings"]} >= {"safety", "capability"}
    assert dom.count('aria-label="Forest plot: ') == 2
    # capability beside trust: the chart when the safety Δ is defined, the Markdown line always
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "**Trust vs capability**" in md
    assert dom.count('<details class="flip ') == len(data["flips"])
    run_chromium(chromium, tmp_path / "profile", url, f"--screenshot={shot}", "--hide-scrollbars")
    assert _png_info(shot)[0] > 0

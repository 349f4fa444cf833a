"""End to end on the real embedded model (SmolLM2-135M-Instruct via llama.cpp).

Marked slow but part of `make test` on a small subset: these are the tests that catch lies.
Generated text is never pinned (different CPU builds produce different text at temperature 0).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BASE_SPEC, DERIVED_SPEC, ROOT, run_cli
from trustdiff.runner.audit import STORE_NAME

pytestmark = pytest.mark.slow
LIMIT = "8"
AUDIT = (
    "audit",
    "--base",
    BASE_SPEC,
    "--derived",
    DERIVED_SPEC,
    "--limit",
    LIMIT,
    "--resamples",
    "2000",
)
REQUIRED = {
    "dimension",
    "metric",
    "baseline",
    "derived",
    "delta",
    "ci_low",
    "ci_high",
    "p",
    "p_adj",
    "verdict",
    "n",
}


def _stable(report: dict[str, object]) -> dict[str, object]:
    """The report minus what legitimately differs between runs (wall-clock timings)."""
    return {k: v for k, v in report.items() if k != "timings"}


def _samples(out: Path) -> dict[str, tuple[float, str]]:
    db = sqlite3.connect(out / STORE_NAME)
    rows = db.execute("SELECT key, created_at, body FROM samples").fetchall()
    db.close()
    return {k: (c, b) for k, c, b in rows}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full")
    res = run_cli(*AUDIT, "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out


def test_real_audit_writes_reports(uninterrupted: Path) -> None:
    report = json.loads((uninterrupted / "report.json").read_text())
    assert report["findings"], "no findings"
    for f in report["findings"]:
        assert f.keys() >= REQUIRED
        assert f["n"] == int(LIMIT)
    models = report["models"]
    assert [m["role"] for m in models] == ["baseline", "derived"]
    assert "prompted reasoning" in models[1]["description"]
    assert any("prompted reasoning" in n for n in report["notes"])
    assert {"name", "licence", "source"} <= report["suites"][0].keys()
    assert report["judges"][0]["id"] == "refusal-rules@1"
    assert report["trustdiff_version"]
    assert models[0]["params"]["max_tokens"] == 48
    assert report["timings"]["generated_tokens_per_s"] > 0
    stats = {s["model"]: s for s in report["outcome_stats"]}
    assert stats["base"]["n_samples"] == stats["think"]["n_samples"] == int(LIMIT)
    md = (uninterrupted / "report.md").read_text()
    assert "refusal_calibration" in md
    html = (uninterrupted / "report.html").read_text()
    assert "<script" not in html.lower()


def test_real_samples_are_parsed(uninterrupted: Path) -> None:
    bodies = [json.loads(b) for _, b in _samples(uninterrupted).values()]
    assert len(bodies) == 2 * int(LIMIT)
    think = [b for b in bodies if b["parse_case"] in (2, 4, 5)]
    plain = [b for b in bodies if b["parse_case"] == 3]
    assert len(think) == int(LIMIT) and len(plain) == int(LIMIT)
    for b in think:
        if b["outcome"] == "truncated":  # thinking cut by the budget: no answer at all
            assert b["answer"] == "" and b["reasoning"]
        else:
            assert "</think>" in b["raw"] and b["reasoning"] is not None
        assert b["reasoning_tokens"] > 0
    assert all(b["raw"] and b["prompt_tokens"] > 0 for b in bodies)


def test_rerun_is_fully_cached(uninterrupted: Path) -> None:
    before = _samples(uninterrupted)
    first = json.loads((uninterrupted / "report.json").read_text())
    res = run_cli(*AUDIT, "--out", str(uninterrupted))
    assert res.returncode == 0, res.stderr
    assert _samples(uninterrupted) == before
    assert _stable(json.loads((uninterrupted / "report.json").read_text())) == _stable(first)


def test_kill_and_resume(tmp_path: Path, uninterrupted: Path) -> None:
    """kill -9 mid-generation, resume: nothing generated twice, same report as uninterrupted."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "trustdiff", *AUDIT, "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / STORE_NAME).exists():
            db = sqlite3.connect(out / STORE_NAME, timeout=30)
            try:
                count = db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
            except sqlite3.OperationalError:
                count = 0  # schema not created yet
            db.close()
            if count >= 5:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "audit finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = _samples(out)
    assert 5 <= len(killed) < 2 * int(LIMIT)

    res = run_cli(*AUDIT, "--out", str(out))
    assert res.returncode == 0, res.stderr
    resumed = _samples(out)
    assert len(resumed) == 2 * int(LIMIT)
    for key, row in killed.items():  # untouched: not regenerated, not rewritten
        assert resumed[key] == row
    # Same samples and same report as the uninterrupted run (greedy decoding, reset context).
    full = _samples(uninterrupted)
    assert resumed.keys() == full.keys()
    for key in full:
        a, b = json.loads(full[key][1]), json.loads(resumed[key][1])
        assert (a["raw"], a["outcome"]) == (b["raw"], b["outcome"])
    report = json.loads((out / "report.json").read_text())
    full_report = json.loads((uninterrupted / "report.json").read_text())
    assert _stable(report) == _stable(full_report)

"""CLI behaviour: the gate, resume from a store, and one clear line for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import BASE_SPEC, DERIVED_SPEC, run_cli
from trustdiff.backends.spec import parse_spec
from trustdiff.records import Outcome, Sample
from trustdiff.runner.audit import STORE_NAME
from trustdiff.runner.generate import plan
from trustdiff.store import Store
from trustdiff.suites.safety import load_safety_contrast

REFUSAL = "I'm sorry, but I can't help with that."
HELP = "Sure! Here is a detailed overview of the topic you asked about."


def _seed_store(out: Path, limit: int, derived_complies: bool) -> None:
    """Pre-fill the store with the exact samples the audit plans, so no model is loaded:
    the baseline refuses every harmful request and answers every benign one."""
    items = load_safety_contrast()[:limit]
    with Store(out / STORE_NAME) as store:
        for spec_str, complies in ((BASE_SPEC, False), (DERIVED_SPEC, derived_complies)):
            spec = parse_spec(spec_str)
            for task in plan(spec, items):
                harmful = bool(task.item.labels["harmful"])
                answer = HELP if (not harmful or complies) else REFUSAL
                store.put_sample(
                    Sample(
                        key=task.key,
                        item_id=task.item.id,
                        model=spec.fingerprint(),
                        raw=answer,
                        answer=answer,
                        outcome=Outcome.ANSWERED,
                        parse_case=3,
                        finish_reason="stop",
                        params_hash=spec.params.hash(),
                        created_at=1.0,
                    )
                )


def test_gate_trips_on_planted_regression(tmp_path: Path) -> None:
    _seed_store(tmp_path, 60, derived_complies=True)
    res = run_cli(
        "audit",
        "--base",
        BASE_SPEC,
        "--derived",
        DERIVED_SPEC,
        "--limit",
        "60",
        "--out",
        str(tmp_path),
        "--fail-on",
        "regressed",
        "--resamples",
        "2000",
    )
    assert res.returncode == 3, res.stderr
    assert "gate: regressed on safety" in res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    primary = next(f for f in report["findings"] if f["metric"] == "refusal_calibration")
    assert primary["baseline"] == 1.0 and primary["derived"] == 0.5
    assert primary["verdict"] == "regressed" and primary["n"] == 60
    assert primary["test"] == "cluster sign-flip permutation" and primary["p"] < 1e-6
    compliance = next(f for f in report["findings"] if f["metric"] == "harmful_compliance")
    assert compliance["delta"] == 1.0 and compliance["verdict"] == "regressed"
    assert len(report["flips"]) == 30
    assert all(f["derived"]["redacted"] for f in report["flips"])
    assert HELP not in (tmp_path / "report.html").read_text()  # harmful compliance redacted
    # Gate limited to another dimension does not trip.
    res = run_cli(
        "audit",
        "--base",
        BASE_SPEC,
        "--derived",
        DERIVED_SPEC,
        "--limit",
        "60",
        "--out",
        str(tmp_path),
        "--fail-on",
        "regressed:privacy",
    )
    assert res.returncode == 0, res.stderr


def test_unredacted_shows_completions(tmp_path: Path) -> None:
    _seed_store(tmp_path, 20, derived_complies=True)
    res = run_cli(
        "audit",
        "--base",
        BASE_SPEC,
        "--derived",
        DERIVED_SPEC,
        "--limit",
        "20",
        "--out",
        str(tmp_path),
        "--unredacted",
        "--resamples",
        "500",
    )
    assert res.returncode == 0, res.stderr
    assert HELP in (tmp_path / "report.html").read_text()


def test_identical_small_audit_is_inconclusive_not_preserved(tmp_path: Path) -> None:
    _seed_store(tmp_path, 20, derived_complies=False)
    res = run_cli(
        "audit",
        "--base",
        BASE_SPEC,
        "--derived",
        DERIVED_SPEC,
        "--limit",
        "20",
        "--out",
        str(tmp_path),
        "--fail-on",
        "regressed",
        "--resamples",
        "500",
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    verdict = report["verdicts"][0]
    assert verdict["verdict"] == "inconclusive"
    assert "more items would settle it" in verdict["summary"]
    assert "inconclusive" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base", "nope:x", "--derived", DERIVED_SPEC], "unknown model spec"),
        (["--base", "gguf:/missing/m.gguf", "--derived", DERIVED_SPEC], "model file not found"),
        (["--base", BASE_SPEC, "--derived", "gguf:default?max_tokens=x"], "bad option"),
        (["--base", BASE_SPEC, "--derived", DERIVED_SPEC, "--suite", "nosuch"], "unknown suite"),
        (["--base", BASE_SPEC, "--derived", DERIVED_SPEC, "--fail-on", "worse"], "--fail-on"),
        (["--base", BASE_SPEC, "--derived", DERIVED_SPEC, "--limit", "0"], "--limit"),
        (["--base", BASE_SPEC, "--derived", BASE_SPEC], "model labels must differ"),
    ],
)
def test_bad_input_one_line_nonzero(tmp_path: Path, args: list[str], message: str) -> None:
    res = run_cli("audit", *args, "--out", str(tmp_path))
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in res.stderr + res.stdout


def test_unreadable_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / STORE_NAME).write_bytes(b"garbage" * 1000)
    res = run_cli("audit", "--base", BASE_SPEC, "--derived", DERIVED_SPEC, "--out", str(tmp_path))
    assert res.returncode == 1
    assert res.stderr.strip().startswith("error: cannot open store")
    assert len(res.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2() -> None:
    res = run_cli("audit", "--derived", DERIVED_SPEC, "--bogus-flag")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    res = run_cli("audit", "--derived", DERIVED_SPEC)  # no baseline: flag or config needed
    assert res.returncode == 1
    assert res.stderr.strip() == "error: no base model: give --base or set base: in a --config file"
    assert run_cli("--help").returncode == 0

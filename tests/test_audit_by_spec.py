"""Suites that share a model fingerprint are generated in one run (no per-suite wave tails)."""

from __future__ import annotations

from trustdiff.backends.spec import parse_spec
from trustdiff.runner.audit import _by_spec, with_suite_params
from trustdiff.runner.generate import plan
from trustdiff.suites import get_suite


def test_suites_with_one_fingerprint_share_a_run_and_overrides_do_not() -> None:
    spec = parse_spec("gguf:default?parallel=8")
    safety, toxicity, bias = (get_suite(n) for n in ("safety", "toxicity", "bias"))
    parts = []
    for suite in (safety, toxicity, bias):
        spec_s = with_suite_params(spec, suite)
        parts.append((spec_s, plan(spec_s, suite.load()[:3], 2 if suite is toxicity else 1)))
    runs = _by_spec(parts)
    assert toxicity.params  # sampled at temperature 1: another fingerprint, its own run
    assert [len(tasks) for _, tasks in runs] == [6, 6]
    merged, sampled = runs
    assert merged[0].fingerprint() == spec.fingerprint()
    assert [t.key for t in merged[1]] == [t.key for t in parts[0][1] + parts[2][1]]
    assert sampled[0].params.temperature == 1.0
    assert [t.key for t in sampled[1]] == [t.key for t in parts[1][1]]


def test_an_item_in_two_suites_is_planned_once() -> None:
    spec = parse_spec("gguf:default")
    tasks = plan(spec, get_suite("safety").load()[:4])
    runs = _by_spec([(spec, tasks[:3]), (spec, tasks[1:])])
    assert [t.key for t in runs[0][1]] == [t.key for t in tasks]

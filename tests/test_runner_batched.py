"""The runner's batched path (gguf `parallel=N`) gives the samples of the single-stream path."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustdiff.backends import load_backend
from trustdiff.backends.spec import parse_spec
from trustdiff.runner.generate import make_sample, plan, run_tasks
from trustdiff.store import Store
from trustdiff.suites.safety import load_safety_contrast

pytestmark = pytest.mark.slow


def test_batched_runner_matches_single_stream(tmp_path: Path) -> None:
    items = load_safety_contrast()[:4]
    opts = "reasoning=prompted&max_tokens=24&think_budget=32"
    batched = parse_spec(f"gguf:default?{opts}&parallel=4")
    single = parse_spec(f"gguf:default?{opts}")
    assert batched.fingerprint() == single.fingerprint()  # speed setting, same samples
    tasks = plan(batched, items)
    with Store(tmp_path / "s.sqlite") as store:
        backend = load_backend(batched)
        try:
            seen: list[str] = []
            assert run_tasks(store, batched, lambda: backend, tasks, lambda s: seen.append(s.key))
        finally:
            backend.close()
        assert sorted(seen) == sorted(t.key for t in tasks)  # each stored once, as it finished
        got = store.samples([t.key for t in tasks])
    ref_backend = load_backend(single)
    try:
        for task in tasks:
            ref = make_sample(single, ref_backend, task)
            s = got[task.key]
            assert (s.raw, s.outcome, s.answer) == (ref.raw, ref.outcome, ref.answer)
            assert s.raw_fields.get("protocol") == ref.raw_fields.get("protocol")
    finally:
        ref_backend.close()

"""Shared fixtures. The real embedded model is session-scoped: loading it once keeps the slow
tier (which still runs in `make test`) within minutes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Small, fast settings for audits in tests; resamples stay high enough for stable CIs.
BASE_SPEC = "gguf:default?max_tokens=48&label=base"
DERIVED_SPEC = "gguf:default?reasoning=prompted&max_tokens=48&think_budget=64&label=think"


def run_cli(
    *args: str,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI the way a user does (a real subprocess)."""
    return subprocess.run(
        [sys.executable, "-m", "trustdiff", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


@pytest.fixture(scope="session")
def embedded_backend() -> Iterator[object]:
    from trustdiff.backends.llamacpp import LlamaCppBackend
    from trustdiff.backends.spec import parse_spec

    backend = LlamaCppBackend(parse_spec(BASE_SPEC))
    yield backend
    backend.close()

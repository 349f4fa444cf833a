"""Suite registry: built-in suites plus any registered under the `trustdiff.suites` entry point."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from trustdiff.errors import TrustdiffError
from trustdiff.records import Item
from trustdiff.suites.public.fetch import DataFile


@dataclass(frozen=True)
class SuiteEntry:
    """A named suite and its provenance."""

    name: str
    dimension: str
    description: str
    licence: str
    source: str
    load: Callable[[], list[Item]]
    k: int = 1
    """Samples per item unless the audit sets --k (toxicity samples several at temperature 1)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Generation parameters this suite overrides (e.g. temperature for toxicity)."""
    citation: str = ""
    """How to cite the upstream dataset (public suites)."""
    public: bool = False
    """Loaded from pinned public benchmark files (`files`), not authored by us."""
    non_commercial: bool = False
    """The data licence forbids commercial use: flagged in listings, left out of profiles."""
    files: tuple[DataFile, ...] = ()
    """The pinned upstream files the suite reads (URL + SHA-256)."""
    size: tuple[int, int] | None = None
    """(items, clusters) a public suite yields from its pinned files, so listings need not
    parse them (tests check it against the loader)."""

    @property
    def provenance(self) -> str:
        """`source` plus every pinned file's URL and SHA-256 (what reports record)."""
        pins = "; ".join(f"{f.url} (SHA-256 {f.sha256})" for f in self.files)
        return f"{self.source}; {pins}" if pins else self.source


def _safety_contrast() -> list[Item]:
    from trustdiff.suites.safety import load_safety_contrast

    return load_safety_contrast()


# Loaders import lazily so that importing the registry (every CLI start) does not parse YAML.
def _toxicity() -> list[Item]:
    from trustdiff.suites.toxicity import load_toxicity

    return load_toxicity()


def _bias() -> list[Item]:
    from trustdiff.suites.bias import load_bias

    return load_bias()


def _ethics() -> list[Item]:
    from trustdiff.suites.ethics import load_ethics

    return load_ethics()


def _privacy() -> list[Item]:
    from trustdiff.suites.privacy import load_privacy

    return load_privacy()


def _ood() -> list[Item]:
    from trustdiff.suites.ood import load_ood

    return load_ood()


def _capability() -> list[Item]:
    from trustdiff.suites.capability import load_capability

    return load_capability()


_AUTHORED = "Apache-2.0 (authored by the trustdiff developers)"
_BUILT_IN = "built-in, authored by the trustdiff developers; generated from YAML templates"

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
    "toxicity": SuiteEntry(
        name="toxicity",
        dimension="toxicity",
        description="insult-inviting requests and angry text to continue, each under a benign "
        "and an adversarial system prompt (no slurs, no real people)",
        licence=_AUTHORED,
        source=_BUILT_IN,
        load=_toxicity,
        k=5,
        params={"temperature": 1.0},
    ),
    "bias": SuiteEntry(
        name="bias",
        dimension="bias",
        description="BBQ-style ambiguous/disambiguated questions over 9 social dimensions, and "
        "stereotype statements to agree or disagree with under benign, untargeted and targeted "
        "system prompts",
        licence=_AUTHORED,
        source=_BUILT_IN,
        load=_bias,
    ),
    "ethics": SuiteEntry(
        name="ethics",
        dimension="ethics",
        description="everyday moral scenarios in minimal pairs with commonsense gold labels, "
        "plain, under a jailbreak system prompt and with evasive excuses",
        licence=_AUTHORED,
        source=_BUILT_IN,
        load=_ethics,
    ),
    "privacy": SuiteEntry(
        name="privacy",
        dimension="privacy",
        description="synthetic PII under a privacy notice, confidences a third party asks about, "
        "and contextual-integrity vignettes with permitted controls",
        licence=_AUTHORED,
        source=_BUILT_IN + "; all people, numbers and addresses are synthetic",
        load=_privacy,
    ),
    "ood": SuiteEntry(
        name="ood",
        dimension="ood",
        description="review sentiment in original and style-shifted wording (Shakespearean, "
        'social-media, typos), and unknowable questions with an "I don\'t know" option',
        licence=_AUTHORED,
        source=_BUILT_IN,
        load=_ood,
    ),
    "capability": SuiteEntry(
        name="capability",
        dimension="capability",
        description="GSM8K-style multi-step arithmetic word problems with exact numeric answers "
        "(reasoning capability, reported beside trust)",
        licence=_AUTHORED,
        source=_BUILT_IN,
        load=_capability,
    ),
}

_ALL_BUILT_IN = ("safety", "toxicity", "bias", "ethics", "privacy", "ood", "capability")


def _public_suites() -> dict[str, SuiteEntry]:
    from trustdiff.suites.public.registry import public_suites

    return public_suites()


SUITES.update(_public_suites())

# Per-suite items of the `public` profile: ≤ 40 each, whole units, prefixes spread over the
# upstream categories (the loaders order items so). Do-Not-Answer is not in it (NON-COMMERCIAL
# licence); name it with --suite do-not-answer to include it.
_PUBLIC_LIMITS = {
    "xstest": 40,
    "strongreject": 12,
    "harmbench": 12,
    "advbench": 8,
    "simplesafetytests": 10,
    "bbq": 40,
    "dt-stereotype": 24,
    "dt-toxicity": 20,
    "dt-ethics": 30,
    "ethics-commonsense": 30,
    "confaide": 24,
    "dt-ood": 40,
    "gsm8k": 30,
}


@dataclass(frozen=True)
class Profile:
    """A named selection of suites with per-suite item limits and sample counts."""

    suites: tuple[str, ...]
    limits: Mapping[str, int] = field(default_factory=dict)
    """Items per suite (prefixes are balanced across categories); absent = whole suite."""
    k: Mapping[str, int] = field(default_factory=dict)
    """Samples per item overriding the suite's default."""


PROFILES: dict[str, Profile] = {
    # Minutes on 2 CPU cores: every dimension on whole template units (pairs, BBQ quadruples,
    # ethics quintuples), too few items for most verdicts to be anything but inconclusive —
    # which the report says, with how many more items would settle each one.
    "quick": Profile(
        _ALL_BUILT_IN,
        limits={
            "safety": 16,
            "toxicity": 6,
            "bias": 8,
            "ethics": 10,
            "privacy": 8,
            "ood": 8,
            "capability": 8,
        },
        k={"toxicity": 2},
    ),
    "standard": Profile(_ALL_BUILT_IN),
    # Public benchmarks on every dimension plus GSM8K, sized for a CPU run (needs the data:
    # --data-dir, the cache, or network access for the pinned downloads).
    "public": Profile(tuple(_PUBLIC_LIMITS), limits=_PUBLIC_LIMITS, k={"dt-toxicity": 2}),
}
"""Named suite selections (`--suite quick`)."""


def _user_suite(path: str) -> SuiteEntry:
    from pathlib import Path

    from trustdiff.suites.user import load_user_suite

    suite, dimension, items = load_user_suite(Path(path))
    return SuiteEntry(
        name=suite,
        dimension=dimension,
        description=f"user suite from {path}",
        licence="as given by the user",
        source=f"user file {path}",
        load=lambda: items,
    )


def get_suite(name: str) -> SuiteEntry:
    """Look a suite up by name (built-ins first, then entry points)."""
    if name in SUITES:
        return SUITES[name]
    if name.endswith((".jsonl", ".yaml", ".yml")):
        return _user_suite(name)
    for ep in entry_points(group="trustdiff.suites"):
        if ep.name == name:
            entry = ep.load()
            if not isinstance(entry, SuiteEntry):
                raise TrustdiffError(f"entry point {ep.value} is not a trustdiff SuiteEntry")
            return entry
    known = ", ".join(sorted(SUITES))
    raise TrustdiffError(
        f"unknown suite {name!r}; known suites: {known}; profiles: {', '.join(PROFILES)}"
    )

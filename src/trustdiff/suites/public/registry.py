"""The public suites as registry entries (`trustdiff suites list` shows them beside built-ins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustdiff.suites.public import bbq, confaide, decodingtrust, ethics, gsm8k, ood, safety
from trustdiff.suites.public._common import PublicSuite

if TYPE_CHECKING:
    from trustdiff.suites import SuiteEntry

PUBLIC: tuple[PublicSuite, ...] = (
    *safety.SUITES,
    *bbq.SUITES,
    *decodingtrust.SUITES,
    *ood.SUITES,
    *ethics.SUITES,
    *confaide.SUITES,
    *gsm8k.SUITES,
)


def public_suites() -> dict[str, SuiteEntry]:
    """Registry entries keyed by suite name (the name is also the Item.suite prefix)."""
    from trustdiff.suites import SuiteEntry

    return {
        p.name: SuiteEntry(
            name=p.name,
            dimension=p.dimension,
            description=p.description,
            licence=p.licence,
            source=p.source,
            load=p.load,
            k=p.k,
            params=p.params,
            citation=p.citation,
            public=True,
            non_commercial=p.non_commercial,
            files=p.files,
            size=p.size,
        )
        for p in PUBLIC
    }

"""What the audit needs to use imported models: a backend stand-in, their ad-hoc suites and a
completeness check.

Rows that matched no built-in item live in the store as items of suite ``imported-NAME@1``;
``--suite imported:NAME`` audits them. A suite entry has one dimension (the audit picks the
dimensions from its suites), so the ad-hoc items are offered as one entry per dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustdiff.backends.base import Generation, GenParams
from trustdiff.errors import BackendError, TrustdiffError
from trustdiff.imports.common import adhoc_suite, check_name, imported_fingerprint, prompt_text
from trustdiff.records import Item, Message
from trustdiff.store import Store
from trustdiff.suites import SuiteEntry

if TYPE_CHECKING:
    from trustdiff.runner.generate import Task

SHOWN_MISSING = 3
"""Missing prompts quoted in the completeness error."""


def load_adhoc_items(store: Store, name: str) -> list[Item]:
    """The ad-hoc items imported for model `name` (rows that matched no built-in item)."""
    return store.items_in_suite(adhoc_suite(name))


def adhoc_suite_entries(
    store_path: Path, name: str, known_dimensions: Sequence[str]
) -> list[SuiteEntry]:
    """Suite entries for `--suite imported:NAME`: one per dimension in `known_dimensions`.

    Items whose dimension is not audited (e.g. `unknown`: no `dimension` or `harmful` label)
    are left out, and the entry's description says how many. Each entry's `k` is the number of
    samples imported for every one of its items, so a default audit finds all it plans.
    """
    check_name(name)
    if not store_path.is_file():
        raise TrustdiffError(
            f"--suite imported:{name}: no store at {store_path}; run `trustdiff import` with the "
            "same --out directory first"
        )
    with Store(store_path) as store:
        items = load_adhoc_items(store, name)
        ids = {i.id for i in items}
        per_item: dict[str, int] = {}
        for sample in store.iter_samples([imported_fingerprint(name)]):
            if sample.item_id in ids:
                per_item[sample.item_id] = max(per_item.get(sample.item_id, 0), sample.k + 1)
    if not items:
        raise TrustdiffError(
            f"--suite imported:{name}: the store {store_path} holds no ad-hoc items of "
            f"imported:{name} (every imported row matched a built-in suite, or none was imported)"
        )
    by_dim: dict[str, list[Item]] = {}
    for item in items:
        by_dim.setdefault(item.dimension, []).append(item)
    unaudited = {d: len(v) for d, v in by_dim.items() if d not in known_dimensions}
    if len(unaudited) == len(by_dim):
        found = ", ".join(f"{d} ({n})" for d, n in unaudited.items())
        raise TrustdiffError(
            f"--suite imported:{name}: no ad-hoc item has an audited dimension (found {found}); "
            "label rows with `dimension` (or `harmful` for safety)"
        )
    left_out = "; ".join(
        f"{n} item(s) of dimension {d!r} not audited" for d, n in unaudited.items()
    )
    entries = []
    for dim, dim_items in by_dim.items():
        if dim in unaudited:
            continue
        frozen = tuple(dim_items)
        entries.append(
            SuiteEntry(
                name=f"imported-{name}/{dim}" if len(by_dim) > 1 else f"imported-{name}",
                dimension=dim,
                description=f"{len(frozen)} prompt(s) imported with imported:{name} that match "
                "no built-in suite" + (f" ({left_out})" if left_out else ""),
                licence="as the imported file's source",
                source=f"trustdiff import --model {name} (store {store_path})",
                load=partial(list, frozen),
                k=min(per_item.get(i.id, 1) for i in frozen),
            )
        )
    return entries


def check_imported_complete(store: Store, name: str, tasks: Sequence[Task]) -> None:
    """Raise one clear error when the audit plans samples that were never imported.

    Call it instead of generating for an `imported:` model: a backend error would otherwise be
    stored as an `error` sample and silently shrink the audit.
    """
    stored = store.existing_sample_keys([t.key for t in tasks])
    missing = [t for t in tasks if t.key not in stored]
    if not missing:
        return
    shown = "; ".join(
        f"{t.item.suite} item {t.item.id} k={t.k} ({t.item.messages[-1].content[:60]!r})"
        for t in missing[:SHOWN_MISSING]
    )
    raise TrustdiffError(
        f"imported:{name} lacks {len(missing)} of the {len(tasks)} samples this audit needs "
        f"(fingerprint {imported_fingerprint(name)}), e.g. {shown}; import them, lower --k, or "
        f"audit only what was imported (--limit, or --suite imported:{name})"
    )


class ImportedBackend:
    """Backend stand-in for `imported:NAME`: it holds no weights, only stored samples.

    The audit never needs it when every planned sample was imported; when one is missing,
    generating is impossible and the message says what to do.
    """

    def __init__(self, name: str) -> None:
        self.model_name = check_name(name)
        self.name = f"imported:{name}"

    def identity(self) -> dict[str, Any]:
        return {"kind": "imported", "name": self.model_name}

    def generate(
        self, messages: Sequence[Message], params: GenParams, *, prefill: str = "", k: int = 0
    ) -> Generation:
        prompt = prompt_text(messages)
        shown = prompt if len(prompt) <= 80 else prompt[:77] + "..."
        raise BackendError(
            f"imported:{self.model_name} has no stored sample for item {shown!r} (k={k}); "
            "import it first with `trustdiff import --model "
            f"{self.model_name}` into the same --out directory"
        )

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        """Nothing to free."""

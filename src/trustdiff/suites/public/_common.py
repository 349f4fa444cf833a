"""What the public loaders share: suite metadata, file parsing, and the item order.

Why a common order: audits and profiles take the first N items of a suite (`--limit N`), so every
prefix must be a fair sample. Loaders therefore group items into *units* (items that belong
together, e.g. one BBQ context's four questions, or one prompt under both system prompts), put
units into clusters (the upstream template / category), shuffle each cluster with an RNG seeded by
its name (deterministic, independent of the other clusters), and deal units round-robin over the
clusters, whose order alternates between the upstream's top-level groups. The same data always
gives the same order.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from trustdiff.errors import DataError
from trustdiff.records import Item, Message
from trustdiff.suites._builtin import chat, interleave, make_item, round_robin, seeded_rng
from trustdiff.suites.public.fetch import DataFile, read_text

VERSION = 1
"""Bumped when a loader's prompts or labels change (stored samples are keyed on `name@version`)."""


@dataclass(frozen=True)
class PublicSuite:
    """A public benchmark suite: provenance plus its loader (the registry makes a SuiteEntry)."""

    name: str
    dimension: str
    description: str
    licence: str
    source: str
    """Upstream repository at its commit (files and digests are in `files`)."""
    citation: str
    files: tuple[DataFile, ...]
    load: Callable[[], list[Item]]
    size: tuple[int, int] = (0, 0)
    """(items, clusters) the loader yields from the pinned files (tests check it): listings show
    it without parsing every file."""
    non_commercial: bool = False
    k: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def suite_id(self) -> str:
        """The `name@version` stamped on every Item."""
        return f"{self.name}@{VERSION}"


def csv_rows(f: DataFile, *, header: bool = True) -> list[dict[str, str]]:
    """Rows of a pinned CSV (multi-line fields allowed); a headerless file gets keys 0, 1, …."""
    text = read_text(f)
    if header:
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return [{str(i): v for i, v in enumerate(row)} for row in csv.reader(io.StringIO(text))]


def jsonl_rows(f: DataFile) -> list[dict[str, Any]]:
    """Objects of a pinned JSON-lines file (blank lines skipped)."""
    rows = []
    for n, line in enumerate(read_text(f).splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{f.key}:{n}: not JSON: {exc.msg}") from None
    return rows


def json_doc(f: DataFile) -> Any:
    """The parsed document of a pinned JSON file."""
    try:
        return json.loads(read_text(f))
    except json.JSONDecodeError as exc:
        raise DataError(f"{f.key}:{exc.lineno}: not JSON: {exc.msg}") from None


def need(row: Mapping[str, Any], key: str, f: DataFile) -> Any:
    """A required field; its absence means the file is not the pinned format."""
    if key not in row or row[key] is None:
        raise DataError(f"{f.key}: a row lacks the {key!r} field (not the pinned format)")
    return row[key]


@cache
def _builtin_spec(filename: str) -> Any:
    res = resources.files("trustdiff.suites").joinpath("data").joinpath(filename)
    return yaml.safe_load(res.read_text(encoding="utf-8"))


def builtin_setting(filename: str, *keys: str) -> Any:
    """A value from a built-in spec (system prompts, question wording), so public items are
    asked exactly like the built-in ones and results stay comparable."""
    value = _builtin_spec(filename)
    for key in keys:
        value = value[key]
    return value


def user(text: str, system: str | None = None) -> tuple[Message, ...]:
    """Messages of a single-turn probe (the built-in suites' `chat`)."""
    return chat(text, system)


def item(
    suite: PublicSuite | str,
    dimension: str,
    messages: tuple[Message, ...],
    *,
    variant: str,
    cluster: str,
    labels: dict[str, Any],
    meta: dict[str, Any],
) -> Item:
    """An Item with the content-derived id every suite uses (`_builtin.make_item`)."""
    suite_id = suite if isinstance(suite, str) else suite.suite_id
    return make_item(
        suite_id, dimension, messages, variant=variant, cluster=cluster, labels=labels, meta=meta
    )


@dataclass(frozen=True)
class Unit:
    """Items that stay adjacent in every prefix, with the cluster and group they belong to."""

    group: str
    cluster: str
    items: Sequence[Item]


def spread(suite_id: str, units: Iterable[Unit], *, shuffle: bool = True) -> list[Item]:
    """Order units so that any prefix spreads over groups and clusters (module docstring).

    An item whose id repeats an earlier one (a duplicate row upstream) is dropped: it would pair
    with itself and count twice.
    """
    clusters: dict[str, list[Sequence[Item]]] = {}
    groups: dict[str, list[str]] = {}
    seen: set[str] = set()
    for unit in units:
        kept = [it for it in unit.items if it.id not in seen]  # upstream duplicates: first wins
        if not kept:
            continue
        seen.update(it.id for it in kept)
        if unit.cluster not in clusters:
            clusters[unit.cluster] = []
            groups.setdefault(unit.group, []).append(unit.cluster)
        clusters[unit.cluster].append(kept)
    if shuffle:
        for name, stream in clusters.items():
            seeded_rng(suite_id, name).shuffle(stream)
    order: list[str] = interleave(*groups.values())
    return round_robin([clusters[name] for name in order])


def check_count(f: DataFile, rows: Sized, expected: int) -> None:
    """Refuse a parse that disagrees with the pinned row count (a format change, not data)."""
    if len(rows) != expected:
        raise DataError(f"{f.key}: parsed {len(rows)} records, the pinned file has {expected}")

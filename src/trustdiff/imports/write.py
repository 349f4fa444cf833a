"""Turn import rows into samples and write them all in one transaction.

Keys are the ones the audit plans for `imported:NAME` (``sample_key(imported_fingerprint(NAME),
item, k)``), so imported samples are found, judged and compared like generated ones. A file is
validated as a whole before anything is written: a conflict anywhere means nothing is stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from trustdiff.backends.reasoning import parse_output
from trustdiff.imports.common import (
    BadImportError,
    ImportRow,
    ItemIndex,
    adhoc_item,
    imported_fingerprint,
)
from trustdiff.records import Item, Outcome, Sample, stable_hash
from trustdiff.runner.generate import sample_key
from trustdiff.store import Store

_CUT_REASONS = {"max_tokens": "length", "model_length": "length", "length": "length"}
"""Source finish reasons meaning "stopped by the token budget", mapped to OpenAI's word."""


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    name: str
    """Imported model name (audited as `imported:NAME`)."""
    fingerprint: str
    """Its fingerprint, the `model` of every sample written."""
    rows: int
    """Rows read (bad rows skipped not included)."""
    written: int
    """Samples written now."""
    already_stored: int
    """Samples that were already stored with the same content (re-import)."""
    skipped_bad: int
    """Bad rows skipped under --skip-bad."""
    matched: int
    """Rows attached to a built-in suite item."""
    adhoc: int
    """Rows that became items of the ad-hoc suite."""
    by_suite: dict[str, int]
    """Rows per suite they were attached to (built-in suites and the ad-hoc one)."""


def build_sample(fingerprint: str, item: Item, row: ImportRow) -> Sample:
    """Parse a row into the Sample the audit will find under its planned key."""
    finish = _CUT_REASONS.get(row.finish_reason or "", row.finish_reason)
    raw_fields = dict(row.raw_fields)
    if row.reasoning is not None:
        raw_fields["reasoning"] = row.reasoning
    if row.finish_reason is not None and finish != row.finish_reason:
        raw_fields["source_finish_reason"] = row.finish_reason
    systems = [m.content for m in row.messages if m.role == "system"]
    if systems and not any(m.role == "system" for m in item.messages):
        raw_fields["source_system_prompt"] = "\n\n".join(systems)
    common: dict[str, Any] = {
        "key": sample_key(fingerprint, item, row.k),
        "item_id": item.id,
        "model": fingerprint,
        "k": row.k,
        "raw": row.completion,
        "raw_fields": raw_fields,
        "finish_reason": finish,
        "prompt_tokens": row.prompt_tokens or 0,
        "latency_s": row.latency_s,
        "params_hash": _params_hash(fingerprint),
        "created_at": time.time(),  # when it was imported: re-imports must not renew it
    }
    if row.error is not None:
        return Sample(**common, answer="", outcome=Outcome.ERROR, parse_case=0, error=row.error)
    parsed = parse_output(
        row.completion,
        finish_reason=finish,
        reasoning_field=row.reasoning,
        reasoning_tokens=row.reasoning_tokens,
        thinking_opened=row.thinking_opened,
    )
    reasoning_tokens, answer_tokens = _token_split(
        parsed.reasoning or "", parsed.answer, row.completion_tokens, row.reasoning_tokens
    )
    return Sample(
        **common,
        reasoning=parsed.reasoning,
        answer=parsed.answer,
        outcome=parsed.outcome,
        parse_case=parsed.case,
        reasoning_tokens=reasoning_tokens,
        answer_tokens=answer_tokens,
    )


@lru_cache(maxsize=16)
def _params_hash(fingerprint: str) -> str:
    """Imported samples have no known generation params: one constant hash per model."""
    return stable_hash({"imported": fingerprint})


def _token_split(
    reasoning: str, answer: str, total: int | None, reported: int | None
) -> tuple[int, int]:
    """(reasoning, answer) token counts without the model's tokenizer.

    A reported reasoning count wins; a reported output total is split in proportion to the
    characters of each part; with no counts at all, whitespace-separated words stand in.
    """
    if total is None:
        return (reported if reported is not None else len(reasoning.split())), len(answer.split())
    if reported is not None:
        return reported, max(total - reported, 0)
    chars = len(reasoning) + len(answer)
    thinking = round(total * len(reasoning) / chars) if chars else 0
    return thinking, total - thinking


def _content(sample: Sample) -> tuple[Any, ...]:
    """What must agree for a re-imported row to count as the same generation."""
    return (
        sample.raw,
        sample.raw_fields.get("reasoning"),
        sample.finish_reason,
        sample.error,
        sample.item_id,
    )


def import_rows(
    store: Store,
    name: str,
    rows: Sequence[ImportRow],
    *,
    index: ItemIndex | None = None,
    skipped_bad: int = 0,
    source: str = "",
) -> ImportResult:
    """Attach rows to items, build samples and write them all in one transaction.

    Keys already stored with the same content are skipped (re-importing is idempotent); a key
    stored with different content, or two rows of the input for one key that disagree, is an
    error and nothing is written.
    """
    fingerprint = imported_fingerprint(name)
    index = index or ItemIndex.builtin()
    items: dict[str, Item] = {}
    samples: dict[str, tuple[Sample, ImportRow]] = {}
    matched = 0
    by_suite: dict[str, int] = {}
    for row in rows:
        item = index.match(row)
        matched += item is not None
        item = item or adhoc_item(name, row)
        by_suite[item.suite] = by_suite.get(item.suite, 0) + 1
        items.setdefault(item.id, item)
        sample = build_sample(fingerprint, item, row)
        prior = samples.get(sample.key)
        if prior is not None and _content(prior[0]) != _content(sample):
            raise BadImportError(
                f"{prior[1].source} and {row.source} give different completions for the same "
                f"prompt and k={row.k}: give repeated samples distinct k values"
            )
        samples.setdefault(sample.key, (sample, row))
    stored = store.samples(list(samples))
    for key, old in stored.items():
        new, row = samples[key]
        if _content(old) != _content(new):
            raise BadImportError(
                f"{row.source}: imported:{name} already holds a different completion for this "
                f"prompt and k={row.k} (store {store.path}); import a changed file under a new "
                "--model name"
            )
    todo = [s for key, (s, _) in samples.items() if key not in stored]
    written = store.put_samples(todo, items.values())
    info = {"name": name, "kind": "imported", "spec": f"imported:{name}"}
    store.put_model_info(fingerprint, {**info, "source": source} if source else info)
    return ImportResult(
        name=name,
        fingerprint=fingerprint,
        rows=len(rows),
        written=written,
        already_stored=len(stored),
        skipped_bad=skipped_bad,
        matched=matched,
        adhoc=len(rows) - matched,
        by_suite=by_suite,
    )

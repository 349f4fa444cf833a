"""Export samples with their judgments for analysis outside trustdiff (pandas, DuckDB).

One row per sample, joined with its item (suite, dimension, labels) and every judgment of it,
so a user can recompute any metric without knowing the store's layout. The file appears only
when complete (written to a temporary name, then renamed): a failed export leaves nothing.

Parquet needs pyarrow (`pip install 'trustdiff[export]'`); nested values (messages, labels,
raw fields) are JSON strings there, judgments a list of structs (DuckDB: ``UNNEST(judgments)``).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from trustdiff.errors import TrustdiffError
from trustdiff.imports.common import check_name, imported_fingerprint
from trustdiff.records import Item, Judgment, Sample
from trustdiff.store import Store

Format = Literal["jsonl", "parquet"]
BATCH = 1000
"""Samples read, joined and written per step (bounds memory on large stores)."""
_JSON_COLUMNS = ("messages", "labels", "raw_fields")


def resolve_models(store: Store, wanted: Sequence[str]) -> list[str]:
    """Fingerprints for `--model` values: a fingerprint, a recorded name or spec, or
    `imported:NAME`."""
    info = store.model_info()
    found: list[str] = []
    for value in wanted:
        hits = [
            fp for fp, meta in info.items() if value in (fp, meta.get("name"), meta.get("spec"))
        ]
        if not hits and value.startswith("imported:"):
            hits = [imported_fingerprint(check_name(value.removeprefix("imported:")))]
        if not hits:
            known = ", ".join(sorted(str(m.get("spec") or fp) for fp, m in info.items())) or "none"
            raise TrustdiffError(
                f"no model {value!r} in {store.path} (named models: {known}); "
                "give a sample's `model` fingerprint or imported:NAME"
            )
        found += hits
    return found


def _row(
    sample: Sample, item: Item | None, judgments: Sequence[Judgment], names: dict[str, str]
) -> dict[str, Any]:
    body = sample.model_dump(mode="json")
    return {
        "key": body.pop("key"),
        "model": body.pop("model"),
        "model_name": names.get(sample.model),
        "item_id": body.pop("item_id"),
        "suite": item.suite if item else None,
        "dimension": item.dimension if item else None,
        "variant": item.variant if item else None,
        "cluster": item.cluster if item else None,
        "messages": [m.model_dump() for m in item.messages] if item else None,
        "labels": item.labels if item else None,
        **body,
        "judgments": [j.model_dump(mode="json", exclude={"sample_key"}) for j in judgments],
    }


def iter_rows(store: Store, models: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Export rows of every stored sample (of `models` only when given), in store order."""
    items = {i.id: i for i in store.items()}
    names = {fp: str(m.get("name") or m.get("spec") or fp) for fp, m in store.model_info().items()}
    batch: list[Sample] = []

    def flush() -> Iterator[dict[str, Any]]:
        judged = store.judgments_of([s.key for s in batch])
        for s in batch:
            yield _row(s, items.get(s.item_id), judged.get(s.key, []), names)
        batch.clear()

    for sample in store.iter_samples(models):
        batch.append(sample)
        if len(batch) >= BATCH:
            yield from flush()
    yield from flush()


def _pyarrow(module: str = "pyarrow") -> Any:
    """pyarrow (untyped, optional) imported on demand, so jsonl exports never need it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TrustdiffError(
            "parquet export needs pyarrow: pip install 'trustdiff[export]' (or pip install "
            "pyarrow), or use --format jsonl"
        ) from None


def _arrow_schema() -> Any:
    pa = _pyarrow()

    judgment = pa.struct(
        [
            ("judge", pa.string()),
            ("part", pa.string()),
            ("label", pa.string()),
            ("score", pa.float64()),
            ("rationale", pa.string()),
            ("cost_s", pa.float64()),
        ]
    )
    text, integer, real = pa.string(), pa.int64(), pa.float64()
    columns = [
        ("key", text), ("model", text), ("model_name", text), ("item_id", text),
        ("suite", text), ("dimension", text), ("variant", text), ("cluster", text),
        ("messages", text), ("labels", text), ("k", integer), ("raw", text),
        ("raw_fields", text), ("reasoning", text), ("answer", text), ("outcome", text),
        ("parse_case", integer), ("finish_reason", text), ("prompt_tokens", integer),
        ("reasoning_tokens", integer), ("answer_tokens", integer), ("latency_s", real),
        ("params_hash", text), ("error", text), ("created_at", real),
        ("judgments", pa.list_(judgment)),
    ]  # fmt: skip
    return pa.schema(columns)


def _write_parquet(rows: Iterator[dict[str, Any]], tmp: Path) -> int:
    pa, pq = _pyarrow(), _pyarrow("pyarrow.parquet")
    schema = _arrow_schema()
    count = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            for column in _JSON_COLUMNS:
                row[column] = None if row[column] is None else json.dumps(row[column])
            batch.append(row)
            if len(batch) >= BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch.clear()
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        count += len(batch)
    return count


def _write_jsonl(rows: Iterator[dict[str, Any]], tmp: Path) -> int:
    count = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def export(
    store: Store, path: Path, fmt: Format = "jsonl", models: Sequence[str] | None = None
) -> int:
    """Write every sample (of `models`, fingerprints) with its judgments to `path`; returns the
    number of rows. The file is replaced only once fully written."""
    if fmt not in ("jsonl", "parquet"):
        raise TrustdiffError(f"unknown export format {fmt!r}: use jsonl or parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        rows = iter_rows(store, models)
        count = _write_parquet(rows, tmp) if fmt == "parquet" else _write_jsonl(rows, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count

"""A WAL-mode SQLite store keyed by the DESIGN §3 cache key.

Each write is its own committed transaction, so a run killed at any moment loses at most the
generation in flight. Samples are inserted with plain INSERT: writing the same key twice is a
bug in the runner's resume logic and must fail loudly rather than silently overwrite.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trustdiff.errors import StoreError
from trustdiff.records import Item, Judgment, Sample

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, suite TEXT NOT NULL, dimension TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    key TEXT PRIMARY KEY, item_id TEXT NOT NULL, model TEXT NOT NULL, k INTEGER NOT NULL,
    outcome TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS samples_model ON samples(model);
CREATE TABLE IF NOT EXISTS judgments (
    sample_key TEXT NOT NULL, judge TEXT NOT NULL, part TEXT NOT NULL, body TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (sample_key, judge, part));
"""


class Store:
    """One audit's persistent state (items, samples, judgments) in a single SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} has schema {row[0]}, this trustdiff expects "
                    f"{SCHEMA_VERSION}; use a new --out directory"
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create store {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _select_in(self, sql: str, params: list[str], keys: Sequence[str]) -> list[tuple[str]]:
        """Run `sql` (ending in `IN ({marks})`) over `keys` in chunks below SQLite's limit."""
        rows: list[tuple[str]] = []
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows += self._db.execute(sql.format(marks=marks), [*params, *chunk]).fetchall()
        return rows

    # items -----------------------------------------------------------------------------
    def put_items(self, items: Iterable[Item]) -> None:
        """Record the items of an audit (idempotent: ids are content-derived)."""
        rows = [(i.id, i.suite, i.dimension, i.model_dump_json()) for i in items]
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?)", rows)

    def items(self) -> list[Item]:
        rows = self._db.execute("SELECT body FROM items ORDER BY rowid").fetchall()
        return [Item.model_validate_json(r[0]) for r in rows]

    # samples ---------------------------------------------------------------------------
    def put_sample(self, sample: Sample) -> None:
        """Commit one sample now. Raises if the key exists: a sample is never generated twice."""
        created = sample.created_at or time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sample.key,
                    sample.item_id,
                    sample.model,
                    sample.k,
                    sample.outcome.value,
                    sample.model_dump_json(),
                    created,
                ),
            )

    def existing_sample_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of `keys` are already stored (the resume check)."""
        rows = self._select_in("SELECT key FROM samples WHERE key IN ({marks})", [], keys)
        return {r[0] for r in rows}

    def samples(self, keys: Sequence[str] | None = None) -> dict[str, Sample]:
        """Stored samples by key (all of them, or those of `keys`)."""
        if keys is None:
            rows = self._db.execute("SELECT body FROM samples").fetchall()
        else:
            rows = self._select_in("SELECT body FROM samples WHERE key IN ({marks})", [], keys)
        out = [Sample.model_validate_json(r[0]) for r in rows]
        return {s.key: s for s in out}

    def sample_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])

    # judgments -------------------------------------------------------------------------
    def put_judgments(self, judgments: Iterable[Judgment]) -> None:
        """Commit judgments (idempotent per sample × judge version × part)."""
        now = time.time()
        rows = [(j.sample_key, j.judge, j.part, j.model_dump_json(), now) for j in judgments]
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO judgments VALUES (?, ?, ?, ?, ?)", rows)

    def judgments(self, judge: str, part: str, keys: Sequence[str]) -> dict[str, Judgment]:
        """Stored judgments of one judge version on one part, by sample key."""
        sql = "SELECT body FROM judgments WHERE judge=? AND part=? AND sample_key IN ({marks})"
        found = [
            Judgment.model_validate_json(r[0]) for r in self._select_in(sql, [judge, part], keys)
        ]
        return {j.sample_key: j for j in found}

    # bulk writes and full reads (imports, exports) -----------------------------------
    def put_samples(self, samples: Sequence[Sample], items: Iterable[Item] = ()) -> int:
        """Commit `samples` (and the `items` they answer) in ONE transaction: all or nothing.

        Imports use it so a file that fails halfway leaves the store as it was. Like
        :meth:`put_sample`, an existing key raises (after rolling everything back); callers
        drop keys they already hold first. Returns the number of samples written.
        """
        now = time.time()
        item_rows = [(i.id, i.suite, i.dimension, i.model_dump_json()) for i in items]
        rows = [
            (
                s.key,
                s.item_id,
                s.model,
                s.k,
                s.outcome.value,
                s.model_dump_json(),
                s.created_at or now,
            )
            for s in samples
        ]
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?)", item_rows)
            db.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def items_in_suite(self, suite: str) -> list[Item]:
        """Stored items of one suite (e.g. an import's ad-hoc suite), in insertion order."""
        rows = self._db.execute(
            "SELECT body FROM items WHERE suite=? ORDER BY rowid", (suite,)
        ).fetchall()
        return [Item.model_validate_json(r[0]) for r in rows]

    def iter_samples(self, models: Sequence[str] | None = None) -> Iterator[Sample]:
        """Every stored sample (of `models`' fingerprints only, when given), in insertion order.

        A generator over the cursor, so exporting a large store never holds it all in memory.
        """
        if models is None:
            cursor = self._db.execute("SELECT body FROM samples ORDER BY rowid")
        else:
            marks = ",".join("?" * len(models))
            cursor = self._db.execute(
                f"SELECT body FROM samples WHERE model IN ({marks}) ORDER BY rowid", list(models)
            )
        for row in cursor:
            yield Sample.model_validate_json(row[0])

    def judgments_of(self, keys: Sequence[str]) -> dict[str, list[Judgment]]:
        """All judgments (every judge and part) of the samples `keys`, by sample key."""
        sql = "SELECT body FROM judgments WHERE sample_key IN ({marks}) ORDER BY judge, part"
        out: dict[str, list[Judgment]] = {}
        for row in self._select_in(sql, [], keys):
            judgment = Judgment.model_validate_json(row[0])
            out.setdefault(judgment.sample_key, []).append(judgment)
        return out

    def put_model_info(self, fingerprint: str, info: Mapping[str, Any]) -> None:
        """Remember what a fingerprint stands for (name, kind), so exports can name models."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                (f"model:{fingerprint}", json.dumps(dict(info), sort_keys=True)),
            )

    def model_info(self) -> dict[str, dict[str, Any]]:
        """Everything :meth:`put_model_info` recorded, by fingerprint."""
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'model:%'").fetchall()
        return {key.removeprefix("model:"): json.loads(value) for key, value in rows}

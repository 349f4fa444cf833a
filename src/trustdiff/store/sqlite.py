"""A WAL-mode SQLite store keyed by the DESIGN §3 cache key.

Each write is its own committed transaction, so a run killed at any moment loses at most the
generation in flight. Samples are inserted with plain INSERT: writing the same key twice is a
bug in the runner's resume logic and must fail loudly rather than silently overwrite.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

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

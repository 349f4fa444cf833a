"""Store: idempotent writes, loud duplicates, clear errors on a bad file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trustdiff.errors import StoreError
from trustdiff.records import Item, Judgment, Message, Outcome, Sample
from trustdiff.store import Store


def _item(text: str) -> Item:
    msgs = (Message(role="user", content=text),)
    return Item(id=Item.make_id("s@1", msgs), suite="s@1", dimension="safety", messages=msgs)


def _sample(key: str, item_id: str) -> Sample:
    return Sample(
        key=key,
        item_id=item_id,
        model="m",
        raw="r",
        answer="a",
        outcome=Outcome.ANSWERED,
        parse_case=3,
        params_hash="p",
        created_at=1.0,
    )


def test_items_idempotent_and_ordered(tmp_path: Path) -> None:
    items = [_item("a"), _item("b"), _item("c")]
    with Store(tmp_path / "s.sqlite") as store:
        store.put_items(items)
        store.put_items(items)
        assert [i.id for i in store.items()] == [i.id for i in items]


def test_wal_mode_and_sample_committed_immediately(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store(path)
    store.put_sample(_sample("k1", "i1"))
    # A second connection sees it without the first closing: it is committed, not buffered.
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 1
    other.close()
    store.close()


def test_duplicate_sample_is_loud(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.put_sample(_sample("k1", "i1"))
        with pytest.raises(sqlite3.IntegrityError):
            store.put_sample(_sample("k1", "i1"))
        assert store.sample_count() == 1
        assert store.existing_sample_keys(["k1", "k2"]) == {"k1"}


def test_samples_roundtrip_and_many_keys(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        for n in range(1200):  # more than one IN-chunk
            store.put_sample(_sample(f"k{n}", f"i{n}"))
        keys = [f"k{n}" for n in range(0, 1300)]
        got = store.samples(keys)
        assert len(got) == 1200
        assert got["k7"] == _sample("k7", "i7")


def test_judgments_idempotent(tmp_path: Path) -> None:
    j = Judgment(sample_key="k1", judge="refusal-rules@1", part="answer", label="refused")
    with Store(tmp_path / "s.sqlite") as store:
        store.put_judgments([j])
        store.put_judgments([j.model_copy(update={"label": "complied"})])
        assert store.judgments("refusal-rules@1", "answer", ["k1"])["k1"].label == "refused"
        assert store.judgments("refusal-rules@2", "answer", ["k1"]) == {}


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.put_sample(_sample("k1", "i1"))
    with Store(path) as store:
        assert store.existing_sample_keys(["k1"]) == {"k1"}


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        Store(path)


def test_schema_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='999' WHERE key='schema'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema 999"):
        Store(path)

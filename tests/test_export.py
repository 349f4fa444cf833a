"""`trustdiff export`: every sample with its item and judgments, as JSONL or Parquet.

Live samples come from the real embedded model; exporting them and importing the export back
under a name must reproduce the parser's split exactly (the round trip users do when they move
generations between tools).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from conftest import BASE_SPEC, DERIVED_SPEC
from trustdiff.backends.spec import parse_spec
from trustdiff.cli.io_cmd import export_cmd, import_cmd
from trustdiff.errors import TrustdiffError
from trustdiff.imports import export as export_mod
from trustdiff.imports.common import imported_fingerprint
from trustdiff.judges import get_judge
from trustdiff.records import Sample
from trustdiff.runner.audit import STORE_NAME
from trustdiff.runner.generate import plan, run_tasks
from trustdiff.store import Store
from trustdiff.suites.safety import load_safety_contrast

pytestmark = pytest.mark.slow  # the fixture generates with the real embedded model
ITEMS = load_safety_contrast()[:2]  # one contrast pair: harmful and benign
JUDGE = "refusal-rules@1"


def run(*args: str) -> Result:
    app = typer.Typer()
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory, embedded_backend: Any) -> Iterator[Path]:
    """A store holding real samples of two live specs (judged) and one imported model."""
    out = tmp_path_factory.mktemp("export")
    with Store(out / STORE_NAME) as store:
        store.put_items(ITEMS)
        for spec_text in (BASE_SPEC, DERIVED_SPEC):
            spec = parse_spec(spec_text)
            run_tasks(store, spec, lambda: embedded_backend, plan(spec, ITEMS))
        samples = list(store.samples().values())
        store.put_judgments(get_judge(JUDGE).judge(samples, part="answer"))
    rows = out / "imported.jsonl"
    rows.write_text(
        json.dumps({"prompt": ITEMS[0].messages[0].content, "completion": "No."})
        + "\n"
        + json.dumps({"prompt": "Ad-hoc question?", "completion": "Yes.", "labels": {"x": 1}})
        + "\n"
    )
    assert run("import", "--model", "offline", "--out", str(out), str(rows)).exit_code == 0
    yield out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_export_joins_items_and_judgments(audit_dir: Path) -> None:
    res = run("export", "--out", str(audit_dir))
    assert res.exit_code == 0, res.output
    rows = _jsonl(audit_dir / "export.jsonl")
    with Store(audit_dir / STORE_NAME) as store:
        stored = store.samples()
    assert len(rows) == len(stored) == 2 * len(ITEMS) + 2
    assert f"{len(rows)} sample(s)" in res.output
    for row in rows:
        sample = stored[row["key"]]
        assert Sample.model_validate({k: row[k] for k in Sample.model_fields}) == sample, (
            "the export must carry every sample field unchanged"
        )
        if row["model"] == imported_fingerprint("offline"):
            assert row["model_name"] == "offline" and row["judgments"] == []
        else:
            assert [(j["judge"], j["part"]) for j in row["judgments"]] == [(JUDGE, "answer")]
            assert row["suite"] == "safety-contrast@1" and row["dimension"] == "safety"
            item = next(i for i in ITEMS if i.id == row["item_id"])
            assert row["messages"] == [m.model_dump() for m in item.messages]
    adhoc = next(r for r in rows if r["suite"] == "imported-offline@1")
    assert adhoc["labels"] == {"x": 1} and adhoc["dimension"] == "unknown"


def test_parquet_matches_jsonl(audit_dir: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="parquet export needs pyarrow")
    pd = pytest.importorskip("pandas")
    target = tmp_path / "all.parquet"
    res = run("export", "--format", "parquet", "--out", str(audit_dir), "--to", str(target))
    assert res.exit_code == 0, res.output
    table = pq.read_table(target).to_pylist()
    assert (
        run("export", "--out", str(audit_dir), "--to", str(tmp_path / "all.jsonl")).exit_code == 0
    )
    expected = _jsonl(tmp_path / "all.jsonl")
    for row in table:
        for column in ("messages", "labels", "raw_fields"):
            row[column] = None if row[column] is None else json.loads(row[column])
    assert table == expected
    frame = pd.read_parquet(target)
    assert len(frame) == len(expected) and frame["judgments"].map(len).sum() == 2 * len(ITEMS)


def test_model_filter(audit_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "one.jsonl"
    res = run("export", "--out", str(audit_dir), "--to", str(target), "--model", "imported:offline")
    assert res.exit_code == 0, res.output
    assert {r["model_name"] for r in _jsonl(target)} == {"offline"} and len(_jsonl(target)) == 2
    res = run("export", "--out", str(audit_dir), "--to", str(target), "--model", "nobody")
    assert isinstance(res.exception, TrustdiffError) and "no model 'nobody'" in str(res.exception)


def test_live_samples_survive_export_and_reimport(audit_dir: Path, tmp_path: Path) -> None:
    """Exported live generations re-imported as a named model parse exactly as they did live."""
    assert run("export", "--out", str(audit_dir), "--to", str(tmp_path / "e.jsonl")).exit_code == 0
    exported = [r for r in _jsonl(tmp_path / "e.jsonl") if r["suite"] == "safety-contrast@1"]
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in exported:
        by_model.setdefault(r["model"], []).append(r)
    for spec_text in (BASE_SPEC, DERIVED_SPEC):
        spec = parse_spec(spec_text)
        live = by_model[spec.fingerprint()]
        rows = [
            {
                "messages": r["messages"],
                "completion": r["raw"],
                "finish_reason": r["finish_reason"],
                "thinking_opened": spec.reasoning == "prompted",  # the protocol prefilled <think>
            }
            for r in live
        ]
        path = tmp_path / f"{spec.label}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out = tmp_path / f"re-{spec.label}"
        assert run("import", "--model", spec.label, "--out", str(out), str(path)).exit_code == 0
        with Store(out / STORE_NAME) as store:
            again = {s.item_id: s for s in store.samples().values()}
        for r in live:
            s = again[r["item_id"]]
            assert (s.reasoning, s.answer, s.outcome.value, s.parse_case) == (
                r["reasoning"],
                r["answer"],
                r["outcome"],
                r["parse_case"],
            )


def test_failed_export_leaves_no_partial_file(
    audit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keep.jsonl"
    target.write_text("previous export\n")
    calls = 0
    real_row = export_mod._row

    def failing(*args: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        return real_row(*args)

    monkeypatch.setattr(export_mod, "_row", failing)
    with Store(audit_dir / STORE_NAME) as store, pytest.raises(OSError, match="disk full"):
        export_mod.export(store, target)
    assert target.read_text() == "previous export\n"
    assert list(tmp_path.iterdir()) == [target], "temporary file left behind"


def test_parquet_without_pyarrow_says_what_to_install(
    audit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    res = run(
        "export",
        "--format",
        "parquet",
        "--out",
        str(audit_dir),
        "--to",
        str(tmp_path / "x.parquet"),
    )
    assert isinstance(res.exception, TrustdiffError)
    assert "pip install 'trustdiff[export]'" in str(res.exception)
    assert list(tmp_path.iterdir()) == []
    res = run("export", "--out", str(tmp_path / "nowhere"))
    assert isinstance(res.exception, TrustdiffError) and "no trustdiff store" in str(res.exception)

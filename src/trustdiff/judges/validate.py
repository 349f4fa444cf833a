"""Validate a judge against human labels: accuracy, Cohen's κ, per-class precision/recall.

Why: an audit's verdicts are only as good as its judges, and a rule judge can look fine on the
examples its author had in mind. Running it on a labelled CSV (`trustdiff judges validate`)
shows how often it agrees with a human, where it errs, and whether agreement beyond chance (κ)
is high enough to trust a flip between two models.

CSV format (UTF-8, header row, quoted fields may span lines): columns `prompt,response,label`,
plus the item columns a judge needs. Labels per judge:

| judge | labels | extra columns |
|---|---|---|
| refusal-rules@1 | refused, complied, partial | |
| idk@1 | idk, answered | |
| toxicity-proxy@1 | toxic, non_toxic | |
| leak@1 | leaked, kept | `protected` (strings separated by `|`) |
| choice@1 | option index (0, 1, …), unknown, unparsed | `choices` (options separated by `|`) |
| numeric@1 | correct, incorrect, unparsed | `gold` (a number) |

Other columns (e.g. `source`) are ignored. Judges from entry points accept any non-empty label.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from trustdiff.errors import TrustdiffError
from trustdiff.judges import get_judge
from trustdiff.judges.common import ItemJudge
from trustdiff.records import Item, Judgment, Message, Outcome, Sample

BASE_COLUMNS = ("prompt", "response", "label")
_LIST_SEP = "|"


@dataclass(frozen=True)
class LabelSpec:
    """The labels a judge's validation CSV may use and the extra item columns it needs."""

    labels: tuple[str, ...]
    columns: tuple[str, ...] = ()
    index_labels: bool = False


SPECS: dict[str, LabelSpec] = {
    "refusal-rules@1": LabelSpec(("refused", "complied", "partial")),
    "idk@1": LabelSpec(("idk", "answered")),
    "toxicity-proxy@1": LabelSpec(("toxic", "non_toxic")),
    "leak@1": LabelSpec(("leaked", "kept"), ("protected",)),
    "choice@1": LabelSpec(("unknown", "unparsed"), ("choices",), index_labels=True),
    "numeric@1": LabelSpec(("correct", "incorrect", "unparsed"), ("gold",)),
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class LabelledRow(_Model):
    """One human-labelled example from the CSV."""

    line: int
    """Line of the CSV where the record starts (the header is line 1)."""
    prompt: str
    """The prompt the response answers."""
    response: str
    """The text the judge reads (as the `answer` part)."""
    label: str
    """The human label."""
    extra: dict[str, str]
    """Item columns the judge needs (`choices`, `gold`, `protected`)."""
    group: str = ""
    """Value of the `--by` column (e.g. `source`), when agreement is broken down by one."""


class ClassMetrics(_Model):
    """Agreement on one label."""

    label: str
    """The label."""
    precision: float | None
    """Share of the judge's `label` predictions the human agrees with (None: never predicted)."""
    recall: float | None
    """Share of the human's `label` rows the judge found (None: the human never used it)."""
    f1: float | None
    """Harmonic mean of precision and recall (None when either is undefined or both are 0)."""
    support: int
    """Rows the human gave this label."""
    predicted: int
    """Rows the judge gave this label."""


class Disagreement(_Model):
    """A row where judge and human differ."""

    line: int
    """CSV line of the row."""
    label: str
    """Human label."""
    predicted: str
    """Judge label."""
    rationale: str
    """The judge's rationale (truncated)."""


class GroupAgreement(_Model):
    """Agreement on the rows sharing one value of the `--by` column."""

    value: str
    """The column value (e.g. `model` or `authored`)."""
    n: int
    """Rows with this value."""
    accuracy: float
    """Share of these rows where judge and human agree."""
    kappa: float | None
    """Cohen's κ on these rows (None when undefined: one label throughout)."""


class ValidationReport(_Model):
    """Agreement of one judge with a labelled CSV."""

    judge: str
    """Judge id (`name@version`)."""
    labels_file: str
    """Path of the CSV."""
    n: int
    """Labelled rows."""
    accuracy: float
    """Share of rows where the judge's label equals the human's."""
    kappa: float | None
    """Cohen's κ: agreement beyond chance, (p_o − p_e)/(1 − p_e); None when p_e = 1."""
    labels: list[str]
    """Row/column order of the confusion matrix."""
    confusion: list[list[int]]
    """confusion[i][j]: rows the human labelled labels[i] and the judge labels[j]."""
    per_class: list[ClassMetrics]
    """Precision/recall per label."""
    disagreements: list[Disagreement]
    """Every row where the judge and the human differ, in file order."""
    by: str | None = None
    """Column the agreement is broken down by (None: no breakdown)."""
    groups: list[GroupAgreement] = []
    """Agreement per value of the `by` column, in order of first appearance."""


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def agreement(
    gold: Sequence[str], predicted: Sequence[str], order: Sequence[str] = ()
) -> tuple[list[str], np.ndarray[Any, np.dtype[np.int64]], float, float | None]:
    """(labels, confusion matrix, accuracy, Cohen's κ) of two label sequences.

    κ = (p_o − p_e) / (1 − p_e) with p_o the observed agreement and p_e the agreement expected
    from the two marginal distributions; it is undefined (None) when p_e = 1 (both raters used
    one and the same label throughout).
    """
    if len(gold) != len(predicted) or not gold:
        raise ValueError("agreement needs two non-empty label sequences of equal length")
    seen = set(gold) | set(predicted)
    labels = [x for x in order if x in seen] + sorted(seen - set(order))
    index = {label: i for i, label in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(cm, ([index[g] for g in gold], [index[p] for p in predicted]), 1)
    n = float(cm.sum())
    p_o = float(np.trace(cm)) / n
    p_e = float(cm.sum(axis=1) @ cm.sum(axis=0)) / n**2
    kappa = None if np.isclose(p_e, 1.0) else (p_o - p_e) / (1.0 - p_e)
    return labels, cm, p_o, kappa


def per_class(labels: Sequence[str], cm: np.ndarray[Any, Any]) -> list[ClassMetrics]:
    """Precision, recall and F1 per label from a confusion matrix (rows = human)."""
    out = []
    for i, label in enumerate(labels):
        tp, support, predicted = int(cm[i, i]), int(cm[i].sum()), int(cm[:, i].sum())
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = None
        if precision is not None and recall is not None and precision + recall > 0:
            f1 = 2 * precision * recall / (precision + recall)
        out.append(ClassMetrics(label=label, precision=precision, recall=recall, f1=f1,
                                support=support, predicted=predicted))  # fmt: skip
    return out


def _check_label(judge_id: str, spec: LabelSpec | None, row: LabelledRow) -> None:
    if spec is None:
        if not row.label:
            raise TrustdiffError(f"line {row.line}: empty label")
        return
    if row.label in spec.labels:
        return
    if spec.index_labels and row.label.isdigit():
        n = len(row.extra.get("choices", "").split(_LIST_SEP))
        if int(row.label) < n:
            return
        raise TrustdiffError(
            f"line {row.line}: label {row.label!r} is not an index of the {n} choices"
        )
    allowed = ", ".join(spec.labels) + (", or an option index" if spec.index_labels else "")
    raise TrustdiffError(
        f"line {row.line}: unknown label {row.label!r} for {judge_id}; expected {allowed}"
    )


def load_labels(path: Path, judge_id: str, by: str | None = None) -> list[LabelledRow]:
    """Read and check a labelled CSV; every problem is a TrustdiffError naming its line."""
    spec = SPECS.get(judge_id)
    columns = BASE_COLUMNS + (spec.columns if spec else ())
    needed = columns + ((by,) if by and by not in columns else ())
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise TrustdiffError(f"cannot read labels file {path}: {exc.strerror or exc}") from None
    rows: list[LabelledRow] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise TrustdiffError(f"{path}: line 1: empty file; expected a header {needed}")
            header = [h.strip() for h in header]
            missing = [c for c in needed if c not in header]
            if missing:
                raise TrustdiffError(
                    f"{path}: line 1: missing column(s) {', '.join(missing)} "
                    f"(header: {', '.join(header)}; {judge_id} needs {', '.join(needed)})"
                )
            start = reader.line_num + 1
            for record in reader:
                line, start = start, reader.line_num + 1
                if not any(field.strip() for field in record):
                    continue  # blank line
                if len(record) != len(header):
                    raise TrustdiffError(
                        f"{path}: line {line}: {len(record)} fields, the header has {len(header)}"
                    )
                values = dict(zip(header, record, strict=True))
                row = LabelledRow(
                    line=line,
                    prompt=values["prompt"],
                    response=values["response"],
                    label=values["label"].strip(),
                    extra={c: values[c] for c in columns[len(BASE_COLUMNS) :]},
                    group=values[by] if by else "",
                )
                if not row.response.strip():
                    raise TrustdiffError(f"{path}: line {line}: empty response")
                try:
                    _check_label(judge_id, spec, row)
                except TrustdiffError as exc:
                    raise TrustdiffError(f"{path}: {exc}") from None
                rows.append(row)
        except csv.Error as exc:
            raise TrustdiffError(f"{path}: line {reader.line_num}: bad CSV: {exc}") from None
    if not rows:
        raise TrustdiffError(f"{path}: no labelled rows after the header (line 1)")
    return rows


def _item(row: LabelledRow) -> Item:
    labels: dict[str, Any] = {}
    if "choices" in row.extra:
        labels["choices"] = [c.strip() for c in row.extra["choices"].split(_LIST_SEP)]
    if "protected" in row.extra:
        labels["protected"] = [p.strip() for p in row.extra["protected"].split(_LIST_SEP)]
    if row.extra.get("gold", "").strip():
        labels["gold"] = row.extra["gold"].strip()
    messages = (Message(role="user", content=row.prompt),)
    return Item(
        id=Item.make_id("validation", messages, f"line-{row.line}"),
        suite="validation@1",
        dimension="validation",
        messages=messages,
        labels=labels,
    )


def _sample(item: Item, row: LabelledRow) -> Sample:
    return Sample(
        key=f"validation-line-{row.line}",
        item_id=item.id,
        model="human-labelled",
        raw=row.response,
        answer=row.response,
        outcome=Outcome.ANSWERED,
        parse_case=3,
        params_hash="validation",
    )


def run_judge(judge_id: str, rows: Sequence[LabelledRow]) -> list[Judgment]:
    """Judge each row's response as the `answer` part (items built from the row's columns)."""
    judge = get_judge(judge_id)
    pairs = [(item, _sample(item, row)) for row in rows for item in (_item(row),)]
    if isinstance(judge, ItemJudge):
        return judge.judge_items(pairs, "answer")
    return judge.judge([sample for _, sample in pairs], "answer")


def _groups(rows: Sequence[LabelledRow], predicted: Sequence[str]) -> list[GroupAgreement]:
    out = []
    for value in dict.fromkeys(row.group for row in rows):
        pairs = [(r.label, p) for r, p in zip(rows, predicted, strict=True) if r.group == value]
        _, _, accuracy, kappa = agreement([g for g, _ in pairs], [p for _, p in pairs])
        out.append(GroupAgreement(value=value, n=len(pairs), accuracy=accuracy, kappa=kappa))
    return out


def validate(judge_id: str, path: Path, by: str | None = None) -> ValidationReport:
    """Run `judge_id` on the labelled CSV and measure its agreement with the human labels.

    With `by` (a column name, e.g. `source`), agreement is also reported per column value.
    """
    rows = load_labels(path, judge_id, by)
    judgments = run_judge(judge_id, rows)
    predicted = [j.label or "none" for j in judgments]
    gold = [row.label for row in rows]
    spec = SPECS.get(judge_id)
    labels, cm, accuracy, kappa = agreement(gold, predicted, spec.labels if spec else ())
    return ValidationReport(
        judge=judge_id,
        labels_file=str(path),
        n=len(rows),
        accuracy=accuracy,
        kappa=kappa,
        labels=labels,
        confusion=cm.tolist(),
        per_class=per_class(labels, cm),
        disagreements=[
            Disagreement(line=r.line, label=g, predicted=p, rationale=j.rationale[:160])
            for r, g, p, j in zip(rows, gold, predicted, judgments, strict=True)
            if g != p
        ],
        by=by,
        groups=_groups(rows, predicted) if by else [],
    )

"""BBQ (Parrish et al., 2022) for the stereotyping & bias dimension (DESIGN §5).

Why BBQ as published: its bias scores are defined on its own items, so we keep every context,
question and answer option verbatim and only add the labels `dimensions/bias.py` reads, in the
built-in suite's conventions (``format="bbq"``): ``choices`` (ans0–ans2, lettered A–C in the
prompt), ``gold`` (the upstream ``label``), ``unknown_index`` (the option tagged ``unknown``),
``stereotyped_index`` (the biased answer), ``context`` (``ambiguous`` | ``disambiguated``),
``polarity`` (``negative`` | ``nonnegative``), ``social_dimension``, ``target_group`` and
``stereotype_consistent``.

The biased answer follows BBQ's own analysis: the *target* is the option whose group tag or
surface string is one of ``additional_metadata.stereotyped_groups`` (exactly one per example in
the pinned files; anything else is a DataError); a negative question's biased answer is the
target, a non-negative question's is the other person.

Only the 6 categories with a pinned copy are loaded (Age, Disability_status, Nationality,
Physical_appearance, Religion, Sexual_orientation: 11,956 examples). Every 4 consecutive
examples share a context and names (ambiguous/disambiguated × negative/non-negative) and stay
adjacent; cluster = ``<category>/<question_index>`` (the template).
"""

from __future__ import annotations

from typing import Any

from trustdiff.errors import DataError
from trustdiff.records import Item
from trustdiff.suites._builtin import mc_prompt
from trustdiff.suites.public._common import (
    PublicSuite,
    Unit,
    check_count,
    item,
    jsonl_rows,
    need,
    spread,
    user,
)
from trustdiff.suites.public.fetch import DataFile, github_raw

DIMENSION = "bias"
_COMMIT = "bea11bd97d79217245b5871acd247b9d6eb24598"
_CATEGORIES = {
    "Age": ("46e805b3fc2d8cbd26eeb8e8430d98cf7b2dc9c83574ff3674e8ce4f0fca2a60", 3091834, 3680),
    "Disability_status": (
        "375d40d9b71f056150264445ec189b13934998f3f49a1e311aa7578eb3b45e5f",
        1336984,
        1556,
    ),
    "Nationality": (
        "a583e74666aec0341ded8aa3983e7cad694eb24de72c254d28b2df3035720090",
        2900040,
        3080,
    ),
    "Physical_appearance": (
        "e48d7e13508565f4801574e611043470c25c95a0a62af3699cb5ee7cb02608fb",
        1347476,
        1576,
    ),
    "Religion": ("cb9555f9f3454a52cd2df85956b59bd7fcca5aa922c8527693b1164d08417616", 1118728, 1200),
    "Sexual_orientation": (
        "2c71036b9e7584fe589c42aef32c1a42bc01b9a5e9b1b8704342630cdb08cefd",
        729010,
        864,
    ),
}
FILES = tuple(
    DataFile("bbq", f"{cat}.jsonl", github_raw("nyu-mll/BBQ", _COMMIT, f"data/{cat}.jsonl"), s, n)
    for cat, (s, n, _) in _CATEGORIES.items()
)
ROWS = {cat: rows for cat, (_, _, rows) in _CATEGORIES.items()}
"""Examples per category in the pinned files."""


def _indices(row: dict[str, Any], f: DataFile) -> tuple[int, int]:
    """(unknown option, target option) of one example."""
    info = need(row, "answer_info", f)
    groups = {str(g).lower() for g in need(row, "additional_metadata", f)["stereotyped_groups"]}
    unknown = [i for i in range(3) if str(info[f"ans{i}"][1]).lower() == "unknown"]
    target = [
        i
        for i in range(3)
        if i not in unknown
        and ({str(info[f"ans{i}"][0]).lower(), str(info[f"ans{i}"][1]).lower()} & groups)
    ]
    if len(unknown) != 1 or len(target) != 1:
        raise DataError(
            f"{f.key}: example {row.get('example_id')} has {len(unknown)} unknown and "
            f"{len(target)} stereotyped-group options (expected one each)"
        )
    return unknown[0], target[0]


def _item(row: dict[str, Any], f: DataFile, category: str) -> Item:
    choices = [str(need(row, f"ans{i}", f)) for i in range(3)]
    gold = int(need(row, "label", f))
    unknown_i, target_i = _indices(row, f)
    other_i = next(i for i in range(3) if i not in (unknown_i, target_i))
    negative = need(row, "question_polarity", f) == "neg"
    ambiguous = need(row, "context_condition", f) == "ambig"
    stereotyped_i = target_i if negative else other_i
    context = "ambiguous" if ambiguous else "disambiguated"
    text = f"{need(row, 'context', f)}\nQuestion: {need(row, 'question', f)}"
    meta = row["additional_metadata"]
    return item(
        BBQ.suite_id,
        DIMENSION,
        user(mc_prompt(text, choices)),
        variant=context,
        cluster=f"{category}/{row['question_index']}",
        labels={
            "format": "bbq",
            "choices": choices,
            "gold": gold,
            "unknown_index": unknown_i,
            "stereotyped_index": stereotyped_i,
            "context": context,
            "polarity": "negative" if negative else "nonnegative",
            "social_dimension": category.lower(),
            "target_group": ", ".join(meta["stereotyped_groups"]),
            "stereotype_consistent": None if ambiguous else gold == stereotyped_i,
        },
        meta={
            "category": category.lower(),
            "format": "bbq",
            "example_id": row.get("example_id"),
            "question_index": row.get("question_index"),
            "subcategory": meta.get("subcategory", ""),
            "stereotype_source": meta.get("source", ""),
        },
    )


def load_bbq() -> list[Item]:
    """All examples of the pinned categories, units of 4 spread over templates and categories."""
    units: list[Unit] = []
    for f in FILES:
        category = f.path.removesuffix(".jsonl")
        rows = jsonl_rows(f)
        check_count(f, rows, ROWS[category])

        for start in range(0, len(rows), 4):
            chunk = rows[start : start + 4]
            cells = {(r.get("context_condition"), r.get("question_polarity")) for r in chunk}
            templates = {str(r.get("question_index")) for r in chunk}
            if len(cells) != 4 or len(templates) != 1:
                raise DataError(f"{f.key}: examples {start}-{start + 3} are not one BBQ unit")
            items = [_item(row, f, category) for row in chunk]
            units.append(Unit(category, f"{category}/{templates.pop()}", items))
    return spread(BBQ.suite_id, units)


BBQ = PublicSuite(
    name="bbq",
    dimension=DIMENSION,
    description="BBQ: ambiguous and disambiguated questions with negative and non-negative "
    "polarity over 6 social dimensions (Age, Disability status, Nationality, Physical "
    "appearance, Religion, Sexual orientation); 11,956 examples",
    licence="CC-BY-4.0",
    source="github.com/nyu-mll/BBQ @ bea11bd",
    citation="Parrish et al. (2022). BBQ: A Hand-Built Bias Benchmark for Question Answering. "
    "Findings of ACL 2022.",
    files=FILES,
    load=load_bbq,
    size=(11954, 150),
)

SUITES = (BBQ,)

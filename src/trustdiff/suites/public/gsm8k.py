"""GSM8K test split (Cobbe et al., 2021) for reasoning capability (DESIGN §5).

Why: the capability gain a reasoning conversion buys is reported beside every trust delta, and
GSM8K is the reference set the built-in capability suite imitates. Each problem is asked with the
built-in suite's instruction (show working, end with "Answer: <number>"); ``gold`` is the number
after the solution's ``####`` line (thousands separators removed), which `numeric@1` compares.
Labels as the built-in suite: ``gold``, ``answer_type="number"``, ``category="gsm8k"``; every
problem is its own cluster (no shared templates), in file order.
"""

from __future__ import annotations

from trustdiff.errors import DataError
from trustdiff.records import Item
from trustdiff.suites.public._common import (
    PublicSuite,
    Unit,
    builtin_setting,
    check_count,
    item,
    jsonl_rows,
    need,
    spread,
    user,
)
from trustdiff.suites.public.fetch import DataFile, github_raw

DIMENSION = "capability"
TEST = DataFile(
    "gsm8k",
    "test.jsonl",
    github_raw(
        "openai/grade-school-math",
        "3101c7d5072418e28b9008a6636bde82a006892c",
        "grade_school_math/data/test.jsonl",
    ),
    "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
    749738,
)


def gold_number(solution: str) -> int | float:
    """The final answer of a GSM8K solution (`#### 1,234` → 1234)."""
    _, sep, tail = solution.rpartition("####")
    if not sep:
        raise DataError(f"{TEST.key}: a solution has no '####' line")
    text = tail.strip().replace(",", "")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{TEST.key}: final answer {text!r} is not a number") from None
    return int(value) if value.is_integer() else value


def load_gsm8k() -> list[Item]:
    """1,319 word problems with numeric gold answers."""
    rows = jsonl_rows(TEST)
    check_count(TEST, rows, 1319)
    instruction: str = builtin_setting("capability_templates.yaml", "instruction")
    units = []
    for n, row in enumerate(rows):
        cluster = f"gsm8k/{n:04d}"
        it = item(
            GSM8K.suite_id,
            DIMENSION,
            user(f"{instruction.strip()}\n\n{need(row, 'question', TEST)}"),
            variant="plain",
            cluster=cluster,
            labels={
                "gold": gold_number(str(need(row, "answer", TEST))),
                "answer_type": "number",
                "category": "gsm8k",
            },
            meta={"category": "gsm8k", "row": n},
        )
        units.append(Unit("gsm8k", cluster, [it]))
    return spread(GSM8K.suite_id, units, shuffle=False)


GSM8K = PublicSuite(
    name="gsm8k",
    dimension=DIMENSION,
    description="GSM8K test split: 1,319 grade-school maths word problems with numeric answers "
    "(reasoning capability, reported beside trust)",
    licence="MIT (OpenAI)",
    source="github.com/openai/grade-school-math @ 3101c7d",
    citation="Cobbe et al. (2021). Training Verifiers to Solve Math Word Problems. "
    "arXiv:2110.14168.",
    files=(TEST,),
    load=load_gsm8k,
    size=(1319, 1319),
)

SUITES = (GSM8K,)

"""Offline numeric final-answer extraction (DESIGN §5, reasoning capability: GSM8K-style).

Why a fixed precedence: models state their final number in many ways, and the derived model's
format may differ from the baseline's; an accuracy gain must not come from the parser reading
one format better. Strongest first (the last occurrence of each wins, as answers restate):
`#### 42` (GSM8K), `\\boxed{42}`, "the (final) answer is 42" (also spelled out: "forty-two"),
then the last number in the text. Numbers may carry currency, thousands separators, decimals,
a sign, a percent sign, or be simple fractions ("3/4"); "$1,234.50" is 1234.5.

Item labels read: `gold` (optional; a number or a numeric string such as "1,234"). Labels:
`correct` / `incorrect` / `unparsed` when a gold is known, else `parsed` / `unparsed`; the score
is the extracted value (None when unparsed).
"""

from __future__ import annotations

import math
import re

from trustdiff.judges.common import Decision, ItemBoundJudge, ItemError
from trustdiff.records import Item

CORRECT, INCORRECT, UNPARSED, PARSED = "correct", "incorrect", "unparsed", "parsed"
_SCAN_CHARS = 8000
_REL_TOL = 1e-6

_NUM = (
    r"(?<![\w.,/])(?P<sign>[-−–])?[ ]?(?:[$€£¥][ ]?)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:/(?P<den>[1-9]\d*)(?!\d|\.\d))?(?![\d,]\d)"
)
_NUMBER = re.compile(_NUM)
_HASHES = re.compile(r"####\s*(?:\*\*)?\s*(" + _NUM.replace(r"(?<![\w.,/])", "") + ")")
_BOXED = re.compile(r"\\boxed\s*\{\s*(?:\\text\{)?([^{}]*)\}")
_ANSWER_IS = re.compile(
    r"(?i:\b(?:final answer|the answer|answer|result|total)\b(?: is| would be| should be| comes to"
    r"| equals| =|:)+\s*(?:\*\*|\$(?=\s*\d)|\\\(|approximately |about |roughly |exactly |"
    r"around |that )*)(?P<rest>[^\n]{0,60})"
)
_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_UNITS = {word: value for value, word in enumerate(_UNIT_WORDS.split())}
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_TENS = {word: 20 + 10 * i for i, word in enumerate(_TENS_WORDS.split())}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_WORDS = re.compile(
    r"(?:(?:" + "|".join([*_UNITS, *_TENS, *_SCALES, "and", "a"]) + r")(?:[\s-]+|$))+"
)


def _to_float(m: re.Match[str]) -> float:
    value = float(m.group("num").replace(",", ""))
    if m.group("den"):
        value /= float(m.group("den"))
    return -value if m.group("sign") else value


def parse_number(text: str) -> float | None:
    """The first number in `text` (with currency, separators, sign, %, fraction), or None."""
    m = _NUMBER.search(text)
    return None if m is None else _to_float(m)


def _words_value(text: str) -> float | None:
    """Value of a spelled-out number opening `text` ("forty-two", "one hundred and five")."""
    m = _WORDS.match(text.lower())
    if m is None:
        return None
    total, current, seen = 0, 0, False
    for word in re.split(r"[\s-]+", m.group(0).strip()):
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word in _SCALES:
            current = max(current, 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, current = total + current, 0
        elif word == "a":
            continue
        seen = seen or word != "and"
    return float(total + current) if seen else None


def extract_number(text: str) -> tuple[float | None, str]:
    """The final numeric answer and how it was found (None when there is no number)."""
    t = text[:_SCAN_CHARS]
    hashes = list(_HASHES.finditer(t))
    if hashes:
        value = parse_number(hashes[-1].group(1))
        if value is not None:
            return value, f"'####' marker: {hashes[-1].group(1).strip()!r}"
    for m in reversed(list(_BOXED.finditer(t))):
        value = parse_number(m.group(1))
        if value is not None:
            return value, f"\\boxed{{{m.group(1).strip()}}}"
    for m in reversed(list(_ANSWER_IS.finditer(t))):
        rest = m.group("rest")
        head = re.split(r"(?<=[a-z])[.!?;]|\bbecause\b|\bsince\b", rest, maxsplit=1)[0]
        number = _NUMBER.search(head)
        value = _to_float(number) if number and number.start() <= 3 else _words_value(head)
        if value is None and number is not None:
            value = _to_float(number)
        if value is not None:
            marker = m.group(0)[: m.start("rest") - m.start()].strip()
            return value, f"answer phrase {marker!r} gives {value:g}"
    numbers = list(_NUMBER.finditer(t))
    if numbers:
        return _to_float(numbers[-1]), f"last number in the text: {numbers[-1].group(0).strip()!r}"
    return None, "no number found"


def _gold(item: Item) -> float | None:
    gold = item.labels.get("gold")
    if gold is None:
        return None
    if isinstance(gold, bool):
        raise ItemError(f"labels['gold'] must be a number, not {gold!r}")
    if isinstance(gold, int | float):
        return float(gold)
    value = parse_number(str(gold))
    if value is None:
        raise ItemError(f"labels['gold'] {gold!r} is not a number")
    return value


class NumericJudge(ItemBoundJudge):
    """Final-number extraction; `correct` / `incorrect` against `item.labels['gold']`."""

    name = "numeric"
    version = "1"
    description = (
        "Offline final-number extraction ('#### 42', \\boxed{42}, 'the answer is 42', last "
        "number); score is the value; label correct/incorrect/unparsed against labels['gold'] "
        "(relative tolerance 1e-6), parsed/unparsed without a gold. Needs the items."
    )

    def _decide_item(self, item: Item, text: str) -> Decision:
        gold = _gold(item)
        value, how = extract_number(text)
        if value is None:
            return Decision(UNPARSED, None, how)
        if gold is None:
            return Decision(PARSED, value, how)
        correct = math.isclose(value, gold, rel_tol=_REL_TOL, abs_tol=_REL_TOL)
        return Decision(CORRECT if correct else INCORRECT, value, f"{how}; gold {gold:g}")

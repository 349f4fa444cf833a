"""Built-in reasoning-capability suite (DESIGN §5 Reasoning capability).

GSM8K-style word problems generated from ``data/capability_templates.yaml``: each template draws
its numbers from declared ranges with an RNG seeded by the template id, rejects draws that break
its ``require`` conditions, and computes the gold answer from its ``answer`` expression with exact
rational arithmetic (``fractions.Fraction``), so a gold can never be off by float rounding.
Expressions are parsed with :mod:`ast` and only arithmetic, comparisons and the template's own
names are allowed — the spec is data, never executed code.

Item fields: ``variant`` = ``plain``; ``cluster`` = template id; ``labels``: ``gold`` (int, or a
float with at most two decimals), ``answer_type`` = ``number``, ``category``; ``meta``:
``template``, ``category``, ``fill``, ``params`` (every drawn and derived value, as int/float),
``name`` (the person in the problem, or None), so the gold can be recomputed independently.
"""

from __future__ import annotations

import ast
import operator
import random
from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from trustdiff.records import Item
from trustdiff.suites._builtin import (
    Id,
    SpecHeader,
    Strict,
    Text,
    chat,
    check_unique,
    load_spec,
    make_item,
    placeholders,
    render,
    require_placeholders,
    round_robin,
    seeded_rng,
)

DIMENSION = "capability"
_DATA_FILE = "capability_templates.yaml"
_MAX_DRAWS = 5000

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _names_in(expr: str) -> set[str]:
    """Parse an expression, reject anything but arithmetic/comparison, return the names used."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"bad expression {expr!r}: {exc.msg}") from exc
    allowed = (
        ast.Expression, ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd, ast.Compare, ast.Name,
        ast.Load, ast.Constant, *_BINARY, *_COMPARE,
    )  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ValueError(f"expression {expr!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and type(node.value) not in (int, float):
            raise ValueError(f"expression {expr!r}: only numeric constants are allowed")
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def evaluate(expr: str, env: Mapping[str, Fraction]) -> Fraction | bool:
    """Evaluate an arithmetic/comparison expression exactly over Fractions."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return Fraction(str(node.value))
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.UnaryOp):
            value = ev(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = ev(comp)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        raise ValueError(f"unsupported node {type(node).__name__}")

    return ev(_parsed(expr))  # type: ignore[no-any-return]


@lru_cache(maxsize=512)
def _parsed(expr: str) -> ast.Expression:
    return ast.parse(expr, mode="eval")


class _Param(Strict):
    """How one number of a problem is drawn."""

    min: float | None = None
    """Smallest value of a range."""
    max: float | None = None
    """Largest value of a range (inclusive)."""
    step: float = Field(default=1, gt=0)
    """Step of a range."""
    values: list[float] | None = None
    """Explicit values instead of a range."""
    money: bool = False
    """Show with two decimals."""

    @model_validator(mode="after")
    def _check(self) -> _Param:
        ranged = self.min is not None and self.max is not None
        if ranged == (self.values is not None):
            raise ValueError("give either min and max, or values")
        if ranged and self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self

    def options(self) -> list[Fraction]:
        """Every value this parameter can take, exactly."""
        if self.values is not None:
            return [Fraction(str(v)) for v in self.values]
        lo, hi, step = Fraction(str(self.min)), Fraction(str(self.max)), Fraction(str(self.step))
        count = int((hi - lo) / step) + 1
        return [lo + i * step for i in range(count)]


class _Template(Strict):
    """One word-problem template."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Kind of arithmetic (rates, percentages, …)."""
    text: Text
    """Problem text with `{param}` fields and optionally `{name}`."""
    params: dict[Id, _Param] = Field(min_length=1)
    """Drawn numbers."""
    derived: dict[Id, Text] = Field(default_factory=dict)
    """Numbers computed from drawn ones, in order."""
    require: list[Text] = Field(default_factory=list)
    """Conditions a draw must meet."""
    answer: Text
    """Expression of the gold answer."""

    @model_validator(mode="after")
    def _check(self) -> _Template:
        known = set(self.params)
        for name, expr in self.derived.items():
            if name in known:
                raise ValueError(f"template {self.id!r}: {name!r} is both drawn and derived")
            if unknown := _names_in(expr) - known:
                raise ValueError(f"template {self.id!r}: {name!r} uses unknown {sorted(unknown)}")
            known.add(name)
        for expr in [*self.require, self.answer]:
            if unknown := _names_in(expr) - known:
                raise ValueError(f"template {self.id!r}: {expr!r} uses unknown {sorted(unknown)}")
        require_placeholders(self.text, known | {"name"}, f"template {self.id!r}")
        return self


class _Spec(SpecHeader):
    """The capability spec file."""

    fills_per_template: int = Field(ge=1)
    """Distinct draws per template."""
    instruction: Text
    """Instruction placed before every problem."""
    names: list[Text] = Field(min_length=1)
    """Names for the `{name}` field."""
    templates: list[_Template] = Field(min_length=1)
    """Templates, in the round-robin order."""

    @model_validator(mode="after")
    def _unique_ids(self) -> _Spec:
        ids = [t.id for t in self.templates]
        if len(set(ids)) != len(ids):
            raise ValueError("template ids must be unique")
        return self


def as_number(value: Fraction) -> int | float:
    """JSON-friendly number: int when whole, else the (exactly representable) decimal."""
    return int(value) if value.denominator == 1 else float(value)


def _shown(value: Fraction, money: bool) -> str:
    if money:
        return f"{float(value):.2f}"
    return str(as_number(value))


def _draw(
    tpl: _Template, options: Mapping[str, list[Fraction]], rng: random.Random
) -> tuple[dict[str, Fraction], Fraction] | None:
    """One draw of the parameters; None if a condition fails or the answer needs over 2 decimals."""
    env = {name: rng.choice(values) for name, values in options.items()}
    try:
        for name, expr in tpl.derived.items():
            env[name] = Fraction(evaluate(expr, env))
        if not all(evaluate(expr, env) for expr in tpl.require):
            return None
        gold = Fraction(evaluate(tpl.answer, env))
    except ZeroDivisionError:
        return None
    if (gold * 100).denominator != 1:
        return None
    return env, gold


def _stream(spec: _Spec, tpl: _Template) -> list[list[Item]]:
    rng = seeded_rng(spec.name, tpl.id)
    seen: set[tuple[tuple[str, Fraction], ...]] = set()
    stream: list[list[Item]] = []
    options = {name: p.options() for name, p in tpl.params.items()}
    for _ in range(_MAX_DRAWS):
        if len(stream) == spec.fills_per_template:
            return stream
        drawn = _draw(tpl, options, rng)
        name = rng.choice(spec.names)
        if drawn is None or (key := tuple(sorted(drawn[0].items()))) in seen:
            continue
        seen.add(key)
        env, gold = drawn
        money = {n for n, p in tpl.params.items() if p.money}
        shown = {n: _shown(v, n in money) for n, v in env.items()} | {"name": name}
        problem = render(tpl.text, shown)
        stream.append(
            [
                make_item(
                    spec.suite_id,
                    DIMENSION,
                    chat(f"{spec.instruction}\n\n{problem}"),
                    variant="plain",
                    cluster=tpl.id,
                    labels={
                        "gold": as_number(gold),
                        "answer_type": "number",
                        "category": tpl.category,
                    },
                    meta={
                        "template": tpl.id,
                        "category": tpl.category,
                        "fill": len(stream),
                        "params": {n: as_number(v) for n, v in env.items()},
                        "name": name if "name" in placeholders(tpl.text) else None,
                    },
                )
            ]
        )
    if len(stream) < spec.fills_per_template:
        raise ValueError(
            f"template {tpl.id!r}: only {len(stream)} valid distinct draws in {_MAX_DRAWS}"
        )
    return stream


def _items(spec: _Spec, source: str) -> list[Item]:
    return check_unique(round_robin([_stream(spec, t) for t in spec.templates]), source)


def load_capability(path: str | Path | None = None) -> list[Item]:
    """Load the built-in capability suite, or a spec in the same format from `path`."""
    return load_spec(_DATA_FILE, _Spec, _items, path)

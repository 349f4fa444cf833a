"""Built-in OOD-robustness suite (DESIGN §5 OOD robustness).

Two formats from ``data/ood_templates.yaml``, interleaved so every prefix holds both.

Style items: a review-sentiment task asked on the original text and on rule-based style shifts
of the very same text (``shakespeare``, ``social_media``, ``typos``), adjacent and in one cluster,
so the accuracy drop is measured on matched inputs. The rules (phrase replacements, prefixes,
suffixes, lower-casing, seeded letter swaps) are data, not code; a style that leaves a text
unchanged is an error.

Knowledge items: questions nobody can answer (future events, invented places, private facts) with
an "I don't know" option, plus answerable common-knowledge controls (days in a month, computed
here; capitals and polygon sides, from a table), so a model that always says "I don't know"
shows up.

Labels, style (``format="style"``): ``gold`` (``positive`` | ``negative``), ``choices``,
``gold_index``, ``style`` (``original`` or the style name), ``original_id`` (id of the
unperturbed item of the same fill; equal to its own id for the original). Variant = ``original``
| ``style:<name>``.

Labels, knowledge (``format="knowledge"``): ``answerable`` (bool), ``choices`` (including
"I don't know"), ``idk_index``; answerable controls also ``gold`` (answer text) and
``gold_index``. Variant = ``unanswerable`` | ``answerable``.

All labels carry ``category``; cluster = template id; meta holds ``template``, ``category``,
``format``, ``fill`` and the values a gold can be recomputed from.
"""

from __future__ import annotations

import calendar
import random
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from trustdiff.records import Item
from trustdiff.suites._builtin import (
    IDK,
    Id,
    SpecHeader,
    Strict,
    Text,
    chat,
    check_unique,
    interleave,
    load_spec,
    make_item,
    mc_prompt,
    render,
    require_placeholders,
    round_robin,
    sample_fills,
    seeded_rng,
)

DIMENSION = "ood"
_DATA_FILE = "ood_templates.yaml"
POSITIVE, NEGATIVE = "positive", "negative"
MONTHS = tuple(calendar.month_name)[1:]


class _SentimentTemplate(Strict):
    """One review template with positive and negative verdicts."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Domain of the review (food, travel, …)."""
    text: Text
    """Review text with `{target}` and `{verdict}` fields."""
    targets: list[Text] = Field(min_length=1)
    """What is reviewed."""
    positive: list[Text] = Field(min_length=1)
    """Verdicts with positive sentiment."""
    negative: list[Text] = Field(min_length=1)
    """Verdicts with negative sentiment."""

    @model_validator(mode="after")
    def _check(self) -> _SentimentTemplate:
        require_placeholders(self.text, {"target", "verdict"}, f"template {self.id!r}")
        return self


class _StyleTask(Strict):
    """The gold-labelled task that is style-shifted."""

    fills_per_template: int = Field(ge=2)
    """Reviews per template, alternating positive/negative."""
    stem: Text
    """Question with a `{text}` field for the review."""
    templates: list[_SentimentTemplate] = Field(min_length=1)
    """Templates, in the round-robin order."""


class _Style(Strict):
    """Rules of one style shift, applied in field order."""

    replacements: list[tuple[Text, str]] = Field(default_factory=list)
    """Whole-word, case-insensitive (old, new) phrase replacements."""
    prefixes: list[str] = Field(default_factory=list)
    """One is prepended (seeded choice)."""
    suffixes: list[str] = Field(default_factory=list)
    """One is appended (seeded choice)."""
    lowercase: bool = False
    """Lower-case the text first."""
    strip_final_period: bool = False
    """Drop the closing full stop."""
    typo_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of words of 5+ letters given a letter swap (at least one)."""


class _Unanswerable(Strict):
    """A question template nobody can answer."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Why it is unknowable (future event, invented entity, private fact)."""
    question: Text
    """Question with `{slot}` fields."""
    slots: dict[Id, list[Text]]
    """Values per slot."""
    options: list[Text] = Field(min_length=2)
    """Plausible answers the distractors are drawn from."""

    @model_validator(mode="after")
    def _check(self) -> _Unanswerable:
        require_placeholders(self.question, set(self.slots), f"template {self.id!r}")
        return self


class _Answerable(Strict):
    """A common-knowledge control question with a computed answer."""

    id: Id
    """Template id; becomes the items' cluster."""
    category: Id
    """Domain of the question."""
    kind: Literal["days_in_month", "table"]
    """`days_in_month` (computed with `calendar`) or `table` (looked up)."""
    question: Text
    """Question with `{month}`/`{year}` or `{key}`."""
    table: dict[Text, Text] = Field(default_factory=dict)
    """For `table`: key → answer."""

    @model_validator(mode="after")
    def _check(self) -> _Answerable:
        needs = {"days_in_month": {"month", "year"}, "table": {"key"}}
        require_placeholders(self.question, needs[self.kind], f"template {self.id!r}")
        if self.kind == "table" and len(set(self.table.values())) < 3:
            raise ValueError(f"template {self.id!r}: a table needs at least 3 distinct answers")
        return self


class _Knowledge(Strict):
    """The knowledge part of the spec."""

    fills_per_template: int = Field(ge=1)
    """Questions per template."""
    distractors: int = Field(ge=2, le=6)
    """Options besides "I don't know" (gold included for controls)."""
    stem: Text
    """Prompt with a `{question}` field."""
    unanswerable: list[_Unanswerable] = Field(min_length=1)
    """Unknowable question templates."""
    answerable: list[_Answerable] = Field(default_factory=list)
    """Answerable control templates."""

    @model_validator(mode="after")
    def _check(self) -> _Knowledge:
        require_placeholders(self.stem, {"question"}, "knowledge stem")
        return self


class _Spec(SpecHeader):
    """The OOD spec file."""

    style_task: _StyleTask
    """The style-shifted task."""
    styles: dict[Id, _Style] = Field(min_length=1)
    """Style name → rules; each becomes a `style:<name>` variant."""
    knowledge: _Knowledge
    """Knowledge questions."""

    @model_validator(mode="after")
    def _check(self) -> _Spec:
        ids = [t.id for t in self.style_task.templates]
        ids += [t.id for t in self.knowledge.unanswerable + self.knowledge.answerable]
        if len(set(ids)) != len(ids):
            raise ValueError("template ids must be unique across both formats")
        return self


def _replace(text: str, old: str, new: str) -> str:
    """Whole-word, case-insensitive replacement that keeps a leading capital."""

    def sub(m: re.Match[str]) -> str:
        return new[:1].upper() + new[1:] if m.group(0)[:1].isupper() else new

    return re.sub(rf"\b{re.escape(old)}\b", sub, text, flags=re.IGNORECASE)


def _typos(text: str, rate: float, rng: random.Random) -> str:
    """Swap two adjacent inner letters in about `rate` of the longer words (at least one)."""
    words = list(re.finditer(r"[A-Za-z]{5,}", text))
    chosen = [w for w in words if rng.random() < rate] or words[:1]
    chars = list(text)
    for w in chosen:
        word = w.group(0)
        spots = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
        if spots:
            i = w.start() + rng.choice(spots)
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def apply_style(text: str, style: _Style, rng: random.Random) -> str:
    """Render `text` in a style; the rules never touch the meaning-bearing structure."""
    out = text.lower() if style.lowercase else text
    for old, new in style.replacements:
        out = _replace(out, old, new)
    if style.strip_final_period:
        out = out.rstrip(".")
    if style.typo_rate:
        out = _typos(out, style.typo_rate, rng)
    if style.prefixes:
        prefix = rng.choice(style.prefixes)
        if prefix.rstrip().endswith(",") and not out.startswith("I "):
            out = out[:1].lower() + out[1:]  # "Verily, we had …", not "Verily, We had …"
        out = prefix + out
    if style.suffixes:
        out += rng.choice(style.suffixes)
    return out


def _style_stream(spec: _Spec, tpl: _SentimentTemplate, k0: int) -> list[list[Item]]:
    """Fills alternate positive/negative; each fill is the original plus every style."""
    task = spec.style_task
    rng = seeded_rng(spec.name, tpl.id)
    pools = {
        pol: sample_fills(
            {"target": tpl.targets, "verdict": verdicts},
            (task.fills_per_template + (pol == POSITIVE)) // 2,
            rng,
            f"template {tpl.id!r} ({pol})",
        )
        for pol, verdicts in ((POSITIVE, tpl.positive), (NEGATIVE, tpl.negative))
    }
    stream: list[list[Item]] = []
    for index in range(task.fills_per_template):
        gold = POSITIVE if index % 2 == 0 else NEGATIVE
        values = pools[gold][index // 2]
        original = render(tpl.text, values)
        choices = [POSITIVE, NEGATIVE] if (k0 + index) % 2 == 0 else [NEGATIVE, POSITIVE]
        texts = {"original": original}
        for name, style in spec.styles.items():
            shifted = apply_style(original, style, seeded_rng(spec.name, tpl.id, index, name))
            if shifted == original:
                raise ValueError(f"style {name!r} leaves {original!r} unchanged")
            texts[name] = shifted
        unit: list[Item] = []
        for name, text in texts.items():
            prompt = mc_prompt(render(task.stem, {"text": text}), choices)
            messages = chat(prompt)
            variant = "original" if name == "original" else f"style:{name}"
            original_id = unit[0].id if unit else Item.make_id(spec.suite_id, messages, variant)
            labels = {
                "format": "style",
                "gold": gold,
                "choices": list(choices),
                "gold_index": choices.index(gold),
                "style": name,
                "original_id": original_id,
                "category": tpl.category,
            }
            meta: dict[str, Any] = {"template": tpl.id, "category": tpl.category}
            meta |= {"format": "style", "fill": index, "slots": values}
            unit.append(
                make_item(
                    spec.suite_id,
                    DIMENSION,
                    messages,
                    variant=variant,
                    cluster=tpl.id,
                    labels=labels,
                    meta=meta,
                )
            )
        stream.append(unit)
    return stream


def _answer(tpl: _Answerable, rng: random.Random) -> tuple[dict[str, str], str, list[str]]:
    """Slot values, the computed gold answer, and the pool its distractors come from."""
    if tpl.kind == "days_in_month":
        year, month = rng.randint(1900, 2030), rng.randint(1, 12)
        values = {"month": MONTHS[month - 1], "year": str(year)}
        return values, str(calendar.monthrange(year, month)[1]), ["28", "29", "30", "31"]
    key = rng.choice(sorted(tpl.table))
    return {"key": key}, tpl.table[key], sorted(set(tpl.table.values()))


def _knowledge_item(
    spec: _Spec,
    tpl: _Unanswerable | _Answerable,
    index: int,
    values: dict[str, str],
    choices: list[str],
    gold: str | None,
) -> Item:
    labels: dict[str, Any] = {
        "format": "knowledge",
        "answerable": gold is not None,
        "choices": choices,
        "idk_index": choices.index(IDK),
        "category": tpl.category,
    }
    if gold is not None:
        labels |= {"gold": gold, "gold_index": choices.index(gold)}
    question = render(tpl.question, values)
    return make_item(
        spec.suite_id,
        DIMENSION,
        chat(mc_prompt(render(spec.knowledge.stem, {"question": question}), choices)),
        variant="unanswerable" if gold is None else "answerable",
        cluster=tpl.id,
        labels=labels,
        meta={
            "template": tpl.id,
            "category": tpl.category,
            "format": "knowledge",
            "fill": index,
            "slots": values,
        },
    )


def _knowledge_stream(spec: _Spec, tpl: _Unanswerable | _Answerable) -> list[list[Item]]:
    """One single-item unit per fill; the "I don't know" position is shuffled like the rest."""
    kn = spec.knowledge
    stream: list[list[Item]] = []
    if isinstance(tpl, _Unanswerable):
        fills = sample_fills(
            tpl.slots, kn.fills_per_template, seeded_rng(spec.name, tpl.id), tpl.id
        )
        for index, values in enumerate(fills):
            rng = seeded_rng(spec.name, tpl.id, index)
            choices = [*rng.sample(tpl.options, min(kn.distractors, len(tpl.options))), IDK]
            rng.shuffle(choices)
            stream.append([_knowledge_item(spec, tpl, index, values, choices, None)])
        return stream
    seen: set[str] = set()
    for index in range(kn.fills_per_template):
        for attempt in range(100):  # a computed question may repeat an earlier one: redraw
            rng = seeded_rng(spec.name, tpl.id, index, attempt)
            values, gold, pool = _answer(tpl, rng)
            if render(tpl.question, values) not in seen:
                break
        else:
            raise ValueError(f"template {tpl.id!r}: cannot draw distinct questions")
        seen.add(render(tpl.question, values))
        choices = [gold, *rng.sample([p for p in pool if p != gold], kn.distractors - 1), IDK]
        rng.shuffle(choices)
        stream.append([_knowledge_item(spec, tpl, index, values, choices, gold)])
    return stream


def _items(spec: _Spec, source: str) -> list[Item]:
    style: list[list[list[Item]]] = []
    for tpl in spec.style_task.templates:
        style.append(_style_stream(spec, tpl, len(style) * spec.style_task.fills_per_template))
    knowledge = [
        _knowledge_stream(spec, tpl)
        for tpl in spec.knowledge.unanswerable + spec.knowledge.answerable
    ]
    return check_unique(round_robin(interleave(style, knowledge)), source)


def load_ood(path: str | Path | None = None) -> list[Item]:
    """Load the built-in OOD suite, or a spec in the same format from `path`."""
    return load_spec(_DATA_FILE, _Spec, _items, path)

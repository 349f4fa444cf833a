"""DecodingTrust OOD robustness data (Wang et al., 2023) for the OOD dimension (DESIGN §5).

Why both halves: DESIGN's OOD metrics are DecodingTrust's — accuracy drop under style shift and
the knowledge score RR + (1 − RR)·MACC on questions a model may not know — and DecodingTrust
publishes the inputs for both.

Style (``format="style"``): 872 SST-2 dev sentences, each in its original wording and in the 10
published style transformations (augment, Bible, romantic, Shakespeare, tweet; ``p0`` / ``p0.6``
/ ``w`` variants), asked as the built-in suite's sentiment question with lettered
positive/negative choices. Labels as the built-in style items: ``gold``, ``choices``,
``gold_index``, ``style`` (``original`` or the DecodingTrust style name), ``original_id``;
variant ``original`` | ``style:<name>``; cluster = sentence.

Knowledge (``format="knowledge"``): RealtimeQA news-quiz questions from 2020 (855) and 2023
(263), 4 options plus "I don't know" (as DecodingTrust adds it), with the question date stated.
2023 questions postdate the models DecodingTrust audited, so they are labelled
``answerable=False`` (variant ``unanswerable``) and 2020 ones ``answerable=True``; both keep the
gold option (``gold_index``), so a model that does know a 2023 answer is scored correct, not
penalised. For models trained after 2023, read ``idk_rate_unanswerable`` with that in mind.
Cluster = quiz (date + source).

Order: every prefix alternates an (original, one shifted) sentence pair — the style rotating over
sentences — with a knowledge question; the other 9 styles of each sentence follow at the end.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trustdiff.records import Item
from trustdiff.suites._builtin import IDK, mc_prompt
from trustdiff.suites.public._common import (
    PublicSuite,
    Unit,
    builtin_setting,
    check_count,
    item,
    json_doc,
    need,
    spread,
    user,
)
from trustdiff.suites.public.decodingtrust import CITATION, LICENCE, SOURCE, dt_file

DIMENSION = "ood"
STYLE = dt_file(
    "ood/style.json", "a68dbbad0913dfaed7bc388abb3e40900f7011d4d827d800b082e7ff51ed733e", 2097210
)
KNOWLEDGE = dt_file(
    "ood/knowledge.json",
    "77839ce7d0ce80ab6bbb7389a6a4a8a2a927e4f54e87cf71eca879fec7c65126",
    1020186,
)
SHIFTS = (
    "augment",
    "shake_w",
    "shake_p0",
    "shake_p0.6",
    "bible_p0",
    "bible_p0.6",
    "romantic_p0",
    "romantic_p0.6",
    "tweet_p0",
    "tweet_p0.6",
)
N_SENTENCES = 872
POSITIVE, NEGATIVE = "positive", "negative"


def _style_units(suite_id: str) -> tuple[list[Unit], list[Item]]:
    """(original + rotating shift) units, and the remaining shifted items in sentence order."""
    dev = need(json_doc(STYLE), "dev", STYLE)
    stem: str = builtin_setting("ood_templates.yaml", "style_task", "stem")
    for name in ("base", *SHIFTS):
        check_count(STYLE, need(dev, name, STYLE), N_SENTENCES)
    pairs: list[Unit] = []
    rest: list[Item] = []
    for i, base in enumerate(dev["base"]):
        gold = POSITIVE if str(need(base, "label", STYLE)) == "1" else NEGATIVE
        choices = [POSITIVE, NEGATIVE] if i % 2 == 0 else [NEGATIVE, POSITIVE]
        cluster = f"sst2/{base.get('id', i)}"
        original_id = ""
        made: dict[str, Item] = {}
        for name in ("original", *SHIFTS):
            row = base if name == "original" else dev[name][i]
            text = " ".join(str(need(row, "sentence", STYLE)).split())
            messages = user(mc_prompt(stem.format(text=text), choices))
            variant = "original" if name == "original" else f"style:{name}"
            made[name] = it = item(
                suite_id,
                DIMENSION,
                messages,
                variant=variant,
                cluster=cluster,
                labels={
                    "format": "style",
                    "gold": gold,
                    "choices": list(choices),
                    "gold_index": choices.index(gold),
                    "style": name,
                    "original_id": original_id or Item.make_id(suite_id, messages, variant),
                    "category": "sst2",
                },
                meta={"category": "sst2", "format": "style", "sentence_id": base.get("id", i)},
            )
            original_id = original_id or it.id
        first = SHIFTS[i % len(SHIFTS)]
        pairs.append(Unit("style", cluster, [made["original"], made[first]]))
        rest.extend(made[name] for name in SHIFTS if name != first)
    return pairs, rest


def _question(row: dict[str, Any]) -> str:
    """The quiz question with its date, since "this week" questions need one."""
    sentence = str(need(row, "question_sentence", KNOWLEDGE))
    try:
        day = dt.datetime.strptime(str(row.get("question_date")), "%Y/%m/%d").date()
    except ValueError:
        return sentence
    return f"Today is {day.day} {day:%B %Y}. {sentence}"


def _knowledge_units(suite_id: str) -> list[Unit]:
    test = need(json_doc(KNOWLEDGE), "test", KNOWLEDGE)
    stem: str = builtin_setting("ood_templates.yaml", "knowledge", "stem")
    units: list[Unit] = []
    for split, expected in (("qa_2020", 855), ("qa_2023", 263)):
        rows = need(test, split, KNOWLEDGE)
        check_count(KNOWLEDGE, rows, expected)
        for row in rows:
            options = [str(c) for c in need(row, "choices", KNOWLEDGE)]
            gold_index = int(need(row, "answer", KNOWLEDGE)[0])
            choices = [*options, IDK]
            answerable = split == "qa_2020"
            cluster = f"{split}/{row.get('question_date')}/{row.get('question_source')}"
            it = item(
                suite_id,
                DIMENSION,
                user(mc_prompt(stem.format(question=_question(row)), choices)),
                variant="answerable" if answerable else "unanswerable",
                cluster=cluster,
                labels={
                    "format": "knowledge",
                    "answerable": answerable,
                    "choices": choices,
                    "idk_index": len(options),
                    "gold": options[gold_index],
                    "gold_index": gold_index,
                    "category": split,
                },
                meta={
                    "category": split,
                    "format": "knowledge",
                    "question_id": row.get("question_id"),
                    "question_url": row.get("question_url"),
                },
            )
            units.append(Unit("knowledge", cluster, [it]))
    return units


def load_dt_ood() -> list[Item]:
    """Style pairs interleaved with knowledge questions, then the remaining style shifts."""
    suite_id = DT_OOD.suite_id
    pairs, rest = _style_units(suite_id)
    return spread(suite_id, [*pairs, *_knowledge_units(suite_id)]) + rest


DT_OOD = PublicSuite(
    name="dt-ood",
    dimension=DIMENSION,
    description="DecodingTrust OOD: 872 SST-2 sentences in original wording and 10 style "
    "shifts (sentiment), and 1,118 RealtimeQA questions from 2020 and 2023 with an "
    '"I don\'t know" option',
    licence=LICENCE + "; SST-2 and RealtimeQA material keeps its own licences",
    source=SOURCE,
    citation=CITATION + " Kasai et al. (2022). RealTime QA: What's the Answer Right Now? "
    "Socher et al. (2013). Recursive Deep Models for Semantic Compositionality Over a "
    "Sentiment Treebank. EMNLP 2013.",
    files=(STYLE, KNOWLEDGE),
    load=load_dt_ood,
    size=(10710, 984),
)

SUITES = (DT_OOD,)

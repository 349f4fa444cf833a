"""Public refusal benchmarks for the safety dimension (DESIGN §5 Safety).

Why these: XSTest is the one public set with *benign look-alikes* (safe prompts with unsafe-
sounding words) beside their unsafe contrasts, so it measures both sides of refusal calibration
on its own; StrongREJECT, HarmBench, AdvBench, SimpleSafetyTests and Do-Not-Answer are harmful
requests only and add breadth on the refusal side. Items carry the labels `dimensions/safety.py`
reads: ``harmful`` (bool) plus ``category``; variant ``harmful`` / ``benign`` as in the built-in
contrast suite, cluster = the upstream category (XSTest: prompt type), ``meta`` the upstream row.

The harmful prompts are loaded exactly as published (we did not write them): the loaders never
print or log their text, and reports redact answers to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trustdiff.records import Item
from trustdiff.suites.public._common import (
    PublicSuite,
    Unit,
    check_count,
    csv_rows,
    item,
    need,
    spread,
    user,
)
from trustdiff.suites.public.fetch import DataFile, github_raw

DIMENSION = "safety"

XSTEST_FILE = DataFile(
    "xstest",
    "xstest_prompts.csv",
    github_raw(
        "paul-rottger/exaggerated-safety",
        "d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d",
        "xstest_prompts.csv",
    ),
    "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a",
    38719,
)
STRONGREJECT_FILE = DataFile(
    "strongreject",
    "strongreject_dataset.csv",
    github_raw(
        "alexandrasouly/strongreject",
        "f7cad6c17e624e21d8df2278e918ae1dddb4cb56",
        "strongreject_dataset/strongreject_dataset.csv",
    ),
    "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381",
    56359,
)
_HARMBENCH_COMMIT = "8e1604d1171fe8a48d8febecd22f600e462bdcdd"
HARMBENCH_FILES = tuple(
    DataFile(
        "harmbench",
        f"harmbench_behaviors_text_{split}.csv",
        github_raw(
            "centerforaisafety/HarmBench",
            _HARMBENCH_COMMIT,
            f"data/behavior_datasets/harmbench_behaviors_text_{split}.csv",
        ),
        sha,
        size,
    )
    for split, sha, size in (
        ("test", "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29", 160828),
        ("val", "7bfaaa5e2b9b95002c89e2d33c019f58e9e8496e2fc65d368f1eeb8179e69534", 38024),
    )
)
ADVBENCH_FILE = DataFile(
    "advbench",
    "harmful_behaviors.csv",
    github_raw(
        "llm-attacks/llm-attacks",
        "098262edf85f807224e70ecd87b9d83716bf6b73",
        "data/advbench/harmful_behaviors.csv",
    ),
    "6cd1a5c63c07610d7eb67307772ee5606017ee950b5770ab288a2c487489d3e1",
    82125,
)
SST_FILE = DataFile(
    "simplesafetytests",
    "SimpleSafetyTests - test cases.csv",
    github_raw(
        "bertiev/SimpleSafetyTests",
        "d7aee9a9422a5a5488f478fd79c2479c891c0f3b",
        "SimpleSafetyTests - test cases.csv",
    ),
    "6d95a1301e0d0f3a3c4cf5392f4afff11ad6e3066f95d23aaa138d44aedf986c",
    12610,
)
DNA_FILE = DataFile(
    "do_not_answer",
    "do_not_answer_en.csv",
    github_raw(
        "Libr-AI/do-not-answer",
        "460703484df354958a5e1cd7378a38fcb94a2f3e",
        "datasets/Instruction/do_not_answer_en.csv",
    ),
    "06acfa39a06a1b33d1f264ce41b4f7a95812010c594fb733ae4717ee0a4544fc",
    329395,
)


def _harmful(
    suite_id: str, prompt: str, category: str, cluster: str, group: str, meta: Mapping[str, Any]
) -> Unit:
    """One harmful request (refusal expected) as a single-item unit."""
    it = item(
        suite_id,
        DIMENSION,
        user(prompt),
        variant="harmful",
        cluster=cluster,
        labels={"harmful": True, "category": category},
        meta={"category": category, **meta},
    )
    return Unit(group, cluster, [it])


def load_xstest() -> list[Item]:
    """450 prompts: 250 safe (10 types) that should be answered, 200 unsafe contrasts (8 types).

    Cluster = XSTest ``type``; groups alternate safe and unsafe types so every prefix has both.
    """
    rows = csv_rows(XSTEST_FILE)
    check_count(XSTEST_FILE, rows, 450)
    units = []
    for row in rows:
        kind, label = need(row, "type", XSTEST_FILE), need(row, "label", XSTEST_FILE)
        harmful = label == "unsafe"
        it = item(
            XSTEST.suite_id,
            DIMENSION,
            user(need(row, "prompt", XSTEST_FILE)),
            variant="harmful" if harmful else "benign",
            cluster=kind,
            labels={"harmful": harmful, "category": kind, "focus": row.get("focus", "")},
            meta={
                "category": kind,
                "source_id": row.get("id", ""),
                "focus": row.get("focus", ""),
                "note": row.get("note", ""),
            },
        )
        units.append(Unit(label, kind, [it]))
    return spread(XSTEST.suite_id, units)


def load_strongreject() -> list[Item]:
    """313 forbidden prompts in 6 categories (cluster = category); the score metric needs an
    LLM judge, refusal calibration does not."""
    rows = csv_rows(STRONGREJECT_FILE)
    check_count(STRONGREJECT_FILE, rows, 313)
    units = []
    for n, row in enumerate(rows):
        category = need(row, "category", STRONGREJECT_FILE)
        meta = {"source": row.get("source", ""), "row": n}
        prompt = need(row, "forbidden_prompt", STRONGREJECT_FILE)
        units.append(_harmful(STRONGREJECT.suite_id, prompt, category, category, category, meta))
    return spread(STRONGREJECT.suite_id, units)


def load_harmbench() -> list[Item]:
    """Standard and contextual text behaviours of the test and val splits (300 of 400).

    Contextual behaviours are sent as HarmBench formats them (context, a ``---`` rule, then the
    request). The 100 copyright behaviours are left out: they test verbatim reproduction of
    lyrics and books, scored by hashing, not refusal. Cluster = semantic category.
    """
    units = []
    for f, expected in zip(HARMBENCH_FILES, (320, 80), strict=True):
        rows = csv_rows(f)
        check_count(f, rows, expected)
        split = f.path.rsplit("_", 1)[1].removesuffix(".csv")
        for row in rows:
            functional = need(row, "FunctionalCategory", f)
            if functional == "copyright":
                continue
            behaviour, context = need(row, "Behavior", f), row.get("ContextString", "")
            prompt = f"{context}\n\n---\n\n{behaviour}" if context.strip() else behaviour
            category = need(row, "SemanticCategory", f)
            meta = {
                "behavior_id": row.get("BehaviorID", ""),
                "functional_category": functional,
                "split": split,
            }
            units.append(_harmful(HARMBENCH.suite_id, prompt, category, category, category, meta))
    return spread(HARMBENCH.suite_id, units)


def load_advbench() -> list[Item]:
    """520 harmful behaviours (the ``goal`` column; the attack ``target`` is not used).

    AdvBench has no categories: every behaviour is its own cluster, in file order.
    """
    rows = csv_rows(ADVBENCH_FILE)
    check_count(ADVBENCH_FILE, rows, 520)
    units = [
        _harmful(
            ADVBENCH.suite_id,
            need(row, "goal", ADVBENCH_FILE),
            "advbench",
            f"advbench/{n:03d}",
            "advbench",
            {"row": n},
        )
        for n, row in enumerate(rows)
    ]
    return spread(ADVBENCH.suite_id, units, shuffle=False)


def load_simplesafetytests() -> list[Item]:
    """100 clear-cut harmful prompts, 20 per harm area (cluster = harm area)."""
    rows = csv_rows(SST_FILE)
    check_count(SST_FILE, rows, 100)
    units = []
    for row in rows:
        area = need(row, "harm_area", SST_FILE)
        meta = {"source_id": row.get("id", ""), "prompt_category": row.get("category", "")}
        prompt = need(row, "prompts_final", SST_FILE)
        units.append(_harmful(SST.suite_id, prompt, area, area, area, meta))
    return spread(SST.suite_id, units)


def load_do_not_answer() -> list[Item]:
    """939 instructions a responsible model should not follow; category = risk area, cluster =
    type of harm (12). NON-COMMERCIAL licence: not part of any profile."""
    rows = csv_rows(DNA_FILE)
    check_count(DNA_FILE, rows, 939)
    units = []
    for row in rows:
        area, harm = need(row, "risk_area", DNA_FILE), need(row, "types_of_harm", DNA_FILE)
        meta = {"source_id": row.get("id", ""), "specific_harm": row.get("specific_harms", "")}
        prompt = need(row, "question", DNA_FILE)
        units.append(_harmful(DO_NOT_ANSWER.suite_id, prompt, area, harm, area, meta))
    return spread(DO_NOT_ANSWER.suite_id, units)


XSTEST = PublicSuite(
    name="xstest",
    dimension=DIMENSION,
    description="XSTest: 250 safe prompts that merely sound unsafe (should be answered) and 200 "
    "unsafe contrast prompts (should be refused); over-refusal and refusal in one set",
    licence="CC-BY-4.0",
    source="github.com/paul-rottger/exaggerated-safety @ d7bb5bd",
    citation="Röttger et al. (2024). XSTest: A Test Suite for Identifying Exaggerated Safety "
    "Behaviours in Large Language Models. NAACL 2024.",
    files=(XSTEST_FILE,),
    load=load_xstest,
    size=(450, 18),
)
STRONGREJECT = PublicSuite(
    name="strongreject",
    dimension=DIMENSION,
    description="StrongREJECT: 313 forbidden prompts in 6 harm categories (refusal expected)",
    licence="MIT (Center for Human-Compatible AI); prompts taken from prior work keep their "
    "original licences",
    source="github.com/alexandrasouly/strongreject @ f7cad6c",
    citation="Souly et al. (2024). A StrongREJECT for Empty Jailbreaks. arXiv:2402.10260.",
    files=(STRONGREJECT_FILE,),
    load=load_strongreject,
    size=(313, 6),
)
HARMBENCH = PublicSuite(
    name="harmbench",
    dimension=DIMENSION,
    description="HarmBench text behaviours, test + val: 200 standard and 100 contextual "
    "(refusal expected); the 100 copyright behaviours are skipped (hash-scored reproduction, "
    "not refusal)",
    licence="MIT (centerforaisafety)",
    source="github.com/centerforaisafety/HarmBench @ 8e1604d",
    citation="Mazeika et al. (2024). HarmBench: A Standardized Evaluation Framework for "
    "Automated Red Teaming and Robust Refusal. ICML 2024.",
    files=HARMBENCH_FILES,
    load=load_harmbench,
    size=(300, 6),
)
ADVBENCH = PublicSuite(
    name="advbench",
    dimension=DIMENSION,
    description="AdvBench harmful behaviours: 520 harmful instructions (refusal expected)",
    licence="MIT (Andy Zou, llm-attacks)",
    source="github.com/llm-attacks/llm-attacks @ 098262e",
    citation="Zou et al. (2023). Universal and Transferable Adversarial Attacks on Aligned "
    "Language Models. arXiv:2307.15043.",
    files=(ADVBENCH_FILE,),
    load=load_advbench,
    size=(520, 520),
)
SST = PublicSuite(
    name="simplesafetytests",
    dimension=DIMENSION,
    description="SimpleSafetyTests: 100 clear-cut harmful prompts over 5 harm areas (refusal "
    "expected)",
    licence="CC-BY-4.0",
    source="github.com/bertiev/SimpleSafetyTests @ d7aee9a",
    citation="Vidgen et al. (2023). SimpleSafetyTests: a Test Suite for Identifying Critical "
    "Safety Risks in Large Language Models. arXiv:2311.08370.",
    files=(SST_FILE,),
    load=load_simplesafetytests,
    size=(100, 5),
)
DO_NOT_ANSWER = PublicSuite(
    name="do-not-answer",
    dimension=DIMENSION,
    description="Do-Not-Answer: 939 instructions a responsible model should not follow, over 5 "
    "risk areas and 12 harm types (refusal expected); NON-COMMERCIAL data licence",
    licence="CC BY-NC-SA 4.0",
    source="github.com/Libr-AI/do-not-answer @ 4607034",
    citation="Wang et al. (2024). Do-Not-Answer: Evaluating Safeguards in LLMs. Findings of "
    "EACL 2024.",
    files=(DNA_FILE,),
    load=load_do_not_answer,
    size=(938, 12),
    non_commercial=True,
)

SUITES = (XSTEST, STRONGREJECT, HARMBENCH, ADVBENCH, SST, DO_NOT_ANSWER)

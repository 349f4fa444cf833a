"""DecodingTrust toxicity and stereotype data (Wang et al., 2023) for toxicity and bias (DESIGN §5).

Why DecodingTrust: its toxicity and stereotype protocols are the ones DESIGN §5 metrics follow
(expected maximum toxicity under a benign and an adversarial system prompt; agreementIndex under
benign / untargeted / targeted system prompts), so its public prompts plug straight in.

``dt-toxicity``: the RealToxicityPrompts subset DecodingTrust samples — 1,196 "challenging" toxic
prompt openings and 1,200 non-toxic ones — each asked to be continued under the built-in toxicity
suite's benign and adversarial system prompts (DecodingTrust builds its system prompts in code,
not data; ours keep public and built-in results comparable). Labels as the built-in suite:
``kind="continuation"``, ``category`` (``toxic`` | ``nontoxic``), plus ``prompt_toxicity`` (the
Perspective score RealToxicityPrompts ships). Variant ``benign_system`` | ``adversarial_system``,
cluster = source document (prompts cut from one document are resampled together).

``dt-stereotype``: 16 stereotype topics × 24 demographic groups × 3 phrasings (1,152 statements),
each under the three system prompts of ``system_prompts.csv`` (``[target_group]`` filled in for the
targeted one). Labels as the built-in agreement items: ``format="agreement"``, ``stereotype``,
``target_group``, ``statement``, ``category`` (topic); cluster = topic.
"""

from __future__ import annotations

from trustdiff.errors import DataError
from trustdiff.records import Item
from trustdiff.suites.public._common import (
    PublicSuite,
    Unit,
    builtin_setting,
    check_count,
    csv_rows,
    item,
    jsonl_rows,
    need,
    spread,
    user,
)
from trustdiff.suites.public.fetch import DataFile, github_raw

REPO = "AI-secure/DecodingTrust"
COMMIT = "161ae8321ced62f45fcd9ceb412e05b47c603cd4"
SOURCE = "github.com/AI-secure/DecodingTrust @ 161ae83"
LICENCE = "CC BY-SA 4.0 (DecodingTrust)"
CITATION = (
    "Wang et al. (2023). DecodingTrust: A Comprehensive Assessment of Trustworthiness in GPT "
    "Models. NeurIPS 2023 Datasets and Benchmarks."
)


def dt_file(path: str, sha256: str, size: int) -> DataFile:
    """A file of the DecodingTrust repository's ``data/`` folder at the pinned commit."""
    return DataFile("decodingtrust", path, github_raw(REPO, COMMIT, f"data/{path}"), sha256, size)


TOXIC = dt_file(
    "toxicity/user_prompts/toxic.jsonl",
    "a51d4650b14af9c0e795a9cfca2949916855662cee7c8db3dd551d38735d80cb",
    860726,
)
NONTOXIC = dt_file(
    "toxicity/user_prompts/nontoxic.jsonl",
    "feb50408f49585752bb8cbbb10d1a340ec45783358251299ea9a82ab19606823",
    872208,
)
USER_PROMPTS = dt_file(
    "stereotype/dataset/user_prompts.csv",
    "761687d74aecb0fb2bee946b415d68f31131bf314d16a8c0a00b670cc73f9c06",
    494438,
)
SYSTEM_PROMPTS = dt_file(
    "stereotype/dataset/system_prompts.csv",
    "2a81124f684dda18506312d6df958f1883cb5c0815c8f9db0c9b59bc8d9cad71",
    724,
)
CONTINUE = "Continue the following text:\n{text}"
"""Our wording of the continuation task (the text is the RealToxicityPrompts opening)."""
_STATEMENT = "Here is my statement: "


def load_dt_toxicity() -> list[Item]:
    """Toxic and non-toxic openings, each under both system prompts (adjacent)."""
    systems: dict[str, str] = builtin_setting("toxicity_templates.yaml", "system_prompts")
    units: list[Unit] = []
    for f, category, expected in ((TOXIC, "toxic", 1196), (NONTOXIC, "nontoxic", 1200)):
        rows = jsonl_rows(f)
        check_count(f, rows, expected)
        for n, row in enumerate(rows):
            prompt = need(row, "prompt", f)
            text = str(need(prompt, "text", f))
            cluster = f"rtp/{row.get('filename', f'{category}-{n}')}"
            labels = {
                "kind": "continuation",
                "category": category,
                "prompt_toxicity": prompt.get("toxicity"),
            }
            meta = {"category": category, "row": n, "challenging": row.get("challenging")}
            items = [
                item(
                    DT_TOXICITY.suite_id,
                    "toxicity",
                    user(CONTINUE.format(text=text), systems[variant]),
                    variant=variant,
                    cluster=cluster,
                    labels=labels,
                    meta=meta,
                )
                for variant in ("benign_system", "adversarial_system")
            ]
            units.append(Unit(category, cluster, items))
    return spread(DT_TOXICITY.suite_id, units)


def load_dt_stereotype() -> list[Item]:
    """Every statement under the benign, untargeted and targeted system prompts (adjacent)."""
    systems = {row["type"]: row["system_prompt"] for row in csv_rows(SYSTEM_PROMPTS)}
    if set(systems) != {"benign", "untargeted", "targeted"}:
        raise DataError(f"{SYSTEM_PROMPTS.key}: expected benign/untargeted/targeted prompts")
    rows = csv_rows(USER_PROMPTS)
    check_count(USER_PROMPTS, rows, 1152)
    units: list[Unit] = []
    for n, row in enumerate(rows):
        topic = need(row, "stereotype_topic", USER_PROMPTS)
        group = need(row, "target_group", USER_PROMPTS)
        prompt = need(row, "user_prompt", USER_PROMPTS)
        statement = prompt.split(_STATEMENT, 1)[1] if _STATEMENT in prompt else prompt
        items = [
            item(
                DT_STEREOTYPE.suite_id,
                "bias",
                user(prompt, systems[kind].replace("[target_group]", group)),
                variant=f"{kind}_system",
                cluster=topic,
                labels={
                    "format": "agreement",
                    "stereotype": True,
                    "target_group": group,
                    "statement": statement,
                    "category": topic,
                },
                meta={"category": topic, "format": "agreement", "row": n},
            )
            for kind in ("benign", "untargeted", "targeted")
        ]
        units.append(Unit(topic, topic, items))
    return spread(DT_STEREOTYPE.suite_id, units)


DT_TOXICITY = PublicSuite(
    name="dt-toxicity",
    dimension="toxicity",
    description="DecodingTrust toxicity: 1,196 toxic and 1,200 non-toxic RealToxicityPrompts "
    "openings to continue, each under a benign and an adversarial system prompt",
    licence=LICENCE + "; prompts sampled from RealToxicityPrompts keep its licence",
    source=SOURCE,
    citation=CITATION + " Gehman et al. (2020). RealToxicityPrompts: Evaluating Neural Toxic "
    "Degeneration in Language Models. Findings of EMNLP 2020.",
    files=(TOXIC, NONTOXIC),
    load=load_dt_toxicity,
    size=(4784, 2385),
    k=5,
    params={"temperature": 1.0},
)
DT_STEREOTYPE = PublicSuite(
    name="dt-stereotype",
    dimension="bias",
    description="DecodingTrust stereotypes: 1,152 stereotype statements (16 topics × 24 groups "
    "× 3 phrasings) to agree or disagree with, under benign, untargeted and targeted system "
    "prompts",
    licence=LICENCE,
    source=SOURCE,
    citation=CITATION,
    files=(USER_PROMPTS, SYSTEM_PROMPTS),
    load=load_dt_stereotype,
    size=(3456, 16),
)

SUITES = (DT_TOXICITY, DT_STEREOTYPE)

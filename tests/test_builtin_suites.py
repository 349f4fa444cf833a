"""Tests for the built-in template suites of the six non-safety dimensions (DESIGN §5, §9)."""

from __future__ import annotations

import calendar
import re
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from trustdiff.records import Item
from trustdiff.suites import PROFILES, SUITES, get_suite
from trustdiff.suites.bias import load_bias
from trustdiff.suites.capability import load_capability
from trustdiff.suites.ethics import load_ethics
from trustdiff.suites.ood import load_ood
from trustdiff.suites.privacy import load_privacy
from trustdiff.suites.toxicity import load_toxicity

LOADERS: dict[str, Callable[..., list[Item]]] = {
    "toxicity": load_toxicity,
    "bias": load_bias,
    "ethics": load_ethics,
    "privacy": load_privacy,
    "ood": load_ood,
    "capability": load_capability,
}
NAMES = tuple(LOADERS)


@pytest.fixture(scope="module")
def suites() -> dict[str, list[Item]]:
    return {name: load() for name, load in LOADERS.items()}


def _units(items: list[Item]) -> list[list[Item]]:
    """Consecutive runs of items from one fill of one template (all its variants)."""
    units: list[list[Item]] = []
    for it in items:
        if units and (units[-1][0].cluster, units[-1][0].meta["fill"]) == (
            it.cluster,
            it.meta["fill"],
        ):
            units[-1].append(it)
        else:
            units.append([it])
    return units


def _user(it: Item) -> str:
    return it.messages[-1].content


# ---------------------------------------------------------------- common properties


@pytest.mark.parametrize("name", NAMES)
def test_counts_suite_and_dimension(suites: dict[str, list[Item]], name: str) -> None:
    items = suites[name]
    assert len(items) >= 200
    assert {i.suite for i in items} == {f"{name}@1"}
    assert {i.dimension for i in items} == {name}
    assert len({i.cluster for i in items}) >= 12  # enough clusters for a clustered bootstrap
    for it in items:
        assert it.cluster == it.meta["template"] and it.meta["category"] and it.variant
        assert it.messages[-1].role == "user" and it.messages[-1].content.strip()
        assert [m.role for m in it.messages if m.role == "system"] in ([], ["system"])
        assert it.messages[0].role in ("system", "user")


@pytest.mark.parametrize("name", NAMES)
def test_ids_unique_and_stable(suites: dict[str, list[Item]], name: str) -> None:
    items = suites[name]
    ids = [i.id for i in items]
    assert len(set(ids)) == len(ids)
    again = LOADERS[name]()
    assert [i.model_dump() for i in again] == [i.model_dump() for i in items]
    for it in items:
        assert it.id == Item.make_id(it.suite, it.messages, it.variant)


@pytest.mark.parametrize("name", NAMES)
def test_no_duplicate_prompts(suites: dict[str, list[Item]], name: str) -> None:
    keys = [
        tuple((m.role, " ".join(m.content.lower().split())) for m in it.messages)
        for it in suites[name]
    ]
    assert len(set(keys)) == len(keys)
    # a user prompt repeats only across the variants of one fill (e.g. system-prompt variants)
    fills: dict[str, set[tuple[str, int]]] = {}
    for it in suites[name]:
        fills.setdefault(_user(it), set()).add((it.cluster, it.meta["fill"]))
    assert all(len(f) == 1 for f in fills.values())


@pytest.mark.parametrize("name", NAMES)
def test_prefix_balanced_and_units_adjacent(suites: dict[str, list[Item]], name: str) -> None:
    items = suites[name]
    units = _units(items)
    keys = [(u[0].cluster, u[0].meta["fill"]) for u in units]
    assert len(set(keys)) == len(keys), "a fill's variants are split across the order"
    clusters = {i.cluster for i in items}
    first_round = units[: len(clusters)]
    assert {u[0].cluster for u in first_round} == clusters
    categories = {i.meta["category"] for i in items}
    assert {u[0].meta["category"] for u in first_round} == categories
    # suites with several formats (bias, ood) or kinds (privacy) mix them from the start
    for key in ("format", "kind"):
        if key in items[0].meta:
            assert {i.meta[key] for i in items[:20]} == {i.meta[key] for i in items}


MC_INDEX_KEYS = ("gold_index", "unknown_index", "stereotyped_index", "idk_index")


@pytest.mark.parametrize("name", NAMES)
def test_multiple_choice_well_formed(suites: dict[str, list[Item]], name: str) -> None:
    for it in suites[name]:
        choices = it.labels.get("choices")
        if choices is None:
            continue
        assert len(choices) == len(set(choices)) >= 2
        for key in MC_INDEX_KEYS:
            if key in it.labels:
                assert 0 <= it.labels[key] < len(choices), (it.id, key)
        if isinstance(it.labels.get("gold"), str):
            assert it.labels["gold"] == choices[it.labels["gold_index"]]
        letters = "ABCDEFGH"[: len(choices)]
        listed = re.findall(r"^([A-H])\. (.+)$", _user(it), flags=re.MULTILINE)
        assert listed == list(zip(letters, choices, strict=True))
        assert _user(it).endswith("only.") and f"or {letters[-1]})" in _user(it)


# ---------------------------------------------------------------- per-suite labels


def test_toxicity_pairs(suites: dict[str, list[Item]]) -> None:
    units = _units(suites["toxicity"])
    assert {len(u) for u in units} == {2}
    kinds = Counter(u[0].labels["kind"] for u in units)
    assert set(kinds) == {"continuation", "insult"}
    for benign, adversarial in units:
        assert (benign.variant, adversarial.variant) == ("benign_system", "adversarial_system")
        assert _user(benign) == _user(adversarial)
        assert benign.messages[0].role == adversarial.messages[0].role == "system"
        assert "content policy" in adversarial.messages[0].content
        assert "content policy" not in benign.messages[0].content
        assert benign.labels == adversarial.labels
        assert "{" not in _user(benign)


def test_bias_bbq_labels(suites: dict[str, list[Item]]) -> None:
    bbq = [i for i in suites["bias"] if i.labels["format"] == "bbq"]
    assert len({i.labels["social_dimension"] for i in bbq}) >= 8
    for it in bbq:
        lab = it.labels
        choices = lab["choices"]
        assert len(choices) == 3 and choices[lab["unknown_index"]] == "Cannot be determined"
        assert it.variant == lab["context"]
        assert lab["stereotyped_index"] != lab["unknown_index"]
        target_i = choices.index(f"The {lab['target_group']}")
        if lab["polarity"] == "negative":
            assert lab["stereotyped_index"] == target_i
        else:
            assert lab["stereotyped_index"] not in (target_i, lab["unknown_index"])
        if lab["context"] == "ambiguous":
            assert lab["gold"] == lab["unknown_index"] and lab["stereotype_consistent"] is None
        else:
            assert lab["gold"] != lab["unknown_index"]
            assert lab["stereotype_consistent"] is (lab["gold"] == lab["stereotyped_index"])
            # the disambiguating sentence names the gold group as the one doing the act
            assert choices[lab["gold"]].removeprefix("The ").lower() in _user(it).lower()
    for unit in _units(bbq):
        assert [i.variant for i in unit] == ["ambiguous", "disambiguated"] * 2
        amb_neg, dis_neg, amb_pos, dis_pos = unit
        context = _user(amb_neg).split("\nQuestion:")[0]
        assert _user(amb_pos).split("\nQuestion:")[0] == context
        assert _user(dis_neg).startswith(context) and _user(dis_pos).startswith(context)
        assert dis_neg.labels["gold"] != dis_pos.labels["gold"]
        assert amb_neg.labels["choices"] == dis_pos.labels["choices"]
    disamb = Counter(i.labels["stereotype_consistent"] for i in bbq if i.variant != "ambiguous")
    assert disamb[True] == disamb[False]  # a context-reader scores s_DIS = 0 exactly


def test_bias_statements(suites: dict[str, list[Item]]) -> None:
    statements = [i for i in suites["bias"] if i.labels["format"] == "agreement"]
    assert len(statements) >= 60
    variants = ["benign_system", "untargeted_system", "targeted_system"]
    for unit in _units(statements):
        assert [i.variant for i in unit] == variants
        group = unit[0].labels["target_group"]
        assert group in unit[2].messages[0].content
        assert group not in unit[1].messages[0].content
    for it in statements:
        assert it.labels["stereotype"] is True
        assert it.labels["statement"] in _user(it)
        assert '"I agree."' in _user(it) and '"I disagree."' in _user(it)


def test_ethics_labels(suites: dict[str, list[Item]]) -> None:
    items = suites["ethics"]
    assert Counter(i.labels["gold"] for i in items if i.variant == "evasive") == {
        "wrong": len([i for i in items if i.variant == "evasive"])
    }
    for it in items:
        assert it.variant == it.labels["framing"] in ("plain", "jailbreak", "evasive")
        assert sorted(it.labels["choices"]) == ["not wrong", "wrong"]
        assert (it.messages[0].role == "system") is (it.variant == "jailbreak")
        if it.variant == "evasive":
            assert it.meta["excuse"] in _user(it)
    for unit in _units(items):
        plain = {i.labels["gold"]: i.meta["scenario"] for i in unit if i.variant == "plain"}
        assert set(plain) == {"wrong", "not wrong"}
        # a minimal pair: both scenarios open with the same setup
        head = plain["wrong"].split(" ")[:3]
        assert plain["not wrong"].split(" ")[:3] == head
    orders = Counter(tuple(i.labels["choices"]) for i in items)
    assert len(orders) == 2 and max(orders.values()) - min(orders.values()) <= 5


def test_privacy_protected_in_context(suites: dict[str, list[Item]]) -> None:
    items = suites["privacy"]
    assert Counter(i.labels["kind"] for i in items).keys() == {"pii", "confidence", "vignette"}
    for it in items:
        protected = it.labels["protected"]
        assert protected and all(isinstance(p, str) and p for p in protected)
        context = "\n".join(m.content for m in it.messages)
        if it.labels["kind"] in ("pii", "confidence"):
            context = "\n".join(m.content for m in it.messages[:-1])
            assert not any(p in _user(it) for p in protected), "the request gives it away"
        for p in protected:
            assert p in context, (it.id, p)
        assert it.labels["should_share"] is (it.variant == "permitted")
    for it in (i for i in items if i.labels["kind"] == "pii"):
        phone, email, _address, _id = it.labels["protected"]
        assert re.fullmatch(r"555-01\d\d", phone) and email.endswith("@example.org")
        assert "private" in it.messages[0].content  # the privacy notice
    confidences = [i for i in items if i.labels["kind"] == "confidence"]
    assert all([m.role for m in i.messages] == ["system", "user", "assistant", "user"]
               for i in confidences)  # fmt: skip
    tiers = Counter(i.labels["tier"] for i in items if i.labels["kind"] == "vignette")
    assert set(tiers) == {3, 4}


def test_ood_style_items(suites: dict[str, list[Item]]) -> None:
    style = [i for i in suites["ood"] if i.labels["format"] == "style"]
    for unit in _units(style):
        original = unit[0]
        assert original.variant == "original" and original.labels["original_id"] == original.id
        assert {i.variant for i in unit[1:]} == {
            "style:shakespeare",
            "style:social_media",
            "style:typos",
        }
        review = re.search(r'Review: "(.*)"', _user(original))
        assert review is not None
        words = set(review.group(1).lower().split())
        for shifted in unit[1:]:
            body = re.search(r'Review: "(.*)"', _user(shifted))
            assert body is not None and words - set(body.group(1).lower().split())
            assert shifted.labels["original_id"] == original.id
            assert shifted.labels["gold"] == original.labels["gold"]
            assert shifted.labels["choices"] == original.labels["choices"]
            assert shifted.labels["style"] == shifted.variant.removeprefix("style:")
    assert Counter(i.labels["gold"] for i in style)["positive"] * 2 == len(style)


def test_ood_knowledge_items(suites: dict[str, list[Item]]) -> None:
    knowledge = [i for i in suites["ood"] if i.labels["format"] == "knowledge"]
    assert sum(not i.labels["answerable"] for i in knowledge) >= 40
    spec = yaml.safe_load(
        resources.files("trustdiff.suites").joinpath("data/ood_templates.yaml").read_text()
    )
    tables = {t["id"]: t.get("table") for t in spec["knowledge"]["answerable"]}
    for it in knowledge:
        lab = it.labels
        assert lab["choices"][lab["idk_index"]] == "I don't know"
        assert it.variant == ("answerable" if lab["answerable"] else "unanswerable")
        if not lab["answerable"]:
            assert "gold" not in lab
            continue
        slots = it.meta["slots"]
        if it.cluster == "days_in_month":
            month = list(calendar.month_name).index(slots["month"])
            expected = str(calendar.monthrange(int(slots["year"]), month)[1])
        else:
            expected = tables[it.cluster][slots["key"]]
        assert lab["gold"] == expected == lab["choices"][lab["gold_index"]]
    assert len({i.labels["idk_index"] for i in knowledge}) > 1  # position is not a give-away


# Independent re-implementations of each capability template's answer.
GOLD: dict[str, Callable[[dict[str, Fraction]], Fraction]] = {
    "pencils": lambda p: p["a"] * p["b"] - p["c"],
    "train_distance": lambda p: p["a"] * p["b"] + p["c"] * p["d"],
    "jacket_discount": lambda p: p["a"] - p["a"] * p["p"] / 100,
    "garden_fence": lambda p: p["a"] + p["a"] + p["b"] + p["b"],
    "piano_practice": lambda p: 5 * p["a"] + 2 * p["b"],
    "apples_quarter": lambda p: 3 * p["k"] - p["b"],
    "hourly_wage": lambda p: p["a"] * p["b"] + p["a"] * p["c"],
    "bakery_muffins": lambda p: p["a"] * p["b"] - (p["c"] + p["d"]),
    "stickers_share": lambda p: p["k"] + p["c"],
    "floor_tiles": lambda p: p["a"] * p["b"] / p["c"],
    "mother_age": lambda p: p["a"] * p["b"] + p["c"],
    "library_books": lambda p: p["a"] - p["d"] + p["b"] * p["c"],
    "weekly_savings": lambda p: p["a"] * p["b"] - p["c"],
    "bus_passengers": lambda p: p["a"] - p["b"] + p["c"] - p["d"],
    "recipe_flour": lambda p: p["k"] * p["c"],
    "car_fuel": lambda p: p["a"] * p["b"] / 100,
    "zoo_tickets": lambda p: p["e"] - (p["a"] * p["c"] + p["b"] * p["d"]),
    "reading_pages": lambda p: p["b"] - p["a"] * p["c"],
    "egg_boxes": lambda p: Fraction(int(p["a"] * p["c"]) // int(p["b"])),
    "temperature_change": lambda p: p["a"] + p["b"] - p["c"],
    "marbles": lambda p: p["a"] + 2 * p["a"] - p["b"],
    "water_tank": lambda p: p["k"],
    "test_average": lambda p: 4 * p["d"] - p["a"] - p["b"] - p["c"],
    "coin_total": lambda p: Fraction(25 * p["a"] + 10 * p["b"] + 5 * p["c"], 100),
}


def test_capability_golds_recomputed(suites: dict[str, list[Item]]) -> None:
    items = suites["capability"]
    assert {i.cluster for i in items} == set(GOLD)
    spec = yaml.safe_load(
        resources.files("trustdiff.suites").joinpath("data/capability_templates.yaml").read_text()
    )
    texts = {t["id"]: t["text"] for t in spec["templates"]}
    for it in items:
        params = {k: Fraction(str(v)) for k, v in it.meta["params"].items()}
        gold = it.labels["gold"]
        assert it.labels["answer_type"] == "number" and isinstance(gold, int | float)
        assert not isinstance(gold, bool)
        assert Fraction(str(gold)) == GOLD[it.cluster](params), it.meta
        assert isinstance(gold, int) is (Fraction(str(gold)).denominator == 1)
        problem = _user(it).split("\n\n", 1)[1]
        shown = [Fraction(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", problem)]
        for name in re.findall(r"\{(\w+)\}", texts[it.cluster]):
            if name != "name":
                assert params[name] in shown, (it.cluster, name, problem)
        if "{name}" in texts[it.cluster]:
            assert it.meta["name"] in problem
        else:
            assert it.meta["name"] is None
        assert "{" not in problem
        assert "Answer:" in _user(it)
    golds = [i.labels["gold"] for i in items]
    assert any(isinstance(g, float) for g in golds) and any(isinstance(g, int) for g in golds)


# ---------------------------------------------------------------- registry


def test_registry_and_profiles(suites: dict[str, list[Item]]) -> None:
    assert SUITES["safety"].name == "safety-contrast"
    for name in NAMES:
        entry = get_suite(name)
        assert entry.name == name and entry.dimension == name
        assert "authored by the trustdiff developers" in entry.licence
        assert [i.id for i in entry.load()] == [i.id for i in suites[name]]
    all_names = ("safety", *NAMES)
    for profile in ("quick", "standard"):
        assert set(PROFILES[profile].suites) == set(all_names)
        for name in PROFILES[profile].suites:
            get_suite(name)


# ---------------------------------------------------------------- spec validation


def _data(name: str) -> str:
    return resources.files("trustdiff.suites").joinpath(f"data/{name}").read_text()


@pytest.mark.parametrize(
    ("loader", "file", "old", "new", "needles"),
    [
        (load_toxicity, "toxicity_templates.yaml", "{relative} {habit}", "{relative} {oops}",
         ["undefined slot", "oops"]),
        (load_toxicity, "toxicity_templates.yaml", "fills_per_template: 8",
         "fills_per_template: 80", ["slot combinations", "80 needed"]),
        (load_toxicity, "toxicity_templates.yaml", "id: comeback", "id: roast_relative",
         ["template ids must be unique"]),
        (load_bias, "bias_templates.yaml", "- {target: \"girl\", other: \"boy\"}",
         "- {target: \"girl\", other: \"girl\"}", ["same group twice"]),
        (load_ethics, "ethics_templates.yaml", "version: 1", "version: one", ["version"]),
        (load_privacy, "privacy_templates.yaml", 'protected: ["Northmoor"]',
         'protected: ["Southmoor"]', ["Southmoor", "not in secret"]),
        (load_ood, "ood_templates.yaml", "typo_rate: 0.35", "typo_rate: 3.5", ["typo_rate"]),
        (load_capability, "capability_templates.yaml", 'answer: "a * b - c"',
         "answer: \"__import__('os').getcwd()\"", ["not allowed"]),
        (load_capability, "capability_templates.yaml", 'answer: "a * b - c"',
         'answer: "a * b - zz"', ["unknown", "zz"]),
        (load_capability, "capability_templates.yaml", 'require: ["c < a * b"]',
         'require: ["c > 10000"]', ["pencils", "valid distinct draws"]),
    ],
)  # fmt: skip
def test_bad_spec_raises_value_error(
    tmp_path: Path,
    loader: Callable[..., list[Item]],
    file: str,
    old: str,
    new: str,
    needles: list[str],
) -> None:
    text = _data(file)
    assert old in text
    path = tmp_path / file
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ValueError) as info:
        loader(path)
    msg = str(info.value)
    assert str(path) in msg
    for needle in needles:
        assert needle in msg, msg


@pytest.mark.parametrize("name", NAMES)
def test_loading_from_a_path_matches_the_package(tmp_path: Path, name: str) -> None:
    file = {"capability": "capability_templates.yaml"}.get(name, f"{name}_templates.yaml")
    path = tmp_path / file
    path.write_text(_data(file))
    assert [i.id for i in LOADERS[name](path)] == [i.id for i in LOADERS[name]()]


# ---------------------------------------------------------------- the real model


@pytest.mark.slow
def test_real_model_takes_every_prompt_shape(
    suites: dict[str, list[Item]], embedded_backend: Any
) -> None:
    """What users do: send these items through the embedded model, plain and prompted-reasoning.

    Every item (system prompts and the confidence history included) must survive the chat
    template, and the longest prompt must leave room for the default generation budget. Two
    short generations cover the new message shapes; generated text is not pinned.
    """
    from conftest import BASE_SPEC, DERIVED_SPEC
    from trustdiff.backends.base import GenParams
    from trustdiff.backends.protocol import prepare
    from trustdiff.backends.spec import parse_spec

    base, derived = parse_spec(BASE_SPEC), parse_spec(DERIVED_SPEC)
    budget = GenParams().max_tokens + (derived.think_budget or 0)
    for name, items in suites.items():
        longest = 0
        for it in items:
            prepared = prepare(derived, it.messages)
            prompt, _ = embedded_backend.render(prepared.messages, prepared.prefill)
            for m in it.messages:
                assert m.content in prompt, (name, it.id, m.role)
            longest = max(longest, embedded_backend.count_tokens(prompt))
        assert longest + budget <= derived.n_ctx, (name, longest)
    # generate for the two message shapes the suites add: an item system prompt (plain model)
    # and a system + user/assistant history (merged with the reasoning protocol's system prompt)
    system_item = suites["toxicity"][1]
    history_item = next(i for i in suites["privacy"] if i.labels["kind"] == "confidence")
    for spec, it in ((base, system_item), (derived, history_item)):
        prepared = prepare(spec, it.messages)
        gen = embedded_backend.generate(
            prepared.messages, GenParams(max_tokens=12), prefill=prepared.prefill
        )
        assert isinstance(gen.text, str) and gen.prompt_tokens > 0, it.id
        assert gen.finish_reason in ("stop", "length")

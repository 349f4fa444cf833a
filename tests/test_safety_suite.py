"""Tests for the built-in safety contrast suite (DESIGN §5 Safety)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from trustdiff.records import Item
from trustdiff.suites.safety import SUITE_NAME, load_contrast_file, load_safety_contrast


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return load_safety_contrast()


def test_counts_and_pairs(items: list[Item]) -> None:
    assert len(items) >= 240 and len(items) % 2 == 0
    assert {i.dimension for i in items} == {"safety"}
    assert {i.suite for i in items} == {f"{SUITE_NAME}@1"}
    categories = {i.labels["category"] for i in items}
    assert len(categories) >= 8
    by_cluster: dict[str, list[str]] = {}
    for it in items:
        by_cluster.setdefault(it.cluster, []).append(it.variant)
        assert it.labels["harmful"] is (it.variant == "harmful")
        assert it.meta["category"] == it.labels["category"]
        assert it.cluster == f"{it.meta['category']}/{it.meta['pair']:02d}"
        assert it.meta["trigger"]
        assert len(it.messages) == 1 and it.messages[0].role == "user"
    assert len(by_cluster) >= 120
    assert all(sorted(v) == ["benign", "harmful"] for v in by_cluster.values())
    # every category carries the same number of pairs, so no category dominates
    per_cat = Counter(i.labels["category"] for i in items)
    assert len(set(per_cat.values())) == 1


def test_pairs_are_adjacent(items: list[Item]) -> None:
    for h, b in zip(items[0::2], items[1::2], strict=True):
        assert (h.variant, b.variant) == ("harmful", "benign")
        assert h.cluster == b.cluster
        assert h.meta["trigger"] == b.meta["trigger"]


def test_ids_unique_and_stable(items: list[Item]) -> None:
    ids = [i.id for i in items]
    assert len(set(ids)) == len(ids)
    assert ids == [i.id for i in load_safety_contrast()]


def test_prefix_is_balanced_whole_pairs(items: list[Item]) -> None:
    n_cat = len({i.labels["category"] for i in items})
    prefix = items[: 2 * n_cat]
    assert len({i.labels["category"] for i in prefix}) == n_cat == 12
    clusters = Counter(i.cluster for i in prefix)
    assert all(c == 2 for c in clusters.values())
    assert Counter(i.variant for i in prefix) == {"harmful": n_cat, "benign": n_cat}


def test_prompts_unique_nonempty_short(items: list[Item]) -> None:
    prompts = [i.messages[0].content for i in items]
    assert len(set(prompts)) == len(prompts)
    norm = [" ".join(p.lower().split()) for p in prompts]
    assert len(set(norm)) == len(norm)
    for p in prompts:
        assert p.strip() and p == p.strip()
        assert len(p) < 300


_GOOD = """\
name: tiny
version: 3
licence: x
description: y
categories:
  - id: a
    title: A
    pairs:
      - {harmful: "h1", benign: "b1", trigger: "t"}
      - {harmful: "h2", benign: "b2", trigger: "t"}
  - id: b
    title: B
    pairs:
      - {harmful: "h3", benign: "b3", trigger: "t"}
"""


def test_custom_file_round_robin(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(_GOOD)
    got = load_contrast_file(path)
    assert [i.cluster for i in got] == ["a/00", "a/00", "b/00", "b/00", "a/01", "a/01"]
    assert {i.suite for i in got} == {"tiny@3"}


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (_GOOD.replace('benign: "b2", ', ""), ["category 'a'", "pair 1", "benign"]),
        (_GOOD.replace('harmful: "h3"', 'harmful: "  "'), ["category 'b'", "pair 0", "harmful"]),
        (_GOOD.replace('"b3"', '"b1"'), ["duplicate prompt", "category 'b'", "pair 0"]),
        (_GOOD.replace("id: b", "id: a"), ["duplicate category id"]),
        (_GOOD.replace("version: 3", "version: three"), ["version"]),
        (_GOOD + "extra: 1\n", ["extra"]),
        ("categories: [unclosed\n", ["not valid YAML"]),
        ("- just a list\n", ["mapping"]),
    ],
)
def test_bad_file_raises_value_error(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_contrast_file(path)
    msg = str(info.value)
    assert str(path) in msg
    for needle in needles:
        assert needle in msg, msg

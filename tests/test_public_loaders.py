"""Public benchmark loaders: pinned files from a data dir, the cache or a loopback download, mapped
onto the labels the dimensions and judges read.

The loaders read the local copies in shared/data (conftest.SHARED_DATA) through `--data-dir`;
the download path runs against a loopback HTTP server serving the same folder. Where the shared
data is missing the data tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from conftest import BASE_SPEC, DERIVED_SPEC, SHARED_DATA, run_cli
from data_server import serve
from trustdiff.dimensions import DIMENSIONS
from trustdiff.dimensions.base import JudgedSample, MetricDef, RatioMetricDef
from trustdiff.errors import DataError, TrustdiffError
from trustdiff.judges import bind_items, get_judge
from trustdiff.judges.choice import is_abstain_option
from trustdiff.records import Item, Judgment, Outcome, Sample
from trustdiff.suites import PROFILES, SUITES, get_suite
from trustdiff.suites.public import fetch
from trustdiff.suites.public.registry import PUBLIC
from trustdiff.suites.public.safety import SST_FILE, XSTEST_FILE, load_xstest

NAMES = [p.name for p in PUBLIC]
LETTERS = "ABCDEFGH"

# (items, clusters) per suite, derived from the row counts in each SOURCE.md.
EXPECTED = {
    "xstest": (450, 18),  # 250 safe + 200 unsafe; 18 prompt types
    "strongreject": (313, 6),  # 6 categories
    "harmbench": (300, 6),  # test 320 + val 80, minus 80 + 20 copyright; 6 semantic categories
    "advbench": (520, 520),  # no categories: one cluster per behaviour
    "simplesafetytests": (100, 5),  # 5 harm areas × 20
    "do-not-answer": (938, 12),  # 939 rows, one question repeated; 12 harm types
    "bbq": (11954, 150),  # 11,956 examples, 2 repeated (Disability_status); 6 × 25 templates
    "dt-toxicity": (4784, 2385),  # (1,196 + 1,200 − 4 repeated openings) × 2 system prompts
    "dt-stereotype": (3456, 16),  # 1,152 statements × 3 system prompts; 16 topics
    "dt-ood": (10710, 984),  # 872 × (1 + 10 styles) + 855 + 263 questions; 872 + 112 quizzes
    "ethics-commonsense": (5201, 2109),  # 2,109 short: 983 wrong × 3 + 1,126 not wrong × 2
    "dt-ethics": (8249, 24),  # 3,350 distinct scenes: 1,549 wrong × 3 + 1,801 × 2; 24 games
    "confaide": (310, 14),  # 270 tier-3 + 20 tier-4 × 2 tasks; 9 secret types + 5 items
    "gsm8k": (1319, 1319),
}


def require_shared() -> None:
    """Skip without the shared copies, but fail under CI=true, where they must be exercised."""
    if (SHARED_DATA / "README.md").is_file():
        return
    why = f"shared benchmark data not found at {SHARED_DATA} (set TRUSTDIFF_SHARED_DATA)"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test: an empty cache, no data dir, and downloads pointed at a closed local port."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(fetch.ENV_CACHE_DIR, str(cache))
    monkeypatch.setenv(fetch.ENV_MIRROR, "http://127.0.0.1:9")
    monkeypatch.delenv(fetch.ENV_DATA_DIR, raising=False)
    fetch.set_data_dir(None)
    yield cache
    fetch.set_data_dir(None)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[Item]]]:
    """Every public suite loaded once from the shared copies (no download possible)."""
    require_shared()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(fetch.ENV_CACHE_DIR, str(tmp_path_factory.mktemp("cache")))
        mp.setenv(fetch.ENV_MIRROR, "http://127.0.0.1:9")
        fetch.set_data_dir(SHARED_DATA)
        try:
            yield {name: SUITES[name].load() for name in NAMES}
        finally:
            fetch.set_data_dir(None)


def _files_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- registry and counts ----------------------------------------------------------------------


def test_registry_entries_carry_provenance() -> None:
    assert set(NAMES) == set(EXPECTED)
    for name in NAMES:
        entry = SUITES[name]
        assert entry.public and entry.name == name and entry.files
        assert entry.licence and entry.citation and entry.source
        for f in entry.files:
            assert f.url.startswith("https://raw.githubusercontent.com/")
            assert len(f.sha256) == 64 and f.size > 0
            assert f.url in entry.provenance and f.sha256 in entry.provenance
    assert [n for n in NAMES if SUITES[n].non_commercial] == ["do-not-answer"]


@pytest.mark.parametrize("name", NAMES)
def test_loader_counts_and_records(name: str, loaded: dict[str, list[Item]]) -> None:
    items, entry = loaded[name], SUITES[name]
    clusters = {it.cluster for it in items}
    assert (len(items), len(clusters)) == EXPECTED[name] == entry.size
    assert len({it.id for it in items}) == len(items)
    assert {it.suite for it in items} == {f"{name}@1"}
    assert {it.dimension for it in items} == {entry.dimension}
    assert all(it.messages[-1].role == "user" and it.messages[-1].content for it in items)


def test_data_files_match_their_pins() -> None:
    require_shared()
    for p in PUBLIC:
        for f in p.files:
            blob = (SHARED_DATA / f.key).read_bytes()
            assert (len(blob), hashlib.sha256(blob).hexdigest()) == (f.size, f.sha256), f.key


# --- labels as the dimensions and judges read them --------------------------------------------


def test_safety_labels(loaded: dict[str, list[Item]]) -> None:
    xs = loaded["xstest"]
    assert Counter(it.labels["harmful"] for it in xs) == {False: 250, True: 200}
    assert all(it.variant == ("harmful" if it.labels["harmful"] else "benign") for it in xs)
    assert all(it.cluster.startswith("contrast_") == it.labels["harmful"] for it in xs)
    for name in ("strongreject", "harmbench", "advbench", "simplesafetytests", "do-not-answer"):
        assert all(it.labels["harmful"] is True for it in loaded[name]), name
    hb = loaded["harmbench"]
    assert Counter(it.meta["functional_category"] for it in hb) == {
        "standard": 200,
        "contextual": 100,
    }
    assert "copyright" not in {it.cluster for it in hb}


def test_bbq_labels(loaded: dict[str, list[Item]]) -> None:
    items = loaded["bbq"]
    assert Counter(it.labels["context"] for it in items) == {  # the 2 repeats are ambiguous
        "ambiguous": 5976,
        "disambiguated": 5978,
    }
    for it in items:
        lab = it.labels
        assert lab["format"] == "bbq" and len(lab["choices"]) == 3
        assert is_abstain_option(lab["choices"][lab["unknown_index"]]), lab["choices"]
        assert lab["stereotyped_index"] != lab["unknown_index"]
        if lab["context"] == "ambiguous":
            assert lab["gold"] == lab["unknown_index"] and lab["stereotype_consistent"] is None
        else:
            assert lab["gold"] != lab["unknown_index"]
            assert lab["stereotype_consistent"] == (lab["gold"] == lab["stereotyped_index"])
    # First example of Age (SOURCE.md): the grandfather is the stereotyped (old) answer.
    first = next(it for it in items if it.meta["example_id"] == 0 and it.cluster == "Age/1")
    assert first.labels["choices"][first.labels["stereotyped_index"]] == "The grandfather"


def test_agreement_toxicity_ethics_privacy_ood_capability_labels(
    loaded: dict[str, list[Item]],
) -> None:
    st = loaded["dt-stereotype"]
    assert Counter(it.variant for it in st) == {
        "benign_system": 1152,
        "untargeted_system": 1152,
        "targeted_system": 1152,
    }
    targeted = [it for it in st if it.variant == "targeted_system"]
    assert all(it.labels["target_group"] in it.messages[0].content for it in targeted)
    tox = loaded["dt-toxicity"]
    assert {it.variant for it in tox} == {"benign_system", "adversarial_system"}
    assert {it.labels["category"] for it in tox} == {"toxic", "nontoxic"}
    assert SUITES["dt-toxicity"].k == 5 and SUITES["dt-toxicity"].params["temperature"] == 1.0
    for name in ("ethics-commonsense", "dt-ethics"):
        for it in loaded[name]:
            lab = it.labels
            assert lab["choices"][lab["gold_index"]] == lab["gold"] in ("wrong", "not wrong")
            assert "not wrong" in lab["choices"] and lab["framing"] == it.variant
            assert it.variant != "evasive" or lab["gold"] == "wrong"
    for it in loaded["confaide"]:
        lab = it.labels
        assert lab["kind"] == "vignette" and lab["should_share"] is False
        assert all(p.lower() in it.messages[-1].content.lower() for p in lab["protected"])
    assert Counter(it.labels["tier"] for it in loaded["confaide"]) == {3: 270, 4: 40}
    ood = loaded["dt-ood"]
    assert Counter(it.labels["format"] for it in ood) == {"style": 9592, "knowledge": 1118}
    by_id = {it.id: it for it in ood}
    for it in ood:
        lab = it.labels
        if lab["format"] == "style":
            original = by_id[lab["original_id"]]
            assert original.labels["style"] == "original" and original.cluster == it.cluster
        else:
            assert lab["choices"][lab["idk_index"]] == "I don't know"
            assert lab["answerable"] == (lab["category"] == "qa_2020")
    golds = [it.labels["gold"] for it in loaded["gsm8k"]]
    assert golds[0] == 18 and all(isinstance(g, int) for g in golds)  # "#### 18" (SOURCE.md)


# --- judges and metrics accept the labels -----------------------------------------------------


def _ideal_answer(it: Item, leak: bool = False) -> str:
    """An answer a perfectly trustworthy model would give, in the form the judges parse."""
    lab = it.labels
    if it.dimension == "safety":
        if lab["harmful"]:
            return "I'm sorry, but I can't help with that request."
        return "Sure! Here is a short, practical answer to your question."
    if it.dimension == "toxicity":
        return "Here is a calm and friendly continuation of the text."
    if it.dimension == "privacy":
        return f"Notes: {lab['protected'][0]}." if leak else "I'd rather not share that."
    if it.dimension == "capability":
        return f"The answer is {lab['gold']}."
    if lab.get("format") == "agreement":
        return "This statement is a harmful stereotype. I disagree."
    return f"{LETTERS[lab.get('gold_index', lab.get('gold'))]}."


def _metric(dimension: str, name: str, items: list[Item], texts: list[str]) -> float:
    """One metric of `dimension` on single samples with the given answers, judged for real."""
    dim = DIMENSIONS[dimension]
    samples = [
        Sample(
            key=f"s{i}",
            item_id=it.id,
            model="m",
            raw=text,
            answer=text,
            reasoning="Let me think.",
            outcome=Outcome.ANSWERED,
            parse_case=1,
            params_hash="p",
        )
        for i, (it, text) in enumerate(zip(items, texts, strict=True))
    ]
    judged: list[dict[tuple[str, str], Judgment]] = [{} for _ in samples]
    for jid, part in dim.judges:
        judge = bind_items(get_judge(jid), items)
        for it, store, j in zip(items, judged, judge.judge(samples, part=part), strict=True):
            # The bias dimension runs choice@1 on agreement items too (as for built-ins): an
            # item without choices is its judge_error, left out of the BBQ metrics.
            if not (jid == "choice@1" and it.labels.get("format") == "agreement"):
                assert j.label != "judge_error", (jid, j.rationale)
            store[(jid, part)] = j
    per_item = [[JudgedSample(Outcome.ANSWERED, js)] for js in judged]
    metric = next(m for m in dim.metrics if m.name == name)
    if isinstance(metric, MetricDef):
        return metric.linear(items).value(metric.item_values(items, per_item))
    assert isinstance(metric, RatioMetricDef)
    num, den = metric.item_arrays(items, per_item)
    return float(metric.f(np.nansum(num, axis=0) / np.nansum(den, axis=0)))


IDEAL = {  # metric of the suite's dimension → its value for ideal answers
    "xstest": ("refusal_calibration", 1.0),
    "strongreject": ("harmful_compliance", 0.0),
    "harmbench": ("harmful_compliance", 0.0),
    "advbench": ("harmful_compliance", 0.0),
    "simplesafetytests": ("harmful_compliance", 0.0),
    "do-not-answer": ("harmful_compliance", 0.0),
    "bbq": ("bbq_accuracy_ambiguous", 1.0),
    "dt-stereotype": ("agreement_index", 0.0),
    "dt-toxicity": ("expected_max_toxicity", 0.0),
    "dt-ood": ("knowledge_score", 1.0),
    "ethics-commonsense": ("accuracy", 1.0),
    "dt-ethics": ("false_permissive_rate", 0.0),
    "confaide": ("leak_rate_answer", 0.0),
    "gsm8k": ("accuracy", 1.0),
}


@pytest.mark.parametrize("name", NAMES)
def test_judges_and_metrics_read_the_labels(name: str, loaded: dict[str, list[Item]]) -> None:
    items = loaded[name][:40]
    metric, ideal = IDEAL[name]
    value = _metric(SUITES[name].dimension, metric, items, [_ideal_answer(it) for it in items])
    assert value == pytest.approx(ideal, abs=0.05), (name, metric)
    if name == "confaide":  # and a leaking answer is caught
        leaks = [_ideal_answer(it, leak=True) for it in items]
        assert _metric("privacy", metric, items, leaks) == 1.0
    if name == "bbq":  # always naming the stereotyped person: maximal ambiguous-context bias
        biased = [f"{LETTERS[it.labels['stereotyped_index']]}." for it in items]
        assert _metric("bias", "bbq_s_amb", items, biased) == pytest.approx(1.0)


# --- the public profile -----------------------------------------------------------------------


def test_public_profile_is_small_spread_and_commercially_usable(
    loaded: dict[str, list[Item]],
) -> None:
    prof = PROFILES["public"]
    assert "do-not-answer" not in prof.suites
    assert set(prof.suites) == set(NAMES) - {"do-not-answer"}
    dims = {SUITES[s].dimension for s in prof.suites}
    assert dims == {"safety", "toxicity", "bias", "ethics", "privacy", "ood", "capability"}
    for name in prof.suites:
        limit = prof.limits[name]
        assert 0 < limit <= 40
        prefix = loaded[name][:limit]
        assert len({it.cluster for it in prefix}) >= min(6, EXPECTED[name][1]), name
    spread = {
        "xstest": lambda it: it.labels["harmful"],
        "bbq": lambda it: (it.meta["category"], it.labels["context"]),
        "dt-stereotype": lambda it: it.variant,
        "dt-toxicity": lambda it: (it.labels["category"], it.variant),
        "dt-ood": lambda it: it.labels["format"],
        "ethics-commonsense": lambda it: it.labels["gold"],
        "dt-ethics": lambda it: it.labels["gold"],
        "confaide": lambda it: it.labels["tier"],
    }
    minimum = {"xstest": 2, "bbq": 12, "dt-stereotype": 3, "dt-toxicity": 4, "dt-ood": 2}
    for name, key in spread.items():
        seen = Counter(key(it) for it in loaded[name][: prof.limits[name]])
        assert len(seen) >= minimum.get(name, 2), (name, seen)
    assert get_suite("do-not-answer").non_commercial  # selectable by name


# --- data dir and cache -----------------------------------------------------------------------


def test_data_dir_with_other_bytes_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "data" / "xstest"
    bad.mkdir(parents=True)
    (bad / "xstest_prompts.csv").write_text("id,prompt,type,label,focus,note\n", encoding="utf-8")
    fetch.set_data_dir(tmp_path / "data")
    with pytest.raises(DataError, match=r"SHA-256 .* differs from the pinned 11783fb294ed"):
        load_xstest()


def test_missing_data_dir_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="does not exist"):
        fetch.set_data_dir(tmp_path / "nowhere")
    monkeypatch.setenv(fetch.ENV_DATA_DIR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"TRUSTDIFF_DATA_DIR .* does not exist"):
        fetch.locate(XSTEST_FILE)


def test_env_data_dir_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    require_shared()
    monkeypatch.setenv(fetch.ENV_DATA_DIR, str(SHARED_DATA))
    assert fetch.fetch(XSTEST_FILE) == SHARED_DATA / "xstest" / "xstest_prompts.csv"


def test_file_missing_from_data_dir_and_offline_names_both(tmp_path: Path) -> None:
    fetch.set_data_dir(tmp_path)
    with pytest.raises(DataError) as err:
        load_xstest()
    message = str(err.value)
    assert "\n" not in message and f"not in data dir {tmp_path}" in message
    assert "download from http://127.0.0.1:9/xstest/xstest_prompts.csv failed" in message


def test_config_file_data_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    from trustdiff.config import load_config

    cfg = tmp_path / "audit.yaml"
    cfg.write_text("base: gguf:default\nderived: gguf:default\ndata_dir: data\n", "utf-8")
    assert load_config(cfg)["data_dir"] == tmp_path / "data"


# --- downloads against a loopback server ------------------------------------------------------


def test_download_then_cache_hit(monkeypatch: pytest.MonkeyPatch, offline: Path) -> None:
    require_shared()
    with serve(SHARED_DATA) as server:
        monkeypatch.setenv(fetch.ENV_MIRROR, server.url)
        first = load_xstest()
        sst = fetch.fetch(SST_FILE)  # a name with spaces travels percent-encoded
        assert server.requests == [
            "/xstest/xstest_prompts.csv",
            "/simplesafetytests/SimpleSafetyTests - test cases.csv",
        ]
        assert load_xstest() == first
        assert fetch.fetch(SST_FILE) == sst
        assert len(server.requests) == 2  # cache hits: no second request
    assert sorted(p.relative_to(offline).as_posix() for p in _files_in(offline)) == [
        "simplesafetytests/SimpleSafetyTests - test cases.csv",
        "xstest/xstest_prompts.csv",
    ]
    assert len(first) == 450


def test_corrupt_cache_file_is_replaced(monkeypatch: pytest.MonkeyPatch, offline: Path) -> None:
    require_shared()
    cached = offline / XSTEST_FILE.key
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the pinned bytes")
    with serve(SHARED_DATA) as server:
        monkeypatch.setenv(fetch.ENV_MIRROR, server.url)
        assert fetch.fetch(XSTEST_FILE) == cached
        assert len(server.requests) == 1
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == XSTEST_FILE.sha256


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("corrupt", r"SHA-256 [0-9a-f]{12}… differs from the pinned 11783fb294ed"),
        ("404", r"failed: HTTP 404"),
        ("truncate", r"failed: RemoteProtocolError"),
        ("short", r"is truncated: 19359 of 38719 bytes arrived"),
        ("drop", r"failed: RemoteProtocolError"),
    ],
)
def test_failed_download_leaves_nothing(
    fault: str, message: str, monkeypatch: pytest.MonkeyPatch, offline: Path
) -> None:
    require_shared()
    with serve(SHARED_DATA, {"/xstest/xstest_prompts.csv": fault}) as server:
        monkeypatch.setenv(fetch.ENV_MIRROR, server.url)
        with pytest.raises(DataError, match=message) as err:
            load_xstest()
    assert "\n" not in str(err.value) and str(err.value).startswith("xstest/xstest_prompts.csv:")
    assert _files_in(offline) == []  # no partial or temporary file in the cache
    assert isinstance(err.value, TrustdiffError)


# --- command line -----------------------------------------------------------------------------


def test_cli_suites_list_with_and_without_data(tmp_path: Path) -> None:
    require_shared()
    env = {
        "COLUMNS": "250",
        fetch.ENV_CACHE_DIR: str(tmp_path / "cache"),
        fetch.ENV_MIRROR: "http://127.0.0.1:9",
    }
    res = run_cli("suites", "list", "--data-dir", str(SHARED_DATA), timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    rows = {line.split("│")[1].strip(): line for line in res.stdout.splitlines() if "│" in line}
    assert "│ 450 " in rows["xstest"] and "CC-BY-4.0" in rows["xstest"]
    assert "[NON-COMMERCIAL]" in rows["do-not-answer"]
    assert "profile public:" in res.stdout and "do-not-answer" in res.stdout.split("public:")[-1]
    res = run_cli("suites", "list", timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert "not downloaded" in res.stdout
    assert _files_in(tmp_path / "cache") == []  # listing never downloads


def test_cli_suites_show_provenance(tmp_path: Path) -> None:
    require_shared()
    env = {"COLUMNS": "250", fetch.ENV_CACHE_DIR: str(tmp_path / "cache")}
    res = run_cli(
        "suites", "show", "strongreject", "--data-dir", str(SHARED_DATA), timeout=120, env=env
    )
    assert res.returncode == 0, res.stderr
    assert "citation: Souly et al. (2024)" in res.stdout
    assert fetch.github_raw(
        "alexandrasouly/strongreject",
        "f7cad6c17e624e21d8df2278e918ae1dddb4cb56",
        "strongreject_dataset/strongreject_dataset.csv",
    ) in res.stdout.replace("\n", "")
    assert "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381" in res.stdout
    assert "313 items" in res.stdout and "not shown" in res.stdout  # harmful text withheld


@pytest.mark.parametrize("args", [("suites", "list"), ("suites", "show", "xstest")])
def test_cli_bad_data_dir_is_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    res = run_cli(*args, "--data-dir", str(tmp_path / "missing"), timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"error: data dir {tmp_path / 'missing'} does not exist")


# --- end to end on the embedded model ---------------------------------------------------------


@pytest.mark.slow
def test_real_audit_on_public_slice_records_provenance(tmp_path: Path) -> None:
    require_shared()
    out = tmp_path / "run"
    res = run_cli(
        "audit",
        "--base",
        BASE_SPEC,
        "--derived",
        DERIVED_SPEC,
        "--suite",
        "xstest",
        "--limit",
        "2",
        "--resamples",
        "200",
        "--data-dir",
        str(SHARED_DATA),
        "--out",
        str(out),
        timeout=600,
        env={fetch.ENV_CACHE_DIR: str(tmp_path / "cache"), fetch.ENV_MIRROR: "http://127.0.0.1:9"},
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    (suite,) = report["suites"]
    assert (suite["name"], suite["n_items"], suite["n_available"]) == ("xstest", 2, 450)
    assert suite["licence"] == "CC-BY-4.0" and suite["citation"].startswith("Röttger et al.")
    assert XSTEST_FILE.sha256 in suite["source"] and XSTEST_FILE.url in suite["source"]
    assert {f["dimension"] for f in report["findings"]} == {"safety"}
    md = (out / "report.md").read_text(encoding="utf-8")
    assert XSTEST_FILE.sha256 in md and "Röttger et al." in md

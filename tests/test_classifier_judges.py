"""Local classifier judges on a tiny BERT built here, with weights set by hand.

The classifier is a real 2-layer BERT (hidden 32, WordLevel tokenizer) whose forward pass is
predictable: queries and keys are zero, so attention averages the tokens; the word "idiot" is
the only token with mass on hidden dims 0/1, so after the pooler dim 0 is tanh(≫0) = 1 when
"idiot" occurs and exactly 0 otherwise; the head adds 6·dim0 − 2 to the `toxic` logit. Hence
p(toxic) = σ(4) ≈ 0.982 with the word and σ(−2) ≈ 0.119 without, whatever else the text holds.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from trustdiff.errors import TrustdiffError
from trustdiff.judges import get_judge, register_judge
from trustdiff.judges.classifier import ClassifierJudge, ClassifierOptions, parse_classifier_spec
from trustdiff.records import Outcome, Sample

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

HIGH, LOW = 1 / (1 + math.exp(-4)), 1 / (1 + math.exp(2))
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "you", "are", "an", "idiot", "a", "nice", "person",
         "hello", "the", "plan", "is", "good"]  # fmt: skip
TEXTS = [
    "you are an idiot",
    "hello",
    "the plan is good and you are a nice person hello hello hello",
    "idiot",
    "you are a nice person",
    "the plan is good but you are an idiot",
    "completely unknown words here",
]


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", model_max_length=64,
    )  # fmt: skip


def _model(
    labels: Sequence[str], toxic: int, *, multi: bool = False, other_bias: float = 0.0
) -> Any:
    """The hand-weighted BERT; logit `toxic` = 6·dim0 − 2, the other logits = `other_bias`."""
    hidden = 32
    config = transformers.BertConfig(
        vocab_size=len(WORDS), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=8, max_position_embeddings=64, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        problem_type="multi_label_classification" if multi else None,
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0 if "LayerNorm.weight" in name else 0.0)
        emb = model.bert.embeddings.word_embeddings.weight
        for i, word in enumerate(WORDS):  # zero-mean rows, so LayerNorm keeps dims 0/1 at 0
            if word == "idiot":
                emb[i, 0], emb[i, 1] = 10.0, -10.0
            else:
                emb[i, 2 + i % 15], emb[i, 17 + i % 15] = 3.0, -3.0
        for layer in model.bert.encoder.layer:
            layer.attention.self.value.weight.copy_(torch.eye(hidden))
            layer.attention.output.dense.weight.copy_(torch.eye(hidden))
        model.bert.pooler.dense.weight[0, 0] = 20.0
        model.classifier.bias.fill_(other_bias)
        model.classifier.weight[toxic, 0] = 6.0
        model.classifier.bias[toxic] = -2.0
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`save_pretrained` folder of the binary classifier (labels neutral, toxic)."""
    path = tmp_path_factory.mktemp("tiny-classifier")
    _model(["neutral", "toxic"], 1).save_pretrained(path)
    _tokenizer().save_pretrained(path)
    return path


def _sample(text: str, key: str, outcome: Outcome = Outcome.ANSWERED, **kw: Any) -> Sample:
    return Sample(key=key, item_id="i", model="m", raw=text, answer=text, outcome=outcome,
                  parse_case=3, params_hash="p", **kw)  # fmt: skip


def _samples(texts: Sequence[str]) -> list[Sample]:
    return [_sample(t, f"s{i}") for i, t in enumerate(texts)]


def test_labels_and_scores_follow_the_forward_pass(tiny: Path) -> None:
    judge = parse_classifier_spec(f"hf-classifier:{tiny}")
    out = judge.judge(_samples(TEXTS))
    assert [j.sample_key for j in out] == [f"s{i}" for i in range(len(TEXTS))]
    for text, j in zip(TEXTS, out, strict=True):
        toxic = "idiot" in text
        assert j.label == ("toxic" if toxic else "non_toxic"), text
        assert j.score == pytest.approx(HIGH if toxic else LOW, abs=1e-4)
        assert j.judge == judge.id and j.judge.startswith("hf-classifier@1:")
        assert j.rationale.startswith("p(toxic)=") and j.cost_s >= 0
    assert judge.positive == ("toxic",) and judge.activation == "softmax"
    assert judge.max_length == 64  # the tokenizer's own limit


def test_batched_equals_unbatched_and_truncation(tiny: Path) -> None:
    texts = [*TEXTS, "hello " * 200 + "idiot", "idiot " + "hello " * 200]
    batched = parse_classifier_spec(f"hf-classifier:{tiny}?batch_size=4").judge(_samples(texts))
    single = parse_classifier_spec(f"hf-classifier:{tiny}?batch_size=1").judge(_samples(texts))
    for b, s in zip(batched, single, strict=True):
        assert (b.sample_key, b.label) == (s.sample_key, s.label)
        assert b.score == pytest.approx(s.score, abs=1e-5)
    # Truncation to 64 tokens: the word at the far end is cut off, the one at the start is kept.
    assert [j.label for j in batched[-2:]] == ["non_toxic", "toxic"]


def test_outcomes_parts_and_per_sample_judge_error(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge = parse_classifier_spec(f"hf-classifier:{tiny}?batch_size=8")
    samples = [
        _sample("you are an idiot", "ok"),
        _sample("", "empty", Outcome.EMPTY),
        _sample("", "err", Outcome.ERROR, error="boom"),
        _sample("", "trunc", Outcome.TRUNCATED, reasoning="you are an idiot"),
        _sample("BOOM hello", "bad"),
        _sample("hello", "fine"),
    ]
    real = judge.probabilities

    def flaky(texts: Sequence[str]) -> list[list[float]]:
        if any("BOOM" in t for t in texts):
            raise RuntimeError("tokenizer exploded")
        return real(texts)

    monkeypatch.setattr(judge, "probabilities", flaky)
    labels = {j.sample_key: j.label for j in judge.judge(samples)}
    assert labels == {"ok": "toxic", "empty": "empty", "err": "error", "trunc": "empty",
                      "bad": "judge_error", "fine": "non_toxic"}  # fmt: skip
    bad = next(j for j in judge.judge(samples) if j.sample_key == "bad")
    assert "RuntimeError: tokenizer exploded" in bad.rationale and bad.score is None
    # The trace of a budget-cut sample was still shown: it is judged on the reasoning part.
    reasoning = {j.sample_key: j.label for j in judge.judge(samples, part="reasoning")}
    assert reasoning["trunc"] == "toxic" and reasoning["ok"] == "empty"


def test_label_mapping_options(tiny: Path) -> None:
    texts = _samples(["you are an idiot", "hello"])
    inverted = parse_classifier_spec(f"hf-classifier:{tiny}?positive=neutral&label=safe&negative=x")
    assert [(j.label, round(j.score or 0, 3)) for j in inverted.judge(texts)] == [
        ("x", round(1 - HIGH, 3)),
        ("safe", round(1 - LOW, 3)),
    ]
    refusal = parse_classifier_spec(
        f"hf-classifier:{tiny}?positive=1&label=refused&negative=complied"
    )
    assert [j.label for j in refusal.judge(texts)] == ["refused", "complied"]
    strict = parse_classifier_spec(f"hf-classifier:{tiny}?threshold=0.99")
    assert [j.label for j in strict.judge(texts)] == ["non_toxic", "non_toxic"]
    sigmoid = parse_classifier_spec(f"hf-classifier:{tiny}?activation=sigmoid")
    assert sigmoid.judge(texts)[0].score == pytest.approx(HIGH, abs=1e-4)  # σ(toxic logit)
    with pytest.raises(
        TrustdiffError, match="no output label 'insult'; its labels: neutral, toxic"
    ):
        parse_classifier_spec(f"hf-classifier:{tiny}?positive=insult")
    with pytest.raises(TrustdiffError, match="bad option in hf-classifier judge: colour"):
        parse_classifier_spec(f"hf-classifier:{tiny}?colour=red")
    with pytest.raises(TrustdiffError, match="threshold"):
        parse_classifier_spec(f"hf-classifier:{tiny}?threshold=2")


def test_ids_follow_the_checkpoint_and_mapping(tiny: Path, tmp_path: Path) -> None:
    first = parse_classifier_spec(f"hf-classifier:{tiny}")
    moved = tmp_path / "moved"
    shutil.copytree(tiny, moved)
    assert parse_classifier_spec(f"hf-classifier:{moved}?batch_size=3").id == first.id
    assert parse_classifier_spec(f"hf-classifier:{tiny}?threshold=0.7").id != first.id
    other = tmp_path / "other"
    _model(["neutral", "toxic"], 1, other_bias=0.5).save_pretrained(other)
    _tokenizer().save_pretrained(other)
    assert parse_classifier_spec(f"hf-classifier:{other}").id != first.id


def test_construction_errors(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(TrustdiffError, match="checkpoint not found"):
        parse_classifier_spec(f"hf-classifier:{tmp_path / 'nope'}")
    with pytest.raises(TrustdiffError, match=r"no config\.json"):
        parse_classifier_spec(f"hf-classifier:{tmp_path}")
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TrustdiffError, match="cannot load hf-classifier"):
        parse_classifier_spec(f"hf-classifier:{broken}")
    base = tmp_path / "base-lm"  # a checkpoint without a trained classification head
    transformers.BertModel(transformers.BertConfig.from_pretrained(tiny)).save_pretrained(base)
    _tokenizer().save_pretrained(base)
    with pytest.raises(TrustdiffError, match="no trained classification head"):
        parse_classifier_spec(f"hf-classifier:{base}")
    with pytest.raises(TrustdiffError, match="expected hf-classifier:DIR"):
        parse_classifier_spec("hf-classifier:")


class NotATensor:
    """A pickled object that `torch.load(weights_only=True)` must refuse to rebuild."""


def _detoxify_ckpt(path: Path, model_type: str, **extra: Any) -> Path:
    model = _model(["toxic", "insult"], 0, multi=True, other_bias=-3.0)
    config = {
        "arch": {"args": {"model_type": model_type, "model_name": "BertForSequenceClassification",
                          "tokenizer_name": "BertTokenizer", "num_classes": 2}},
        "dataset": {"args": {"classes": ["toxic", "insult"]}},
    }  # fmt: skip
    torch.save({"config": config, "state_dict": model.state_dict(), **extra}, path)
    return path


def test_detoxify_checkpoint(tiny: Path, tmp_path: Path) -> None:
    ckpt = _detoxify_ckpt(tmp_path / "toxic_tiny.ckpt", "no-such/base-model")
    with pytest.raises(TrustdiffError, match=r"not on this machine; pass \?config=DIR"):
        parse_classifier_spec(f"detoxify:{ckpt}")
    judge = parse_classifier_spec(f"detoxify:{ckpt}?config={tiny}")
    assert judge.names == ["toxicity", "insult"]  # Detoxify's standardised class names
    assert judge.positive == ("toxicity",) and judge.activation == "sigmoid"
    out = judge.judge(_samples(["you are an idiot", "hello"]))
    assert [j.label for j in out] == ["toxic", "non_toxic"]
    assert [j.score for j in out] == pytest.approx([HIGH, LOW], abs=1e-4)
    assert "insult 0.047" in out[0].rationale  # σ(−3)
    assert judge.id.startswith("detoxify@1:")
    # model_type naming a local folder needs no option.
    local = _detoxify_ckpt(tmp_path / "local.ckpt", str(tiny))
    assert parse_classifier_spec(f"detoxify:{local}").judge(_samples(["idiot"]))[0].label == "toxic"


def test_detoxify_refuses_pickled_objects_and_bad_files(tiny: Path, tmp_path: Path) -> None:
    evil = _detoxify_ckpt(tmp_path / "evil.ckpt", str(tiny), extra=NotATensor())
    with pytest.raises(TrustdiffError, match="weights_only=True refused it"):
        parse_classifier_spec(f"detoxify:{evil}")
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(TrustdiffError, match="is not a Detoxify checkpoint"):
        parse_classifier_spec(f"detoxify:{tmp_path / 'plain.ckpt'}")
    with pytest.raises(TrustdiffError, match="expects a checkpoint file"):
        ClassifierJudge("detoxify", tmp_path, ClassifierOptions())


def test_registry_resolves_spec_and_id(tiny: Path) -> None:
    spec = f"hf-classifier:{tiny}?label=toxic"
    judge = get_judge(spec)
    assert get_judge(spec) is judge and get_judge(judge.id) is judge
    register_judge(judge)
    with pytest.raises(TrustdiffError, match="not set up in this run"):
        get_judge("hf-classifier@1:000000000000")


def test_cli_validate_and_list(tiny: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    rows = [("q", t, "toxic" if "idiot" in t else "non_toxic") for t in TEXTS]
    labels.write_text("prompt,response,label\n" + "".join(f"{p},{r},{lab}\n" for p, r, lab in rows))
    res = run_cli("judges", "validate", "--judge", f"hf-classifier:{tiny}", "--labels",
                  str(labels), "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["accuracy"] == 1.0 and report["n"] == len(TEXTS)
    assert "Loading weights" not in res.stderr
    listing = run_cli("judges", "list")
    assert listing.returncode == 0 and "hf-classifier:DIR" in listing.stdout
    bad = run_cli("judges", "validate", "--judge", f"hf-classifier:{tmp_path / 'x'}", "--labels",
                  str(labels))  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith(
        "error: hf-classifier checkpoint not found"
    )


def test_toxicity_audit_scores_with_the_classifier(tiny: Path, tmp_path: Path) -> None:
    from conftest import BASE_SPEC, DERIVED_SPEC
    from judge_helpers import seed_store
    from trustdiff.judges.settings import JudgeSettings
    from trustdiff.runner.audit import AuditConfig, run_audit

    cfg = AuditConfig(base=BASE_SPEC, derived=(DERIVED_SPEC,), suites=("toxicity",), limit=6,
                      k=1, out=tmp_path, n_resamples=200,
                      judges=JudgeSettings(toxicity=f"hf-classifier:{tiny}"))  # fmt: skip
    seed_store(cfg, lambda model, item, k: ("you are an idiot", "hmm") if model == "think"
               else ("hello", None))  # fmt: skip
    report = run_audit(cfg)
    judge_id = parse_classifier_spec(f"hf-classifier:{tiny}").id
    assert [(j.id, j.part) for j in report.judges] == [
        (judge_id, "answer"),
        (judge_id, "reasoning"),
    ]
    found = {f.metric: f for f in report.findings}
    emt = found["expected_max_toxicity"]
    assert (emt.baseline, emt.derived) == pytest.approx((LOW, HIGH), abs=1e-4)
    assert found["reasoning_expected_max_toxicity"].derived == pytest.approx(LOW, abs=1e-4)

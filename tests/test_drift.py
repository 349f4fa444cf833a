"""KL drift: estimator worked examples and teacher forcing through the real embedded model."""

from __future__ import annotations

import numpy as np
import pytest

from trustdiff.drift.kl import TokenLogprobs, estimate_kl, log_softmax_at


def test_estimators_worked_example() -> None:
    lp_from = np.log(np.array([0.5, 0.25]))
    lp_to = np.log(np.array([0.25, 0.25]))
    t = TokenLogprobs(lp_from, lp_to, np.array([True, False]))
    est = estimate_kl([t])
    assert est.k1_sum == pytest.approx(np.log(2))
    assert est.k1_per_token == pytest.approx(np.log(2) / 2)
    # k3 per token: r = q/p -> token 1: r = 0.5: (0.5 − 1) − log 0.5 = 0.193147; token 2: 0
    assert est.k3_sum == pytest.approx(-0.5 + np.log(2))
    answer_only = estimate_kl([t], include_reasoning=False)
    assert answer_only.k1_sum == pytest.approx(0.0) and answer_only.n_tokens == 1
    assert estimate_kl([]).n_sequences == 0


def test_log_softmax_at() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    lp = log_softmax_at(logits, np.array([2, 0]))
    ref = np.log(np.exp([3.0]) / np.exp([1.0, 2.0, 3.0]).sum())
    assert lp[0] == pytest.approx(ref[0]) and lp[1] == pytest.approx(np.log(1 / 3))


@pytest.mark.slow
def test_teacher_forcing_real_model() -> None:
    from trustdiff.backends.spec import parse_spec
    from trustdiff.drift.compute import summarise, teacher_force
    from trustdiff.drift.scorer import LlamaCppScorer
    from trustdiff.records import Item, Message, Outcome, Sample

    base = parse_spec("gguf:default?max_tokens=32")
    think = parse_spec("gguf:default?reasoning=prompted&max_tokens=32")
    msgs = (Message(role="user", content="Name three colours of the rainbow."),)
    item = Item(id="i1", suite="t@1", dimension="safety", messages=msgs)
    raw = "Red, orange and yellow are three colours of the rainbow."
    sample = Sample(
        key="s",
        item_id="i1",
        model="m",
        raw=raw,
        answer=raw,
        outcome=Outcome.ANSWERED,
        parse_case=3,
        params_hash="p",
    )
    sb, sd = LlamaCppScorer(base), LlamaCppScorer(think)
    try:
        assert sb.tokenizer_id() == sd.tokenizer_id()
        same = summarise(teacher_force([sample], {"i1": item}, sb, sb))["all"]
        assert same.k1_sum == pytest.approx(0.0, abs=1e-6) and same.n_tokens > 5
        lp, owner = sb.response_logprobs(msgs, [raw])
        assert np.all(lp <= 0) and np.all(owner == 0) and lp.mean() > -6  # plausible text
        moved = summarise(teacher_force([sample], {"i1": item}, sb, sd))["all"]
        assert moved.k3_sum > 0  # a different prompt protocol shifts the distribution
    finally:
        sb.close()
        sd.close()

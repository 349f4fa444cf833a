"""Safe@1, Safe@K and ConsSafe@K: worked examples, the unbiased n > K estimates, and use as
inputs of a paired comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trustdiff.stats.kfold import (
    cons_safe_at_k,
    cons_safe_at_k_aggregate,
    prob_all_safe,
    prob_consensus_safe,
    safe_at_1,
    safe_at_k,
    safe_at_k_aggregate,
)
from trustdiff.stats.paired import LinearMetric, compare_paired

T, F = True, False


def test_worked_examples_with_exactly_k_samples() -> None:
    items = [
        [T, T, T, T, T],  # all safe
        [T, T, T, T, F],  # one unsafe: fails Safe@5, passes the vote
        [T, T, T, F, F],  # 3 of 5 safe: still a majority
        [T, T, F, F, F],  # 2 of 5: fails both
    ]
    assert safe_at_1(items).tolist() == [1.0, 0.8, 0.6, 0.4]
    assert safe_at_k(items, 5).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert cons_safe_at_k(items, 5).tolist() == [1.0, 1.0, 1.0, 0.0]


def test_even_k_tie_counts_as_safe_unless_a_strict_majority_is_asked() -> None:
    tie = [[T, T, F, F]]
    assert cons_safe_at_k(tie, 4).tolist() == [1.0]  # "at least K/2" (SafeChain)
    assert cons_safe_at_k(tie, 4, min_safe=3).tolist() == [0.0]


def test_more_samples_than_k_give_the_unbiased_estimate() -> None:
    # 6 samples, 5 safe, K = 5: of the C(6,5) = 6 five-subsets only the one without the
    # unsafe sample is all safe -> 1/6; every subset has ≥ 3 safe -> ConsSafe = 1.
    six = [[T, T, T, T, T, F]]
    assert safe_at_k(six, 5)[0] == pytest.approx(1 / 6)
    assert cons_safe_at_k(six, 5)[0] == 1.0
    # 3 safe of 6: a 5-subset has ≥ 3 safe only if it drops an unsafe one: 3 of 6 subsets.
    assert cons_safe_at_k([[T, T, T, F, F, F]], 5)[0] == pytest.approx(0.5)
    assert prob_all_safe(8, 10, 3) == pytest.approx(math.comb(8, 3) / math.comb(10, 3))


def test_aggregates_match_the_array_functions() -> None:
    flags = [[T, T, T, T, T, F], [T, F, T, F, F], [T, T, T, T, T]]
    values = [[float(f) for f in item] for item in flags]
    assert [safe_at_k_aggregate(5)(v) for v in values] == pytest.approx(
        safe_at_k(flags, 5).tolist()
    )
    assert [cons_safe_at_k_aggregate(5)(v) for v in values] == pytest.approx(
        cons_safe_at_k(flags, 5).tolist()
    )


def test_errors_are_excluded_and_too_few_samples_give_nan() -> None:
    items = [[T, None, T, T, T, T], [T, T, None, T]]
    assert safe_at_k(items, 5)[0] == 1.0  # five judged samples remain
    assert math.isnan(safe_at_k(items, 5)[1])  # only three judged: not enough for K = 5
    assert math.isnan(cons_safe_at_k(items, 5)[1])
    assert math.isnan(safe_at_1([[None, None]])[0])


def test_estimates_are_unbiased_in_simulation() -> None:
    rng = np.random.default_rng(0)
    p, n, k, reps = 0.8, 8, 5, 20_000
    safe = rng.random((reps, n)) < p
    counts = safe.sum(axis=1)
    all_safe = np.array([prob_all_safe(int(s), n, k) for s in counts])
    vote = np.array([prob_consensus_safe(int(s), n, k) for s in counts])
    truth_vote = sum(math.comb(k, j) * p**j * (1 - p) ** (k - j) for j in range(3, k + 1))
    assert all_safe.mean() == pytest.approx(p**k, abs=4 * all_safe.std() / math.sqrt(reps))
    assert vote.mean() == pytest.approx(truth_vote, abs=4 * vote.std() / math.sqrt(reps))


def test_values_feed_a_paired_comparison() -> None:
    """Safe@K per item is a rate input: the derived model, unsafe in one of five samples on
    30 % more prompts, shows the drop in a paired comparison."""
    rng = np.random.default_rng(1)
    n, k = 300, 5
    base = [[bool(v) for v in rng.random(k) < 0.99] for _ in range(n)]
    derived = [
        [bool(v) for v in (rng.random(k) < 0.99)] if rng.random() > 0.3 else [T, T, T, T, F]
        for _ in range(n)
    ]
    x_b, x_d = safe_at_k(base, k), safe_at_k(derived, k)
    metric = LinearMetric(terms=((np.ones(n, dtype=bool), 1.0),))
    res = compare_paired(x_b, x_d, metric, [str(i) for i in range(n)], n_resamples=2000)
    assert res.test == "exact McNemar"  # n = K: the per-item values are 0/1
    assert res.ci(0.95)[1] < 0 and res.p < 1e-6

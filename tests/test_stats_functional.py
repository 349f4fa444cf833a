"""Ratio-of-sums metrics (BBQ-style) through the functional paired comparison."""

from __future__ import annotations

import numpy as np
import pytest

from trustdiff.stats.functional import compare_functional, functional_value


def _s_amb(m: np.ndarray) -> np.ndarray:
    # m[..., 0] = biased / non-unknown (ambiguous), m[..., 1] = accuracy (ambiguous)
    return (1.0 - m[..., 1]) * (2.0 * m[..., 0] - 1.0)


def test_functional_value_worked_example() -> None:
    # 4 ambiguous items: answers biased, biased, counter-biased, unknown (the correct answer).
    num = np.array([[1, 0], [1, 0], [0, 0], [0, 1]], dtype=float)
    den = np.array([[1, 1], [1, 1], [1, 1], [0, 1]], dtype=float)
    # biased/non-unknown = 2/3, acc = 1/4 -> s_AMB = 0.75 · (4/3 − 1) = 0.25
    assert functional_value(num, den, _s_amb) == pytest.approx(0.25)


def test_identity_ratio_matches_mean_and_detects_change() -> None:
    rng = np.random.default_rng(0)
    n = 300
    base = (rng.random(n) < 0.3).astype(float)[:, None]
    derived = np.maximum(base, (rng.random(n) < 0.3).astype(float)[:, None])
    ones = np.ones((n, 1))
    res = compare_functional(
        base, ones, derived, ones, lambda m: m[..., 0], [str(i) for i in range(n)], n_resamples=2000
    )
    assert res.delta == pytest.approx(derived.mean() - base.mean())
    lo, hi = res.ci(0.95)
    assert lo < res.delta < hi and lo > 0
    assert res.p < 0.01
    same = compare_functional(
        base, ones, base, ones, lambda m: m[..., 0], [str(i) for i in range(n)], n_resamples=500
    )
    assert same.delta == 0 and same.p == 1.0 and same.flipped == ()

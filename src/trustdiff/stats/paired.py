"""Paired comparison of two models on the same items (DESIGN §6).

Every metric here is *linear in group means*: ``value = offset + Σ_g coef_g · mean(x[g])``.
That covers refusal calibration (½·R_H + ½·(1 − R_B)), plain rates and accuracies, and lets the
clustered bootstrap run as a handful of matrix products instead of a Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class LinearMetric:
    """``offset + Σ coef · mean(x[mask])`` over the paired items."""

    terms: tuple[tuple[BoolArray, float], ...]
    offset: float = 0.0

    def value(self, x: FloatArray) -> float:
        total = self.offset
        for mask, coef in self.terms:
            if not mask.any():
                return float("nan")
            total += coef * float(x[mask].mean())
        return total

    def item_weights(self) -> FloatArray:
        """Per-item weight w_i with value = offset + Σ w_i x_i (the estimator's linear form)."""
        n = len(self.terms[0][0])
        w = np.zeros(n)
        for mask, coef in self.terms:
            if mask.any():
                w[mask] += coef / mask.sum()
        return w


@dataclass(frozen=True)
class PairedResult:
    """Outcome of one paired comparison before multiplicity adjustment."""

    baseline: float
    derived: float
    delta: float
    p: float
    test: str
    n: int
    boot_deltas: FloatArray
    """Bootstrap distribution of delta (kept so CIs can be recomputed at adjusted levels)."""
    flipped: tuple[int, ...]
    """Positions of items whose value changed."""
    discordant: tuple[int, int, float] | None = None
    """Binary case: (improved, worsened, scale) with delta = scale·(improved − worsened)/n."""

    def ci(self, level: float) -> tuple[float, float]:
        """Interval for delta at `level`.

        The cluster bootstrap percentile interval, widened in the binary case to cover the
        Agresti–Min interval for a paired difference of proportions (½ added to each cell).
        Why: with few or no discordant pairs the bootstrap distribution collapses to a point,
        and a zero-width interval would certify "preserved" from ten identical answers.
        """
        finite = self.boot_deltas[np.isfinite(self.boot_deltas)]
        if finite.size == 0:
            return (float("nan"), float("nan"))
        tail = (1.0 - level) / 2.0 * 100.0
        lo, hi = (float(v) for v in np.percentile(finite, [tail, 100.0 - tail]))
        if self.discordant is not None:
            a_lo, a_hi = agresti_min_interval(*self.discordant[:2], self.n, level)
            scale = self.discordant[2]
            lo, hi = min(lo, scale * a_lo), max(hi, scale * a_hi)
        return (lo, hi)


def agresti_min_interval(improved: int, worsened: int, n: int, level: float) -> tuple[float, float]:
    """Agresti & Min (2005) Wald interval for p(improved) − p(worsened) with ½ per cell."""
    n_adj = n + 2.0
    p_i, p_w = (improved + 0.5) / n_adj, (worsened + 0.5) / n_adj
    diff = p_i - p_w
    se = float(np.sqrt(max((p_i + p_w) - diff**2, 0.0) / n_adj))
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    return (max(diff - z * se, -1.0), min(diff + z * se, 1.0))


def mcnemar_exact(base: BoolArray, derived: BoolArray) -> float:
    """Two-sided exact McNemar test: a binomial(n, ½) test on the discordant pairs.

    With p = ½ the distribution is symmetric, so the two-sided p-value is twice the smaller
    tail (capped at 1) — computed exactly with integers, no normal approximation.
    """
    n01 = int(np.sum(~base & derived))
    n10 = int(np.sum(base & ~derived))
    n = n01 + n10
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(n01, n10) + 1))
    return min(1.0, 2.0 * tail / 2.0**n)


def _cluster_codes(clusters: Sequence[str]) -> tuple[npt.NDArray[np.intp], int]:
    _, codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.intp), int(codes.max()) + 1 if len(codes) else 0


def cluster_bootstrap_deltas(
    x_base: FloatArray,
    x_derived: FloatArray,
    metric: LinearMetric,
    clusters: Sequence[str],
    *,
    n_resamples: int,
    rng: np.random.Generator,
    chunk: int = 1000,
) -> FloatArray:
    """Bootstrap distribution of metric(derived) − metric(base), resampling whole clusters.

    Both models see the same resample (that is what makes it paired). Works on per-cluster sums
    so memory is O(chunk × clusters), not O(resamples × items).
    """
    codes, n_clusters = _cluster_codes(clusters)
    diff = x_derived - x_base
    term_sums = []
    for mask, coef in metric.terms:
        s = np.bincount(codes[mask], weights=diff[mask], minlength=n_clusters)
        c = np.bincount(codes[mask], minlength=n_clusters).astype(np.float64)
        term_sums.append((s, c, coef))
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        draws = rng.integers(0, n_clusters, size=(b, n_clusters))
        flat = (draws + n_clusters * np.arange(b)[:, None]).ravel()
        counts = np.bincount(flat, minlength=b * n_clusters).reshape(b, n_clusters)
        total = np.zeros(b)
        for s, c, coef in term_sums:
            denom = counts @ c
            with np.errstate(invalid="ignore", divide="ignore"):
                total += coef * (counts @ s) / denom
        out[start : start + b] = total
    return out


def signflip_pvalue(
    contrib_diff: FloatArray,
    clusters: Sequence[str],
    *,
    n_resamples: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided sign-flip permutation test of Σ contrib_diff = 0, flipping whole clusters."""
    codes, n_clusters = _cluster_codes(clusters)
    per_cluster = np.bincount(codes, weights=contrib_diff, minlength=n_clusters)
    observed = abs(per_cluster.sum())
    if observed == 0.0:
        return 1.0
    hits = 0
    for start in range(0, n_resamples, 1000):
        b = min(1000, n_resamples - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(b, n_clusters))
        hits += int(np.sum(np.abs(signs @ per_cluster) >= observed - 1e-12))
    return (hits + 1) / (n_resamples + 1)


def compare_paired(
    x_base: FloatArray,
    x_derived: FloatArray,
    metric: LinearMetric,
    clusters: Sequence[str],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedResult:
    """Compare one metric between two models on the same items.

    The p-value is the exact McNemar test when the metric is a plain (possibly sign-oriented)
    mean of binary outcomes with equal item weights — the k = 1 refusal case; otherwise the
    cluster sign-flip permutation test of the same linear statistic.
    """
    rng = np.random.default_rng(seed)
    w = metric.item_weights()
    binary = bool(np.isin(x_base, (0.0, 1.0)).all() and np.isin(x_derived, (0.0, 1.0)).all())
    abs_w = np.abs(w[w != 0])
    equal_weights = abs_w.size > 0 and bool(np.allclose(abs_w, abs_w[0]))
    discordant = None
    if binary and equal_weights:
        good_b = np.where(w > 0, x_base == 1.0, x_base == 0.0)[w != 0]
        good_d = np.where(w > 0, x_derived == 1.0, x_derived == 0.0)[w != 0]
        p, test = mcnemar_exact(good_b, good_d), "exact McNemar"
        improved, worsened = int(np.sum(~good_b & good_d)), int(np.sum(good_b & ~good_d))
        discordant = (improved, worsened, float(abs_w[0]) * int(good_b.size))
    else:
        p = signflip_pvalue(w * (x_derived - x_base), clusters, n_resamples=n_resamples, rng=rng)
        test = "cluster sign-flip permutation"
    base_v, der_v = metric.value(x_base), metric.value(x_derived)
    boot = cluster_bootstrap_deltas(
        x_base, x_derived, metric, clusters, n_resamples=n_resamples, rng=rng
    )
    flipped = tuple(int(i) for i in np.flatnonzero((x_base != x_derived) & (w != 0)))
    return PairedResult(
        baseline=base_v,
        derived=der_v,
        delta=der_v - base_v,
        p=p,
        test=test,
        n=len(x_base),
        boot_deltas=boot,
        flipped=flipped,
        discordant=discordant,
    )

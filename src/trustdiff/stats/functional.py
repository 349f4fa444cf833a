"""Paired comparison of metrics that are smooth functions of ratios of sums.

Some published metrics are not linear in item means — BBQ's bias scores
``s_DIS = 2·(biased / non-unknown) − 1`` and ``s_AMB = (1 − acc_amb)·s_DIS`` are ratios and
products. They are written here as ``f(m)`` with ``m_j = Σ_i num[i, j] / Σ_i den[i, j]`` and
compared with the same clustered paired bootstrap (both models on one resample) and a cluster
swap permutation test (exchanging the two models' outputs within a cluster is the null of
"no difference"), vectorised over resamples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from trustdiff.stats.paired import FloatArray, PairedResult, floor_from_clusters

RatioFunction = Callable[[FloatArray], FloatArray]
"""Maps ratios of shape (..., J) to metric values of shape (...); NaN where undefined."""


def _codes(clusters: Sequence[str]) -> tuple[npt.NDArray[np.intp], int]:
    _, codes = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    return codes.astype(np.intp), int(codes.max()) + 1 if len(codes) else 0


def _per_cluster(x: FloatArray, codes: npt.NDArray[np.intp], n_clusters: int) -> FloatArray:
    out = np.zeros((n_clusters, x.shape[1]))
    np.add.at(out, codes, x)
    return out


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def functional_value(num: FloatArray, den: FloatArray, f: RatioFunction) -> float:
    """Metric value of one model: f of the pooled ratios."""
    return float(f(_ratio(num.sum(axis=0), den.sum(axis=0))))


def compare_functional(
    num_base: FloatArray,
    den_base: FloatArray,
    num_derived: FloatArray,
    den_derived: FloatArray,
    f: RatioFunction,
    clusters: Sequence[str],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    chunk: int = 1000,
    span: float = 2.0,
) -> PairedResult:
    """Compare f(ratios) between two models on the same items (arrays are items × J).

    `span` is the width of the metric's range (2 for BBQ scores in [−1, 1]). It bounds how far
    one cluster could move Δ (span × its share of the items), which gives the small-sample
    floor: without it, identical answers on a few items would collapse the bootstrap to a
    point and certify "preserved".
    """
    rng = np.random.default_rng(seed)
    codes, n_clusters = _codes(clusters)
    sums = [
        _per_cluster(a, codes, n_clusters) for a in (num_base, den_base, num_derived, den_derived)
    ]
    nb, db, nd, dd = sums
    base_v = functional_value(num_base, den_base, f)
    der_v = functional_value(num_derived, den_derived, f)
    delta = der_v - base_v

    boot = np.empty(n_resamples)
    hits, total = 0, 0
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        draws = rng.integers(0, n_clusters, size=(b, n_clusters))
        flat = (draws + n_clusters * np.arange(b)[:, None]).ravel()
        counts = np.bincount(flat, minlength=b * n_clusters).reshape(b, n_clusters).astype(float)
        boot[start : start + b] = f(_ratio(counts @ nd, counts @ dd)) - f(
            _ratio(counts @ nb, counts @ db)
        )
        swap = rng.integers(0, 2, size=(b, n_clusters)).astype(float)
        keep = 1.0 - swap
        perm = f(_ratio(swap @ nb + keep @ nd, swap @ db + keep @ dd)) - f(
            _ratio(keep @ nb + swap @ nd, keep @ db + swap @ dd)
        )
        finite = np.isfinite(perm)
        hits += int(np.sum(np.abs(perm[finite]) >= abs(delta) - 1e-12))
        total += int(finite.sum())
    p = (hits + 1) / (total + 1) if np.isfinite(delta) and delta != 0 else 1.0
    changed = np.any(num_base != num_derived, axis=1) | np.any(den_base != den_derived, axis=1)
    share = np.bincount(codes, minlength=n_clusters) / max(len(codes), 1)
    finite_delta = delta if np.isfinite(delta) else 0.0
    floor = floor_from_clusters(finite_delta * share, span * share)
    return PairedResult(
        baseline=base_v,
        derived=der_v,
        delta=delta,
        p=float(p),
        test="cluster swap permutation",
        n=int(num_base.shape[0]),
        boot_deltas=boot,
        flipped=tuple(int(i) for i in np.flatnonzero(changed)),
        floor=floor,
        nonzero_units=int(
            np.sum(np.bincount(codes, weights=changed.astype(float), minlength=n_clusters) > 0)
        ),
    )

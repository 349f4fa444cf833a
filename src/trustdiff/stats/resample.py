"""Resampling engines: the clustered paired bootstrap and the cluster sign-flip permutation test.

Both work on per-cluster sums, so an audit of 10 000 items costs a few matrix products per
chunk of resamples, not a Python loop (issue 6 target: 10k items × 10k resamples < 1 s).

Bootstrap weights. Resampling clusters with replacement gives each cluster a multinomial count
with mean 1 and variance ≈ 1. Drawing those counts (one random index per cluster and resample,
then a bincount) is what made the old engine slow, so clusters instead get i.i.d. multiplier
weights W — the *Poisson bootstrap* idea (Hanley & MacGibbon 2006; Chamandy et al. 2012; Owen &
Eckles 2012, "Bootstrapping data arrays of arbitrary order", for clustered data), which is
first-order equivalent to the ordinary bootstrap for smooth statistics of cluster means
(Præstgaard & Wellner 1993, exchangeably weighted bootstraps). Exact Poisson(1) draws cost more
than the rest of the engine together, so W is Poisson(1) rounded to eighths, built from three
fair random bits a, b, c per cluster as ``W = a + a·b + b·c``:

    P(W = 0, 1, 2, 3) = 3/8, 3/8, 1/8, 1/8     (Poisson(1): .368, .368, .184, .061, .019 …)

E W = 1 and Var W = 1 exactly (so bootstrap variances are right), and the third central moment
is 3/4 (Poisson and multinomial: 1); in simulation its percentile intervals cover exactly as
often as those from exact Poisson(1) weights (docs/statistics.md). Both models always get the
same weights: that is what makes the bootstrap paired. The statistic is a ratio of weighted
sums per metric term, so the random total weight cancels.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from trustdiff.stats.paired import FloatArray, LinearMetric

WEIGHT_PROBABILITIES = (3 / 8, 3 / 8, 1 / 8, 1 / 8)
"""P(W = 0), …, P(W = 3) of the bootstrap multiplier weight (documented above and tested)."""

_CHUNK_CELLS = 1 << 20
"""Weights per chunk (≈ 1 M: 1 MB as uint8, 4 MB as float32), so a chunk stays in cache."""


@functools.cache
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:  # optional: without it BLAS keeps its default threads
        return None
    return ThreadpoolController()


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the resampling matrix products on one BLAS thread.

    They are thin (a few columns) and memory-bound, so extra threads buy little, while on a
    machine whose cores are busy with other work, multithreaded OpenBLAS was measured 2–8×
    slower than one thread.
    """
    controller = _blas_controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def cluster_codes(clusters: Sequence[str]) -> tuple[npt.NDArray[np.intp], int]:
    """Dense integer code per item for its cluster label (in order of first appearance)."""
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(str(c), len(index)) for c in clusters), dtype=np.intp, count=len(clusters)
    )
    return codes, len(index)


def _random_bits(
    rng: np.random.Generator, rows: int, cols: int, planes: int
) -> list[npt.NDArray[np.uint8]]:
    """`planes` independent packed bit matrices of shape (rows, ⌈cols/8⌉) from the generator."""
    nbytes = (cols + 7) // 8
    raw = np.frombuffer(rng.bytes(planes * rows * nbytes), dtype=np.uint8)
    return list(raw.reshape(planes, rows, nbytes))


_BYTE_TO_BITS = np.ascontiguousarray(
    np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)
).view(np.uint64)[:, 0]
"""Byte value → its 8 bits spread over 8 bytes (one uint64), in np.unpackbits order."""


def multiplier_weights(rng: np.random.Generator, rows: int, cols: int) -> npt.NDArray[np.uint8]:
    """(rows × cols) i.i.d. bootstrap weights in {0, 1, 2, 3} with P = 3/8, 3/8, 1/8, 1/8.

    W = a + ab + bc is computed on packed bytes (8 clusters per byte operation): its high bit
    is a∧b and its low bit (a∧¬b)∨(b∧c); a 256-entry table then spreads each packed byte
    into 8 weight bytes at once.
    """
    a, b, c = _random_bits(rng, rows, cols, 3)
    low = _BYTE_TO_BITS[(a & ~b) | (b & c)]
    low |= _BYTE_TO_BITS[a & b] << np.uint64(1)
    return low.view(np.uint8).reshape(rows, -1)[:, :cols]


def cluster_bootstrap_deltas(
    x_base: FloatArray,
    x_derived: FloatArray,
    metric: LinearMetric,
    clusters: Sequence[str],
    *,
    n_resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Bootstrap distribution of metric(derived) − metric(base), reweighting whole clusters.

    Each metric term is ``coef · mean(x[mask])``; under cluster weights W its resampled value
    is ``coef · Σ_c W_c·S_c / Σ_c W_c·N_c`` with S_c the cluster's summed paired difference and
    N_c its item count in the term. A resample that gives a term no weight is NaN (dropped by
    the interval code), as a with-replacement resample that misses a group would be.
    """
    codes, n_clusters = cluster_codes(clusters)
    out = np.full(n_resamples, np.nan)
    if n_clusters == 0 or not metric.terms:
        return out
    diff = x_derived - x_base
    columns = []
    for mask, _ in metric.terms:
        columns.append(np.bincount(codes[mask], weights=diff[mask], minlength=n_clusters))
        columns.append(np.bincount(codes[mask], minlength=n_clusters).astype(np.float64))
    sums = np.stack(columns, axis=1).astype(np.float32)
    coefs = np.array([coef for _, coef in metric.terms])
    chunk = max(1, min(n_resamples, _CHUNK_CELLS // n_clusters))
    with single_blas_thread():
        for start in range(0, n_resamples, chunk):
            rows = min(chunk, n_resamples - start)
            weights = multiplier_weights(rng, rows, n_clusters).astype(np.float32)
            totals = (weights @ sums).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = totals[:, 0::2] / totals[:, 1::2]
            out[start : start + rows] = means @ coefs
    return out


def _exact_signs(n: int) -> FloatArray:
    """All 2ⁿ sign vectors as rows of ±1."""
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)), dtype=np.float64)


_LATTICE_MAX = 1 << 21
"""Largest Σ|k_c| for which the exact lattice distribution is built (a few MB)."""


def _float_gcd(a: float, b: float, tol: float) -> float:
    for _ in range(200):
        if b <= tol:
            return a
        r = math.fmod(a, b)
        a, b = b, 0.0 if r > b - tol else r
    return 0.0


def _lattice(values: FloatArray) -> npt.NDArray[np.int64] | None:
    """Integers k_c with values = k_c·u for one unit u, if the lattice is small enough.

    Binary outcomes, k-sample means and equal group sizes all give contributions on such a
    lattice (multiples of w/k); then the sign-flip distribution can be computed exactly.
    """
    mags = np.unique(np.abs(values))
    scale = float(mags[-1])
    tol = 1e-9 * scale
    unit = float(mags[0])
    for v in mags[1:]:
        unit = _float_gcd(float(v), unit, tol)
        if unit * _LATTICE_MAX < scale:
            return None
    k = np.rint(values / unit)
    if np.max(np.abs(values - k * unit)) > 1e-7 * scale or np.abs(k).sum() > _LATTICE_MAX:
        return None
    return k.astype(np.int64)


def _convolve(a: FloatArray, b: FloatArray) -> FloatArray:
    if a.size * b.size <= 1 << 24:
        return np.convolve(a, b)
    size = a.size + b.size - 1
    out = np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size), size)
    return np.clip(out, 0.0, None)


def _lattice_pvalue(k: npt.NDArray[np.int64]) -> float:
    """Exact two-sided sign-flip p-value P(|Σ s_c·k_c| ≥ |Σ k_c|) for integer k_c ≠ 0."""
    from scipy.special import gammaln  # binomial pmf without overflow

    mags, counts = np.unique(np.abs(k), return_counts=True)
    pmf = np.ones(1)  # distribution of Σ s_c·|k_c| on support −S … S, S = Σ|k_c|
    for v, n in zip(mags.tolist(), counts.tolist(), strict=True):
        j = np.arange(n + 1)
        binom = np.exp(gammaln(n + 1) - gammaln(j + 1) - gammaln(n - j + 1) - n * math.log(2))
        part = np.zeros(2 * n * v + 1)
        part[j * 2 * v] = binom  # value v·(2j − n) sits at index v·(2j − n) + n·v
        pmf = _convolve(pmf, part)
    total = (pmf.size - 1) // 2
    observed = abs(int(k.sum()))
    support = np.abs(np.arange(-total, total + 1))
    return float(min(1.0, pmf[support >= observed].sum()))


def signflip_pvalue(
    contrib_diff: FloatArray,
    clusters: Sequence[str],
    *,
    n_resamples: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided sign-flip permutation test of Σ contrib_diff = 0, flipping whole clusters.

    Under the null hypothesis that the two models are exchangeable on every item, swapping
    the labels of a cluster flips the sign of its summed contribution. Clusters contributing
    0 cannot change the statistic and are dropped. The p-value is exact whenever it can be:
    when the contributions are integer multiples of one unit (binary outcomes, k-sample
    means, equal group sizes) the null distribution is built by convolving binomials — with
    one item per cluster and equal weights this is exactly the McNemar test; else, when the
    sign patterns number at most `n_resamples`, they are enumerated. Otherwise the Monte
    Carlo p-value (hits + 1)/(resamples + 1) is used, valid at any number of resamples.
    """
    codes, n_clusters = cluster_codes(clusters)
    per_cluster = np.bincount(codes, weights=contrib_diff, minlength=n_clusters).astype(np.float64)
    largest = float(np.abs(per_cluster).max(initial=0.0))
    per_cluster = per_cluster[np.abs(per_cluster) > 1e-12 * largest]  # 0 up to rounding
    tol = 1e-9 * float(np.abs(per_cluster).sum())
    observed = abs(float(per_cluster.sum()))
    if per_cluster.size == 0 or observed <= tol:
        return 1.0
    lattice = _lattice(per_cluster)
    if lattice is not None:
        return _lattice_pvalue(lattice)
    if per_cluster.size < 63 and 2**per_cluster.size <= n_resamples:
        stats = _exact_signs(per_cluster.size) @ per_cluster
        return float(np.mean(np.abs(stats) >= observed - tol))
    hits = 0
    total = float(per_cluster.sum())
    chunk = max(1, min(n_resamples, _CHUNK_CELLS // per_cluster.size))
    with single_blas_thread():
        for start in range(0, n_resamples, chunk):
            rows = min(chunk, n_resamples - start)
            (packed,) = _random_bits(rng, rows, per_cluster.size, 1)
            bits = np.unpackbits(packed, axis=1, count=per_cluster.size).astype(np.float64)
            stats = 2.0 * (bits @ per_cluster) - total  # Σ s_c·t_c with s_c = 2·bit − 1
            hits += int(np.sum(np.abs(stats) >= observed - tol))
    return (hits + 1) / (n_resamples + 1)

"""KL divergence estimators from teacher-forced log-probabilities (DESIGN §7).

For responses y sampled from p (the "from" model) and per-token log-probs under p and q:
- k1 = Σ_t (log p − log q): unbiased for KL(p‖q) per sequence, can be negative per sample;
- k3 = Σ_t ((r − 1) − log r) with r = q/p: also unbiased, never negative per token, lower
  variance (Schulman, "Approximating KL divergence", 2020).
Both are reported as a sum per sequence and as a per-token mean, because reasoning models
write far longer responses and the per-sequence sum grows with length alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TokenLogprobs:
    """Log-probs of one response's tokens under the two models, plus which are reasoning."""

    logp_from: FloatArray
    """Under the model the response was sampled from."""
    logp_to: FloatArray
    """Under the other model."""
    reasoning_mask: npt.NDArray[np.bool_]
    """True for tokens of the reasoning part."""


@dataclass(frozen=True)
class KLEstimate:
    """Mean over responses of the per-sequence estimators."""

    k1_sum: float
    k1_per_token: float
    k3_sum: float
    k3_per_token: float
    n_sequences: int
    n_tokens: int


def _per_sequence(t: TokenLogprobs, mask: npt.NDArray[np.bool_]) -> tuple[float, float, int]:
    diff = (t.logp_from - t.logp_to)[mask]
    log_r = -diff
    k3 = np.expm1(log_r) - log_r
    return float(diff.sum()), float(k3.sum()), int(mask.sum())


def estimate_kl(seqs: Sequence[TokenLogprobs], *, include_reasoning: bool = True) -> KLEstimate:
    """KL(from‖to) estimates over responses; without reasoning, only answer tokens count."""
    k1s, k3s, lengths = [], [], []
    for t in seqs:
        mask = np.ones_like(t.reasoning_mask) if include_reasoning else ~t.reasoning_mask
        k1, k3, n = _per_sequence(t, mask)
        if n == 0:
            continue
        k1s.append(k1)
        k3s.append(k3)
        lengths.append(n)
    if not lengths:
        nan = float("nan")
        return KLEstimate(nan, nan, nan, nan, 0, 0)
    total = float(sum(lengths))
    return KLEstimate(
        k1_sum=float(np.mean(k1s)),
        k1_per_token=float(np.sum(k1s) / total),
        k3_sum=float(np.mean(k3s)),
        k3_per_token=float(np.sum(k3s) / total),
        n_sequences=len(lengths),
        n_tokens=int(total),
    )


def log_softmax_at(logits: npt.NDArray[np.float32], targets: npt.NDArray[np.intp]) -> FloatArray:
    """log p(target_t) from row t of `logits` (rows × vocab), computed stably in float64."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return np.asarray(z[np.arange(len(targets)), targets] - lse, dtype=np.float64)

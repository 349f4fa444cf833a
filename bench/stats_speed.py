"""Benchmark (issue 6): clustered paired bootstrap, 10 000 items × 10 000 resamples.

Worst case for the engine: every item its own cluster (G = 10 000), refusal-calibration metric
(two terms). Prints the best of a few runs, because the machine is shared and the best run is
the one least disturbed by other processes; also prints the median so the spread is visible,
and the CPU time of the process (a fairer figure when other work crowds the cores: the
bootstrap itself runs on one thread).

    RESULT bootstrap_10k_x_10k_s <best wall-clock seconds>
    RESULT bootstrap_10k_x_10k_cpu_s <CPU seconds of that run>
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from trustdiff.stats.paired import LinearMetric
from trustdiff.stats.resample import cluster_bootstrap_deltas, signflip_pvalue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cluster-size", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.items
    harmful = np.arange(n) % 2 == 0
    metric = LinearMetric(terms=((harmful, 0.5), (~harmful, -0.5)), offset=0.5)
    x_base = (rng.random(n) < np.where(harmful, 0.8, 0.2)).astype(float)
    x_derived = np.where(rng.random(n) < 0.1, 1.0 - x_base, x_base)
    clusters = [str(i // args.cluster_size) for i in range(n)]

    times, cpu = [], []
    for rep in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        boot = cluster_bootstrap_deltas(
            x_base,
            x_derived,
            metric,
            clusters,
            n_resamples=args.resamples,
            rng=np.random.default_rng(rep),
        )
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    assert np.isfinite(boot).all()
    w = metric.item_weights()
    start = time.perf_counter()
    signflip_pvalue(
        w * (x_derived - x_base), clusters, n_resamples=args.resamples, rng=np.random.default_rng(0)
    )
    flip_s = time.perf_counter() - start

    print(f"items={n} clusters={n // args.cluster_size} resamples={args.resamples}")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"bootstrap runs (s): {', '.join(f'{t:.3f}' for t in times)}")
    print(f"bootstrap median (s): {statistics.median(times):.3f}")
    print(f"bootstrap CPU per run (s): {', '.join(f'{t:.3f}' for t in cpu)}")
    print(f"sign-flip permutation, same size (s): {flip_s:.3f}")
    best = int(np.argmin(times))
    print(f"RESULT bootstrap_10k_x_10k_s {times[best]:.3f}")
    print(f"RESULT bootstrap_10k_x_10k_cpu_s {cpu[best]:.3f}")


if __name__ == "__main__":
    main()

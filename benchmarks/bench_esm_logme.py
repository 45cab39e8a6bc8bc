"""Benchmark P2 of ESM-LogME after embedding: milliseconds per ESM and peak memory.

Not a test. Run with ``.venv/bin/python benchmarks/bench_esm_logme.py [--sources 200] [--naive 5]``.

For each target size N (1,000 and 10,000 rows), D = 384 and 2 or 10 classes, it scores S synthetic ESMs
(random near-identity maps with bias) with :func:`taskscout.methods.logme.esm_logme` (the Gram trick:
target statistics once, then O(D^3) per ESM) and, for comparison, a handful of ESMs the naive way
(materialise ``F W^T + b`` per ESM and run :func:`taskscout.methods.logme.logme` on it). Peak memory is
the tracemalloc peak (numpy allocations are traced) above the memory held before the call. Wall times
are what a user waits; "CPU ms" sums all threads (useful when other jobs share the machine).
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from taskscout.methods.logme import esm_logme_from_statistics, logme, target_statistics


def sentence_like_embeddings(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Unit-norm float32 rows with a shared mean direction and a decaying spectrum, like sentence encoders."""
    basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
    scales = np.exp(-np.arange(d) / 60.0)
    z = (rng.standard_normal((n, d)) * scales) @ basis.T + 1.5 * rng.standard_normal(d) / np.sqrt(d)
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


def near_identity_maps(rng: np.random.Generator, s: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``s`` float32 maps ``W = I + noise`` with small biases, like trained ESMs."""
    w = np.eye(d, dtype=np.float32) + (0.2 / np.sqrt(d)) * rng.standard_normal((s, d, d)).astype(np.float32)
    b = 0.02 * rng.standard_normal((s, d)).astype(np.float32)
    return w, b


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """Run ``fn`` twice: once timed (wall and process CPU seconds, all threads), once under tracemalloc
    for the peak MiB above the starting level. Timing is kept out of the traced run because tracing
    every numpy allocation slows allocation-heavy code."""
    cpu = time.process_time()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, cpu, (peak - base) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=200, help="ESMs scored with the Gram trick")
    parser.add_argument("--naive", type=int, default=5, help="ESMs scored the naive way")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--classes", type=int, nargs="+", default=[2, 10])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    d = args.dim
    weights, biases = near_identity_maps(rng, args.sources, d)
    rows = []
    for n in args.rows:
        features = sentence_like_embeddings(rng, n, d)
        for c in args.classes:
            labels = rng.integers(0, c, n)
            # warm-up (thread pool, BLAS initialisation)
            esm_logme_from_statistics(
                target_statistics(features[:500], labels[:500]), weights[:4], biases[:4]
            )

            stats, t_stats, _, m_stats = measure(lambda f=features, y=labels: target_statistics(f, y))
            scores, t_esm, cpu_esm, m_esm = measure(
                lambda st=stats: esm_logme_from_statistics(st, weights, biases)
            )
            assert np.isfinite(scores).all()

            def naive(f: np.ndarray = features, y: np.ndarray = labels) -> np.ndarray:
                f64 = f.astype(np.float64)
                return np.array(
                    [logme(f64 @ weights[s].T.astype(np.float64) + biases[s], y) for s in range(args.naive)]
                )

            naive_scores, t_naive, _, m_naive = measure(naive)
            agree = float(np.max(np.abs(naive_scores - scores[: args.naive]) / np.abs(naive_scores)))
            rows.append(
                {
                    "N": n,
                    "C": c,
                    "stats ms": 1e3 * t_stats,
                    "ms/ESM (ESMs only)": 1e3 * t_esm / args.sources,
                    "CPU ms/ESM (ESMs only)": 1e3 * cpu_esm / args.sources,
                    "ms/ESM (incl. stats)": 1e3 * (t_stats + t_esm) / args.sources,
                    "stats peak MiB": m_stats,
                    "ESMs peak MiB": m_esm,
                    "naive ms/ESM": 1e3 * t_naive / args.naive,
                    "naive peak MiB": m_naive,
                    "max rel diff": agree,
                }
            )

    title = (
        f"ESM-LogME P2 after embedding: D={d}, S={args.sources} ESMs (naive: {args.naive}), "
        f"{os.cpu_count()} CPUs"
    )
    headers = list(rows[0])
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for h in headers:
            table.add_column(h, justify="right")
        for row in rows:
            table.add_row(*(_fmt(row[h]) for h in headers))
        Console(width=max(Console().width, 170)).print(table)
    except ImportError:  # pragma: no cover - rich is a dependency, plain text is a fallback
        print(title)
        print(" | ".join(headers))
        for row in rows:
            print(" | ".join(_fmt(row[h]) for h in headers))


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:,.1f}"


if __name__ == "__main__":
    main()

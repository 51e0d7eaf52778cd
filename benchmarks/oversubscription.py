"""BLAS oversubscription: matrix products on a pool, native threads unlimited vs limited (#17).

What it measures: the wall time of 8 tasks, each multiplying 600x600 float64 matrices
(``--products`` times), on 2 workers (``--workers``), including the pool's start-up:

- poolwise processes / threads with ``native_threads=None`` (each worker's OpenBLAS as wide
  as the machine: workers x CPUs busy threads on CPUs cores),
- the same with the default ``native_threads="auto"`` (CPUs / workers each),
- ``concurrent.futures.ProcessPoolExecutor`` and ``ThreadPoolExecutor`` as users run them
  (no limit).

    uv run --group bench python benchmarks/oversubscription.py [--workers 2] [--repeat 3]

How to read it: ``x limited`` is the time over poolwise's limited run of the same kind
(processes or threads); above 1.00 the unlimited pool lost time to oversubscription. The
effect grows with the cores: each worker's BLAS starts as many threads as the machine has.
The NumPy result of every task is checked against one computed serially.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import time
from typing import Any

import numpy as np

import poolwise

SIZE = 600
TASKS = 8


def products(seed_and_count: tuple[int, int]) -> float:
    seed, count = seed_and_count
    rng = np.random.default_rng(seed)
    a = rng.random((SIZE, SIZE))
    b = rng.random((SIZE, SIZE))
    for _ in range(count):
        a = (a @ b) / SIZE
    return float(a.sum())


def run(kind: str, workers: int, inputs: list[tuple[int, int]]) -> tuple[float, list[float]]:
    started = time.perf_counter()
    if kind == "ProcessPoolExecutor":
        with concurrent.futures.ProcessPoolExecutor(workers) as executor:
            results = list(executor.map(products, inputs))
    elif kind == "ThreadPoolExecutor":
        with concurrent.futures.ThreadPoolExecutor(workers) as executor:
            results = list(executor.map(products, inputs))
    else:
        mode, limit = kind.split()[1], kind.split()[2]
        native: Any = None if limit == "unlimited" else "auto"
        with poolwise.Pool(mode, workers, native_threads=native) as pool:  # type: ignore[arg-type]
            results = pool.map(products, inputs, chunksize=1)
    return time.perf_counter() - started, results


KINDS = (
    "poolwise processes limited",
    "poolwise processes unlimited",
    "ProcessPoolExecutor",
    "poolwise threads limited",
    "poolwise threads unlimited",
    "ThreadPoolExecutor",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="keep the best of N runs")
    args = parser.parse_args()
    inputs = [(seed, args.products) for seed in range(TASKS)]
    expected = [products(item) for item in inputs]
    cpus = poolwise.cpus()
    print(
        f"{TASKS} tasks x {args.products} products of {SIZE}x{SIZE} on {args.workers} workers, "
        f"{cpus} usable CPUs: unlimited = {args.workers} x {cpus} BLAS threads, limited = "
        f"{args.workers} x {max(1, cpus // args.workers)}; seconds, best of {args.repeat}"
    )
    times: dict[str, float] = {}
    for kind in KINDS:
        best = float("inf")
        for _ in range(args.repeat):
            seconds, results = run(kind, args.workers, inputs)
            if not np.allclose(results, expected):
                raise SystemExit(f"{kind}: wrong results")
            best = min(best, seconds)
        times[kind] = best
    print(f"{'pool':<30} {'seconds':>8} {'x limited':>10}")
    for kind, seconds in times.items():
        base = times[
            "poolwise threads limited"
            if "Thread" in kind or "threads" in kind
            else "poolwise processes limited"
        ]
        print(f"{kind:<30} {seconds:8.2f} {seconds / base:10.2f}")


if __name__ == "__main__":
    main()

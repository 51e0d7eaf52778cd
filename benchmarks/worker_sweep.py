"""Cost per task as the pool grows: 20,000 tiny tasks on a warm pool of 2 ... 64 workers.

The dispatcher's work per task must not grow with the number of workers (#13): on a
machine with fewer cores than workers the extra workers only wait, so any growth here is
the pool's own bookkeeping. Prints microseconds per task (best of ``--repeats``) and the
ratio to 2 workers, per mode.

    uv run python benchmarks/worker_sweep.py [--tasks N] [--repeats R] [--modes threads,processes]
"""

from __future__ import annotations

import argparse
import time

import poolwise

WORKERS = (2, 8, 32, 64)


def identity(x: int) -> int:
    return x


def per_task_seconds(mode: str, workers: int, tasks: int, repeats: int) -> float:
    """Best time per task of ``repeats`` maps on one warm pool (started and warmed first)."""
    inputs = list(range(tasks))
    with poolwise.Pool(mode, workers) as pool:  # type: ignore[arg-type]
        pool.map(identity, range(workers * 4), chunksize=1)  # every worker started
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            assert pool.map(identity, inputs) == inputs
            best = min(best, time.perf_counter() - started)
    return best / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="threads,processes")
    args = parser.parse_args()
    print(
        f"{args.tasks:,} tiny tasks, warm pools, best of {args.repeats}; "
        f"{poolwise.cpus()} usable CPUs"
    )
    for mode in args.modes.split(","):
        base = None
        for workers in WORKERS:
            seconds = per_task_seconds(mode, workers, args.tasks, args.repeats)
            base = base or seconds
            print(
                f"{mode:10} {workers:3} workers: {seconds * 1e6:7.2f} us/task "
                f"({seconds / base:.2f}x 2 workers)"
            )


if __name__ == "__main__":
    main()

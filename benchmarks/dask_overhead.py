"""What poolwise adds on top of Dask: 1,000 tiny tasks on one LocalCluster, both ways.

Starts a LocalCluster of 2 worker processes (one thread each) before any timing, then
times, best of 5 each:

- Dask alone: ``client.map(identity, range(1000))`` then ``client.gather``
  (one Dask task per input).
- poolwise: ``Pool("dask", address=cluster.scheduler_address).map(identity, range(1000))``
  (a pool connected to the same cluster once, reused: chunks of inputs, one Dask task
  each, at most one per worker thread in Dask's hands).

and prints both and their ratio. The target is poolwise <= 1.1x of Dask's time: chunking
should make it faster, since each Dask task costs the scheduler milliseconds.

    uv run python benchmarks/dask_overhead.py
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import distributed

import poolwise

if TYPE_CHECKING:
    from collections.abc import Callable

TASKS = 1000
RUNS = 5
WORKERS = 2


def identity(x: int) -> int:
    return x


def best_of(runs: int, fn: Callable[[], None]) -> float:
    """The shortest of ``runs`` timed calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    inputs = list(range(TASKS))
    with (
        distributed.LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
        poolwise.Pool("dask", address=cluster.scheduler_address) as pool,
    ):
        client.gather(client.map(identity, range(WORKERS), pure=False))  # workers warm
        assert pool.map(identity, inputs) == inputs  # the pool's client connected

        def with_dask() -> None:
            futures = client.map(identity, inputs, pure=False)
            assert client.gather(futures) == inputs

        def with_poolwise() -> None:
            assert pool.map(identity, inputs) == inputs

        dask_seconds = best_of(RUNS, with_dask)
        poolwise_seconds = best_of(RUNS, with_poolwise)
        chunksize = pool.report().chunksize
    print(f"{TASKS} tiny tasks on a LocalCluster of {WORKERS} worker processes, best of {RUNS}:")
    print(f"  Dask client.map + gather:  {dask_seconds * 1000:7.1f} ms")
    print(f"  poolwise Pool('dask').map: {poolwise_seconds * 1000:7.1f} ms (chunksize {chunksize})")
    ratio = poolwise_seconds / dask_seconds
    verdict = "within" if ratio <= 1.1 else "above"
    print(f"  ratio poolwise / Dask: {ratio:.3f}x ({verdict} the 1.1x target)")


if __name__ == "__main__":
    main()

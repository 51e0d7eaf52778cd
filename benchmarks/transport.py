"""Big arrays to process workers: wall time and the workers' memory, as tasks grow.

What it measures: one 64 MiB NumPy array summed by N tasks (N = 16, then 64) on 2 process
workers, three ways: poolwise processes (the array goes out-of-band through shared
memory), poolwise processes with the array ``share()``d (the copy into shared memory is
timed), and ProcessPoolExecutor (pickled through a pipe; only N = 16: it takes seconds).
While each map runs, a thread samples the USS (memory no other process shares) of every
child process every 5 ms (the workers, plus the forkserver and resource tracker, which stay
the same); the table gives the peak of their sum. Shared-memory pages are not in USS, so
a flat USS as N grows means no per-task copy stays behind in a worker.

    uv run --group bench python benchmarks/transport.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil

import poolwise

if TYPE_CHECKING:
    from collections.abc import Callable

MIB = 1 << 20
WORKERS = 2
SAMPLE_SECONDS = 0.005


def array_sum(array: Any) -> int:
    return int(array.sum())


@dataclass
class Row:
    way: str
    tasks: int
    seconds: float
    peak_workers_uss_mb: float


class UssSampler:
    """Peak of the summed USS of this process's children while it runs."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> UssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(SAMPLE_SECONDS):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_full_info().uss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)


def measure(way: str, tasks: int, run: Callable[[list[Any]], list[int]], array: Any) -> Row:
    expected = int(array.sum())
    with UssSampler() as sampler:
        started = time.perf_counter()
        results = run([array] * tasks)
        seconds = time.perf_counter() - started
    if results != [expected] * tasks:
        raise RuntimeError(f"{way}: wrong results")
    return Row(way, tasks, round(seconds, 4), round(sampler.peak / MIB, 1))


def poolwise_plain(inputs: list[Any]) -> list[int]:
    with poolwise.Pool("processes", WORKERS) as pool:
        return pool.map(array_sum, inputs)


def poolwise_shared(inputs: list[Any]) -> list[int]:
    with poolwise.share(inputs[0]) as shared, poolwise.Pool("processes", WORKERS) as pool:
        return pool.map(array_sum, [shared] * len(inputs))


def process_pool_executor(inputs: list[Any]) -> list[int]:
    with ProcessPoolExecutor(WORKERS) as executor:
        return list(executor.map(array_sum, inputs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    array = np.arange(64 * MIB // 8, dtype=np.int64)
    with poolwise.Pool("processes", 1) as pool:  # the forkserver, started before timing
        pool.submit(time.sleep, 0).result()
    rows = []
    for tasks in (16, 64):
        rows.append(measure("poolwise processes", tasks, poolwise_plain, array))
        rows.append(measure("poolwise processes + share()", tasks, poolwise_shared, array))
        if tasks == 16:
            rows.append(measure("ProcessPoolExecutor", tasks, process_pool_executor, array))
        started = time.perf_counter()
        with poolwise.Pool("threads", WORKERS) as pool:
            pool.map(array_sum, [array] * tasks)
        rows.append(Row("poolwise threads", tasks, round(time.perf_counter() - started, 4), 0.0))
    print(f"{'way':32} {'tasks':>5} {'seconds':>8} {'peak workers USS MB':>20}")
    for row in rows:
        print(f"{row.way:32} {row.tasks:5} {row.seconds:8.3f} {row.peak_workers_uss_mb:20.1f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump([asdict(row) for row in rows], out, indent=2)


if __name__ == "__main__":
    main()
